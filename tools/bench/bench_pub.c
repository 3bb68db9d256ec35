/* bench_pub.c - herald-bench e2e publisher: trade_executed notifications through libherald,
 * pipelined batch frames; with a rate, paced in slices (--slice-us, default 1 ms). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_e2e.h"
#include "bench_http1.h"
#include "herald.h"
#include "herald_time.h"

#define SLICE_NS 1000000ull

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

unsigned bench_pub_priority(const bench_run_t *r, uint64_t i)
{
    unsigned roll = (unsigned)(mix64(i) % 100), acc = 0;
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        acc += r->mix[p];
        if (roll < acc) return p;
    }
    return HERALD_PRIORITIES - 1;
}

bool bench_pub_is_ack(const bench_run_t *r, uint64_t i)
{
    return r->ack_share && mix64(i ^ 0x5bd1e9955bd1e995ull) % 100 < r->ack_share;
}

double bench_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v, size_t vlen)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
    msgpack_pack_str_with_body(pk, v, vlen);
}

/* One trade_executed notification. bench_t0 and bench_i come first in the payload: the
 * receive fast path (bench_parse.c) looks for them there. */
static void pack_one(const bench_run_t *r, msgpack_packer *pk, uint64_t i, uint64_t t0, size_t pad)
{
    static const char pad_chars[] =
        "settlement T+0; venue XSHG; account class retail; fee schedule standard; "
        "clearing member 0042; routed via smart order router; no special instructions; "
        "this memo pads the notification to the size requested with --payload-bytes ok";
    char id[48], num[32];
    unsigned user = bench_user_of(r, i);
    int n = snprintf(id, sizeof id, "hb%s-%" PRIu64, r->run_nonce, i);

    bool ack = bench_pub_is_ack(r, i);
    msgpack_pack_map(pk, 6);
    pack_kv_str(pk, "message_id", id, (size_t)n);
    if (ack)
        pack_kv_str(pk, "message_type", "margin_call", 11);
    else
        pack_kv_str(pk, "message_type", "trade_executed", 14);
    pack_kv_str(pk, "user_id", r->user_ids[user], strlen(r->user_ids[user]));
    msgpack_pack_str_with_body(pk, "priority", 8);
    msgpack_pack_uint8(pk, (uint8_t)bench_pub_priority(r, i));
    pack_kv_str(pk, "source", "herald-bench", 12);
    msgpack_pack_str_with_body(pk, "payload", 7);
    msgpack_pack_map(pk, ack ? 8 : 13);
    msgpack_pack_str_with_body(pk, "bench_t0", 8);
    msgpack_pack_uint64(pk, t0);
    msgpack_pack_str_with_body(pk, "bench_i", 7);
    msgpack_pack_uint64(pk, i);
    if (ack) { /* protocol.md 2's margin_call fields, the same memo */
        pack_kv_str(pk, "user_id", r->user_ids[user], strlen(r->user_ids[user]));
        msgpack_pack_str_with_body(pk, "current_margin", 14);
        msgpack_pack_double(pk, 1200.5 + (double)(i % 40));
        msgpack_pack_str_with_body(pk, "required_margin", 15);
        msgpack_pack_double(pk, 2000.0);
        msgpack_pack_str_with_body(pk, "deadline", 8);
        msgpack_pack_uint64(pk, 1764003600);
        pack_kv_str(pk, "message", "margin below requirement: add funds", 35);
        pack_kv_str(pk, "memo", pad_chars, pad < sizeof pad_chars - 1 ? pad : sizeof pad_chars - 1);
        return;
    }
    n = snprintf(num, sizeof num, "T%" PRIu64, 880000000 + i);
    pack_kv_str(pk, "trade_id", num, (size_t)n);
    n = snprintf(num, sizeof num, "O%" PRIu64, 550000000 + i);
    pack_kv_str(pk, "order_id", num, (size_t)n);
    n = snprintf(num, sizeof num, "X%016" PRIx64, mix64(i));
    pack_kv_str(pk, "exchange_order_id", num, (size_t)n);
    pack_kv_str(pk, "instrument_id", "rb2501", 6);
    pack_kv_str(pk, "direction", (i & 1) ? "sell" : "buy", (i & 1) ? 4 : 3);
    pack_kv_str(pk, "offset", "open", 4);
    msgpack_pack_str_with_body(pk, "price", 5);
    msgpack_pack_double(pk, 3512.0 + (double)(i % 40));
    msgpack_pack_str_with_body(pk, "volume", 6);
    msgpack_pack_uint32(pk, (uint32_t)(1 + i % 20));
    msgpack_pack_str_with_body(pk, "commission", 10);
    msgpack_pack_double(pk, 1.75);
    pack_kv_str(pk, "fill_type", "full", 4);
    pack_kv_str(pk, "memo", pad_chars, pad < sizeof pad_chars - 1 ? pad : sizeof pad_chars - 1);
}

/* Notification i as JSON: the fields of pack_one, in its order. */
static size_t json_one(const bench_run_t *r, uint64_t i, uint64_t t0, size_t pad, char *buf,
                       size_t cap)
{
    static const char pad_chars[] =
        "settlement T+0; venue XSHG; account class retail; fee schedule standard; "
        "clearing member 0042; routed via smart order router; no special instructions; "
        "this memo pads the notification to the size requested with --payload-bytes ok";
    unsigned user = bench_user_of(r, i);
    if (pad > sizeof pad_chars - 1) pad = sizeof pad_chars - 1;
    if (bench_pub_is_ack(r, i)) {
        int n = snprintf(buf, cap,
                         "{\"message_id\":\"hb%s-%" PRIu64 "\",\"message_type\":\"margin_call\","
                         "\"user_id\":\"%s\",\"priority\":%u,\"source\":\"herald-bench\","
                         "\"payload\":{\"bench_t0\":%" PRIu64 ",\"bench_i\":%" PRIu64 ","
                         "\"user_id\":\"%s\",\"current_margin\":%.1f,\"required_margin\":2000.0,"
                         "\"deadline\":1764003600,\"message\":\"margin below requirement: add "
                         "funds\",\"memo\":\"%.*s\"}}",
                         r->run_nonce, i, r->user_ids[user], bench_pub_priority(r, i), t0, i,
                         r->user_ids[user], 1200.5 + (double)(i % 40), (int)pad, pad_chars);
        return (size_t)n < cap ? (size_t)n : cap - 1;
    }
    int n =
        snprintf(buf, cap,
                 "{\"message_id\":\"hb%s-%" PRIu64 "\",\"message_type\":\"trade_executed\","
                 "\"user_id\":\"%s\",\"priority\":%u,\"source\":\"herald-bench\",\"payload\":{"
                 "\"bench_t0\":%" PRIu64 ",\"bench_i\":%" PRIu64 ",\"trade_id\":\"T%" PRIu64 "\","
                 "\"order_id\":\"O%" PRIu64 "\",\"exchange_order_id\":\"X%016" PRIx64 "\","
                 "\"instrument_id\":\"rb2501\",\"direction\":\"%s\",\"offset\":\"open\","
                 "\"price\":%.1f,\"volume\":%u,\"commission\":1.75,\"fill_type\":\"full\","
                 "\"memo\":\"%.*s\"}}",
                 r->run_nonce, i, r->user_ids[user], bench_pub_priority(r, i), t0, i, 880000000 + i,
                 550000000 + i, mix64(i), (i & 1) ? "sell" : "buy", 3512.0 + (double)(i % 40),
                 (unsigned)(1 + i % 20), (int)pad, pad_chars);
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Memo length that brings one notification to about r->payload_bytes. */
static size_t pad_for(const bench_run_t *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_one(r, &pk, r->messages, 0, 0);
    size_t base = sb.size;
    msgpack_sbuffer_destroy(&sb);
    if (r->payload_bytes <= base) return 0;
    size_t pad = r->payload_bytes - base;
    return pad > 31 ? pad - 1 : pad; /* str8 header is one byte longer than fixstr */
}

size_t bench_pub_encode(const bench_run_t *r, uint64_t first, unsigned n, uint64_t t0,
                        msgpack_sbuffer *sb)
{
    static __thread size_t pad = SIZE_MAX;
    msgpack_packer pk;
    if (pad == SIZE_MAX) pad = pad_for(r);
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (unsigned k = 0; k < n; k++)
        pack_one(r, &pk, first + k, t0, pad);
    return sb->size;
}

typedef struct {
    uint64_t first;
    unsigned n;
} inflight_t;

/* The refusals' span (a cluster's failover shows as 503s from the first to the last). */
static void pub_refusal_time(bench_run_t *r)
{
    uint64_t t = mono_ns();
    if (!r->pub_t_refused[0]) r->pub_t_refused[0] = t;
    r->pub_t_refused[1] = t;
}

/* Collect the responses of the oldest request frame. */
static int pub_collect(bench_run_t *r, herald_client_t *c, inflight_t *f, herald_result_t *res)
{
    herald_error_t err;
    long got = herald_recv_results(c, res, f->n, &err);
    if (got != (long)f->n) {
        snprintf(r->pub_error, sizeof r->pub_error, "receiving results: %s",
                 got < 0 ? err.message : "short result list");
        return -1;
    }
    uint64_t owed = 0;
    for (unsigned k = 0; k < f->n; k++) {
        uint64_t i = f->first + k;
        if (!res[k].ok) {
            herr_t code = HERR_INTERNAL;
            for (unsigned e = 1; e < HERR__COUNT; e++)
                if (strcmp(res[k].error, herr_code(herr_at(e))) == 0) code = herr_at(e);
            r->pub_refused[herr_index(code)]++;
            pub_refusal_time(r);
            continue;
        }
        if (res[k].duplicate) r->pub_duplicate++;
        r->acked[i >> 3] |= (uint8_t)(1u << (i & 7));
        r->pub_acked++;
        owed += r->user_sessions[bench_user_of(r, i)];
    }
    atomic_fetch_add_explicit(&r->expected, owed, memory_order_relaxed);
    return 0;
}

/* How many notifications may go out now: all that are due under the rate, capped. */
static unsigned pub_due(const bench_run_t *r, uint64_t next, uint64_t start, uint64_t now)
{
    uint64_t left = r->messages - next;
    uint64_t n = left < r->batch ? left : r->batch;
    if (r->rate <= 0) return (unsigned)n;
    /* Paced in slices: what is due by the start of the next slice goes out in one frame at
     * the slice's start, as a producer that publishes per processing cycle does (with
     * --slice-us 0, each notification as soon as it is due). */
    uint64_t t = now - start;
    if (r->slice_ns) t = (t / r->slice_ns + 1) * r->slice_ns;
    uint64_t due = (uint64_t)((double)t * r->rate / 1e9) + 1;
    if (due > r->messages) due = r->messages;
    return due > next ? (unsigned)(due - next < n ? due - next : n) : 0;
}

static void sleep_until(uint64_t mono)
{
    struct timespec ts = {(time_t)(mono / 1000000000ull), (long)(mono % 1000000000ull)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static void pub_run(bench_run_t *r, herald_client_t *c)
{
    herald_result_t *res = calloc(r->batch, sizeof *res);
    inflight_t *q = calloc(r->window, sizeof *q);
    msgpack_sbuffer sb;
    herald_error_t err;
    unsigned head = 0, busy = 0;
    uint64_t next = 0;
    msgpack_sbuffer_init(&sb);
    if (!res || !q) {
        snprintf(r->pub_error, sizeof r->pub_error, "out of memory");
        goto out;
    }
    uint64_t start = mono_ns(), deadline = start + (uint64_t)(r->timeout_s * 1e9);
    r->pub_t_start = start;
    while ((next < r->messages || busy) && !*r->stop) {
        uint64_t now = mono_ns();
        if (now > deadline) {
            snprintf(r->pub_error, sizeof r->pub_error, "timeout with %u frames unanswered", busy);
            break;
        }
        unsigned n = busy < r->window && next < r->messages ? pub_due(r, next, start, now) : 0;
        if (n) {
            size_t len = bench_pub_encode(r, next, n, mono_ns(), &sb);
            if (herald_send(c, (const uint8_t *)sb.data, len, &err) < 0) {
                snprintf(r->pub_error, sizeof r->pub_error, "sending: %s", err.message);
                break;
            }
            q[(head + busy) % r->window] = (inflight_t){next, n};
            busy++;
            next += n;
            r->pub_sent += n;
            continue;
        }
        if (busy) {
            if (pub_collect(r, c, &q[head], res) < 0) break;
            head = (head + 1) % r->window;
            busy--;
            r->pub_t_end = mono_ns();
            continue;
        }
        uint64_t slice = r->slice_ns ? r->slice_ns : SLICE_NS;
        sleep_until(now + slice - (now - start) % slice);
    }
out:
    msgpack_sbuffer_destroy(&sb);
    free(q);
    free(res);
}

/* --ingress http: bodies and answers of bench_http1.c */
static size_t http_body(void *ctx, uint64_t i, char *buf, size_t cap)
{
    const bench_run_t *r = ctx;
    static __thread size_t pad = SIZE_MAX;
    if (pad == SIZE_MAX) pad = pad_for(r);
    return json_one(r, i, mono_ns(), pad, buf, cap);
}

static void http_answer(void *ctx, uint64_t i, int status, const char *body, size_t len)
{
    bench_run_t *r = ctx;
    if (status != 200) {
        herr_t code = HERR_INTERNAL;
        const char *e = memmem(body, len, "\"error\":\"", 9);
        for (unsigned k = 1; e && k < HERR__COUNT; k++) {
            const char *name = herr_code(herr_at(k));
            size_t kl = strlen(name);
            if (!strncmp(e + 9, name, kl) && e[9 + kl] == '"') code = herr_at(k);
        }
        r->pub_refused[herr_index(code)]++;
        pub_refusal_time(r);
        return;
    }
    if (memmem(body, len, "\"duplicate\":true", 16)) r->pub_duplicate++;
    r->acked[i >> 3] |= (uint8_t)(1u << (i & 7));
    r->pub_acked++;
    atomic_fetch_add_explicit(&r->expected, r->user_sessions[bench_user_of(r, i)],
                              memory_order_relaxed);
}

static void pub_run_http(bench_run_t *r)
{
    bh1_opts_t o = {.port = r->cfg.broker_http.port,
                    .api_key = r->cfg.broker_api_key[0] ? r->cfg.broker_api_key : NULL,
                    .conns = r->pub_conns,
                    .pipeline = r->pipeline,
                    .count = r->messages,
                    .rate = r->rate,
                    .timeout_s = r->timeout_s,
                    .body = http_body,
                    .answer = http_answer,
                    .ctx = r,
                    .stop = r->stop};
    bh1_result_t res;
    if (bh1_run(&o, &res) < 0) snprintf(r->pub_error, sizeof r->pub_error, "%s", res.error);
    r->pub_sent = res.sent;
    r->pub_t_start = res.t_start;
    r->pub_t_end = res.t_end;
}

void *bench_pub_thread(void *arg)
{
    bench_run_t *r = arg;
    herald_error_t err;
    if (r->ingress_http) {
        pub_run_http(r);
    } else {
        herald_client_t *c = herald_connect(r->broker_addr, &err);
        if (!c) {
            snprintf(r->pub_error, sizeof r->pub_error, "connect %.100s: %.140s", r->broker_addr,
                     err.message);
        } else {
            pub_run(r, c);
            herald_close(c);
        }
    }
    r->pub_cpu_s = bench_thread_cpu_s();
    /* release: pairs with the acquire load in the receive loop; publisher fields are final */
    atomic_store_explicit(&r->pub_done, true, memory_order_release);
    return NULL;
}
