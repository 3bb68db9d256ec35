/* wsclient.h - a small blocking-style WebSocket client for tests (libwebsockets).
 *
 * All clients of a thread share one lws context; every wait services it, so clients that
 * are not being read still make progress. Not thread-safe: use from one thread. */
#ifndef HERALD_TEST_WSCLIENT_H
#define HERALD_TEST_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct wsc wsc_t;

/* Connect to url ("ws://127.0.0.1:7500/ws?since=3", or wss:// for TLS). token (may be NULL) goes in
 * `Authorization: Bearer`; subprotocol NULL names none. Returns the handshake's HTTP status
 * (101 = established, *out set), another status (401 ...) when refused, or -1 when the
 * connection failed or timed out (*out NULL). */
int wsc_connect(wsc_t **out, const char *url, const char *token, const char *subprotocol,
                int timeout_ms);

/* Offer permessage-deflate on connections made from now on (the shared context is
 * recreated when no client is open). */
void wsc_offer_deflate(bool on);

/* Verify wss:// servers against the CA certificate file cafile (NULL: the system's store)
 * on connections made from now on (recreated like wsc_offer_deflate). */
void wsc_trust(const char *cafile);

/* Wait for the next message. Returns its length (>= 0) with *data (NUL-terminated, valid
 * until the next wsc_recv or wsc_close) and *binary; -1 on timeout; -2 when the connection
 * closed and no message is left (see wsc_close_code). */
long wsc_recv(wsc_t *c, const char **data, bool *binary, int timeout_ms);

/* Wait for the next message whose text contains `needle` (others are discarded). Returns
 * its length or -1/-2 as wsc_recv. */
long wsc_recv_match(wsc_t *c, const char *needle, const char **data, int timeout_ms);

int wsc_send_text(wsc_t *c, const char *text);
int wsc_send_binary(wsc_t *c, const void *data, size_t len);

/* Stop (false) or resume (true) reading from the socket: a client that does not read. */
void wsc_set_reading(wsc_t *c, bool reading);

/* Service the shared context for ms milliseconds (lets queued I/O move). */
void wsc_pump(int ms);

bool wsc_is_closed(const wsc_t *c);
/* Close code the server sent (0 if none yet). */
int wsc_close_code(const wsc_t *c);

/* Close (normal closure) and free. NULL is ignored. */
void wsc_close(wsc_t *c);

#endif
