/* reload.h - the gateway's configuration, read at start and again on SIGHUP. */
#ifndef HERALD_GW_RELOAD_H
#define HERALD_GW_RELOAD_H

#include <stdint.h>

#include "gw.h"

/* Load the config as given on the command line (g->config_path, then g->argv's -o
 * overrides, then the pair checks) into cfg. Returns 0 or -1 with err. */
int gw_reload_read(const gw_t *g, herald_config_t *cfg, herald_error_t *err);
/* Take cfg's delivery keys (type masks, the conflation threshold) into g. Returns 0, or -1
 * with err naming the key (model_delivery_masks). */
int gw_reload_delivery(gw_t *g, const herald_config_t *cfg, herald_error_t *err);
/* The connection cap for cfg: gateway.max_connections, or the fd limit less the reserve. */
uint32_t gw_reload_max_connections(const herald_config_t *cfg);
/* Read the config again: apply secrets, log level and limits, keep the sessions;
 * restart-only keys that changed are logged and keep their old values. A config that does
 * not load or check is logged (reload_errors) and the old one stays. Returns 0 or -1. */
int gw_reload(gw_t *g);

#endif
