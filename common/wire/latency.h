/* latency.h - per-priority latency histograms as herald exports them (protocol.md 14): Prometheus
 * histograms on /metrics, p50/p99 in the JSON stats, SLOs beside them.
 *
 * Values are nanoseconds, recorded into a log-linear histogram per priority (hist.h: one
 * increment per value, < 1 % error). Prometheus buckets are read off it at fixed bounds fine
 * enough to read 100 us and to tell every default SLO (1, 6, 101, 1001 ms) apart. */
#ifndef HERALD_LATENCY_H
#define HERALD_LATENCY_H

#include <stdint.h>

#include "herald_limits.h"
#include "hist.h"
#include "json.h"

typedef struct {
    hist_t p[HERALD_PRIORITIES];
} latency_t;

void latency_init(latency_t *l);

/* Count one value of priority prio (prio >= HERALD_PRIORITIES is ignored). */
static inline void latency_record(latency_t *l, unsigned prio, uint64_t ns)
{
    if (prio < HERALD_PRIORITIES) hist_record(&l->p[prio], ns);
}

/* `name` as a Prometheus histogram (seconds) with a priority="P0".."P3" label, and `extra`
 * labels before it when not NULL (e.g. gateway="1"); HELP and TYPE lines first. */
void latency_prometheus(const latency_t *l, jbuf_t *out, const char *name, const char *help,
                        const char *extra);

/* {"P0":{"count":N,"p50_ms":x,"p90_ms":x,"p99_ms":x,"max_ms":x},...} */
void latency_json(const latency_t *l, jbuf_t *out);

/* herald_slo_seconds{priority="P0".."P3"} gauges from slo_ms[4] (alert rules compare with
 * them, so a changed SLO needs no change of the rules). */
void latency_slo_prometheus(jbuf_t *out, const uint32_t slo_ms[HERALD_PRIORITIES]);

#endif
