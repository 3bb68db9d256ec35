/* native.h - native and control connections: unix/TCP sockets, framing, response FIFOs. */
#ifndef HERALD_BK_NATIVE_H
#define HERALD_BK_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "guard.h"
#include "loop.h"

typedef enum { CONN_LISTEN_NATIVE, CONN_LISTEN_CTRL, CONN_NATIVE, CONN_CTRL } conn_kind_t;

struct bk_conn {
    loop_io_t io;
    struct broker *b;
    conn_kind_t kind;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
    bk_req_t *rq_head, *rq_tail;
    struct bk_conn *prev, *next; /* every native/control connection and listener */
    struct bk_conn *dirty_next;  /* on the broker's flush list */
    bool dirty, closing;
    bool reading;     /* READ interest is on */
    bool paused;      /* not reading: its peer left more than BK_TX_PAUSE of responses unread */
    bk_gateway_t *gw; /* control connections: the gateway after hello */
    uint8_t auth;     /* native: BK_AUTH_*, from bk_guard_accept */
};

int bk_native_listen(broker_t *b, herald_error_t *err);
/* Close every native/control connection and listener (shutdown). */
void bk_native_close(broker_t *b);
void bk_native_mark_dirty(broker_t *b, bk_conn_t *c);
void bk_native_flush(broker_t *b);
/* Queue a control-plane reply frame (already framed) on c. */
void bk_native_send(broker_t *b, bk_conn_t *c, const void *buf, size_t len);
/* The response frame body of a completed request (one result, or an array), replacing sb. */
void bk_native_pack_response(const bk_req_t *req, msgpack_sbuffer *sb);

#endif
