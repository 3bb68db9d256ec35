/* cl_open.c - the cluster layer's life cycle: connect, create the streams and buckets, start
 * the control thread; and at the end hand the partitions over and close. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cl_int.h"
#include "log.h"

static void cl_on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    cl_t *cl = closure;
    pthread_mutex_lock(&cl->mu);
    cl->c.nats_disconnects++;
    bool closing = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    if (closing) return;
    log_warn("cluster: disconnected from NATS, reconnecting");
    /* Answers to our forwards went to the old connection: refuse them now (unknown outcome:
     * the producer retries with the same message_id) rather than after their timeout. */
    cl_forward_fail(cl, 0);
}

static void cl_on_reconnected(natsConnection *nc, void *closure)
{
    cl_t *cl = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    pthread_mutex_lock(&cl->mu);
    cl->c.nats_reconnects++;
    bool closing = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    log_info("cluster: reconnected to %s", url);
    if (!closing) cl_append_reconnected(cl);
}

/* "nats://a:4222, nats://b:4222" -> natsOptions_SetServers (a comma-separated URL given to
 * natsOptions_SetURL is not a server list in cnats 3.4). */
static int cl_set_servers(natsOptions *opts, char *list, herald_error_t *err)
{
    const char *urls[32];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (!*tok) continue;
        if (n == 32)
            return herr_set(err, HERR_BAD_VALUE, "cluster.nats", "more than 32 NATS servers");
        urls[n++] = tok;
    }
    if (n == 0) return herr_set(err, HERR_BAD_VALUE, "cluster.nats", "no NATS server URL");
    if (natsOptions_SetServers(opts, urls, n) != NATS_OK)
        return herr_set(err, HERR_BAD_VALUE, "cluster.nats", "bad NATS server list: %s",
                        nats_GetLastError(NULL));
    return 0;
}

static void cl_on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    cl_t *cl = closure;
    pthread_mutex_lock(&cl->mu);
    cl->closed = true;
    pthread_cond_broadcast(&cl->q_cond);
    pthread_mutex_unlock(&cl->mu);
}

static int cl_connect(cl_t *cl, herald_error_t *err)
{
    natsOptions *o = NULL;
    char list[sizeof cl->nats], cname[48];
    snprintf(list, sizeof list, "%s", cl->nats);
    snprintf(cname, sizeof cname, "herald-node-%u", cl->cfg.node_id);
    int rc = -HERR_IO;
    if (natsOptions_Create(&o) != NATS_OK) return herr_set(err, HERR_INTERNAL, "", "cnats options");
    if ((rc = cl_set_servers(o, list, err)) < 0) goto out;
    natsOptions_SetName(o, cname);
    natsOptions_SetTimeout(o, 2000);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 250);
    natsOptions_SetPingInterval(o, 2000); /* a dead server is noticed in ~4 s */
    natsOptions_SetMaxPingsOut(o, 2);
    natsOptions_SetDisconnectedCB(o, cl_on_disconnected, cl);
    natsOptions_SetReconnectedCB(o, cl_on_reconnected, cl);
    natsOptions_SetClosedCB(o, cl_on_closed, cl);
    natsStatus s = natsConnection_Connect(&cl->nc, o);
    if (s != NATS_OK) {
        rc = herr_set(err, HERR_IO, "cluster.nats", "cannot connect to NATS (%s): %s", cl->nats,
                      natsStatus_GetText(s));
        goto out;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    jo.PublishAsync.AckHandler = cl_append_ack;
    jo.PublishAsync.AckHandlerClosure = cl;
    jo.PublishAsync.MaxPending = 1000000; /* at most one commit per partition is in flight */
    if (natsConnection_JetStream(&cl->js, cl->nc, &jo) != NATS_OK) goto js_fail;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    if (natsConnection_JetStream(&cl->jsc, cl->nc, &jo) != NATS_OK) goto js_fail;
    int64_t maxp = natsConnection_GetMaxPayload(cl->nc);
    /* The body of a round message: what the server takes, less room for the headers. */
    cl->max_body = maxp > 8192 ? (size_t)maxp - 4096 : 0;
    if (cl->max_body < 96 * 1024) {
        rc = herr_set(err, HERR_BAD_VALUE, "cluster.nats",
                      "NATS max_payload %lld is too small (a notification needs up to 64 KiB)",
                      (long long)maxp);
        goto out;
    }
    rc = 0;
    goto out;
js_fail:
    rc = herr_set(err, HERR_IO, "cluster.nats", "JetStream context: %s", nats_GetLastError(NULL));
out:
    natsOptions_Destroy(o);
    return rc;
}

/* Create p's stream, or bring an existing one's limits to this configuration. */
static int cl_stream_ensure(cl_t *cl, unsigned p, herald_error_t *err)
{
    char name[64], subj[96];
    cl_stream_name(cl, p, name, sizeof name);
    snprintf(subj, sizeof subj, "%s.p.%u.*", cl->name, p);
    const char *subjects[] = {subj};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = cl->cfg.replicas;
    sc.MaxAge = (int64_t)cl->cfg.history_age_s * 1000000000ll;
    /* Retries of a write in doubt must hit the dedup window (no longer than MaxAge). */
    int64_t dup = 120ll * 1000000000ll;
    sc.Duplicates = dup < sc.MaxAge ? dup : sc.MaxAge;
    sc.AllowDirect = true;
    jsErrCode code = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, cl->jsc, &sc, NULL, &code);
    if (s != NATS_OK && code == JSStreamNameExistErr) {
        s = js_UpdateStream(&si, cl->jsc, &sc, NULL, &code);
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return herr_set(err, HERR_IO, name, "stream %s (replicas %u): %s (error %d)", name,
                        cl->cfg.replicas, nats_GetLastError(NULL), (int)code);
    return 0;
}

/* An existing bucket keeps fewer values per key than history: raise its stream's limit
 * (buckets made by an earlier build). */
static void cl_bucket_history(cl_t *cl, const char *bucket, int64_t history)
{
    char stream[80];
    snprintf(stream, sizeof stream, "KV_%s", bucket);
    jsStreamInfo *si = NULL;
    jsErrCode code = 0;
    if (js_GetStreamInfo(&si, cl->jsc, stream, NULL, &code) != NATS_OK) return;
    if (si->Config->MaxMsgsPerSubject < history) {
        si->Config->MaxMsgsPerSubject = history;
        jsStreamInfo *ui = NULL;
        if (js_UpdateStream(&ui, cl->jsc, si->Config, NULL, &code) == NATS_OK)
            log_info("cluster: bucket %s now keeps %lld values per key", bucket,
                     (long long)history);
        else
            log_warn("cluster: bucket %s: history not raised to %lld: %s", bucket,
                     (long long)history, nats_GetLastError(NULL));
        jsStreamInfo_Destroy(ui);
    }
    jsStreamInfo_Destroy(si);
}

static int cl_bucket(cl_t *cl, kvStore **kv, const char *suffix, int64_t ttl_ns, int64_t history,
                     herald_error_t *err)
{
    char bucket[64];
    snprintf(bucket, sizeof bucket, "%s_%s", cl->name, suffix);
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = history;
    kc.TTL = ttl_ns;
    kc.StorageType = js_FileStorage;
    kc.Replicas = (int)cl->cfg.replicas;
    natsStatus s = js_CreateKeyValue(kv, cl->jsc, &kc);
    if (s == NATS_OK) return 0;
    char why[200];
    snprintf(why, sizeof why, "%s", nats_GetLastError(NULL));
    /* It may exist with another configuration (another TTL, say): then use it as it is. */
    if (js_KeyValue(kv, cl->jsc, bucket) == NATS_OK) {
        log_warn("cluster: bucket %s: %s; using the existing bucket", bucket, why);
        cl_bucket_history(cl, bucket, history);
        return 0;
    }
    *kv = NULL;
    return herr_set(err, HERR_IO, bucket, "KV bucket %s: %s", bucket, why);
}

/* Streams and buckets, retried for open_timeout_ms: a JetStream cluster that is starting
 * refuses placements ("no suitable peers") until its servers know one another. */
static int cl_streams_ensure(cl_t *cl, herald_error_t *err)
{
    uint64_t deadline = cl_now() + (uint64_t)cl->cfg.open_timeout_ms * 1000000u;
    unsigned p = 0;
    int rc = 0;
    for (;;) {
        while (p < cl->n_parts && (rc = cl_stream_ensure(cl, p, err)) == 0)
            p++;
        if (rc == 0 && !cl->kv)
            rc = cl_bucket(cl, &cl->kv, "cluster", (int64_t)cl->cfg.lease_ttl_ms * 1000000ll, 1,
                           err);
        /* Checkpoint chunks keep their earlier values: a header names the chunks' revisions,
         * and a checkpoint whose header write failed (the owner lost its lease, a leader
         * died) has already replaced the chunks the standing header names. With one value
         * per key that header could never be read again and no node could take the
         * partition over. */
        if (rc == 0 && !cl->ckpt) rc = cl_bucket(cl, &cl->ckpt, "ckpt", 0, CL_CKPT_HISTORY, err);
        if (rc == 0 || cl_now() >= deadline) return rc;
        usleep(500000);
    }
}

/* This process among the lives of its node id: the wall clock at start in nanoseconds, with
 * the pid in the top bits. A restarted process starts later than the one it replaces, so the
 * clock alone differs unless the clock was set back past the earlier start; the pid then
 * differs too (almost surely). Not CLOCK_MONOTONIC: it restarts at 0 with the machine. */
static uint64_t cl_incarnation(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t v = ns ^ (uint64_t)getpid() << 40;
    return v ? v : 1;
}

static void cl_defaults(cl_config_t *c)
{
    if (!c->lease_ttl_ms) c->lease_ttl_ms = 15000;
    if (!c->tick_ms) c->tick_ms = 250;
    if (!c->ack_wait_ms) c->ack_wait_ms = 5000;
    if (!c->forward_timeout_ms) c->forward_timeout_ms = 10000;
    if (!c->ckpt_interval_ms) c->ckpt_interval_ms = 5000;
    if (!c->probe_grace_ms) c->probe_grace_ms = 3000;
    if (!c->open_timeout_ms) c->open_timeout_ms = 15000;
    if (!c->dedup_window) c->dedup_window = 10000;
    if (!c->history_age_s) c->history_age_s = 300;
}

static int cl_check_config(const cl_config_t *c, herald_error_t *err)
{
    if (!c->nats || !*c->nats)
        return herr_set(err, HERR_BAD_VALUE, "cluster.nats", "cluster.nats is not set");
    if (strlen(c->nats) >= sizeof((cl_t *)0)->nats)
        return herr_set(err, HERR_BAD_VALUE, "cluster.nats", "cluster.nats is too long");
    if (c->node_id < 1)
        return herr_set(err, HERR_BAD_VALUE, "cluster.node_id", "cluster.node_id must be >= 1");
    if (c->partitions < 1 || c->partitions > 1024)
        return herr_set(err, HERR_BAD_VALUE, "cluster.partitions",
                        "cluster.partitions must be 1..1024");
    if (c->replicas < 1 || c->replicas > 5)
        return herr_set(err, HERR_BAD_VALUE, "cluster.replicas", "cluster.replicas must be 1..5");
    const char *n = c->name ? c->name : "herald";
    size_t len = strlen(n);
    if (len == 0 || len >= CL_NAME_MAX - 4 ||
        strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789") != len)
        return herr_set(err, HERR_BAD_VALUE, "cluster.name",
                        "name must be 1..27 lower-case letters or digits");
    return 0;
}

int cl_open(cl_t **out, const cl_config_t *cfg, const cl_callbacks_t *cb, herald_error_t *err)
{
    *out = NULL;
    int rc = cl_check_config(cfg, err);
    if (rc < 0) return rc;
    cl_t *cl = calloc(1, sizeof *cl);
    if (!cl) return herr_set(err, HERR_INTERNAL, "", "out of memory");
    cl->cfg = *cfg;
    cl_defaults(&cl->cfg);
    cl->incarnation = cl_incarnation();
    cl->cb = *cb;
    snprintf(cl->nats, sizeof cl->nats, "%s", cfg->nats);
    cl->cfg.nats = cl->nats;
    snprintf(cl->name, sizeof cl->name, "%s", cfg->name ? cfg->name : "herald");
    cl->cfg.name = cl->name;
    for (size_t i = 0; i <= strlen(cl->name); i++)
        cl->stream_pfx[i] = (char)toupper((unsigned char)cl->name[i]);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->ctl_cond, NULL);
    pthread_cond_init(&cl->keep_cond, NULL);
    pthread_cond_init(&cl->q_cond, NULL);
    cl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cl->n_parts = cl->cfg.partitions + 1;
    cl->parts = calloc(cl->n_parts, sizeof *cl->parts);
    if (cl->efd < 0 || !cl->parts) {
        rc = herr_set(err, HERR_IO, "", "cluster: eventfd or memory: %s", strerror(errno));
        goto fail;
    }
    for (unsigned p = 0; p < cl->n_parts; p++) {
        cl->parts[p].cl = cl;
        cl->parts[p].idx = p;
    }
    cl->live[0] = cl->reach[0] = cl->cfg.node_id;
    cl->n_live = cl->n_reach = 1;

    if ((rc = cl_connect(cl, err)) < 0) goto fail;
    if ((rc = cl_streams_ensure(cl, err)) < 0) goto fail;
    if ((rc = cl_forward_open(cl)) < 0) {
        rc = herr_set(err, HERR_IO, "cluster.nats", "cluster: subscriptions: %s",
                      nats_GetLastError(NULL));
        goto fail;
    }
    if (pthread_create(&cl->ctl, NULL, cl_ctl_main, cl) != 0) {
        rc = herr_set(err, HERR_IO, "", "cluster: cannot start the control thread");
        goto fail;
    }
    cl->ctl_started = true;
    if (pthread_create(&cl->keep, NULL, cl_keep_main, cl) != 0) {
        rc = herr_set(err, HERR_IO, "", "cluster: cannot start the lease keeper thread");
        goto fail;
    }
    cl->keep_started = true;
    log_info("cluster: node %u on %s, %u partitions (+1 broadcast), %u replicas", cl->cfg.node_id,
             cl->nats, cl->cfg.partitions, cl->cfg.replicas);
    *out = cl;
    return 0;
fail:
    cl_close(cl);
    return rc;
}

/* Give every owned partition back, waiting up to a second for their writes in flight. */
static void cl_release_all(cl_t *cl)
{
    /* Bounded, so that a process manager's stop timeout (the supervisor's 5 s) is met even
     * with NATS in trouble: what is not released in time expires, or is taken from us once
     * our connection is closed (probes). */
    uint64_t t0 = cl_now(), writes = t0 + 1000000000ull, deadline = t0 + 2500000000ull;
    pthread_mutex_lock(&cl->mu);
    for (unsigned p = 0; p < cl->n_parts; p++)
        if (cl->parts[p].state == CL_P_OWNER) cl_release_begin(cl, &cl->parts[p]);
    pthread_mutex_unlock(&cl->mu);
    for (unsigned p = 0; p < cl->n_parts && cl_now() < deadline; p++) {
        cl_part_t *part = &cl->parts[p];
        pthread_mutex_lock(&cl->mu);
        while ((part->commit || part->q_head) && cl_now() < writes) {
            pthread_mutex_unlock(&cl->mu);
            usleep(2000);
            pthread_mutex_lock(&cl->mu);
        }
        /* A lease that ran out is not ours to checkpoint under or give back. */
        bool held =
            (part->state == CL_P_RELEASING || part->release_lease) && cl_now() < part->valid_until;
        pthread_mutex_unlock(&cl->mu);
        if (!held) continue;
        cl_checkpoint_tick(cl, part, true);
        cl_lease_release(cl, part);
    }
}

void cl_close(cl_t *cl)
{
    if (!cl) return;
    if (cl->ctl_started) {
        pthread_mutex_lock(&cl->mu);
        cl->stop = true;
        cl_kick(cl);
        pthread_cond_broadcast(&cl->q_cond);
        pthread_cond_broadcast(&cl->keep_cond);
        pthread_mutex_unlock(&cl->mu);
        pthread_join(cl->ctl, NULL);
        if (cl->keep_started) pthread_join(cl->keep, NULL);
    }
    if (cl->nc) {
        /* Leave before handing over: a node that still answers probes while its partitions
         * are free would be handed back the ones it is preferred for. */
        if (cl->node_sub) natsSubscription_Unsubscribe(cl->node_sub);
        if (cl->kv) {
            char key[32];
            snprintf(key, sizeof key, "node.%u", cl->cfg.node_id);
            kvStore_Delete(cl->kv, key);
        }
        cl_release_all(cl);
        for (unsigned p = 0; p < cl->n_parts; p++)
            cl_consume_close(cl, &cl->parts[p]);
        cl_forward_close(cl);
        /* Let the delivery threads finish what they hold, then close; the closed callback
         * says they are done with cl. */
        if (natsConnection_DrainTimeout(cl->nc, 1000) != NATS_OK) natsConnection_Close(cl->nc);
        uint64_t deadline = cl_now() + 1500000000ull;
        pthread_mutex_lock(&cl->mu);
        while (!cl->closed && cl_now() < deadline) {
            pthread_mutex_unlock(&cl->mu);
            usleep(5000);
            pthread_mutex_lock(&cl->mu);
        }
        pthread_mutex_unlock(&cl->mu);
    }
    if (cl->nc) cl_forward_free(cl);
    for (unsigned p = 0; cl->parts && p < cl->n_parts; p++) {
        natsSubscription_Destroy(cl->parts[p].cons);
        cl->parts[p].cons = NULL;
    }
    kvStore_Destroy(cl->kv);
    kvStore_Destroy(cl->ckpt);
    jsCtx_Destroy(cl->js);
    jsCtx_Destroy(cl->jsc);
    natsConnection_Destroy(cl->nc);
    for (cl_item_t *it = cl->q_head, *nx; it; it = nx) {
        nx = it->next;
        cl_item_free(it);
    }
    for (unsigned p = 0; cl->parts && p < cl->n_parts; p++) {
        cl_part_t *part = &cl->parts[p];
        if (part->commit) cl_commit_free(part->commit);
        for (cl_round_t *r = part->q_head, *nx; r; r = nx) {
            nx = r->next;
            free(r);
        }
        cl_state_free(part->st);
    }
    free(cl->parts);
    if (cl->efd >= 0) close(cl->efd);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->ctl_cond);
    pthread_cond_destroy(&cl->keep_cond);
    pthread_cond_destroy(&cl->q_cond);
    free(cl);
}
