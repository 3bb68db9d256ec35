/* rawws.c - a raw WebSocket client for tests (rawws.h). */
#include "rawws.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_wsframe.h"

#define RAWWS_MAX_MSG (4u << 20)

void rawws_connect(rawws_t *c, uint16_t port, const char *token, const char *query,
                   const char *proto, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c->fd, 0);
    if (rcvbuf > 0) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char key[BWSF_KEY_LEN + 1], req[1400], resp[4096];
    ck_assert_int_eq(bwsf_new_key(key), 0);
    int n = snprintf(req, sizeof req,
                     "GET /ws?token=%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                     token, query ? query : "", key, proto ? proto : "herald.json");
    ck_assert_int_lt(n, (int)sizeof req);
    ck_assert_int_eq(send(c->fd, req, (size_t)n, MSG_NOSIGNAL), n);
    /* the 101 up to its blank line, byte by byte, so no frame is swallowed */
    size_t got = 0;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    while (got < sizeof resp - 1 && !(got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))) {
        ck_assert_msg(poll(&p, 1, 20000) == 1, "handshake answer");
        ck_assert_int_eq(recv(c->fd, resp + got, 1, 0), 1);
        got++;
    }
    resp[got] = '\0';
    ck_assert_msg(!strncmp(resp, "HTTP/1.1 101", 12), "handshake: %s", resp);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    ck_assert_ptr_nonnull(c->buf);
}

static void rawws_send_frame(rawws_t *c, unsigned opcode, const uint8_t *p, size_t len)
{
    uint8_t hdr[14];
    size_t h = 0;
    uint32_t mask = (uint32_t)random();
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t mk[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                     (uint8_t)mask};
    memcpy(hdr + h, mk, 4);
    h += 4;
    uint8_t *out = malloc(h + len);
    ck_assert_ptr_nonnull(out);
    memcpy(out, hdr, h);
    for (size_t i = 0; i < len; i++)
        out[h + i] = p[i] ^ mk[i & 3];
    ck_assert_int_eq(send(c->fd, out, h + len, MSG_NOSIGNAL), (ssize_t)(h + len));
    free(out);
}

void rawws_send_text(rawws_t *c, const char *text)
{
    rawws_send_frame(c, BWSF_TEXT, (const uint8_t *)text, strlen(text));
}

long rawws_recv(rawws_t *c, const uint8_t **data, int timeout_ms)
{
    static uint8_t *msg;
    static size_t msg_cap;
    for (;;) {
        bwsf_frame_t f;
        bwsf_rc_t rc = bwsf_parse(c->buf, c->have, RAWWS_MAX_MSG, &f);
        if (rc == BWSF_OK) {
            if (f.opcode == BWSF_CLOSE) {
                c->close_code = f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 1005;
                return -2;
            }
            if (f.opcode == BWSF_PING) rawws_send_frame(c, BWSF_PONG, f.payload, f.len);
            if (f.len > msg_cap) {
                msg_cap = f.len + 1;
                msg = realloc(msg, msg_cap);
                ck_assert_ptr_nonnull(msg);
            }
            if (!msg) msg = malloc(msg_cap = 1);
            memcpy(msg, f.payload, f.len);
            size_t len = f.len;
            unsigned op = f.opcode;
            memmove(c->buf, c->buf + f.frame_len, c->have - f.frame_len);
            c->have -= f.frame_len;
            if (op != BWSF_TEXT && op != BWSF_BINARY) continue;
            ck_assert_msg(f.fin, "the gateway sends whole messages");
            c->opcode = op;
            *data = msg;
            return (long)len;
        }
        ck_assert_int_eq(rc, BWSF_NEED_MORE);
        if (f.need > c->cap || c->have == c->cap) {
            c->cap = f.need > c->cap * 2 ? f.need : c->cap * 2;
            c->buf = realloc(c->buf, c->cap);
            ck_assert_ptr_nonnull(c->buf);
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, timeout_ms);
        if (pr == 0) return -1;
        ssize_t r = recv(c->fd, c->buf + c->have, c->cap - c->have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -2;
        c->have += (size_t)r;
    }
}

void rawws_close(rawws_t *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}
