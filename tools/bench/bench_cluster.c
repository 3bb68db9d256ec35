/* bench_cluster.c - `herald-bench cluster`: the cluster layer's write path on a real NATS
 * JetStream: drain rounds (what the broker's drain would hand over every --drain-us) of
 * --size-byte notifications for --users users, appended with cl_append_round and counted
 * when JetStream acknowledged them (quorum). Reports notifications/s, JetStream messages/s
 * (commits: the grouping factor) and the latency from hand-over to acknowledgement.
 * Its streams and buckets (--name, default "hbench") are deleted at the end unless --keep.
 *
 * --raw K measures JetStream alone for comparison: async publishes of K notifications per
 * message to one stream (--replicas), K = 1 being SPEC 11's one message per notification. */
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

int bench_cluster_main(int argc, char **argv)
{
    const char *nats = NULL, *name = "hbench";
    unsigned parts = 16, replicas = 3, users = 1000, size = 300, node = 1, drain_us = 1000;
    double rate = 0, seconds = 10;
    bool keep = false;
    unsigned raw = 0, inflight = 20000;
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
            nats = optarg;
            break;
        case 'p':
            parts = (unsigned)atoi(optarg);
            break;
        case 'r':
            replicas = (unsigned)atoi(optarg);
            break;
        case 'u':
            users = (unsigned)atoi(optarg);
            break;
        case 's':
            size = (unsigned)atoi(optarg);
            break;
        case 'R':
            rate = atof(optarg);
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 'd':
            drain_us = (unsigned)atoi(optarg);
            break;
        case 'N':
            node = (unsigned)atoi(optarg);
            break;
        case 'a':
            name = optarg;
            break;
        case 'k':
            keep = true;
            break;
        case 'w':
            raw = (unsigned)atoi(optarg);
            break;
        case 'i':
            inflight = (unsigned)atoi(optarg);
            break;
        case 'h':
            bc_usage(stdout);
            return 0;
        default:
            bc_usage(stderr);
            return 2;
        }
    }
    if (!nats || !users || !parts || size < 16 || size > 60000 || seconds <= 0 || seconds > 600) {
        bc_usage(stderr);
        return 2;
    }
    log_init("herald-bench", -1);
    if (raw) return bc_raw(nats, name, replicas, users, size, raw, seconds);
    bc_state_t s = {0};
    hist_init(&s.lat);
    cl_config_t cfg = {.nats = nats,
                       .node_id = node,
                       .partitions = parts,
                       .replicas = replicas,
                       .name = name,
                       .history_age_s = 300};
    cl_callbacks_t cb = {.ctx = &s, .appended = bc_appended, .owner = bc_owner};
    herald_error_t err;
    if (cl_open(&s.cl, &cfg, &cb, &err) < 0) {
        fprintf(stderr, "herald-bench cluster: %s\n", err.message);
        return 1;
    }
    uint64_t t0 = mono_ns();
    while (s.owned < parts + 1 && mono_ns() - t0 < 30000000000ull) {
        struct pollfd pfd = {cl_fd(s.cl), POLLIN, 0};
        poll(&pfd, 1, 50);
        cl_dispatch(s.cl);
    }
    if (s.owned < parts + 1) {
        fprintf(stderr, "herald-bench cluster: owns %u of %u partitions after 30 s\n", s.owned,
                parts + 1);
        cl_close(s.cl);
        return 1;
    }

    /* Users, their partitions and seqs; one notification body, its seq bytes patched. */
    char(*ids)[24] = calloc(users, sizeof *ids);
    unsigned *part_of = calloc(users, sizeof *part_of);
    uint64_t *seqs = calloc(users, sizeof *seqs);
    char(*mids)[24] = calloc(64 * 1024, sizeof *mids);
    uint8_t *body = malloc(size);
    if (!ids || !part_of || !seqs || !mids || !body) abort();
    memset(body, 'x', size);
    for (unsigned u = 0; u < users; u++) {
        snprintf(ids[u], sizeof ids[u], "user%u", u);
        part_of[u] = cl_partition_of(s.cl, ids[u], strlen(ids[u]));
    }
    size_t *by_part = calloc(parts + 1, sizeof *by_part);
    cl_rec_t **pr = calloc(parts + 1, sizeof *pr);
    for (unsigned p = 0; p <= parts; p++)
        pr[p] = calloc(64 * 1024, sizeof **pr);
    cl_counters_t c0, c1;
    cl_counters(s.cl, &c0);
    uint64_t start = mono_ns(), end = start + (uint64_t)(seconds * 1e9), sent = 0, next_user = 0;
    uint64_t mid = 0;
    while (mono_ns() < end) {
        /* One drain: what arrived since the last at the target rate (or a full round). */
        uint64_t now = mono_ns();
        uint64_t due = rate > 0 ? (uint64_t)((double)(now - start) / 1e9 * rate) : sent + 4096;
        uint64_t n = due > sent ? due - sent : 0;
        if (n > 4096) n = 4096;
        if (rate <= 0) n = s.pending_recs < inflight ? inflight - s.pending_recs : 0;
        if (n > 4096) n = 4096;
        memset(by_part, 0, (parts + 1) * sizeof *by_part);
        for (uint64_t i = 0; i < n; i++, next_user++) {
            unsigned u = (unsigned)(next_user % users), p = part_of[u];
            char *m = mids[(mid++) % (64 * 1024)];
            snprintf(m, 24, "m%llu", (unsigned long long)mid);
            pr[p][by_part[p]++] = (cl_rec_t){.user = ids[u],
                                             .user_len = (uint8_t)strlen(ids[u]),
                                             .message_id = m,
                                             .id_len = (uint8_t)strlen(m),
                                             .seq = ++seqs[u],
                                             .bytes = body,
                                             .len = size,
                                             .prio = 1};
        }
        sent += n;
        for (unsigned p = 0; p <= parts; p++) {
            if (!by_part[p]) continue;
            bc_round_t *r = malloc(sizeof *r);
            if (!r) abort();
            *r = (bc_round_t){.at = mono_ns(), .n = (uint32_t)by_part[p]};
            s.pending_rounds++;
            s.pending_recs += by_part[p];
            cl_append_round(s.cl, p, pr[p], by_part[p], r);
        }
        /* Until the next drain, take the answers. */
        uint64_t next = now + (uint64_t)drain_us * 1000u;
        do {
            struct pollfd pfd = {cl_fd(s.cl), POLLIN, 0};
            uint64_t t = mono_ns();
            poll(&pfd, 1, t < next ? (int)((next - t) / 1000000u) : 0);
            cl_dispatch(s.cl);
        } while (mono_ns() < next);
    }
    uint64_t drain_end = mono_ns() + 10000000000ull;
    while (s.pending_rounds && mono_ns() < drain_end) {
        struct pollfd pfd = {cl_fd(s.cl), POLLIN, 0};
        poll(&pfd, 1, 50);
        cl_dispatch(s.cl);
    }
    double secs = (double)(mono_ns() - start) / 1e9;
    cl_counters(s.cl, &c1);
    uint64_t commits = c1.commits - c0.commits, msgs = c1.messages_appended - c0.messages_appended;
    printf("{\"bench\":\"cluster\",\"partitions\":%u,\"replicas\":%u,\"users\":%u,\"size\":%u,"
           "\"rate\":%.0f,\"seconds\":%.2f,\"acked\":%llu,\"failed\":%llu,\"acked_per_s\":%.0f,"
           "\"commits_per_s\":%.0f,\"messages_per_s\":%.0f,\"records_per_message\":%.1f,"
           "\"lat_p50_us\":%.0f,\"lat_p99_us\":%.0f,\"lat_max_us\":%.0f}\n",
           parts, replicas, users, size, rate, secs, (unsigned long long)s.acked,
           (unsigned long long)s.failed, (double)s.acked / secs, (double)commits / secs,
           (double)msgs / secs, msgs ? (double)s.acked / (double)msgs : 0,
           (double)hist_percentile(&s.lat, 50) / 1e3, (double)hist_percentile(&s.lat, 99) / 1e3,
           (double)hist_percentile(&s.lat, 100) / 1e3);
    fprintf(stderr,
            "cluster append: %llu acknowledged in %.1f s = %.0f notifications/s (%llu failed); "
            "%.0f JetStream messages/s, %.1f notifications each; hand-over to ack p50 %.2f ms, "
            "p99 %.2f ms\n",
            (unsigned long long)s.acked, secs, (double)s.acked / secs, (unsigned long long)s.failed,
            (double)msgs / secs, msgs ? (double)s.acked / (double)msgs : 0,
            (double)hist_percentile(&s.lat, 50) / 1e6, (double)hist_percentile(&s.lat, 99) / 1e6);
    cl_close(s.cl);
    if (!keep) bc_cleanup(nats, name, parts);
    for (unsigned p = 0; p <= parts; p++)
        free(pr[p]);
    free(pr);
    free(by_part);
    free(ids);
    free(part_of);
    free(seqs);
    free(mids);
    free(body);
    return s.failed ? 1 : 0;
}
