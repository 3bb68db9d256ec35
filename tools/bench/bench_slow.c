/* bench_slow.c - herald-bench e2e --slow-readers (bench_slow.h): slow sessions on blocking
 * sockets with small receive buffers, read a few hundred bytes at a time in 10 ms slices by
 * one thread, which also publishes their position updates through its own libherald
 * connection. Frames are only classified (notification, conflated, close): nothing here is
 * on the measured sessions' path. */
#include "bench_slow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_wsframe.h"
#include "herald.h"
#include "herald_time.h"
#include "jwt.h"

#define SLOW_SLICE_NS  10000000ull /* read and publish every 10 ms */
#define SLOW_RCVBUF    8192        /* so the kernel holds little of what the reader owes */
#define SLOW_BUF       (1u << 20)  /* one session's unparsed bytes */
#define SLOW_INSTR     10          /* instruments per slow user */
#define SLOW_MAX_BATCH 1000
#define SLOW_DRAIN_NS  (15 * 1000000000ull) /* at the end: read the rest at full speed */

typedef struct {
    int fd;
    uint8_t *buf;
    size_t have;
    bool closed;
    int close_code;
    uint64_t notifications, conflated_msgs, conflated_seqs;
    uint64_t gap_seqs; /* named in gap messages (history no longer had them) */
} slow_sess_t;

struct bslow {
    bench_run_t *r;
    slow_sess_t *s;
    herald_client_t *pub;
    pthread_t thread;
    bool running;
    _Atomic bool stop;
    uint64_t published;
    msgpack_sbuffer sb;
};

static void slow_user(unsigned k, char *out, size_t cap)
{
    snprintf(out, cap, "bench-slow-%u", k);
}

/* Connect and upgrade one session, blocking; read up to its welcome. Returns 0 or -1. */
static int slow_connect(bslow_t *b, unsigned k)
{
    const bench_run_t *r = b->r;
    slow_sess_t *s = &b->s[k];
    char user[32], token[512], key[BWSF_KEY_LEN + 1], req[1200];
    slow_user(k, user, sizeof user);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)(r->cfg.gateway_listen.port +
                                                          k % (r->gateways ? r->gateways : 1)))};
    if (inet_pton(AF_INET, r->cfg.gateway_listen.host, &sa.sin_addr) != 1)
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0) return -1;
    int rcv = SLOW_RCVBUF;
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        jwt_mint_for(&r->cfg, user, (uint64_t)time(NULL), 86400, token, sizeof token) < 0 ||
        bwsf_new_key(key) < 0)
        return -1;
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: herald.json\r\n\r\n",
                     token, key);
    if (n >= (int)sizeof req || send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    /* the 101 and the welcome frame: byte by byte to the blank line, then up to the welcome */
    char head[4096];
    size_t got = 0;
    struct pollfd pf = {.fd = s->fd, .events = POLLIN};
    while (got < sizeof head - 1 && !(got >= 4 && !memcmp(head + got - 4, "\r\n\r\n", 4))) {
        if (poll(&pf, 1, 10000) != 1 || recv(s->fd, head + got, 1, 0) != 1) return -1;
        got++;
    }
    if (strncmp(head, "HTTP/1.1 101", 12)) return -1;
    s->buf = malloc(SLOW_BUF);
    if (!s->buf) return -1;
    for (;;) {
        bwsf_frame_t f;
        if (bwsf_parse(s->buf, s->have, SLOW_BUF, &f) == BWSF_OK) {
            bool welcome = f.opcode == BWSF_TEXT && memmem(f.payload, f.len, "\"welcome\"", 9);
            memmove(s->buf, s->buf + f.frame_len, s->have - f.frame_len);
            s->have -= f.frame_len;
            if (welcome) return 0;
            continue;
        }
        if (poll(&pf, 1, 10000) != 1) return -1;
        ssize_t r2 = recv(s->fd, s->buf + s->have, SLOW_BUF - s->have, 0);
        if (r2 <= 0) return -1;
        s->have += (size_t)r2;
    }
}

/* Account for the whole frames in s->buf. */
static void slow_parse(slow_sess_t *s)
{
    static const char notif[] = "{\"type\":\"notification\"", confl[] = "{\"type\":\"conflated\"",
                      gap[] = "{\"type\":\"gap\",\"from\":";
    size_t off = 0;
    bwsf_frame_t f;
    while (!s->closed && bwsf_parse(s->buf + off, s->have - off, SLOW_BUF, &f) == BWSF_OK) {
        if (f.opcode == BWSF_CLOSE) {
            s->closed = true;
            s->close_code = f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 1005;
        } else if (f.opcode == BWSF_PING) {
            uint8_t out[131];
            size_t n =
                bwsf_write_masked(out, sizeof out, BWSF_PONG, f.payload, f.len, (uint32_t)rand());
            if (n) (void)!send(s->fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else if (f.len >= sizeof notif - 1 && !memcmp(f.payload, notif, sizeof notif - 1)) {
            s->notifications++;
        } else if (f.len >= sizeof gap - 1 && !memcmp(f.payload, gap, sizeof gap - 1)) {
            unsigned long long from = 0, to = 0; /* {"type":"gap","from":S,"to":T} */
            if (sscanf((const char *)f.payload + sizeof gap - 1, "%llu,\"to\":%llu", &from, &to) ==
                    2 &&
                to >= from)
                s->gap_seqs += to - from + 1;
        } else if (f.len >= sizeof confl - 1 && !memcmp(f.payload, confl, sizeof confl - 1)) {
            s->conflated_msgs++;
            /* {"type":"conflated","seqs":[S1,S2,...]}: one more seq than commas in the list */
            const uint8_t *list = memchr(f.payload, '[', f.len);
            for (const uint8_t *c = list; c && c < f.payload + f.len; c++)
                s->conflated_seqs += *c == ',' || *c == '[';
        }
        off += f.frame_len;
    }
    memmove(s->buf, s->buf + off, s->have - off);
    s->have -= off;
}

/* Read at most `budget` bytes of session s (non-blocking). */
static void slow_read(slow_sess_t *s, size_t budget)
{
    if (s->closed) return;
    size_t room = SLOW_BUF - s->have;
    ssize_t n = recv(s->fd, s->buf + s->have, budget < room ? budget : room, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s->closed = true; /* gone without a close frame (killed after a 4008, say) */
        return;
    }
    if (n > 0) s->have += (size_t)n;
    slow_parse(s);
}

/* Publish n position updates (one batch frame); the k-th of the run goes to slow user
 * k % K, instrument (k / K) % 10, its volume_long k. */
static int slow_publish(bslow_t *b, unsigned n)
{
    const bench_run_t *r = b->r;
    msgpack_packer pk;
    msgpack_sbuffer_clear(&b->sb);
    msgpack_packer_init(&pk, &b->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t k = b->published + i;
        char user[32], id[64], inst[16];
        slow_user((unsigned)(k % r->slow_readers), user, sizeof user);
        int il = snprintf(id, sizeof id, "hs%s-%" PRIu64, r->run_nonce, k);
        int nl =
            snprintf(inst, sizeof inst, "rb25%02u", (unsigned)((k / r->slow_readers) % SLOW_INSTR));
        msgpack_pack_map(&pk, 4);
        msgpack_pack_str_with_body(&pk, "message_id", 10);
        msgpack_pack_str_with_body(&pk, id, (size_t)il);
        msgpack_pack_str_with_body(&pk, "message_type", 12);
        msgpack_pack_str_with_body(&pk, "position_update", 15);
        msgpack_pack_str_with_body(&pk, "user_id", 7);
        msgpack_pack_str_with_body(&pk, user, strlen(user));
        msgpack_pack_str_with_body(&pk, "payload", 7);
        msgpack_pack_map(&pk, 8);
        msgpack_pack_str_with_body(&pk, "user_id", 7);
        msgpack_pack_str_with_body(&pk, user, strlen(user));
        msgpack_pack_str_with_body(&pk, "instrument_id", 13);
        msgpack_pack_str_with_body(&pk, inst, (size_t)nl);
        const char *num[] = {"volume_long", "volume_short", "cost_long",
                             "cost_short",  "profit_long",  "profit_short"};
        for (int f = 0; f < 6; f++) {
            msgpack_pack_str_with_body(&pk, num[f], strlen(num[f]));
            msgpack_pack_double(&pk, f == 0 ? (double)k : 3512.5 + f);
        }
    }
    herald_error_t err;
    static herald_result_t res[SLOW_MAX_BATCH];
    if (herald_send(b->pub, (const uint8_t *)b->sb.data, b->sb.size, &err) < 0 ||
        herald_recv_results(b->pub, res, n, &err) != (long)n) {
        fprintf(stderr, "herald-bench e2e: slow readers' publisher: %s\n", err.message);
        return -1;
    }
    b->published += n;
    return 0;
}

static void *slow_thread(void *arg)
{
    bslow_t *b = arg;
    const bench_run_t *r = b->r;
    uint64_t start = mono_ns(), next = start;
    size_t budget = r->slow_read_bps / (1000000000ull / SLOW_SLICE_NS);
    if (!budget) budget = 1;
    bool publishing = true;
    while (!atomic_load_explicit(&b->stop, memory_order_acquire)) {
        uint64_t now = mono_ns();
        if (publishing) {
            uint64_t due = (uint64_t)((double)(now - start) * r->slow_rate / 1e9);
            while (due > b->published) {
                uint64_t n = due - b->published;
                if (slow_publish(b, n > SLOW_MAX_BATCH ? SLOW_MAX_BATCH : (unsigned)n) < 0) {
                    publishing = false;
                    break;
                }
            }
        }
        for (unsigned k = 0; k < r->slow_readers; k++)
            slow_read(&b->s[k], budget);
        next += SLOW_SLICE_NS;
        now = mono_ns();
        if (next > now) {
            struct timespec ts = {(time_t)((next - now) / 1000000000ull),
                                  (long)((next - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        } else {
            next = now;
        }
    }
    return NULL;
}

bslow_t *bslow_start(bench_run_t *r)
{
    herald_error_t err;
    bslow_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->r = r;
    msgpack_sbuffer_init(&b->sb);
    b->s = calloc(r->slow_readers, sizeof *b->s);
    if (!b->s) goto fail;
    for (unsigned k = 0; k < r->slow_readers; k++)
        b->s[k].fd = -1;
    for (unsigned k = 0; k < r->slow_readers; k++)
        if (slow_connect(b, k) < 0) {
            fprintf(stderr, "herald-bench e2e: slow reader %u: cannot connect: %s\n", k,
                    strerror(errno));
            goto fail;
        }
    b->pub = herald_connect(r->broker_addr, &err);
    if (!b->pub) {
        fprintf(stderr, "herald-bench e2e: slow readers' publisher: %s\n", err.message);
        goto fail;
    }
    if (pthread_create(&b->thread, NULL, slow_thread, b) != 0) goto fail;
    b->running = true;
    return b;
fail:
    bslow_stop(b);
    return NULL;
}

/* Position updates published for slow user k. */
static uint64_t slow_owed(const bslow_t *b, unsigned k)
{
    unsigned n = b->r->slow_readers;
    return b->published / n + (k < b->published % n);
}

/* After publishing stopped: read what each open session has left at full speed (what a
 * client does when it catches up) until every update it was sent is accounted for,
 * delivered or named conflated, or SLOW_DRAIN_NS passed. The kernel holds megabytes for a
 * slow socket, so during the run the readers only see what was sent long before. */
static void slow_drain(bslow_t *b)
{
    uint64_t end = mono_ns() + SLOW_DRAIN_NS;
    for (bool more = true; more && mono_ns() < end;) {
        more = false;
        for (unsigned k = 0; k < b->r->slow_readers; k++) {
            slow_sess_t *s = &b->s[k];
            if (s->closed || s->notifications + s->conflated_seqs + s->gap_seqs >= slow_owed(b, k))
                continue;
            more = true;
            struct pollfd pf = {.fd = s->fd, .events = POLLIN};
            if (poll(&pf, 1, 10) == 1) slow_read(s, SLOW_BUF);
        }
    }
}

void bslow_stop(bslow_t *b)
{
    if (!b) return;
    bench_run_t *r = b->r;
    atomic_store_explicit(&b->stop, true, memory_order_release);
    if (b->running) {
        pthread_join(b->thread, NULL);
        slow_drain(b);
    }
    r->slow_published = b->published;
    for (unsigned k = 0; b->s && k < r->slow_readers; k++) {
        slow_sess_t *s = &b->s[k];
        r->slow_notifications += s->notifications;
        r->slow_conflated_msgs += s->conflated_msgs;
        r->slow_conflated_seqs += s->conflated_seqs;
        r->slow_gap_seqs += s->gap_seqs;
        if (s->closed) {
            r->slow_closed++;
            r->slow_closed_4008 += s->close_code == 4008;
        } else if (s->fd >= 0) {
            r->slow_alive++;
            uint64_t got = s->notifications + s->conflated_seqs + s->gap_seqs,
                     owed = slow_owed(b, k);
            r->slow_unaccounted += got < owed ? owed - got : 0;
        }
        if (s->fd >= 0) close(s->fd);
        free(s->buf);
    }
    if (b->pub) herald_close(b->pub);
    msgpack_sbuffer_destroy(&b->sb);
    free(b->s);
    free(b);
}
