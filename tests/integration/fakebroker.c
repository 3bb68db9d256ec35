/* fakebroker.c - scripted broker side of proto.h, ONLY for gateway fault injection the real
 * herald-broker cannot produce on demand: a corrupt ring record, and a seq gap in the live
 * ring (simulated ring drops) with the gap-fill protocol. Everything else is tested against
 * the real broker (test_gateway_broker.c, test_gateway_recovery.c). */
#include "fakebroker.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "codec.h"
#include "frame.h"
#include "proto.h"
#include "ring.h"

struct fb {
    int lfd, cfd;
    ring_t *ring;
    char ring_name[160];
    char sock_path[300];
    uint8_t rx[65536];
    size_t rx_len;
};

fb_t *fb_start(const char *dir, const char *prefix, unsigned gw_id, size_t ring_bytes)
{
    fb_t *fb = calloc(1, sizeof *fb);
    if (!fb) return NULL;
    fb->cfd = fb->lfd = -1;
    herald_error_t err;
    ring_name(fb->ring_name, sizeof fb->ring_name, prefix, gw_id);
    if (ring_open(&fb->ring, fb->ring_name, RING_PRODUCER, ring_bytes, gw_id, &err) < 0) {
        fprintf(stderr, "fakebroker: ring: %s\n", err.message);
        free(fb);
        return NULL;
    }
    snprintf(fb->sock_path, sizeof fb->sock_path, "%s/control.sock", dir);
    unlink(fb->sock_path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(fb->sock_path) >= sizeof sa.sun_path) {
        fb_stop(fb);
        return NULL;
    }
    memcpy(sa.sun_path, fb->sock_path, strlen(fb->sock_path) + 1);
    fb->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fb->lfd < 0 || bind(fb->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fb->lfd, 8) < 0) {
        fprintf(stderr, "fakebroker: listen %s: %s\n", fb->sock_path, strerror(errno));
        fb_stop(fb);
        return NULL;
    }
    return fb;
}

static int fb_wait_fd(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
}

static int fb_send(fb_t *fb, const msgpack_sbuffer *sb)
{
    uint8_t hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)sb->size);
    if (send(fb->cfd, hdr, sizeof hdr, MSG_NOSIGNAL) != sizeof hdr) return -1;
    return send(fb->cfd, sb->data, sb->size, MSG_NOSIGNAL) == (ssize_t)sb->size ? 0 : -1;
}

static uint64_t obj_u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void obj_str(const msgpack_object *o, char *out, size_t cap)
{
    out[0] = '\0';
    if (o->type != MSGPACK_OBJECT_STR) return;
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
}

static int fb_parse(const uint8_t *body, size_t len, fb_req_t *req)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    memset(req, 0, sizeof *req);
    if (msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        char k[16];
        obj_str(&u.data.via.map.ptr[i].key, k, sizeof k);
        const msgpack_object *v = &u.data.via.map.ptr[i].val;
        if (!strcmp(k, "op"))
            obj_str(v, req->op, sizeof req->op);
        else if (!strcmp(k, "user"))
            obj_str(v, req->user, sizeof req->user);
        else if (!strcmp(k, "session"))
            req->session = obj_u64(v);
        else if (!strcmp(k, "since"))
            req->since = obj_u64(v);
        else if (!strcmp(k, "from"))
            req->from = obj_u64(v);
        else if (!strcmp(k, "to"))
            req->to = obj_u64(v);
        else if (!strcmp(k, "after"))
            req->after = obj_u64(v);
        else if (!strcmp(k, "sessions"))
            req->sessions = obj_u64(v);
        else if (!strcmp(k, "gw"))
            req->gw = obj_u64(v);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}

int fb_next(fb_t *fb, fb_req_t *req, int timeout_ms)
{
    for (;;) {
        const uint8_t *body;
        size_t blen;
        long n = frame_next(fb->rx, fb->rx_len, sizeof fb->rx - FRAME_HDR, &body, &blen);
        if (n < 0) return -1;
        if (n > 0) {
            int rc = fb_parse(body, blen, req);
            memmove(fb->rx, fb->rx + n, fb->rx_len - (size_t)n);
            fb->rx_len -= (size_t)n;
            return rc;
        }
        if (fb->cfd < 0 || fb_wait_fd(fb->cfd, timeout_ms) < 0) return -1;
        ssize_t r = recv(fb->cfd, fb->rx + fb->rx_len, sizeof fb->rx - fb->rx_len, 0);
        if (r <= 0) return -1;
        fb->rx_len += (size_t)r;
    }
}

int fb_expect(fb_t *fb, const char *op, fb_req_t *req, int timeout_ms)
{
    for (int i = 0; i < 1000; i++) {
        if (fb_next(fb, req, timeout_ms) < 0) return -1;
        if (!strcmp(req->op, op)) return 0;
    }
    return -1;
}

int fb_accept(fb_t *fb, int timeout_ms)
{
    if (fb_wait_fd(fb->lfd, timeout_ms) < 0) return -1;
    fb->cfd = accept4(fb->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fb->cfd < 0) return -1;
    fb->rx_len = 0;
    fb_req_t req;
    if (fb_next(fb, &req, timeout_ms) < 0 || strcmp(req.op, "hello")) return -1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "hello_ok", 8);
    msgpack_pack_str_with_body(&pk, "broker_pid", 10);
    msgpack_pack_uint64(&pk, (uint64_t)getpid());
    msgpack_pack_str_with_body(&pk, "ring", 4);
    msgpack_pack_str_with_body(&pk, fb->ring_name, strlen(fb->ring_name));
    msgpack_pack_str_with_body(&pk, "capacity", 8);
    msgpack_pack_uint64(&pk, ring_header(fb->ring)->capacity);
    int rc = fb_send(fb, &sb);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

void fb_drop(fb_t *fb)
{
    if (fb->cfd >= 0) close(fb->cfd);
    fb->cfd = -1;
    fb->rx_len = 0;
}

int fb_error(fb_t *fb, const char *code, const char *message)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "error", 5);
    msgpack_pack_str_with_body(&pk, "code", 4);
    msgpack_pack_str_with_body(&pk, code, strlen(code));
    msgpack_pack_str_with_body(&pk, "message", 7);
    msgpack_pack_str_with_body(&pk, message, strlen(message));
    int rc = fb_send(fb, &sb);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void fb_publish(fb_t *fb)
{
    if (ring_publish(fb->ring)) ring_wake(fb->ring);
}

static void fb_write2(fb_t *fb, uint32_t type, const void *a, uint32_t alen, const void *b,
                      uint32_t blen)
{
    for (int i = 0; i < 5000; i++) {
        int rc = ring_write2(fb->ring, type, a, alen, b, blen);
        if (rc != -ENOSPC) break;
        usleep(1000); /* the test never lets the ring stay full for long */
    }
    fb_publish(fb);
}

void fb_ready(fb_t *fb, uint64_t session, uint64_t last_seq, uint64_t bcast_last_seq)
{
    rec_session_ready_t r = {
        .session = session, .last_seq = last_seq, .bcast_last_seq = bcast_last_seq};
    fb_write2(fb, REC_SESSION_READY, &r, sizeof r, NULL, 0);
}

/* A notification in the canonical encoding, payload {} (returns its length). */
static size_t fb_encode(const char *user, uint64_t seq, const char *type, unsigned prio,
                        uint8_t *out, size_t cap)
{
    notif_t n;
    memset(&n, 0, sizeof n);
    snprintf(n.message_id, sizeof n.message_id, "m-%s-%llu", user, (unsigned long long)seq);
    snprintf(n.user_id, sizeof n.user_id, "%s", user);
    snprintf(n.source, sizeof n.source, "test");
    n.type = model_type_find(type, strlen(type));
    n.priority = (uint8_t)prio;
    n.has_priority = true;
    n.timestamp = 1764000000000000000ull + seq;
    n.seq = seq;
    n.payload.type = MSGPACK_OBJECT_MAP;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    long len = codec_encode(&n, &sb, NULL);
    size_t out_len = 0;
    if (len > 0 && (size_t)len <= cap) {
        memcpy(out, sb.data, (size_t)len);
        out_len = (size_t)len;
    }
    msgpack_sbuffer_destroy(&sb);
    return out_len;
}

void fb_notify(fb_t *fb, const char *user, uint64_t seq, const char *type, unsigned prio)
{
    uint8_t buf[1024];
    size_t n = fb_encode(user, seq, type, prio, buf, sizeof buf);
    fb_write2(fb, REC_NOTIFY, buf, (uint32_t)n, NULL, 0);
}

void fb_replay(fb_t *fb, uint64_t session, const char *user, uint64_t seq, const char *type,
               unsigned prio)
{
    uint8_t buf[1024];
    size_t n = fb_encode(user, seq, type, prio, buf, sizeof buf);
    rec_replay_t h = {.session = session};
    fb_write2(fb, REC_REPLAY, &h, sizeof h, buf, (uint32_t)n);
}

void fb_range(fb_t *fb, bool gap, uint64_t session, const char *user, uint64_t from, uint64_t to)
{
    rec_range_t r = {.session = session, .from = from, .to = to};
    fb_write2(fb, gap ? REC_GAP : REC_REPLAY_END, &r, sizeof r, user, (uint32_t)strlen(user));
}

void fb_corrupt(fb_t *fb)
{
    ring_header_t *h = ring_header(fb->ring);
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
    uint8_t junk[16] = {0};
    if (ring_write(fb->ring, REC_NOTIFY, junk, sizeof junk) < 0) return;
    uint8_t *data = (uint8_t *)h + RING_HEADER_BYTES;
    uint64_t off = pos & (h->capacity - 1);
    uint32_t bad_len = (uint32_t)h->capacity;                    /* longer than max_record */
    if (off + RING_REC_HDR + sizeof junk > h->capacity) off = 0; /* it went after a pad */
    memcpy(data + off, &bad_len, sizeof bad_len);
    fb_publish(fb);
}

void fb_stop(fb_t *fb)
{
    if (!fb) return;
    if (fb->cfd >= 0) close(fb->cfd);
    if (fb->lfd >= 0) close(fb->lfd);
    unlink(fb->sock_path);
    if (fb->ring) ring_close(fb->ring);
    ring_unlink(fb->ring_name);
    free(fb);
}
