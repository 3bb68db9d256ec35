/* bench_broker_load.c - `herald-bench broker`'s producers: pre-encoded batch frames on the
 * native protocol, JSON array bodies over HTTP keep-alive, and one notification per HTTP/1.1
 * request; each notification with a unique message_id stamped per request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpack.h>

#include "bench.h"
#include "bench_broker.h"
#include "bench_http1.h"
#include "fdio.h"
#include "frame.h"
#include "herald.h"
#include "proto.h"

/* Every notification carries a unique message_id, as producers relying on dedup send:
 * BB_ID_LEN hex digits at known offsets in the pre-encoded bodies, rewritten per request. */
typedef struct {
    uint8_t *body;
    size_t *off; /* batch offsets of the id digits in body */
} bb_body_t;

/* Write request number req's ids (req * batch + i) into body. */
static void ids_stamp(const bb_body_t *b, uint32_t batch, uint64_t req)
{
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < batch; i++) {
        uint64_t id = req * batch + i;
        uint8_t *d = b->body + b->off[i];
        for (int k = BB_ID_LEN - 1; k >= 0; k--, id >>= 4)
            d[k] = (uint8_t)hex[id & 15];
    }
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void bb_pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

void bench_pack_notif(msgpack_packer *pk, msgpack_sbuffer *sb, uint32_t u, uint32_t payload,
                      size_t *id_off)
{
    char user[32], pad[1024];
    snprintf(user, sizeof user, "user%u", u);
    memset(pad, 'x', payload < sizeof pad ? payload : sizeof pad - 1);
    msgpack_pack_map(pk, id_off ? 6 : 5);
    if (id_off) {
        bb_pk_str(pk, "message_id");
        msgpack_pack_str(pk, BB_ID_LEN);
        *id_off = sb->size;
        msgpack_pack_str_body(pk, "0000000000000000", BB_ID_LEN);
    }
    bb_pk_str(pk, "message_type"), bb_pk_str(pk, "system_notice");
    bb_pk_str(pk, "user_id"), bb_pk_str(pk, user);
    bb_pk_str(pk, "priority"), msgpack_pack_uint32(pk, 1);
    bb_pk_str(pk, "source"), bb_pk_str(pk, "bench");
    bb_pk_str(pk, "payload");
    msgpack_pack_map(pk, 3);
    bb_pk_str(pk, "title"), bb_pk_str(pk, "bench");
    bb_pk_str(pk, "level"), bb_pk_str(pk, "info");
    bb_pk_str(pk, "content");
    uint32_t n = payload < sizeof pad ? payload : (uint32_t)sizeof pad - 1;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, pad, n);
}

int bb_produce_native(const bb_broker_t *b, const bb_opts_t *o, uint64_t *refused)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(b->sock, &err);
    if (!c) return -1;
    uint32_t frames = (uint32_t)((o->count + o->batch - 1) / o->batch);
    msgpack_sbuffer body[8];
    bb_body_t ids[8];
    msgpack_packer pk;
    for (int v = 0; v < 8; v++) { /* a few batch bodies spreading users */
        msgpack_sbuffer_init(&body[v]);
        msgpack_packer_init(&pk, &body[v], msgpack_sbuffer_write);
        msgpack_pack_array(&pk, o->batch);
        ids[v].off = calloc(o->batch, sizeof *ids[v].off);
        for (uint32_t i = 0; i < o->batch; i++)
            bench_pack_notif(&pk, &body[v], (v * o->batch + i) % o->users, o->payload,
                             o->no_ids ? NULL : &ids[v].off[i]);
    }
    herald_result_t *res = malloc(o->batch * sizeof *res);
    uint32_t sent = 0, done = 0;
    int rc = 0;
    while (done < frames) {
        while (sent < frames && sent - done < o->pipeline) {
            if (!o->no_ids) {
                ids[sent % 8].body = (uint8_t *)body[sent % 8].data;
                ids_stamp(&ids[sent % 8], o->batch, sent);
            }
            if (herald_send(c, (uint8_t *)body[sent % 8].data, body[sent % 8].size, &err) < 0) {
                rc = -1;
                goto out;
            }
            sent++;
        }
        long n = herald_recv_results(c, res, o->batch, &err);
        if (n < 0) {
            rc = -1;
            goto out;
        }
        for (long i = 0; i < n; i++)
            *refused += !res[i].ok;
        done++;
    }
out:
    free(res);
    for (int v = 0; v < 8; v++) {
        msgpack_sbuffer_destroy(&body[v]);
        free(ids[v].off);
    }
    herald_close(c);
    return rc;
}

/* Read one HTTP response (headers + Content-Length body) from fd into buf. */
static int http_read(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        if (!eoh) continue;
        char *cl = strcasestr(buf, "content-length:");
        size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
        if (len >= (size_t)(eoh + 4 - buf) + clen) return atoi(buf + 9);
        if (len + 1 >= cap) return -1;
    }
}

/* Send request number n (its ids stamped first, unless ids is NULL). */
static int http_send(int fd, char *req, size_t len, const bb_body_t *ids, uint32_t batch,
                     uint64_t n)
{
    if (ids) ids_stamp(ids, batch, n);
    return fd_write_all(fd, req, len);
}

int bb_produce_http(const bb_broker_t *b, const bb_opts_t *o)
{
    char *req = malloc((size_t)o->batch * (o->payload + 256) + 512);
    char *body = malloc((size_t)o->batch * (o->payload + 256) + 8);
    size_t bl = 0, *id_off = calloc(o->batch, sizeof *id_off);
    body[bl++] = '[';
    for (uint32_t i = 0; i < o->batch; i++) {
        bl += (size_t)sprintf(body + bl, "%s{", i ? "," : "");
        if (!o->no_ids) {
            bl += (size_t)sprintf(body + bl, "\"message_id\":\"");
            id_off[i] = bl;
            bl += (size_t)sprintf(body + bl, "%0*u\",", BB_ID_LEN, 0);
        }
        bl += (size_t)sprintf(body + bl,
                              "\"message_type\":\"system_notice\",\"user_id\":\"user%u\","
                              "\"priority\":1,\"source\":\"bench\",\"payload\":{\"title\":"
                              "\"bench\",\"level\":\"info\",\"content\":\"",
                              i % o->users);
        memset(body + bl, 'x', o->payload);
        bl += o->payload;
        bl += (size_t)sprintf(body + bl, "\"}}");
    }
    body[bl++] = ']';
    int hl = sprintf(req,
                     "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n",
                     bl);
    memcpy(req + hl, body, bl);
    size_t rl = (size_t)hl + bl;
    size_t cap = (size_t)o->batch * 96 + 4096;
    char *resp = malloc(cap);
    uint32_t conns = o->pipeline < 8 ? o->pipeline : 8;
    int fds[8];
    for (uint32_t i = 0; i < conns; i++)
        fds[i] = tcp_connect(b->http_port);
    uint64_t requests = (o->count + o->batch - 1) / o->batch, sent = 0, done = 0;
    int rc = 0;
    bb_body_t ids = {(uint8_t *)req + hl, id_off};
    /* One request in flight per connection; connections take turns. */
    for (uint32_t i = 0; i < conns && sent < requests; i++, sent++)
        if (fds[i] < 0 || http_send(fds[i], req, rl, o->no_ids ? NULL : &ids, o->batch, sent) < 0)
            rc = -1;
    for (uint32_t i = 0; rc == 0 && done < requests; i = (i + 1) % conns) {
        if (done + (sent - done) <= done) break;
        if (http_read(fds[i], resp, cap) != 200) {
            rc = -1;
            break;
        }
        done++;
        if (sent < requests) {
            if (http_send(fds[i], req, rl, o->no_ids ? NULL : &ids, o->batch, sent) < 0) rc = -1;
            sent++;
        }
    }
    for (uint32_t i = 0; i < conns; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(req);
    free(body);
    free(resp);
    free(id_off);
    return rc;
}

/* --mode http1: one system_notice per request, each with its own message_id. */
typedef struct {
    const bb_opts_t *o;
    uint64_t bad; /* answers other than 200 */
} bb_http1_t;

static size_t http1_body(void *ctx, uint64_t i, char *buf, size_t cap)
{
    const bb_opts_t *o = ((bb_http1_t *)ctx)->o;
    static char pad[1024];
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    int n = snprintf(buf, cap,
                     "{\"message_id\":\"bb1-%016llx\",\"message_type\":\"system_notice\","
                     "\"user_id\":\"user%u\",\"priority\":1,\"source\":\"bench\",\"payload\":"
                     "{\"title\":\"bench\",\"level\":\"info\",\"content\":\"%.*s\"}}",
                     (unsigned long long)i, (unsigned)(i % o->users), (int)o->payload, pad);
    return (size_t)n;
}

static void http1_answer(void *ctx, uint64_t i, int status, const char *body, size_t len)
{
    bb_http1_t *h = ctx;
    if (status == 200) return;
    if (!h->bad)
        fprintf(stderr, "herald-bench broker: request %llu answered %d %.*s\n",
                (unsigned long long)i, status, (int)len, body);
    h->bad++;
}

int bb_produce_http1(const bb_broker_t *b, const bb_opts_t *o)
{
    bb_http1_t h = {.o = o};
    bh1_opts_t ho = {.port = b->http_port,
                     .conns = o->conns,
                     .pipeline = o->pipeline,
                     .count = o->count,
                     .timeout_s = BB_TIMEOUT_S,
                     .body = http1_body,
                     .answer = http1_answer,
                     .ctx = &h};
    bh1_result_t res;
    if (bh1_run(&ho, &res) < 0) {
        fprintf(stderr, "herald-bench broker: http1: %s\n", res.error);
        return -1;
    }
    return h.bad ? -1 : 0;
}
