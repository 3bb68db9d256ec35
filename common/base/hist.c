/* hist.c - log-linear histogram: exact below 128, 128 sub-buckets per power of two above. */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(hist_t *h)
{
    memset(h, 0, sizeof *h);
}

unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB) return (unsigned)v;
    unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
    unsigned shift = top - HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) - HIST_SUB; /* the 7 bits below the top bit */
    return HIST_SUB + shift * HIST_SUB + sub;
}

uint64_t hist_bucket_high(unsigned index)
{
    if (index < HIST_SUB) return index;
    unsigned shift = (index - HIST_SUB) / HIST_SUB;
    uint64_t sub = HIST_SUB + (index - HIST_SUB) % HIST_SUB;
    uint64_t low = sub << shift;
    return low + ((1ull << shift) - 1);
}

void hist_record(hist_t *h, uint64_t v)
{
    if (h->count == 0 || v < h->min) h->min = v;
    if (v > h->max) h->max = v;
    h->count++;
    h->sum += (double)v;
    h->buckets[hist_index(v)]++;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
    if (src->count == 0) return;
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

uint64_t hist_percentile(const hist_t *h, double p)
{
    if (h->count == 0) return 0;
    if (p >= 100.0) return h->max;
    if (p < 0.0) p = 0.0;
    double rank = p * (double)h->count / 100.0;
    double want_d = ceil(rank - rank * 1e-12); /* 99.9% of 1000 is rank 999, not 1000 */
    uint64_t want = want_d < 1.0 ? 1 : (uint64_t)want_d;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= want) {
            uint64_t v = hist_bucket_high(i);
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const hist_t *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
