/* fuzz_http.c - libFuzzer target: arbitrary bytes on a connection of the broker's HTTP server
 * (broker/http.c, real parser, real loop, a socketpair for the socket).
 *
 * The handler answers GETs at once and keeps POSTs to answer them at the end of the pass in
 * reverse order, so out-of-order completion is exercised. Checked on every input: the server
 * neither crashes nor leaks (ASan), every response is a well-formed HTTP/1.1 response with a
 * Content-Length that matches, responses come in request order (each body carries the
 * request's number), and no more responses than requests arrive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "http.h"

static broker_t B;
static struct {
    bk_http_msg_t *m;
    unsigned id;
} held[BK_HTTP_PIPELINE_MAX * 2];
static int n_held;
static unsigned next_id;

static void answer(bk_http_msg_t *m, unsigned id)
{
    char body[32];
    int n = snprintf(body, sizeof body, "{\"n\":%u}", id);
    bk_http_respond(&B, m, 200, body, (size_t)n, 0);
}

static void handler(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    (void)b;
    unsigned id = next_id++;
    if (rq->method == BK_HTTP_POST && n_held < (int)(sizeof held / sizeof held[0])) {
        held[n_held].m = m;
        held[n_held++].id = id;
        return;
    }
    answer(m, id);
}

static void setup(void)
{
    static bool done;
    if (done) return;
    done = true;
    config_defaults(&B.cfg);
    B.cfg.http_body_max = 64 * 1024;
    log_init("fuzz", -1);
    log_set_level(LOG_ERROR);
    herald_error_t err;
    B.loop = loop_new(&err);
    if (!B.loop) abort();
    bk_http_init(&B);
    bk_http_set_handler(&B, handler);
}

/* Check the responses in out[0..len): well formed, whole, the handler's ids in increasing
 * order (request order). Returns how many. */
static unsigned check_responses(const char *out, size_t len)
{
    unsigned n = 0;
    long last = -1;
    size_t off = 0;
    while (off < len) {
        const char *p = out + off;
        if (len - off >= 25 && !memcmp(p, "HTTP/1.1 100 Continue\r\n\r\n", 25)) {
            off += 25;
            continue;
        }
        if (len - off < 12 || memcmp(p, "HTTP/1.1 ", 9)) abort();
        const char *eoh = memmem(p, len - off, "\r\n\r\n", 4);
        if (!eoh) abort();
        const char *cl = memmem(p, (size_t)(eoh - p), "Content-Length: ", 16);
        if (!cl) abort();
        size_t clen = strtoul(cl + 16, NULL, 10);
        size_t total = (size_t)(eoh + 4 - p) + clen;
        if (off + total > len) abort(); /* a response cut short */
        unsigned id;
        if (!memcmp(p + 9, "200", 3)) {
            if (sscanf(eoh + 4, "{\"n\":%u}", &id) != 1) abort();
            if ((long)id <= last) abort(); /* out of request order */
            last = id;
        }
        n++;
        off += total;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size); /* libFuzzer calls it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) abort();
    if (bk_http_adopt(&B, sv[0]) < 0) abort();
    n_held = 0;
    unsigned first = next_id;
    static char out[1 << 24];
    size_t out_len = 0, sent = 0;
    bool shut = false;
    for (int pass = 0; pass < 100000; pass++) {
        if (sent < size) {
            ssize_t w = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
        } else if (!shut) {
            shutdown(sv[1], SHUT_WR);
            shut = true;
        }
        loop_run_once(B.loop);
        while (n_held > 0) { /* newest first: completion order is not request order */
            n_held--;
            answer(held[n_held].m, held[n_held].id);
        }
        bk_http_flush(&B);
        ssize_t r;
        while (out_len < sizeof out &&
               (r = recv(sv[1], out + out_len, sizeof out - out_len, 0)) > 0)
            out_len += (size_t)r;
        if (shut && bk_http_connections(&B) == 0) break;
    }
    ssize_t r;
    while (out_len < sizeof out && (r = recv(sv[1], out + out_len, sizeof out - out_len, 0)) > 0)
        out_len += (size_t)r;
    if (bk_http_connections(&B) != 0) abort(); /* the connection must finish on EOF */
    unsigned responses = check_responses(out, out_len);
    if (responses > next_id - first + 1) abort(); /* at most one error of the server's own */
    close(sv[1]);
    return 0;
}
