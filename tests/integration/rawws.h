/* rawws.h - a raw WebSocket client for tests that decide exactly what goes on the wire and
 * when: a plain blocking socket (optionally with a tiny receive buffer, so a client that
 * stops reading backs the gateway up at once), the handshake written by hand, server frames
 * parsed with herald-bench's frame code. Helpers assert with Check. */
#ifndef HERALD_TEST_RAWWS_H
#define HERALD_TEST_RAWWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int fd;
    uint8_t *buf; /* received bytes not yet parsed */
    size_t have, cap;
    unsigned opcode; /* of the last message returned */
    int close_code;  /* from a close frame, 0 until one came */
} rawws_t;

/* Connect to 127.0.0.1:port, GET /ws?token=<token><query> with subprotocol proto (NULL:
 * herald.json). rcvbuf > 0 sets SO_RCVBUF before connecting. Asserts the 101. */
void rawws_connect(rawws_t *c, uint16_t port, const char *token, const char *query,
                   const char *proto, int rcvbuf);

/* The next message's payload (text or binary; pings are answered, pongs skipped) into *data
 * (valid until the next call), its length returned; -1 on timeout, -2 when the connection
 * closed or a close frame came (c->close_code). */
long rawws_recv(rawws_t *c, const uint8_t **data, int timeout_ms);

/* Send a masked text frame (any length). */
void rawws_send_text(rawws_t *c, const char *text);

/* Close the socket and free the buffer. */
void rawws_close(rawws_t *c);

#endif
