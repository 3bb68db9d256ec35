/* bench_hist.h - an HDR-style log-linear latency histogram (fixed memory, < 0.8% error). */
#ifndef HERALD_BENCH_HIST_H
#define HERALD_BENCH_HIST_H

#include <stdint.h>

/* Values below 2^BHIST_SUB_BITS are counted exactly; above, each power of two is split
 * into 2^BHIST_SUB_BITS equal buckets, so a bucket is at most 1/128 of its value wide. */
#define BHIST_SUB_BITS 7
#define BHIST_SUB      (1u << BHIST_SUB_BITS)
#define BHIST_BUCKETS  (BHIST_SUB + (64 - BHIST_SUB_BITS) * BHIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t buckets[BHIST_BUCKETS];
} bhist_t;

void bhist_init(bhist_t *h);

/* Count one value (any uint64). */
void bhist_record(bhist_t *h, uint64_t v);

/* Add every count of src into dst. */
void bhist_merge(bhist_t *dst, const bhist_t *src);

/* The value at percentile p (0 < p <= 100): the smallest bucket bound v such that at least
 * ceil(p/100 * count) values are <= v, reported as the bucket's highest value clamped to
 * [min, max] (so p100 is exactly the max). 0 when the histogram is empty. */
uint64_t bhist_percentile(const bhist_t *h, double p);

double bhist_mean(const bhist_t *h);

/* Bucket index of v and the highest value that bucket holds (exposed for tests). */
unsigned bhist_index(uint64_t v);
uint64_t bhist_bucket_high(unsigned index);

#endif
