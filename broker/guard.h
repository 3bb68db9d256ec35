/* guard.h - who may connect: peer credentials on unix sockets, the api key on native TCP. */
#ifndef HERALD_BK_GUARD_H
#define HERALD_BK_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "broker.h"

/* Where a native connection is with the api key (guard.c). */
enum {
    BK_AUTH_FIRST,    /* its first frame may be an auth frame (checked) or a publish */
    BK_AUTH_REQUIRED, /* native TCP with broker.api_key: the first frame must be auth */
    BK_AUTH_DONE,
};

/* A connection just accepted (fd): on a unix socket the peer must be our uid or root
 * (SO_PEERCRED; broker.sock with runtime.group is left to the socket's mode). Returns -1
 * (refused: counted, logged rate-limited; the caller closes fd) or the BK_AUTH_* state the
 * connection starts in. */
int bk_guard_accept(broker_t *b, int fd, bool ctrl);
/* A native connection's frame while its *state (BK_AUTH_*) is not BK_AUTH_DONE. Returns 1
 * for an auth frame with the right key (answer holds {"ok":true}), 0 for a frame to handle
 * as a publish, -1 when the connection is refused (answer holds the unauthorized reply, to
 * send before closing; counted, logged). */
int bk_guard_auth_frame(broker_t *b, uint8_t *state, const uint8_t *body, size_t len,
                        msgpack_sbuffer *answer);
/* Whether key[0..len) is broker.api_key (true when none is set), in constant time. */
bool bk_guard_key_ok(broker_t *b, const char *key, size_t len);

#endif
