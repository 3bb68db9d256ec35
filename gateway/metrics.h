/* metrics.h - the gateway's counters, gauges and delivery latency as Prometheus text and as
 * JSON, from one table (names: docs/gateway.md "Metrics"). */
#ifndef HERALD_GW_METRICS_H
#define HERALD_GW_METRICS_H

#include "gw.h"

/* Append the Prometheus text of /metrics to b. */
void gw_metrics_prometheus(gw_t *g, jbuf_t *b);
/* Append the JSON object of /stats to b. */
void gw_metrics_json(gw_t *g, jbuf_t *b);

#endif
