/* herald.h - libherald: the producer client over the broker's native socket (protocol.md 3).
 *
 *   herald_client_t *c = herald_connect("/run/herald/broker.sock", &err);  // or "tcp:host:port"
 *   herald_publish(c, &notif_map_bytes, len, &result, &err);
 *
 * Requests are msgpack maps (or arrays of maps) exactly as protocol.md 3; this library frames
 * them, pipelines batches, matches responses in order and reconnects on demand. */
#ifndef HERALD_CLIENT_H
#define HERALD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct herald_client herald_client_t;

typedef struct {
    bool ok;
    bool duplicate;
    uint64_t seq;
    char error[32];    /* code when !ok */
    char message[200]; /* text when !ok */
} herald_result_t;

/* address: a unix socket path, or "tcp:HOST:PORT". Returns NULL and fills err on failure. */
herald_client_t *herald_connect(const char *address, herald_error_t *err);

/* Options of herald_connect_opts: zero-initialise, then set what you need. */
typedef struct {
    /* broker.api_key: sent as the auth frame {"auth":"<key>"} first on every connection
     * (reconnections too) and checked by the broker (native TCP requires it when the
     * broker has a key; the unix socket needs none). NULL or "" = no auth frame. */
    const char *api_key;
} herald_connect_opts_t;

/* herald_connect with options (opts may be NULL). A refused key fails the connect with
 * HERR_UNAUTHORIZED and the broker's message. */
herald_client_t *herald_connect_opts(const char *address, const herald_connect_opts_t *opts,
                                     herald_error_t *err);
void herald_close(herald_client_t *c);

/* Publish one msgpack-encoded notification map; waits for its response. */
int herald_publish(herald_client_t *c, const uint8_t *map, size_t len, herald_result_t *res,
                   herald_error_t *err);

/* Publish n maps as one batch frame (a msgpack array); res[] gets one result per item. */
int herald_publish_batch(herald_client_t *c, const uint8_t *const *maps, const size_t *lens,
                         size_t n, herald_result_t *res, herald_error_t *err);

/* Pipelining: send a prepared frame body (msgpack map or array) without waiting, and later
 * collect responses in order. herald_recv_results fills up to max results for the oldest
 * outstanding request (a batch fills one per item) and returns how many, or negative. */
int herald_send(herald_client_t *c, const uint8_t *body, size_t len, herald_error_t *err);
long herald_recv_results(herald_client_t *c, herald_result_t *res, size_t max, herald_error_t *err);

/* The results in one response frame's body (len bytes of msgpack: an array of result maps,
 * or one map): fills up to max of res and returns how many, or -1 if the body is not
 * well-formed msgpack (or has bytes after its value). What herald_recv_results uses. */
long herald_results_parse(const uint8_t *body, size_t len, herald_result_t *res, size_t max);

/* Drop the connection and connect again to the same address. */
int herald_reconnect(herald_client_t *c, herald_error_t *err);

#endif
