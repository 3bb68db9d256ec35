/* shard.h - rendezvous (highest-random-weight) hashing of user_id over gateway ids. */
#ifndef HERALD_SHARD_H
#define HERALD_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The gateway id in [0, count) that owns user (count >= 1). Stable: adding a gateway moves
 * only the users whose new top weight is the new gateway (~1/N of them). */
unsigned shard_gateway(const char *user, size_t len, unsigned count);

/* The WebSocket URL of gateway gw under cfg: wss:// when gateway.tls_cert is set, else
 * ws://, then gateway.listen's host and port + gw, path /ws. Returns snprintf's length. */
int shard_url(const herald_config_t *cfg, unsigned gw, char *out, size_t len);

/* The weight of (user, gateway): 64-bit mix of both. Exposed for tests. */
uint64_t shard_weight(const char *user, size_t len, unsigned gateway_id);

#endif
