/* fuzz_ring.c - libFuzzer target: attach/peek/read/write a ring built from the input, in bounds.
 *
 * Input (little-endian), see gen_ring_corpus.py:
 *   0   u8   capacity = 4096 << (x % 4)
 *   1   u8   header damage: 0 none, 1 magic, 2 version, 3 header_bytes, 4 capacity,
 *            5 max_record, 6 ready, 7 file size (x % 8)
 *   2   u64  value used by the damage
 *   10  u64  head
 *   18  u32  tail - head
 *   22  u16  length of a record the producer then writes
 *   24  ...  data region bytes from offset 0 (the rest is zero)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring.h"

#define FUZZ_HDR 24

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *lo, *hi; /* the mapped data region, or NULL for peek copies */
    size_t max_record;
} fuzz_bounds_t;

static int fuzz_visit(uint32_t type, const uint8_t *p, uint32_t len, void *ctx)
{
    const fuzz_bounds_t *b = ctx;
    if (type < RING_REC_USER || len > b->max_record) abort();
    if (b->lo && (p < b->lo || p + len > b->hi)) abort();
    volatile uint8_t sink = 0;
    for (uint32_t i = 0; i < len; i++) /* touch every byte handed to us */
        sink ^= p[i];
    (void)sink;
    return 0;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Build the shm object from the input; returns its size, or 0 when the input is short. */
static size_t fuzz_build(int fd, const uint8_t *in, size_t size, uint32_t *write_len)
{
    if (size < FUZZ_HDR) return 0;
    uint64_t cap = (uint64_t)RING_MIN_CAPACITY << (in[0] % 4);
    uint64_t v = get64(in + 2), head = get64(in + 10);
    uint32_t delta;
    uint16_t wlen;
    memcpy(&delta, in + 18, 4);
    memcpy(&wlen, in + 22, 2);
    *write_len = wlen;
    static ring_header_t h;
    memset(&h, 0, sizeof h);
    h.magic = RING_MAGIC;
    h.version = RING_VERSION;
    h.header_bytes = RING_HEADER_BYTES;
    h.capacity = cap;
    h.max_record = (uint32_t)(cap / 8);
    atomic_store(&h.ready, 1);
    atomic_store(&h.head, head);
    atomic_store(&h.tail, head + delta);
    size_t file = RING_HEADER_BYTES + cap;
    switch (in[1] % 8) {
    case 1:
        h.magic = v;
        break;
    case 2:
        h.version = (uint32_t)v;
        break;
    case 3:
        h.header_bytes = (uint32_t)v;
        break;
    case 4:
        h.capacity = v;
        break;
    case 5:
        h.max_record = (uint32_t)v;
        break;
    case 6:
        atomic_store(&h.ready, (uint32_t)v);
        break;
    case 7:
        file = v % (RING_HEADER_BYTES + cap);
        break;
    }
    size_t body = size - FUZZ_HDR < cap ? size - FUZZ_HDR : cap;
    if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)file) < 0) abort();
    if (pwrite(fd, &h, file < sizeof h ? file : sizeof h, 0) < 0) abort();
    if (file > RING_HEADER_BYTES) {
        size_t n = body < file - RING_HEADER_BYTES ? body : file - RING_HEADER_BYTES;
        if (pwrite(fd, in + FUZZ_HDR, n, RING_HEADER_BYTES) < 0) abort();
    }
    return file;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char name[64];
    if (!name[0]) snprintf(name, sizeof name, "/herald-fuzz-%d.ring", (int)getpid());
    int wfd = shm_open(name, O_RDWR | O_CREAT, 0600);
    if (wfd < 0) abort();
    uint32_t wlen = 0;
    size_t file = fuzz_build(wfd, data, size, &wlen);
    close(wfd);
    if (!file) {
        shm_unlink(name);
        return 0;
    }
    herald_error_t err;
    ring_t *insp = NULL, *cons = NULL, *prod = NULL;
    if (ring_open(&insp, name, RING_INSPECT, 0, 0, &err) == 0) {
        ring_stats_t s;
        ring_stats(insp, &s);
        fuzz_bounds_t b = {NULL, NULL, ring_max_record(insp)};
        ring_peek(insp, fuzz_visit, &b, 1000);
    }
    if (ring_open(&cons, name, RING_CONSUMER, 0, 0, &err) == 0) {
        const uint8_t *lo = (const uint8_t *)ring_header(cons) + RING_HEADER_BYTES;
        fuzz_bounds_t b = {lo, lo + ring_header(cons)->capacity, ring_max_record(cons)};
        for (int i = 0; i < 64 && ring_read_batch(cons, fuzz_visit, &b, 16) != 0; i++)
            ;
        /* a producer attached to what is left writes, the consumer reads it back */
        if (ring_open(&prod, name, RING_PRODUCER, 0, 0, &err) == 0) {
            static uint8_t rec[65536];
            uint32_t len = wlen % (uint32_t)(ring_max_record(prod) + 16);
            while (ring_write(prod, RING_REC_USER, rec, len) == 0)
                ;
            ring_publish(prod);
            for (int i = 0; i < 64 && ring_read_batch(cons, fuzz_visit, &b, 16) != 0; i++)
                ;
            ring_close(prod);
        }
    }
    ring_close(cons);
    ring_close(insp);
    shm_unlink(name);
    return 0;
}
