/* stats.h - the counters as JSON (/api/stats) and Prometheus text (/metrics). */
#ifndef HERALD_BK_STATS_H
#define HERALD_BK_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "json.h"

void bk_stats_json(broker_t *b, jbuf_t *out);
void bk_metrics_text(broker_t *b, jbuf_t *out);

#endif
