/* ring_testrec.h - self-checking ring test records: seq, length, checksum, filler from seq. */
#ifndef HERALD_RING_TESTREC_H
#define HERALD_RING_TESTREC_H

#include <stdint.h>
#include <string.h>

/* Payload: u64 seq, u32 len, u32 checksum of the filler, then filler bytes. */
#define TESTREC_HDR 16u

static inline uint64_t testrec_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Length of record seq, in [lo, hi] (lo >= TESTREC_HDR). */
static inline uint32_t testrec_len(uint64_t seq, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(testrec_mix(seq + 1) % (uint64_t)(hi - lo + 1));
}

static inline uint8_t testrec_byte(uint64_t seq, uint32_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + (seq >> 8));
}

static inline uint32_t testrec_sum(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Fill buf with record seq of len bytes. */
static inline void testrec_fill(uint8_t *buf, uint64_t seq, uint32_t len)
{
    for (uint32_t i = TESTREC_HDR; i < len; i++)
        buf[i] = testrec_byte(seq, i);
    uint32_t sum = testrec_sum(buf + TESTREC_HDR, len - TESTREC_HDR);
    memcpy(buf, &seq, 8);
    memcpy(buf + 8, &len, 4);
    memcpy(buf + 12, &sum, 4);
}

/* Check a record: returns 0 and its seq, or -1 when length, checksum or filler is wrong. */
static inline int testrec_check(const uint8_t *buf, uint32_t len, uint64_t *seq)
{
    uint32_t l, sum;
    if (len < TESTREC_HDR) return -1;
    memcpy(seq, buf, 8);
    memcpy(&l, buf + 8, 4);
    memcpy(&sum, buf + 12, 4);
    if (l != len || testrec_sum(buf + TESTREC_HDR, len - TESTREC_HDR) != sum) return -1;
    return 0;
}

/* As testrec_check, and compare every filler byte with what seq implies. */
static inline int testrec_check_bytes(const uint8_t *buf, uint32_t len, uint64_t *seq)
{
    if (testrec_check(buf, len, seq) < 0) return -1;
    for (uint32_t i = TESTREC_HDR; i < len; i++)
        if (buf[i] != testrec_byte(*seq, i)) return -1;
    return 0;
}

#endif
