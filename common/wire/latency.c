/* latency.c - per-priority latency histograms: Prometheus text and JSON (latency.h). */
#include "latency.h"

#include <stdio.h>
#include <string.h>

/* Bucket upper bounds in seconds: fine below 1 ms (the P0 target is 200 us), and every
 * default SLO (1, 6, 101, 1001 ms) a bound of its own. */
static const double BOUNDS_S[] = {0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005,
                                  0.006,   0.01,   0.02,   0.05,   0.1,   0.101, 0.2,
                                  0.5,     1.0,    1.001,  2.0,    5.0,   10.0};
#define N_BOUNDS (sizeof BOUNDS_S / sizeof BOUNDS_S[0])

void latency_init(latency_t *l)
{
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++)
        hist_init(&l->p[p]);
}

/* Values <= bound_ns, read off the histogram: whole fine buckets whose highest value is within
 * the bound (a bucket straddling it counts as above: < 1 % of the bound's value). */
static uint64_t count_le(const hist_t *h, uint64_t bound_ns)
{
    if (!h->count || bound_ns < h->min) return 0;
    if (bound_ns >= h->max) return h->count;
    uint64_t n = 0;
    unsigned last = hist_index(bound_ns);
    for (unsigned i = 0; i <= last; i++)
        if (hist_bucket_high(i) <= bound_ns) n += h->buckets[i];
    return n;
}

void latency_prometheus(const latency_t *l, jbuf_t *out, const char *name, const char *help,
                        const char *extra)
{
    char line[1024], lab[160];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    jbuf_puts(out, line);
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        const hist_t *h = &l->p[p];
        snprintf(lab, sizeof lab, "%s%spriority=\"P%u\"", extra ? extra : "", extra ? "," : "", p);
        for (unsigned b = 0; b < N_BOUNDS; b++) {
            snprintf(line, sizeof line, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lab, BOUNDS_S[b],
                     (unsigned long long)count_le(h, (uint64_t)(BOUNDS_S[b] * 1e9 + 0.5)));
            jbuf_puts(out, line);
        }
        snprintf(line, sizeof line,
                 "%s_bucket{%s,le=\"+Inf\"} %llu\n%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, lab,
                 (unsigned long long)h->count, name, lab, h->sum / 1e9, name, lab,
                 (unsigned long long)h->count);
        jbuf_puts(out, line);
    }
}

void latency_json(const latency_t *l, jbuf_t *out)
{
    char buf[200];
    jbuf_putc(out, '{');
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        const hist_t *h = &l->p[p];
        snprintf(buf, sizeof buf,
                 "%s\"P%u\":{\"count\":%llu,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
                 "\"max_ms\":%.3f}",
                 p ? "," : "", p, (unsigned long long)h->count, hist_percentile(h, 50) / 1e6,
                 hist_percentile(h, 90) / 1e6, hist_percentile(h, 99) / 1e6, h->max / 1e6);
        jbuf_puts(out, buf);
    }
    jbuf_putc(out, '}');
}

void latency_slo_prometheus(jbuf_t *out, const uint32_t slo_ms[HERALD_PRIORITIES])
{
    char line[160];
    jbuf_puts(out, "# HELP herald_slo_seconds Latency objective per priority (slo.p0_ms ...).\n"
                   "# TYPE herald_slo_seconds gauge\n");
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        snprintf(line, sizeof line, "herald_slo_seconds{priority=\"P%u\"} %g\n", p,
                 slo_ms[p] / 1e3);
        jbuf_puts(out, line);
    }
}
