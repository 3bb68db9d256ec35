/* bench_e2e.c - `herald-bench e2e`: end to end through a broker and N gateways it starts:
 * S WebSocket sessions, M notifications published natively at a rate; reports delivered/s,
 * latency percentiles per priority, loss and duplicates, and each process's RSS and CPU. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <msgpack.h>

#include "codec.h"
#include "frame.h"
#include "bench_sys.h"
#include "jwt.h"

#define E2E_SECRET "herald-bench-e2e-secret"
#define E2E_MAX_GW BENCH_SYS_MAX_GW

typedef struct {
    unsigned sessions, users, gateways, batch, payload;
    uint64_t count, rate;
    bool msgpack;
    int prio; /* -1: mixed 0..3 */
    char bin_dir[PATH_MAX];
} e2e_opts_t;

typedef struct {
    struct lws *wsi;
    unsigned user;
    bool ready, closed;
    uint8_t *seen; /* bitmap of seqs */
    uint64_t seen_bits;
    char *rx;
    size_t rx_len, rx_cap;
} e2e_sess_t;

typedef struct {
    uint64_t *v;
    size_t n, cap;
} e2e_samples_t;

static struct {
    e2e_opts_t o;
    bench_sys_t sys;
    e2e_sess_t *s;
    unsigned ready, closed;
    uint64_t delivered, dups, bad;
    e2e_samples_t lat[4];
    _Atomic uint64_t sent, acked, refused, outstanding;
    _Atomic bool pub_done;
    _Atomic uint64_t pub_end_ns; /* when the last publish was acknowledged */
    int pub_fd;
} E;

static uint64_t e2e_now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void e2e_sample(unsigned prio, uint64_t ns)
{
    e2e_samples_t *s = &E.lat[prio & 3];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    s->v[s->n++] = ns;
}

/* --- publisher (native ingress, pipelined batches) --- */

static void *e2e_reader(void *arg)
{
    (void)arg;
    static uint8_t buf[1 << 20];
    size_t len = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    while (!atomic_load(&E.pub_done) || atomic_load(&E.outstanding)) {
        ssize_t r = recv(E.pub_fd, buf + len, sizeof buf - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        size_t off = 0;
        for (;;) {
            const uint8_t *body;
            size_t blen;
            long n = frame_next(buf + off, len - off, sizeof buf, &body, &blen);
            if (n <= 0) break;
            size_t o = 0;
            if (msgpack_unpack_next(&u, (const char *)body, blen, &o) == MSGPACK_UNPACK_SUCCESS &&
                u.data.type == MSGPACK_OBJECT_ARRAY) {
                for (uint32_t i = 0; i < u.data.via.array.size; i++) {
                    const msgpack_object *m = &u.data.via.array.ptr[i];
                    bool ok = false;
                    for (uint32_t k = 0; m->type == MSGPACK_OBJECT_MAP && k < m->via.map.size; k++)
                        if (m->via.map.ptr[k].key.via.str.size == 2 &&
                            !memcmp(m->via.map.ptr[k].key.via.str.ptr, "ok", 2))
                            ok = m->via.map.ptr[k].val.type == MSGPACK_OBJECT_BOOLEAN &&
                                 m->via.map.ptr[k].val.via.boolean;
                    atomic_fetch_add(ok ? &E.acked : &E.refused, 1);
                }
            }
            if (atomic_fetch_sub(&E.outstanding, 1) == 1 && atomic_load(&E.pub_done))
                atomic_store(&E.pub_end_ns, e2e_now(CLOCK_MONOTONIC));
            off += (size_t)n;
        }
        memmove(buf, buf + off, len - off);
        len -= off;
    }
    msgpack_unpacked_destroy(&u);
    return NULL;
}

static void e2e_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void *e2e_publisher(void *arg)
{
    (void)arg;
    static const char *types[4] = {"position_limit", "trade_canceled", "position_profit",
                                   "market_halt"};
    char *pad = malloc(E.o.payload + 1);
    memset(pad, 'x', E.o.payload);
    pad[E.o.payload] = '\0';
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    uint64_t start = e2e_now(CLOCK_MONOTONIC);
    for (uint64_t i = 0; i < E.o.count;) {
        uint32_t n = (uint32_t)(E.o.count - i < E.o.batch ? E.o.count - i : E.o.batch);
        if (E.o.rate) {
            uint64_t due = start + i * 1000000000ull / E.o.rate;
            uint64_t now = e2e_now(CLOCK_MONOTONIC);
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000000ull),
                                      (long)((due - now) % 1000000000ull)};
                nanosleep(&ts, NULL);
            }
        }
        while (atomic_load(&E.outstanding) >= 64)
            usleep(100);
        msgpack_sbuffer_clear(&sb);
        msgpack_sbuffer_write(&sb, "\0\0\0\0", FRAME_HDR); /* length, patched below */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, n);
        for (uint32_t k = 0; k < n; k++, i++) {
            char user[24], id[48];
            unsigned prio = E.o.prio >= 0 ? (unsigned)E.o.prio : (unsigned)(i % 4);
            snprintf(user, sizeof user, "b%u", (unsigned)(i % E.o.users));
            snprintf(id, sizeof id, "e2e-%d-%llu", (int)getpid(), (unsigned long long)i);
            msgpack_pack_map(&pk, 7);
            e2e_pack_str(&pk, "user_id");
            e2e_pack_str(&pk, user);
            e2e_pack_str(&pk, "message_type");
            e2e_pack_str(&pk, types[prio]);
            e2e_pack_str(&pk, "message_id");
            e2e_pack_str(&pk, id);
            e2e_pack_str(&pk, "priority");
            msgpack_pack_uint8(&pk, (uint8_t)prio);
            e2e_pack_str(&pk, "timestamp");
            msgpack_pack_uint64(&pk, e2e_now(CLOCK_REALTIME));
            e2e_pack_str(&pk, "source");
            e2e_pack_str(&pk, "bench");
            e2e_pack_str(&pk, "payload");
            msgpack_pack_map(&pk, 1);
            e2e_pack_str(&pk, "pad");
            e2e_pack_str(&pk, pad);
        }
        frame_put_len((uint8_t *)sb.data, (uint32_t)(sb.size - FRAME_HDR));
        atomic_fetch_add(&E.outstanding, 1);
        size_t off = 0;
        while (off < sb.size) {
            ssize_t w = send(E.pub_fd, sb.data + off, sb.size - off, MSG_NOSIGNAL);
            if (w <= 0) goto out;
            off += (size_t)w;
        }
        atomic_fetch_add(&E.sent, n);
    }
out:
    atomic_store(&E.pub_done, true);
    /* the last ack may have come before pub_done was set */
    if (!atomic_load(&E.outstanding) && !atomic_load(&E.pub_end_ns))
        atomic_store(&E.pub_end_ns, e2e_now(CLOCK_MONOTONIC));
    msgpack_sbuffer_destroy(&sb);
    free(pad);
    return NULL;
}

/* --- sessions --- */

static void e2e_on_message(e2e_sess_t *s, const uint8_t *p, size_t len, bool binary)
{
    uint64_t seq = 0, ts = 0;
    unsigned prio = 0;
    if (!s->ready) {
        s->ready = true;
        E.ready++;
        return;
    }
    if (binary) {
        static msgpack_unpacked u;
        static bool init;
        if (!init) msgpack_unpacked_init(&u);
        init = true;
        notif_t n;
        herald_error_t err;
        if (codec_decode(p, len, &u, &n, &err) < 0) {
            E.bad++;
            return;
        }
        seq = n.seq;
        ts = n.timestamp;
        prio = n.priority;
    } else {
        const char *t = (const char *)p, *q;
        if (!strstr(t, "\"notification\"")) return;
        if ((q = strstr(t, "\"seq\":"))) seq = strtoull(q + 6, NULL, 10);
        if ((q = strstr(t, "\"timestamp\":"))) ts = strtoull(q + 12, NULL, 10);
        if ((q = strstr(t, "\"priority\":"))) prio = (unsigned)strtoul(q + 11, NULL, 10);
    }
    uint64_t now = e2e_now(CLOCK_REALTIME);
    E.delivered++;
    e2e_sample(prio, now > ts ? now - ts : 0);
    if (seq < s->seen_bits) {
        uint8_t bit = (uint8_t)(1u << (seq & 7));
        if (s->seen[seq >> 3] & bit) E.dups++;
        s->seen[seq >> 3] |= bit;
    }
}

static int e2e_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    (void)user;
    e2e_sess_t *s = lws_get_opaque_user_data(wsi);
    if (!s) return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        char tok[512], v[600], uid[24];
        snprintf(uid, sizeof uid, "b%u", s->user);
        jwt_mint(E2E_SECRET, uid, (uint64_t)time(NULL), 3600, tok, sizeof tok);
        int n = snprintf(v, sizeof v, "Bearer %s", tok);
        unsigned char **p = in;
        return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v,
                                            n, p, *p + len)
                   ? -1
                   : 0;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (s->rx_len + len > s->rx_cap) {
            s->rx_cap = (s->rx_len + len) * 2;
            s->rx = realloc(s->rx, s->rx_cap);
            if (!s->rx) abort();
        }
        memcpy(s->rx + s->rx_len, in, len);
        s->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            s->rx[s->rx_len < s->rx_cap ? s->rx_len : s->rx_cap - 1] = '\0';
            e2e_on_message(s, (uint8_t *)s->rx, s->rx_len, lws_frame_is_binary(wsi));
            s->rx_len = 0;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!s->closed) E.closed++;
        s->closed = true;
        s->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols e2e_protocols[] = {
    {"e2e", e2e_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static lws_sorted_usec_list_t e2e_tick;

static void e2e_tick_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul;
}

static void e2e_service(struct lws_context *ctx)
{
    lws_sul_schedule(ctx, 0, &e2e_tick, e2e_tick_cb, 20000);
    lws_service(ctx, 0);
}

static void e2e_connect(struct lws_context *ctx, unsigned i)
{
    e2e_sess_t *s = &E.s[i];
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = E.sys.ws + (int)(i % E.o.gateways);
    ci.path = "/ws";
    ci.host = ci.address;
    ci.origin = ci.address;
    ci.protocol = E.o.msgpack ? "herald.msgpack" : "herald.json";
    ci.local_protocol_name = "e2e";
    ci.ietf_version_or_minus_one = -1;
    ci.opaque_user_data = s;
    ci.pwsi = &s->wsi;
    s->closed = false;
    lws_client_connect_via_info(&ci);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const e2e_samples_t *s, double p)
{
    if (!s->n) return 0;
    size_t k = (size_t)(p * (double)(s->n - 1));
    return (double)s->v[k] / 1e6;
}

static void e2e_usage(FILE *out)
{
    fprintf(out,
            "usage: herald-bench e2e [--sessions S] [--users U] [--count M] [--rate R/s (0=max)]\n"
            "       [--gateways G] [--priority P|mixed] [--payload BYTES] [--batch N]\n"
            "       [--msgpack] [--bin-dir BUILD_OR_INSTALL_DIR]\n"
            "Starts a broker and G gateways in a temp runtime dir, connects S sessions (user\n"
            "b<i mod U>), publishes M notifications natively and reports delivery.\n");
}

static int e2e_parse(int argc, char **argv)
{
    e2e_opts_t *o = &E.o;
    *o = (e2e_opts_t){.sessions = 1000,
                      .users = 0,
                      .gateways = 2,
                      .batch = 50,
                      .payload = 200,
                      .count = 200000,
                      .rate = 0,
                      .prio = -1};
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(o->bin_dir, sizeof o->bin_dir, "%s/..", dirname(exe));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--msgpack"))
            o->msgpack = true;
        else if (!strcmp(a, "--help")) {
            e2e_usage(stdout);
            exit(0);
        } else if (!v) {
            e2e_usage(stderr);
            return -1;
        } else {
            i++;
            if (!strcmp(a, "--sessions"))
                o->sessions = (unsigned)atoi(v);
            else if (!strcmp(a, "--users"))
                o->users = (unsigned)atoi(v);
            else if (!strcmp(a, "--count"))
                o->count = strtoull(v, NULL, 10);
            else if (!strcmp(a, "--rate"))
                o->rate = strtoull(v, NULL, 10);
            else if (!strcmp(a, "--gateways"))
                o->gateways = (unsigned)atoi(v);
            else if (!strcmp(a, "--batch"))
                o->batch = (unsigned)atoi(v);
            else if (!strcmp(a, "--payload"))
                o->payload = (unsigned)atoi(v);
            else if (!strcmp(a, "--priority"))
                o->prio = strcmp(v, "mixed") ? atoi(v) : -1;
            else if (!strcmp(a, "--bin-dir"))
                snprintf(o->bin_dir, sizeof o->bin_dir, "%s", v);
            else {
                e2e_usage(stderr);
                return -1;
            }
        }
    }
    if (!o->users) o->users = o->sessions;
    if (!o->sessions || !o->gateways || o->gateways > E2E_MAX_GW || !o->batch || o->prio > 3) {
        e2e_usage(stderr);
        return -1;
    }
    return 0;
}

int bench_e2e_main(int argc, char **argv)
{
    if (e2e_parse(argc, argv) < 0) return 2;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid());
    if (bench_sys_start(&E.sys, E.o.bin_dir, E.o.gateways, E2E_SECRET) < 0) {
        fprintf(stderr, "herald-bench e2e: cannot start the system (bin dir %s)\n", E.o.bin_dir);
        bench_sys_stop(&E.sys);
        return 1;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = e2e_protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.timeout_secs = 30;
    struct lws_context *ctx = lws_create_context(&info);
    E.s = calloc(E.o.sessions, sizeof *E.s);
    uint64_t per_user = E.o.count / E.o.users + 2;
    for (unsigned i = 0; i < E.o.sessions; i++) {
        E.s[i].user = i % E.o.users;
        E.s[i].seen_bits = per_user;
        E.s[i].seen = calloc(per_user / 8 + 1, 1);
    }
    double rss_base[E2E_MAX_GW], dummy;
    for (unsigned g = 0; g < E.o.gateways; g++)
        bench_proc_usage(E.sys.gw[g], &dummy, &rss_base[g]);
    /* connect in waves so the listen backlogs are not flooded */
    uint64_t t0 = e2e_now(CLOCK_MONOTONIC);
    for (unsigned i = 0; i < E.o.sessions; i++) {
        e2e_connect(ctx, i);
        if (i % 200 == 199) e2e_service(ctx);
    }
    while (E.ready + E.closed < E.o.sessions && e2e_now(CLOCK_MONOTONIC) - t0 < 60e9)
        e2e_service(ctx);
    if (E.ready < E.o.sessions) {
        fprintf(stderr, "herald-bench e2e: only %u of %u sessions got their welcome\n", E.ready,
                E.o.sessions);
        bench_sys_stop(&E.sys);
        return 1;
    }
    double cpu0[E2E_MAX_GW + 1], rss[E2E_MAX_GW + 1], cpu1[E2E_MAX_GW + 1], rss_idle[E2E_MAX_GW];
    for (unsigned g = 0; g < E.o.gateways; g++)
        bench_proc_usage(E.sys.gw[g], &cpu0[g], &rss_idle[g]);
    bench_proc_usage(E.sys.broker, &cpu0[E.o.gateways], &rss[E.o.gateways]);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/broker.sock", E.sys.dir);
    E.pub_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(E.pub_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "herald-bench e2e: connect %s: %s\n", sa.sun_path, strerror(errno));
        bench_sys_stop(&E.sys);
        return 1;
    }
    uint64_t expected = 0;
    unsigned *sess_per_user = calloc(E.o.users, sizeof *sess_per_user);
    for (unsigned i = 0; i < E.o.sessions; i++)
        sess_per_user[E.s[i].user]++;
    for (uint64_t i = 0; i < E.o.count; i++)
        expected += sess_per_user[i % E.o.users];
    pthread_t pub, rd;
    uint64_t start = e2e_now(CLOCK_MONOTONIC), last_progress = start, last_count = 0;
    pthread_create(&rd, NULL, e2e_reader, NULL);
    pthread_create(&pub, NULL, e2e_publisher, NULL);
    /* run until everything arrived or nothing moved for 3 s (P3 flushes within 1 s) */
    uint64_t end = start;
    while (E.delivered < expected) {
        e2e_service(ctx);
        uint64_t now = e2e_now(CLOCK_MONOTONIC);
        if (E.delivered != last_count) {
            last_count = E.delivered;
            last_progress = now;
            end = now;
        } else if (atomic_load(&E.pub_done) && now - last_progress > 3000000000ull) {
            break;
        }
    }
    if (E.delivered >= expected) end = e2e_now(CLOCK_MONOTONIC);
    pthread_join(pub, NULL);
    shutdown(E.pub_fd, SHUT_WR);
    pthread_join(rd, NULL);
    for (unsigned g = 0; g < E.o.gateways; g++)
        bench_proc_usage(E.sys.gw[g], &cpu1[g], &rss[g]);
    bench_proc_usage(E.sys.broker, &cpu1[E.o.gateways], &rss[E.o.gateways]);
    double secs = (double)(end - start) / 1e9;
    uint64_t pub_end = atomic_load(&E.pub_end_ns);
    double pub_secs = pub_end > start ? (double)(pub_end - start) / 1e9 : 0;
    for (unsigned p = 0; p < 4; p++)
        qsort(E.lat[p].v, E.lat[p].n, sizeof(uint64_t), cmp_u64);

    printf("{\"bench\":\"e2e\",\"sessions\":%u,\"users\":%u,\"gateways\":%u,\"proto\":\"%s\","
           "\"count\":%llu,\"rate\":%llu,\"sent\":%llu,\"acked\":%llu,\"refused\":%llu,"
           "\"expected\":%llu,\"delivered\":%llu,\"lost\":%llu,\"duplicates\":%llu,"
           "\"seconds\":%.3f,\"publish_seconds\":%.3f,\"delivered_per_s\":%.0f,"
           "\"latency_ms\":{",
           E.o.sessions, E.o.users, E.o.gateways, E.o.msgpack ? "msgpack" : "json",
           (unsigned long long)E.o.count, (unsigned long long)E.o.rate, (unsigned long long)E.sent,
           (unsigned long long)E.acked, (unsigned long long)E.refused, (unsigned long long)expected,
           (unsigned long long)E.delivered,
           (unsigned long long)(expected > E.delivered ? expected - E.delivered : 0),
           (unsigned long long)E.dups, secs, pub_secs, (double)E.delivered / secs);
    for (unsigned p = 0; p < 4; p++)
        printf("%s\"P%u\":{\"n\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
               "\"max\":%.3f}",
               p ? "," : "", p, E.lat[p].n, pct(&E.lat[p], .5), pct(&E.lat[p], .9),
               pct(&E.lat[p], .99), pct(&E.lat[p], .999), pct(&E.lat[p], 1));
    printf("},\"processes\":[");
    for (unsigned g = 0; g <= E.o.gateways; g++)
        printf("%s{\"name\":\"%s%d\",\"rss_mib\":%.1f,\"cpu_s\":%.2f}", g ? "," : "",
               g < E.o.gateways ? "gateway" : "broker", g < E.o.gateways ? (int)g : 0, rss[g],
               cpu1[g] - cpu0[g]);
    double per_gw = (double)E.o.sessions / E.o.gateways, idle_kib = 0;
    for (unsigned g = 0; g < E.o.gateways; g++)
        idle_kib += (rss_idle[g] - rss_base[g]) * 1024.0 / per_gw / E.o.gateways;
    printf("],\"idle_session_kib\":%.2f}\n", idle_kib);
    printf("\n%-10s %10s %10s %10s %10s %10s %10s\n", "priority", "n", "p50 ms", "p90 ms", "p99 ms",
           "p99.9 ms", "max ms");
    for (unsigned p = 0; p < 4; p++)
        printf("P%-9u %10zu %10.3f %10.3f %10.3f %10.3f %10.3f\n", p, E.lat[p].n,
               pct(&E.lat[p], .5), pct(&E.lat[p], .9), pct(&E.lat[p], .99), pct(&E.lat[p], .999),
               pct(&E.lat[p], 1));
    printf("published and acknowledged in %.2f s\n", pub_secs);
    printf("delivered %llu of %llu (lost %llu, duplicates %llu) in %.2f s: %.0f/s\n",
           (unsigned long long)E.delivered, (unsigned long long)expected,
           (unsigned long long)(expected > E.delivered ? expected - E.delivered : 0),
           (unsigned long long)E.dups, secs, (double)E.delivered / secs);
    for (unsigned g = 0; g <= E.o.gateways; g++)
        printf("%s%-3d rss %.1f MiB, cpu %.2f s\n", g < E.o.gateways ? "gateway" : "broker ",
               g < E.o.gateways ? (int)g : 0, rss[g], cpu1[g] - cpu0[g]);
    printf("gateway RSS growth per idle session: %.2f KiB\n", idle_kib);
    lws_sul_cancel(&e2e_tick);
    lws_context_destroy(ctx);
    bench_sys_stop(&E.sys);
    bool ok = E.delivered >= expected && !E.dups;
    return ok ? 0 : 1;
}
