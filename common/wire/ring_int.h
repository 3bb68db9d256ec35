/* ring_int.h - what the ring's own files share: the process-local handle and the record
 * header check. Not for users of the ring (they see ring.h). */
#ifndef HERALD_RING_INT_H
#define HERALD_RING_INT_H

#include <stdatomic.h>
#include <time.h>

#include "ring.h"

/* Bounds on capacity so that max_record fits its uint32 field. */
#define RING_MAX_CAPACITY (1ull << 34)

#define RING_MAX_CAPACITY (1ull << 34)

struct ring {
    ring_header_t *hdr;
    uint8_t *data;
    size_t map_bytes;
    uint64_t capacity, mask;
    uint32_t max_record;
    ring_mode_t mode;
    /* producer-local: tail including unpublished records, cached head, records written */
    uint64_t wpos, head_cache, written;
    uint64_t pf; /* producer: lines before this position are prefetched for writing */
    /* consumer-local: our head, cached tail, records read */
    uint64_t rpos, tail_cache, read;
    uint8_t *peek_buf; /* max_record bytes, allocated by the first ring_peek */
};

static inline uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static inline uint64_t ring_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Decode and check the record header at position pos (< tail). Each header word is loaded
 * once, as a relaxed atomic, so the checks and the use see the same value even when the
 * memory is not ours to trust (a corrupt or hostile producer, or an inspector racing the
 * producer as in ring_peek). Ordering comes from the caller's acquire load of tail (or its
 * seqlock-style re-check), not from these loads. Returns the record's total size, or 0 when
 * the header is invalid. */
static inline uint64_t record_check(const ring_t *r, uint64_t pos, uint64_t tail, uint32_t *len,
                                    uint32_t *type)
{
    uint64_t off = pos & r->mask;
    _Atomic uint32_t *w = (_Atomic uint32_t *)(void *)(r->data + off); /* 8-aligned */
    *len = atomic_load_explicit(&w[0], memory_order_relaxed);
    *type = atomic_load_explicit(&w[1], memory_order_relaxed);
    uint64_t need = align8(RING_REC_HDR + (uint64_t)*len);
    if (*len > r->max_record || need > r->capacity - off || need > tail - pos) return 0;
    if (*type == RING_REC_PAD) return need == r->capacity - off ? need : 0;
    return *type >= RING_REC_USER ? need : 0;
}

#endif
