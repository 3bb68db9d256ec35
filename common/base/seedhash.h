/* seedhash.h - a keyed 64-bit hash for in-memory tables whose keys come from outside (user
 * ids, message ids). Its key is drawn from getrandom once per process, so nobody can
 * precompute ids that all land in one bucket (hash flooding). Its values differ from one
 * process to the next: never store them or use them where two processes must agree
 * (common/wire/shard.c's rendezvous hash is that contract, and stays unkeyed). */
#ifndef HERALD_SEEDHASH_H
#define HERALD_SEEDHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern uint64_t seedhash_key[4];
extern bool seedhash_ready;

/* Draw the key (getrandom; the clock and pid if that fails). Idempotent; seedhash calls it
 * on first use, so only a program that forks before hashing needs to call it first. */
void seedhash_init(void);

/* 64x64 -> 128-bit multiply, folded: the mixing step. */
static inline uint64_t seedhash_mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The r < 8 bytes at p as a little-endian word, without a memcpy call of variable size
 * (which does not inline): when 8 bytes can be read ending at p + r (whole >= 8), those,
 * shifted; else byte by byte. */
static inline uint64_t seedhash_tail(const uint8_t *p, size_t r, size_t whole)
{
    uint64_t w = 0;
    if (whole >= 8) {
        memcpy(&w, p + r - 8, 8);
        return r ? w >> (8 * (8 - r)) : 0;
    }
    for (size_t i = 0; i < r; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

/* Hash len bytes at p under this process's key. Every word meets the key inside a
 * multiply, so collisions found for one key say nothing about another. */
static inline uint64_t seedhash(const void *p, size_t len)
{
    if (__builtin_expect(!seedhash_ready, 0)) seedhash_init();
    const uint8_t *s = p;
    const uint64_t *k = seedhash_key;
    uint64_t h = k[0] ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = seedhash_mum(w ^ k[1], h ^ k[2]);
    }
    if (i < len) h = seedhash_mum(seedhash_tail(s + i, len - i, len) ^ k[3], h ^ k[2]);
    return seedhash_mum(h ^ k[1], k[3] ^ 0x9e3779b97f4a7c15ull);
}

#endif
