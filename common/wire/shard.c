/* shard.c - rendezvous hashing of users over gateway ids.
 *
 * The algorithm is fixed (heraldctl, the broker's /api/route and the nginx example must
 * agree), so here it is in full, all arithmetic modulo 2^64:
 *
 *   mix(z)      = splitmix64 finaliser: z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
 *                 z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31
 *   hash(user)  = h = 0x243f6a8885a308d3 ^ (len * 0x9e3779b97f4a7c15);
 *                 for each 8-byte chunk (little-endian; the last one zero-padded):
 *                     h = mix(h ^ chunk)
 *   weight(u,g) = mix(hash(u) ^ mix(g + 0x9e3779b97f4a7c15))
 *
 * A user belongs to the gateway with the highest weight, the lower id on a tie. Adding
 * gateway N changes no other gateway's weight, so the only users that move are the ones
 * whose new top weight is gateway N's: about 1/(N+1) of them, all to gateway N. */
#include "shard.h"

#include <stdio.h>
#include <string.h>

#define SHARD_GOLDEN 0x9e3779b97f4a7c15ull
#define SHARD_SEED   0x243f6a8885a308d3ull

static inline uint64_t shard_mix(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z;
}

static uint64_t shard_hash_user(const char *user, size_t len)
{
    uint64_t h = SHARD_SEED ^ ((uint64_t)len * SHARD_GOLDEN);
    const unsigned char *p = (const unsigned char *)user;
    while (len > 0) {
        size_t n = len < 8 ? len : 8;
        uint64_t chunk = 0;
        for (size_t i = 0; i < n; i++)
            chunk |= (uint64_t)p[i] << (8 * i);
        h = shard_mix(h ^ chunk);
        p += n;
        len -= n;
    }
    return h;
}

static inline uint64_t shard_weight_of(uint64_t user_hash, unsigned gateway_id)
{
    return shard_mix(user_hash ^ shard_mix((uint64_t)gateway_id + SHARD_GOLDEN));
}

uint64_t shard_weight(const char *user, size_t len, unsigned gateway_id)
{
    return shard_weight_of(shard_hash_user(user, len), gateway_id);
}

unsigned shard_gateway(const char *user, size_t len, unsigned count)
{
    uint64_t h = shard_hash_user(user, len);
    unsigned best = 0;
    uint64_t best_w = shard_weight_of(h, 0);
    for (unsigned g = 1; g < count; g++) {
        uint64_t w = shard_weight_of(h, g);
        if (w > best_w) { /* strict: a tie keeps the lower id */
            best_w = w;
            best = g;
        }
    }
    return best;
}

int shard_url(const herald_config_t *cfg, unsigned gw, char *out, size_t len)
{
    const host_port_t *hp = &cfg->gateway_listen;
    bool v6 = strchr(hp->host, ':') != NULL;
    return snprintf(out, len, "%s://%s%s%s:%u/ws", cfg->gateway_tls_cert[0] ? "wss" : "ws",
                    v6 ? "[" : "", hp->host, v6 ? "]" : "", (unsigned)hp->port + gw);
}
