/* bench_cluster.c - `herald-bench cluster`: the cluster layer's write path on a real NATS
 * JetStream: drain rounds (what the broker's drain would hand over every --drain-us) of
 * --size-byte notifications for --users users, appended with cl_append_round and counted
 * when JetStream acknowledged them (quorum). Reports notifications/s, JetStream messages/s
 * (commits: the grouping factor) and the latency from hand-over to acknowledgement.
 * Its streams and buckets (--name, default "hbench") are deleted at the end unless --keep.
 *
 * --raw K measures JetStream alone for comparison: async publishes of K notifications per
 * message to one stream (--replicas), K = 1 being protocol.md 11's one message per notification. */
#include <getopt.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"
#include "hist.h"
#include "cluster.h"
#include "herald_time.h"
#include "log.h"

typedef struct {
    cl_t *cl;
    hist_t lat; /* hand-over to acknowledgement, ns */
    uint64_t acked, failed, pending_rounds, pending_recs;
    unsigned owned;
} bc_state_t;

typedef struct {
    uint64_t at;
    uint32_t n;
} bc_round_t;

static void bc_appended(void *ctx, unsigned p, void *round_ctx, cl_status_t st)
{
    bc_state_t *s = ctx;
    bc_round_t *r = round_ctx;
    (void)p;
    s->pending_rounds--;
    s->pending_recs -= r->n;
    if (st == CL_OK) {
        s->acked += r->n;
        hist_record(&s->lat, mono_ns() - r->at);
    } else {
        s->failed += r->n;
    }
    free(r);
}

static void bc_owner(void *ctx, unsigned p, const cl_takeover_t *tk, cl_status_t why)
{
    bc_state_t *s = ctx;
    (void)p;
    (void)why;
    if (tk)
        s->owned++;
    else
        s->owned--;
}

static void bc_usage(FILE *out)
{
    fprintf(out,
            "usage: herald-bench cluster --nats URLS [--partitions 16] [--replicas 3]\n"
            "         [--users 1000] [--size 300] [--rate 0] [--seconds 10] [--drain-us 1000]\n"
            "         [--node 1] [--name hbench] [--keep] [--raw K]\n"
            "         [--inflight 20000]\n"
            "  --rate 0: as fast as acknowledgements allow, at most --inflight notifications\n"
            "            handed over and not yet acknowledged (a broker's queues bound them)\n"
            "  --raw K: JetStream alone, K notifications per message, no cluster layer\n");
}

/* A connection to the comma-separated server list, or NULL. */
static natsConnection *bc_connect(const char *nats)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    char list[1024];
    const char *urls[32];
    int n = 0;
    snprintf(list, sizeof list, "%s", nats);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t && n < 32;
         t = strtok_r(NULL, ",", &save))
        urls[n++] = t + strspn(t, " \t");
    natsOptions_Create(&o);
    natsOptions_SetServers(o, urls, n);
    if (natsConnection_Connect(&nc, o) != NATS_OK) nc = NULL;
    natsOptions_Destroy(o);
    return nc;
}

static _Atomic uint64_t bc_raw_acked, bc_raw_failed; /* cnats callback thread -> main */

static void bc_raw_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *c)
{
    (void)js;
    (void)pae;
    (void)c;
    if (pa)
        atomic_fetch_add_explicit(&bc_raw_acked, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&bc_raw_failed, 1, memory_order_relaxed);
    natsMsg_Destroy(m);
}

/* --raw K: async publishes of K * size bytes to stream <NAME>_RAW, users' subjects. */
static int bc_raw(const char *nats, const char *name, unsigned replicas, unsigned users,
                  unsigned size, unsigned k, double seconds)
{
    natsConnection *nc = bc_connect(nats);
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = bc_raw_ack;
    jo.PublishAsync.MaxPending = 1000;
    if (!nc || natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr, "herald-bench cluster: cannot connect to %s\n", nats);
        natsConnection_Destroy(nc);
        return 1;
    }
    char stream[64], subjects[80];
    snprintf(stream, sizeof stream, "%s_RAW", name);
    for (char *c = stream; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    snprintf(subjects, sizeof subjects, "%s.raw.>", name);
    const char *subj[] = {subjects};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    jsStreamInfo *si = NULL;
    js_DeleteStream(js, stream, NULL, NULL);
    if (js_AddStream(&si, js, &sc, NULL, NULL) != NATS_OK) {
        fprintf(stderr, "herald-bench cluster: stream %s: %s\n", stream, nats_GetLastError(NULL));
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return 1;
    }
    jsStreamInfo_Destroy(si);
    size_t len = (size_t)k * size;
    char *buf = malloc(len), s[96];
    if (!buf) abort();
    memset(buf, 'x', len);
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), sent = 0;
    while (mono_ns() < end) {
        snprintf(s, sizeof s, "%s.raw.%llu", name, (unsigned long long)(sent % users));
        if (js_PublishAsync(js, s, buf, (int)len, NULL) == NATS_OK) sent++;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    js_PublishAsyncComplete(js, &po);
    double secs = (double)(mono_ns() - t0) / 1e9;
    uint64_t acked = atomic_load_explicit(&bc_raw_acked, memory_order_relaxed);
    printf("{\"bench\":\"cluster-raw\",\"replicas\":%u,\"size\":%u,\"per_message\":%u,"
           "\"seconds\":%.2f,\"messages_per_s\":%.0f,\"notifications_per_s\":%.0f,"
           "\"failed\":%llu}\n",
           replicas, size, k, secs, (double)acked / secs, (double)acked * k / secs,
           (unsigned long long)atomic_load_explicit(&bc_raw_failed, memory_order_relaxed));
    fprintf(stderr,
            "JetStream alone, R%u, %u x %u bytes per message: %.0f messages/s = %.0f "
            "notifications/s\n",
            replicas, k, size, (double)acked / secs, (double)acked * k / secs);
    js_DeleteStream(js, stream, NULL, NULL);
    free(buf);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return 0;
}

/* Delete the bench's streams and buckets. */
static void bc_cleanup(const char *nats, const char *name, unsigned parts)
{
    natsConnection *nc = bc_connect(nats);
    jsCtx *js = NULL;
    if (nc && natsConnection_JetStream(&js, nc, NULL) == NATS_OK) {
        char s[64];
        for (unsigned p = 0; p <= parts; p++) {
            snprintf(s, sizeof s, "%s_P%u", name, p);
            for (char *c = s; *c; c++)
                if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
            js_DeleteStream(js, s, NULL, NULL);
        }
        snprintf(s, sizeof s, "%s_cluster", name);
        js_DeleteKeyValue(js, s);
        snprintf(s, sizeof s, "%s_ckpt", name);
        js_DeleteKeyValue(js, s);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

typedef struct {
    const char *nats, *name;
    unsigned parts, replicas, users, size, node, drain_us, raw, inflight;
    double rate, seconds;
    bool keep;
} bc_opts_t;

/* Read the options into o. Returns 0 to run, 1 after --help, -1 on a bad one (usage on
 * stderr). */
static int bc_parse_opts(int argc, char **argv, bc_opts_t *o)
{
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"partitions", required_argument, 0, 'p'},
        {"replicas", required_argument, 0, 'r'},
        {"users", required_argument, 0, 'u'},
        {"size", required_argument, 0, 's'},
        {"rate", required_argument, 0, 'R'},
        {"seconds", required_argument, 0, 't'},
        {"drain-us", required_argument, 0, 'd'},
        {"node", required_argument, 0, 'N'},
        {"name", required_argument, 0, 'a'},
        {"keep", no_argument, 0, 'k'},
        {"raw", required_argument, 0, 'w'},
        {"inflight", required_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'n':
            o->nats = optarg;
            break;
        case 'p':
            o->parts = (unsigned)atoi(optarg);
            break;
        case 'r':
            o->replicas = (unsigned)atoi(optarg);
            break;
        case 'u':
            o->users = (unsigned)atoi(optarg);
            break;
        case 's':
            o->size = (unsigned)atoi(optarg);
            break;
        case 'R':
            o->rate = atof(optarg);
            break;
        case 't':
            o->seconds = atof(optarg);
            break;
        case 'd':
            o->drain_us = (unsigned)atoi(optarg);
            break;
        case 'N':
            o->node = (unsigned)atoi(optarg);
            break;
        case 'a':
            o->name = optarg;
            break;
        case 'k':
            o->keep = true;
            break;
        case 'w':
            o->raw = (unsigned)atoi(optarg);
            break;
        case 'i':
            o->inflight = (unsigned)atoi(optarg);
            break;
        case 'h':
            bc_usage(stdout);
            return 1;
        default:
            bc_usage(stderr);
            return -1;
        }
    }
    if (!o->nats || !o->users || !o->parts || o->size < 16 || o->size > 60000 || o->seconds <= 0 ||
        o->seconds > 600) {
        bc_usage(stderr);
        return -1;
    }
    return 0;
}

/* Dispatch the cluster layer's answers until `until` (mono ns), polling at most wait_ms at a
 * time; with pending_only, stop early once no round is pending. */
static void bc_dispatch_until(bc_state_t *s, uint64_t until, int wait_ms, bool pending_only)
{
    do {
        if (pending_only && !s->pending_rounds) return;
        struct pollfd pfd = {cl_fd(s->cl), POLLIN, 0};
        uint64_t t = mono_ns();
        int ms = wait_ms >= 0 ? wait_ms : t < until ? (int)((until - t) / 1000000u) : 0;
        poll(&pfd, 1, ms);
        cl_dispatch(s->cl);
    } while (mono_ns() < until);
}

/* Open the cluster layer and wait (at most 30 s) until it owns every partition. */
static int bc_start(bc_state_t *s, const bc_opts_t *o)
{
    cl_config_t cfg = {.nats = o->nats,
                       .node_id = o->node,
                       .partitions = o->parts,
                       .replicas = o->replicas,
                       .name = o->name,
                       .history_age_s = 300};
    cl_callbacks_t cb = {.ctx = s, .appended = bc_appended, .owner = bc_owner};
    herald_error_t err;
    if (cl_open(&s->cl, &cfg, &cb, &err) < 0) {
        fprintf(stderr, "herald-bench cluster: %s\n", err.message);
        return -1;
    }
    uint64_t t0 = mono_ns();
    while (s->owned < o->parts + 1 && mono_ns() - t0 < 30000000000ull) {
        struct pollfd pfd = {cl_fd(s->cl), POLLIN, 0};
        poll(&pfd, 1, 50);
        cl_dispatch(s->cl);
    }
    if (s->owned < o->parts + 1) {
        fprintf(stderr, "herald-bench cluster: owns %u of %u partitions after 30 s\n", s->owned,
                o->parts + 1);
        cl_close(s->cl);
        return -1;
    }
    return 0;
}

#define BC_MIDS (64 * 1024) /* message ids (and records per partition) kept per drain */

/* The load: users, their partitions and seqs; one notification body; a drain's records
 * grouped by partition. */
typedef struct {
    char (*ids)[24];
    unsigned *part_of;
    uint64_t *seqs;
    char (*mids)[24];
    uint8_t *body;
    size_t *by_part;
    cl_rec_t **pr;
    uint64_t mid, next_user;
} bc_load_t;

static void bc_load_init(bc_load_t *l, cl_t *cl, const bc_opts_t *o)
{
    memset(l, 0, sizeof *l);
    l->ids = calloc(o->users, sizeof *l->ids);
    l->part_of = calloc(o->users, sizeof *l->part_of);
    l->seqs = calloc(o->users, sizeof *l->seqs);
    l->mids = calloc(BC_MIDS, sizeof *l->mids);
    l->body = malloc(o->size);
    if (!l->ids || !l->part_of || !l->seqs || !l->mids || !l->body) abort();
    memset(l->body, 'x', o->size);
    for (unsigned u = 0; u < o->users; u++) {
        snprintf(l->ids[u], sizeof l->ids[u], "user%u", u);
        l->part_of[u] = cl_partition_of(cl, l->ids[u], strlen(l->ids[u]));
    }
    l->by_part = calloc(o->parts + 1, sizeof *l->by_part);
    l->pr = calloc(o->parts + 1, sizeof *l->pr);
    for (unsigned p = 0; p <= o->parts; p++)
        l->pr[p] = calloc(BC_MIDS, sizeof **l->pr);
}

static void bc_load_free(bc_load_t *l, const bc_opts_t *o)
{
    for (unsigned p = 0; p <= o->parts; p++)
        free(l->pr[p]);
    free(l->pr);
    free(l->by_part);
    free(l->ids);
    free(l->part_of);
    free(l->seqs);
    free(l->mids);
    free(l->body);
}

/* One drain: n notifications for the next users, grouped by partition, each group handed
 * over as one round. */
static void bc_drain(bc_state_t *s, bc_load_t *l, const bc_opts_t *o, uint64_t n)
{
    memset(l->by_part, 0, (o->parts + 1) * sizeof *l->by_part);
    for (uint64_t i = 0; i < n; i++, l->next_user++) {
        unsigned u = (unsigned)(l->next_user % o->users), p = l->part_of[u];
        char *m = l->mids[(l->mid++) % BC_MIDS];
        snprintf(m, 24, "m%llu", (unsigned long long)l->mid);
        l->pr[p][l->by_part[p]++] = (cl_rec_t){.user = l->ids[u],
                                               .user_len = (uint8_t)strlen(l->ids[u]),
                                               .message_id = m,
                                               .id_len = (uint8_t)strlen(m),
                                               .seq = ++l->seqs[u],
                                               .bytes = l->body,
                                               .len = o->size,
                                               .prio = 1};
    }
    for (unsigned p = 0; p <= o->parts; p++) {
        if (!l->by_part[p]) continue;
        bc_round_t *r = malloc(sizeof *r);
        if (!r) abort();
        *r = (bc_round_t){.at = mono_ns(), .n = (uint32_t)l->by_part[p]};
        s->pending_rounds++;
        s->pending_recs += l->by_part[p];
        cl_append_round(s->cl, p, l->pr[p], l->by_part[p], r);
    }
}

/* Print the run as one JSON line and a sentence. */
static void bc_report(const bc_state_t *s, const bc_opts_t *o, double secs, uint64_t commits,
                      uint64_t msgs)
{
    printf("{\"bench\":\"cluster\",\"partitions\":%u,\"replicas\":%u,\"users\":%u,\"size\":%u,"
           "\"rate\":%.0f,\"seconds\":%.2f,\"acked\":%llu,\"failed\":%llu,\"acked_per_s\":%.0f,"
           "\"commits_per_s\":%.0f,\"messages_per_s\":%.0f,\"records_per_message\":%.1f,"
           "\"lat_p50_us\":%.0f,\"lat_p99_us\":%.0f,\"lat_max_us\":%.0f}\n",
           o->parts, o->replicas, o->users, o->size, o->rate, secs, (unsigned long long)s->acked,
           (unsigned long long)s->failed, (double)s->acked / secs, (double)commits / secs,
           (double)msgs / secs, msgs ? (double)s->acked / (double)msgs : 0,
           (double)hist_percentile(&s->lat, 50) / 1e3, (double)hist_percentile(&s->lat, 99) / 1e3,
           (double)hist_percentile(&s->lat, 100) / 1e3);
    fprintf(stderr,
            "cluster append: %llu acknowledged in %.1f s = %.0f notifications/s (%llu failed); "
            "%.0f JetStream messages/s, %.1f notifications each; hand-over to ack p50 %.2f ms, "
            "p99 %.2f ms\n",
            (unsigned long long)s->acked, secs, (double)s->acked / secs,
            (unsigned long long)s->failed, (double)msgs / secs,
            msgs ? (double)s->acked / (double)msgs : 0, (double)hist_percentile(&s->lat, 50) / 1e6,
            (double)hist_percentile(&s->lat, 99) / 1e6);
}

int bench_cluster_main(int argc, char **argv)
{
    bc_opts_t o = {.name = "hbench",
                   .parts = 16,
                   .replicas = 3,
                   .users = 1000,
                   .size = 300,
                   .node = 1,
                   .drain_us = 1000,
                   .seconds = 10,
                   .inflight = 20000};
    int prc = bc_parse_opts(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 2;
    log_init("herald-bench", -1);
    if (o.raw) return bc_raw(o.nats, o.name, o.replicas, o.users, o.size, o.raw, o.seconds);
    bc_state_t s = {0};
    hist_init(&s.lat);
    if (bc_start(&s, &o) < 0) return 1;
    bc_load_t l;
    bc_load_init(&l, s.cl, &o);
    cl_counters_t c0, c1;
    cl_counters(s.cl, &c0);
    uint64_t start = mono_ns(), end = start + (uint64_t)(o.seconds * 1e9), sent = 0;
    while (mono_ns() < end) {
        /* One drain: what arrived since the last at the target rate (or a full round). */
        uint64_t now = mono_ns();
        uint64_t due = o.rate > 0 ? (uint64_t)((double)(now - start) / 1e9 * o.rate) : sent + 4096;
        uint64_t n = due > sent ? due - sent : 0;
        if (n > 4096) n = 4096;
        if (o.rate <= 0) n = s.pending_recs < o.inflight ? o.inflight - s.pending_recs : 0;
        if (n > 4096) n = 4096;
        bc_drain(&s, &l, &o, n);
        sent += n;
        /* Until the next drain, take the answers. */
        bc_dispatch_until(&s, now + (uint64_t)o.drain_us * 1000u, -1, false);
    }
    bc_dispatch_until(&s, mono_ns() + 10000000000ull, 50, true);
    double secs = (double)(mono_ns() - start) / 1e9;
    cl_counters(s.cl, &c1);
    bc_report(&s, &o, secs, c1.commits - c0.commits, c1.messages_appended - c0.messages_appended);
    cl_close(s.cl);
    if (!o.keep) bc_cleanup(o.nats, o.name, o.parts);
    bc_load_free(&l, &o);
    return s.failed ? 1 : 0;
}
