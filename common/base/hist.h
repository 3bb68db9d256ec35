/* hist.h - an HDR-style log-linear latency histogram (fixed memory, < 0.8% error): the
 * bench's latency percentiles, and the broker's and gateways' latency metrics. */
#ifndef HERALD_HIST_H
#define HERALD_HIST_H

#include <stdint.h>

/* Values below 2^HIST_SUB_BITS are counted exactly; above, each power of two is split
 * into 2^HIST_SUB_BITS equal buckets, so a bucket is at most 1/128 of its value wide. */
#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t buckets[HIST_BUCKETS];
} hist_t;

void hist_init(hist_t *h);

/* Count one value (any uint64). */
void hist_record(hist_t *h, uint64_t v);

/* Add every count of src into dst. */
void hist_merge(hist_t *dst, const hist_t *src);

/* The value at percentile p (0 < p <= 100): the smallest bucket bound v such that at least
 * ceil(p/100 * count) values are <= v, reported as the bucket's highest value clamped to
 * [min, max] (so p100 is exactly the max). 0 when the histogram is empty. */
uint64_t hist_percentile(const hist_t *h, double p);

double hist_mean(const hist_t *h);

/* Bucket index of v and the highest value that bucket holds (exposed for tests). */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_high(unsigned index);

#endif
