/* bench_ws.c - the WebSocket client side of herald-bench e2e (libwebsockets client API). */
#include "bench_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <libwebsockets.h>

#include "bench_check.h"
#include "bench_wsframe.h"
#include "herald_time.h"
#include "jwt.h"

#define MAX_HANDSHAKES 256 /* connects in flight: stays below the gateways' listen backlog */
#define MAX_TRIES      3
#define TICK_US        (5 * LWS_US_PER_MS)
#define TOKEN_TTL_S    86400

typedef enum { SS_IDLE = 0, SS_CONNECTING, SS_OPEN, SS_WELCOMED, SS_GONE } sess_state_t;

typedef struct {
    struct lws *wsi;
    bws_pool_t *pool;
    bcheck_t chk; /* the user and what arrived */
    unsigned gateway;
    sess_state_t state;
    unsigned tries;
    char *frag; /* a frame that arrived in pieces */
    size_t frag_len, frag_cap;
} bsess_t;

struct bws_pool {
    bench_run_t *r;
    struct lws_context *ctx;
    struct ev_loop *loop; /* libev (epoll) loop lws runs on; NULL: lws's poll() loop */
    lws_sorted_usec_list_t tick;
    bsess_t *s;
    unsigned next; /* next session index to start connecting */
    unsigned handshaking;
    unsigned welcomed;
    unsigned failed;     /* gave up connecting */
    unsigned dropped;    /* closed after welcome */
    unsigned retry_from; /* lowest index that may need a retry */
};

/* No lws validity timer: lws re-inserts a per-connection timer into one sorted list on
 * every frame received, O(sessions) each, which at 10,000 sessions was 73% of the bench's
 * CPU. The gateways ping; the bench only listens. */
static const lws_retry_bo_t bws_no_validity = {.secs_since_valid_ping = 0,
                                               .secs_since_valid_hangup = 0};

static void sess_connect(bws_pool_t *p, unsigned idx)
{
    bsess_t *s = &p->s[idx];
    const bench_run_t *r = p->r;
    const char *user = r->user_ids[s->chk.user];
    char token[512], path[600], iface[20];
    struct lws_client_connect_info ci;

    if (jwt_mint_for(&r->cfg, user, (uint64_t)time(NULL), TOKEN_TTL_S, token, sizeof token) < 0) {
        fprintf(stderr, "herald-bench: token for %s does not fit\n", user);
        s->state = SS_GONE;
        p->failed++;
        return;
    }
    snprintf(path, sizeof path, "/ws?token=%s", token);
    memset(&ci, 0, sizeof ci);
    ci.context = p->ctx;
    const char *host;
    unsigned port;
    bench_session_gateway(r, idx, &host, &port, NULL);
    ci.address = host;
    ci.host = host;
    ci.origin = host;
    ci.port = (int)port;
    ci.path = path;
    ci.protocol = "herald.json";
    ci.opaque_user_data = s;
    ci.pwsi = &s->wsi;
    ci.retry_and_idle_policy = &bws_no_validity;
    if (r->src_addrs > 1) {
        snprintf(iface, sizeof iface, "127.0.0.%u", 1 + idx % r->src_addrs);
        ci.iface = iface;
    }
    s->tries++;
    s->state = SS_CONNECTING;
    p->handshaking++;
    if (!lws_client_connect_via_info(&ci) && s->state == SS_CONNECTING) {
        /* failed synchronously; the error callback may already have accounted for it */
        s->state = SS_IDLE;
        p->handshaking--;
    }
}

/* Start connects up to the handshake bound: new sessions first, then retries. */
static void pool_start_connects(bws_pool_t *p)
{
    const bench_run_t *r = p->r;
    while (p->handshaking < MAX_HANDSHAKES && p->next < r->sessions)
        sess_connect(p, p->next++);
    for (unsigned i = p->retry_from; i < p->next && p->handshaking < MAX_HANDSHAKES; i++) {
        bsess_t *s = &p->s[i];
        if (s->state != SS_IDLE) {
            if (i == p->retry_from) p->retry_from++;
            continue;
        }
        if (s->tries >= MAX_TRIES) {
            s->state = SS_GONE;
            p->failed++;
            continue;
        }
        sess_connect(p, i);
    }
}

static void pool_tick(lws_sorted_usec_list_t *sul)
{
    bws_pool_t *p = lws_container_of(sul, bws_pool_t, tick);
    pool_start_connects(p);
    lws_sul_schedule(p->ctx, 0, &p->tick, pool_tick, TICK_US);
}

static void sess_on_frame(bsess_t *s, const char *data, size_t len)
{
    if (bcheck_frame(s->pool->r, &s->chk, data, len, NULL) == BMSG_WELCOME && s->state == SS_OPEN) {
        s->state = SS_WELCOMED;
        s->pool->welcomed++;
    }
}

/* A frame may arrive in pieces (larger than lws's rx buffer): gather them. */
static int sess_on_receive(struct lws *wsi, bsess_t *s, const char *in, size_t len)
{
    bool whole = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (whole && s->frag_len == 0) {
        sess_on_frame(s, in, len);
        return 0;
    }
    if (s->frag_len + len > s->frag_cap) {
        size_t cap = (s->frag_len + len) * 2;
        char *f = realloc(s->frag, cap);
        if (!f) return -1;
        s->frag = f;
        s->frag_cap = cap;
    }
    memcpy(s->frag + s->frag_len, in, len);
    s->frag_len += len;
    if (whole) {
        sess_on_frame(s, s->frag, s->frag_len);
        s->frag_len = 0;
    }
    return 0;
}

static void sess_gone(bsess_t *s, bool error)
{
    bws_pool_t *p = s->pool;
    if (s->state == SS_CONNECTING) p->handshaking--;
    if (s->state == SS_WELCOMED) {
        p->welcomed--;
        p->dropped++;
        s->state = SS_GONE;
    } else if (s->state == SS_CONNECTING || s->state == SS_OPEN) {
        s->state = error ? SS_IDLE : SS_GONE; /* an error before welcome is retried */
        if (s->state == SS_IDLE && s - p->s < (long)p->retry_from)
            p->retry_from = (unsigned)(s - p->s);
        if (s->state == SS_GONE) p->failed++;
    }
    s->wsi = NULL;
}

static int bws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    bsess_t *s = lws_get_opaque_user_data(wsi);
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (s && s->state == SS_CONNECTING) {
            s->state = SS_OPEN;
            s->pool->handshaking--;
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (s && sess_on_receive(wsi, s, in, len) < 0) return -1;
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (s) {
            if (s->tries >= MAX_TRIES)
                fprintf(stderr, "herald-bench: session %ld (%s) to gateway %u: %s\n",
                        (long)(s - s->pool->s), s->pool->r->user_ids[s->chk.user], s->gateway,
                        in ? (const char *)in : "connection error");
            sess_gone(s, true);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (s) sess_gone(s, false);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols bws_protocols[] = {
    {"herald.json", bws_callback, 0, 16384, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

bws_pool_t *bws_create(bench_run_t *r)
{
    struct lws_context_creation_info info;
    bws_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->s = calloc(r->sessions, sizeof *p->s))) goto oom;
    p->r = r;
    for (unsigned i = 0; i < r->sessions; i++) {
        bsess_t *s = &p->s[i];
        s->pool = p;
        const char *host;
        unsigned port;
        bench_session_gateway(r, i, &host, &port, &s->gateway);
        if (bcheck_init(&s->chk, r, i % r->users) < 0) goto oom;
    }
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = bws_protocols;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    info.pt_serv_buf_size = 64 * 1024; /* bytes per read: many frames per recv */
    info.timeout_secs = 30;
    info.retry_and_idle_policy = &bws_no_validity;
    info.connect_timeout_secs = 20;
    /* poll() costs O(sessions) per wake-up, which dominated the receive side at 1,000+
     * sessions: lws runs on a libev (epoll) loop we own when its evlib plugin loads. */
    void *foreign[1] = {p->loop = r->use_poll ? NULL : ev_loop_new(EVBACKEND_EPOLL)};
    if (p->loop) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = foreign;
        p->ctx = lws_create_context(&info);
        if (!p->ctx) {
            fprintf(stderr, "herald-bench: lws on libev unavailable; using poll()\n");
            ev_loop_destroy(p->loop);
            p->loop = NULL;
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (!p->ctx) p->ctx = lws_create_context(&info);
    if (!p->ctx) {
        fprintf(stderr, "herald-bench: lws_create_context failed\n");
        bws_destroy(p);
        return NULL;
    }
    return p;
oom:
    fprintf(stderr, "herald-bench: out of memory for %u sessions\n", r->sessions);
    bws_destroy(p);
    return NULL;
}

/* Wait for and handle one round of events. */
static void pool_service(bws_pool_t *p)
{
    if (p->loop)
        ev_run(p->loop, EVRUN_ONCE);
    else
        lws_service(p->ctx, 0);
}

int bws_connect_all(bws_pool_t *p, double timeout_s)
{
    const bench_run_t *r = p->r;
    uint64_t deadline = mono_ns() + (uint64_t)(timeout_s * 1e9);
    pool_start_connects(p);
    lws_sul_schedule(p->ctx, 0, &p->tick, pool_tick, TICK_US);
    while (p->welcomed + p->failed + p->dropped < r->sessions && !*r->stop && mono_ns() < deadline)
        pool_service(p);
    if (p->welcomed == r->sessions) return 0;
    fprintf(stderr, "herald-bench: %u of %u sessions welcomed (%u failed, %u closed)%s\n",
            p->welcomed, r->sessions, p->failed, p->dropped,
            mono_ns() >= deadline ? ", connect phase timed out" : "");
    return -1;
}

void bws_receive(bws_pool_t *p, uint64_t deadline)
{
    bench_run_t *r = p->r;
    double cpu0 = bench_thread_cpu_s();
    while (!*r->stop && mono_ns() < deadline) {
        pool_service(p);
        if (bench_rx_done(r)) break;
    }
    r->rx_cpu_s = bench_thread_cpu_s() - cpu0;
}

/* A notification frame as json_render_notif writes it for publish index i. */
static int render_frame(const bench_run_t *r, uint64_t i, char *out, size_t len)
{
    const char *user = r->user_ids[bench_user_of(r, i)];
    return snprintf(out, len,
                    "{\"type\":\"notification\",\"seq\":%llu,\"message_id\":\"hb%s-%llu\","
                    "\"message_type\":\"trade_executed\",\"channel\":\"trade\",\"user_id\":\"%s\","
                    "\"priority\":%u,\"timestamp\":1764000000000000000,\"source\":\"herald-bench\","
                    "\"payload\":{\"bench_t0\":%llu,\"bench_i\":%llu,\"trade_id\":\"T880001234\","
                    "\"order_id\":\"O550001234\",\"exchange_order_id\":\"X00ff00ff00ff00ff\","
                    "\"instrument_id\":\"rb2501\",\"direction\":\"buy\",\"offset\":\"open\","
                    "\"price\":3512.0,\"volume\":3,\"commission\":1.75,\"fill_type\":\"full\","
                    "\"memo\":\"settlement T+0; venue XSHG; account class retail\"}}",
                    (unsigned long long)(bench_rank_of(r, i) + 1), r->run_nonce,
                    (unsigned long long)i, user, bench_pub_priority(r, i),
                    (unsigned long long)mono_ns(), (unsigned long long)i);
}

double bws_selftest(bench_run_t *r, unsigned frames, unsigned rounds)
{
    enum { FRAME_MAX = 640 };
    bws_pool_t pool = {.r = r};
    char *text = malloc((size_t)frames * FRAME_MAX);
    int *lens = malloc(frames * sizeof *lens);
    double cpu = -1;
    if (!text || !lens || !(pool.s = calloc(r->sessions, sizeof *pool.s))) goto out;
    for (unsigned i = 0; i < r->sessions; i++) {
        pool.s[i].pool = &pool;
        pool.s[i].state = SS_WELCOMED;
        if (bcheck_init(&pool.s[i].chk, r, i % r->users) < 0) goto out;
    }
    for (unsigned i = 0; i < frames; i++) { /* a 16-bit length header, then the text */
        uint8_t *f = (uint8_t *)text + (size_t)i * FRAME_MAX;
        lens[i] = render_frame(r, i, (char *)f + 4, FRAME_MAX - 4);
        if (lens[i] > FRAME_MAX - 5) lens[i] = FRAME_MAX - 5; /* truncated: counted malformed */
        f[0] = 0x80 | BWSF_TEXT;
        f[1] = 126;
        f[2] = (uint8_t)(lens[i] >> 8);
        f[3] = (uint8_t)lens[i];
    }
    cpu = 0;
    for (unsigned round = 0; round < rounds; round++) {
        for (unsigned i = 0; i < r->sessions; i++)
            bcheck_reset(&pool.s[i].chk, r);
        double t0 = bench_thread_cpu_s();
        for (unsigned i = 0; i < frames; i++) {
            bwsf_frame_t f;
            if (bwsf_parse((uint8_t *)text + (size_t)i * FRAME_MAX, (size_t)lens[i] + 4, FRAME_MAX,
                           &f) == BWSF_OK)
                sess_on_frame(&pool.s[i % r->users], (const char *)f.payload, (size_t)f.len);
        }
        cpu += bench_thread_cpu_s() - t0;
    }
out:
    if (pool.s)
        for (unsigned i = 0; i < r->sessions; i++)
            bcheck_free(&pool.s[i].chk);
    free(pool.s);
    free(lens);
    free(text);
    return cpu;
}

unsigned bws_sessions_dropped(const bws_pool_t *p)
{
    return p->dropped;
}

void bws_destroy(bws_pool_t *p)
{
    if (!p) return;
    if (p->ctx) lws_context_destroy(p->ctx);
    if (p->loop) ev_loop_destroy(p->loop);
    if (p->s) {
        for (unsigned i = 0; i < p->r->sessions; i++) {
            bcheck_free(&p->s[i].chk);
            free(p->s[i].frag);
        }
        free(p->s);
    }
    free(p);
}
