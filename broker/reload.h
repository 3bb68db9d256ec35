/* reload.h - SIGHUP on the broker: apply a re-read configuration without a restart. */
#ifndef HERALD_BK_RELOAD_H
#define HERALD_BK_RELOAD_H

#include "broker.h"

/* Apply cfg (already loaded and checked by the caller: file + -o overrides) to the running
 * broker: broker.api_key, log.level, queue_capacity, history_size, history_age_s and the
 * [auth] keys take effect now; keys read only at start (runtime dir, shm prefix, listeners,
 * dedup_window, ring_bytes, gateway layout, TLS files) keep their running values, each
 * difference logged as needing a restart. Counts the reload. Never fails. */
void bk_reload(broker_t *b, const herald_config_t *cfg);

/* Read the configuration again as the command line gave it (path, then the "-o k=v"
 * overrides in argv) and apply it with bk_reload. A config that does not load is logged,
 * counted (reload_errors) and the running one kept. Returns 0 or -1. */
int bk_reload_from(broker_t *b, const char *path, int argc, char **argv);

#endif
