/* bench_e2e.c - `herald-bench e2e`: publish through the native ingress, receive on real
 * WebSocket sessions, report throughput, latency per priority, loss and process costs. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_e2e.h"
#include "bench_procs.h"
#include "bench_report.h"
#include "bench_rx.h"
#include "bench_slow.h"
#include "bench_ws.h"
#include "herald_time.h"
#include "shard.h"

static volatile sig_atomic_t bench_stop;

static void bench_on_signal(int sig)
{
    (void)sig;
    bench_stop = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: herald-bench e2e -S SESSIONS -M MESSAGES [options]\n"
            "  --rate R              notifications/s (default: max), sent in slices:\n"
            "  --slice-us U          with --rate: what falls due in a slice of U us goes\n"
            "                        out as one frame at its start (default 1000; 0: each\n"
            "                        notification as soon as it is due, many small frames)\n"
            "  --priority-mix a,b,c,d  percent of P0..P3 (default 10,40,40,10)\n"
            "  --gateways N          gateways (spawn default 2; target: gateway.count)\n"
            "  --users U             distinct users, U <= S (default S)\n"
            "  --payload-bytes B     published notification size, approx. (default 300)\n"
            "  --batch N             notifications per request frame (default 256)\n"
            "  --window N            request frames in flight (default 8)\n"
            "  --ingress native|http native batch frames (default), or one notification\n"
            "                        per HTTP request (JSON), the way most producers publish\n"
            "  --pub-conns C         --ingress http: keep-alive connections (default 16)\n"
            "  --pipeline P          --ingress http: requests in flight per connection (1)\n"
            "  --ack-share P         publish P %% of the notifications as margin_call (an\n"
            "                        ack_required type) instead of trade_executed (default 0)\n"
            "  --acks                sessions opt in to acknowledged delivery (acks=1) and\n"
            "                        answer every margin_call with an ack (lean receiver only)\n"
            "  --slow-readers K      K more sessions (users bench-slow-*) that read only\n"
            "                        --slow-read-bps B bytes/s each (default 4096) while\n"
            "                        --slow-rate R position updates/s (default 2000, in all)\n"
            "                        are published for them: conflation keeps them open\n"
            "  --idle                open the sessions, publish nothing, and report gateway\n"
            "                        memory per idle session after they settle (-M unused)\n"
            "  --timeout SECONDS     publish start -> stop waiting (default 60)\n"
            "  --src-addrs K         spread sessions over 127.0.0.1..K (default: enough\n"
            "                        that S uses at most half the ephemeral ports of each)\n"
            "  --config FILE         herald config (target: the running one)\n"
            "  --node FILE           a node of a running cluster (its config; repeat per node,\n"
            "                        implies --target): sessions go round robin over the\n"
            "                        nodes, each to its gateway of that node\n"
            "  --pub-node K          with --node: publish through the K-th node (default 1);\n"
            "                        the others get theirs from the cluster\n"
            "  -o section.key=value  config override (passed to spawned processes too)\n"
            "  --spawn | --target    start a private herald (default) or use a running one\n"
            "  --lws                 receive with the libwebsockets client (libev), not the\n"
            "                        lean epoll receiver (to compare, and as a cross-check)\n"
            "  --poll                with --lws: lws's poll() loop, not libev\n"
            "  --self-test           measure the bench's own receive path and exit\n"
            "Output: one JSON line on stdout, a table on stderr. Exit 0 ok, 1 error,\n"
            "2 when notifications were lost, duplicated or out of order.\n");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-') return -1;
    *out = v;
    return 0;
}

static int parse_mix(const char *s, unsigned mix[HERALD_PRIORITIES])
{
    unsigned sum = 0;
    if (sscanf(s, "%u,%u,%u,%u", &mix[0], &mix[1], &mix[2], &mix[3]) != 4) return -1;
    for (int p = 0; p < HERALD_PRIORITIES; p++)
        sum += mix[p];
    return sum == 100 ? 0 : -1;
}

/* Loopback source addresses so that S sessions use at most half of the ephemeral port
 * range per address (connections of earlier runs may still hold ports in TIME_WAIT). */
static unsigned auto_src_addrs(unsigned sessions)
{
    unsigned lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &lo, &hi) != 2 || hi <= lo) lo = 32768, hi = 60999;
        fclose(f);
    }
    unsigned per_addr = (hi - lo + 1) / 2;
    unsigned k = sessions / per_addr + 1;
    return k > 254 ? 254 : k;
}

/* A numeric option: flag, upper bound, where the value goes (exactly one pointer set). */
typedef struct {
    const char *flag;
    uint64_t max;
    unsigned *u32;
    uint64_t *u64;
    double *dbl;
} num_opt_t;

/* Parse a numeric option a=val into r. Returns 1 if a is one, 0 if not, -1 if val is bad. */
static int parse_num_opt(bench_run_t *r, const char *a, const char *val)
{
    const num_opt_t opts[] = {
        {"-S", 1000000, &r->sessions, NULL, NULL},
        {"-M", 1ull << 36, NULL, &r->messages, NULL},
        {"--rate", 100000000, NULL, NULL, &r->rate},
        {"--gateways", BENCH_MAX_GATEWAYS, &r->gateways, NULL, NULL},
        {"--users", 1000000, &r->users, NULL, NULL},
        {"--payload-bytes", 60000, &r->payload_bytes, NULL, NULL},
        {"--batch", 100000, &r->batch, NULL, NULL},
        {"--window", 100000, &r->window, NULL, NULL},
        {"--timeout", 86400, NULL, NULL, &r->timeout_s},
        {"--src-addrs", 254, &r->src_addrs, NULL, NULL},
        {"--pub-conns", 4096, &r->pub_conns, NULL, NULL},
        {"--slice-us", 1000000, &r->slice_us, NULL, NULL},
        {"--pipeline", 64, &r->pipeline, NULL, NULL},
        {"--pub-node", BENCH_MAX_NODES, &r->pub_node, NULL, NULL},
        {"--ack-share", 100, &r->ack_share, NULL, NULL},
        {"--slow-readers", 10000, &r->slow_readers, NULL, NULL},
        {"--slow-rate", 1000000, &r->slow_rate, NULL, NULL},
        {"--slow-read-bps", 100000000, &r->slow_read_bps, NULL, NULL},
    };
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        const num_opt_t *o = &opts[k];
        uint64_t v;
        if (strcmp(a, o->flag) != 0) continue;
        if (!val || parse_u64(val, o->max, &v) < 0) return -1;
        if (o->u32) *o->u32 = (unsigned)v;
        if (o->u64) *o->u64 = v;
        if (o->dbl) *o->dbl = (double)v;
        return 1;
    }
    return 0;
}

/* Options into r. Returns 0, 1 for --help (usage printed), or -1 after printing what is
 * wrong. */
static int parse_args(bench_run_t *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int num = parse_num_opt(r, a, val);
        if (num > 0) {
            i++;
        } else if (num < 0) {
            fprintf(stderr, "herald-bench e2e: bad or missing value for %s\n", a);
            return -1;
        } else if (!strcmp(a, "--spawn") || !strcmp(a, "--target")) {
            r->spawn = a[2] == 's';
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 1;
        } else if (!strcmp(a, "--lws")) {
            r->use_lws = true;
        } else if (!strcmp(a, "--poll")) {
            r->use_poll = r->use_lws = true;
        } else if (!strcmp(a, "--self-test")) {
            r->self_test = true;
        } else if (!strcmp(a, "--idle")) {
            r->idle = true;
        } else if (!strcmp(a, "--acks")) {
            r->acks = true;
        } else if (val && !strcmp(a, "--priority-mix") && parse_mix(val, r->mix) == 0) {
            i++;
        } else if (val && !strcmp(a, "--ingress") &&
                   (!strcmp(val, "http") || !strcmp(val, "native"))) {
            r->ingress_http = !strcmp(argv[++i], "http");
        } else if (val && !strcmp(a, "--config")) {
            r->config_path = argv[++i];
        } else if (val && !strcmp(a, "--node") && r->n_nodes < BENCH_MAX_NODES) {
            r->node_paths[r->n_nodes++] = argv[++i];
            r->spawn = false;
        } else if (val && !strcmp(a, "-o") && strchr(val, '=') &&
                   r->n_overrides < BENCH_MAX_OVERRIDES) {
            r->overrides[r->n_overrides++] = argv[++i];
        } else {
            fprintf(stderr, "herald-bench e2e: bad option or value: %s%s%s\n", a, val ? " " : "",
                    val ? val : "");
            usage();
            return -1;
        }
    }
    if (r->self_test) return 0;
    if (r->idle && r->messages == 0) r->messages = 1; /* nothing is published */
    if (r->sessions == 0 || r->messages == 0 || r->batch == 0 || r->window == 0 ||
        r->timeout_s <= 0 || r->pub_conns == 0 || r->pipeline == 0) {
        usage();
        return -1;
    }
    if (r->acks && r->use_lws) {
        fprintf(stderr, "herald-bench e2e: --acks needs the lean receiver (not --lws)\n");
        return -1;
    }
    r->slice_ns = (uint64_t)r->slice_us * 1000;
    if (r->users == 0) r->users = r->sessions;
    if (r->users > r->sessions) {
        fprintf(stderr, "herald-bench e2e: --users must be 1..S (every user needs a session)\n");
        return -1;
    }
    if (r->gateways == 0 && r->spawn) r->gateways = 2;
    if (r->n_nodes && (r->config_path || r->gateways)) {
        fprintf(stderr, "herald-bench e2e: --node takes each node's config; not with --config "
                        "or --gateways\n");
        return -1;
    }
    if (r->pub_node > (r->n_nodes ? r->n_nodes : 1)) {
        fprintf(stderr, "herald-bench e2e: --pub-node is 1..the number of --node options\n");
        return -1;
    }
    r->pub_node = r->pub_node ? r->pub_node - 1 : 0;
    if (r->src_addrs == 0) r->src_addrs = auto_src_addrs(r->sessions);
    return 0;
}

/* Load path (NULL: the default) into cfg, then the overrides. */
static int load_one(bench_run_t *r, const char *path, herald_config_t *cfg)
{
    herald_error_t err;
    config_defaults(cfg);
    if (config_load(cfg, config_default_path(path), &err) < 0) {
        fprintf(stderr, "herald-bench e2e: config %s: %s\n", config_default_path(path),
                err.message);
        return -1;
    }
    for (unsigned i = 0; i < r->n_overrides; i++) {
        char key[96];
        const char *eq = strchr(r->overrides[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - r->overrides[i]), r->overrides[i]);
        if (config_set(cfg, key, eq + 1, &err) < 0) {
            fprintf(stderr, "herald-bench e2e: -o %s: %s\n", r->overrides[i], err.message);
            return -1;
        }
    }
    return 0;
}

int bench_load_config(bench_run_t *r)
{
    if (!r->n_nodes) return load_one(r, r->config_path, &r->cfg);
    r->node_cfg = calloc(r->n_nodes, sizeof *r->node_cfg);
    if (!r->node_cfg) return -1;
    for (unsigned k = 0; k < r->n_nodes; k++) {
        if (load_one(r, r->node_paths[k], &r->node_cfg[k]) < 0) return -1;
        r->gateways += r->node_cfg[k].gateway_count;
    }
    r->cfg = r->node_cfg[r->pub_node]; /* the publisher's node; tokens: any node's secret */
    return 0;
}

void bench_session_gateway(const bench_run_t *r, unsigned s, const char **host, unsigned *port,
                           unsigned *gateway)
{
    const char *user = r->user_ids[s % r->users];
    const herald_config_t *cfg = r->n_nodes ? &r->node_cfg[s % r->n_nodes] : &r->cfg;
    unsigned count = r->n_nodes ? cfg->gateway_count : r->gateways;
    unsigned gw = shard_gateway(user, strlen(user), count ? count : 1);
    *host = cfg->gateway_listen.host;
    *port = cfg->gateway_listen.port + gw;
    if (gateway) *gateway = gw;
}

/* User ids, sessions per user, the acknowledgement bitmap. */
static int setup_users(bench_run_t *r)
{
    r->user_ids = calloc(r->users, sizeof *r->user_ids);
    r->user_sessions = calloc(r->users, sizeof *r->user_sessions);
    r->acked = calloc(r->messages / 8 + 1, 1);
    r->n_ticks = (unsigned)(r->timeout_s * 1e9 / BENCH_TICK_NS) + 1;
    r->rx_per_tick = calloc(r->n_ticks, sizeof *r->rx_per_tick);
    if (!r->user_ids || !r->user_sessions || !r->acked || !r->rx_per_tick) return -1;
    for (unsigned k = 0; k < r->users; k++)
        snprintf(r->user_ids[k], 24, "bench-u%u", k);
    for (unsigned s = 0; s < r->sessions; s++)
        r->user_sessions[s % r->users]++;
    snprintf(r->run_nonce, sizeof r->run_nonce, "%x%llx", (unsigned)getpid(),
             (unsigned long long)(now_ns() / 1000) & 0xffffffffull);
    return 0;
}

/* The bench's own ceiling: per-frame receive work (parse, loss/order checks, histogram)
 * on frames shaped like the gateway's, without sockets. */
static int self_test(bench_run_t *r)
{
    const unsigned frames = 4096,
                   rounds = 512; /* 2.5 MB of frames: cache-warm, as fresh from recv */
    r->sessions = r->users = 1000;
    r->messages = frames;
    if (setup_users(r) < 0) return 1;
    double cpu = bws_selftest(r, frames, rounds);
    if (cpu < 0) {
        fprintf(stderr, "herald-bench e2e: out of memory\n");
        return 1;
    }
    double n = (double)frames * rounds;
    uint64_t bad = r->foreign + r->malformed + r->duplicates + r->out_of_order;
    printf("{\"bench\":\"e2e-self-test\",\"frames\":%.0f,\"cpu_s\":%.3f,"
           "\"frames_per_cpu_s\":%.0f,\"ns_per_frame\":%.1f,\"avg_frame_bytes\":%.0f,"
           "\"errors\":%llu}\n",
           n, cpu, n / cpu, cpu * 1e9 / n, (double)r->frame_bytes / (double)r->received,
           (unsigned long long)bad);
    fprintf(stderr, "receive path alone: %.0f frames per CPU second (%.1f ns/frame)\n", n / cpu,
            cpu * 1e9 / n);
    return bad || r->received != (uint64_t)n ? 1 : 0;
}

/* Sessions need one fd each: raise the soft limit to the hard one. */
static void raise_nofile(unsigned sessions)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)sessions + 64)
        fprintf(stderr, "herald-bench e2e: fd limit %llu is below %u sessions + 64\n",
                (unsigned long long)rl.rlim_cur, sessions);
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The receiver in use: the lean one, or the lws client with --lws. */
typedef struct {
    brx_pool_t *lean;
    bws_pool_t *lws;
} receiver_t;

static int receiver_start(receiver_t *rx, bench_run_t *r)
{
    double timeout_s = 30 + r->sessions / 500.0;
    if (r->use_lws) return (rx->lws = bws_create(r)) ? bws_connect_all(rx->lws, timeout_s) : -1;
    return (rx->lean = brx_create(r)) ? brx_connect_all(rx->lean, timeout_s) : -1;
}

static void receiver_stop(receiver_t *rx)
{
    bws_destroy(rx->lws);
    brx_destroy(rx->lean);
}

/* Publish and receive; fills the run and procs samples. Returns 0 or -1. */
static int measure(bench_run_t *r, receiver_t *rx, bprocs_t *ps, double *bench_cpu_s)
{
    pthread_t pub;
    bprocs_sample(ps, true);
    double cpu0 = process_cpu_s();
    r->t_origin = mono_ns();
    uint64_t deadline = r->t_origin + (uint64_t)(r->timeout_s * 1e9);
    if (pthread_create(&pub, NULL, bench_pub_thread, r) != 0) {
        fprintf(stderr, "herald-bench e2e: cannot start the publisher thread\n");
        return -1;
    }
    if (rx->lws)
        bws_receive(rx->lws, deadline);
    else
        brx_receive(rx->lean, deadline);
    if (!atomic_load_explicit(&r->pub_done, memory_order_acquire)) bench_stop = 1;
    pthread_join(pub, NULL);
    *bench_cpu_s = process_cpu_s() - cpu0;
    bprocs_sample(ps, false);
    return 0;
}

/* --idle: RSS of the gateways before the sessions, then after they connected and settled
 * (welcomes written, buffers idle). */
static int idle_run(bench_run_t *r, receiver_t *rx, bprocs_t *ps)
{
    const double settle_s = 3;
    sleep(1); /* the gateways' own start-up settles first */
    bprocs_sample(ps, true);
    if (receiver_start(rx, r) < 0) return 1;
    fprintf(stderr, "herald-bench e2e: %u idle sessions welcomed; settling %.0f s\n", r->sessions,
            settle_s);
    struct timespec ts = {(time_t)settle_s, 0};
    nanosleep(&ts, NULL);
    bprocs_sample(ps, false);
    bench_report_idle(r, ps, settle_s);
    return 0;
}

/* --target / --node: a running herald (or cluster): its config, gateways and processes. */
static int attach_target(bench_run_t *r, bprocs_t *ps)
{
    if (bench_load_config(r) < 0) return -1;
    if (!r->gateways) r->gateways = r->cfg.gateway_count;
    if (r->n_nodes)
        fprintf(stderr, "herald-bench e2e: %u nodes, %u gateways; publishing through node %u\n",
                r->n_nodes, r->gateways, r->pub_node + 1);
    snprintf(r->broker_addr, sizeof r->broker_addr, "%s/broker.sock", r->cfg.runtime_dir);
    bprocs_find(ps, r);
    return 0;
}

int bench_e2e_main(int argc, char **argv)
{
    bench_run_t *r = calloc(1, sizeof *r);
    bprocs_t ps;
    receiver_t rx = {NULL, NULL};
    bslow_t *slow = NULL;
    bench_totals_t totals;
    double bench_cpu_s = 0;
    int rc = 1;
    memset(&ps, 0, sizeof ps);
    if (!r) return 1;
    *r = (bench_run_t){.mix = {10, 40, 40, 10},
                       .payload_bytes = 300,
                       .batch = 256,
                       .window = 8,
                       .pub_conns = 16,
                       .slice_us = 1000,
                       .pipeline = 1,
                       .timeout_s = 60,
                       .slow_rate = 2000,
                       .slow_read_bps = 4096,
                       .spawn = true,
                       .stop = &bench_stop};
    int parsed = parse_args(r, argc, argv);
    if (parsed != 0) {
        rc = parsed > 0 ? 0 : 1;
        goto out;
    }
    if (r->self_test) {
        rc = self_test(r);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, bench_on_signal);
    signal(SIGTERM, bench_on_signal);
    raise_nofile(r->sessions);
    if (setup_users(r) < 0) {
        fprintf(stderr, "herald-bench e2e: out of memory\n");
        goto out;
    }
    if (r->spawn) {
        if ((r->config_path && bench_load_config(r) < 0) || bprocs_spawn(&ps, r) < 0) goto out;
    } else if (attach_target(r, &ps) < 0) {
        goto out;
    }
    if (r->idle) {
        rc = idle_run(r, &rx, &ps);
        goto out;
    }
    if (receiver_start(&rx, r) < 0) goto out;
    if (r->slow_readers && !(slow = bslow_start(r))) goto out;
    fprintf(stderr, "herald-bench e2e: %u sessions welcomed; publishing %llu notifications\n",
            r->sessions, (unsigned long long)r->messages);
    if (measure(r, &rx, &ps, &bench_cpu_s) < 0) goto out;
    bslow_stop(slow);
    slow = NULL;
    bench_totals(r, rx.lws ? bws_sessions_dropped(rx.lws) : brx_sessions_dropped(rx.lean),
                 bench_cpu_s, &totals);
    bench_totals_cpu(r, &ps, &totals);
    bench_report(r, &ps, &totals);
    rc = (totals.lost || r->duplicates || r->out_of_order || r->foreign) ? 2 : 0;
    if (r->pub_error[0] || bench_stop) rc = 1;
out:
    bslow_stop(slow);
    receiver_stop(&rx);
    bprocs_stop(&ps);
    if (r) {
        free(r->user_ids);
        free(r->user_sessions);
        free(r->acked);
        free(r->rx_per_tick);
        free(r->node_cfg);
    }
    free(r);
    return rc;
}
