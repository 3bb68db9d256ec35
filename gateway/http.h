/* http.h - the gateway's HTTP side on its WebSocket port: the /ws upgrade gate, /metrics,
 * /stats, /healthz, /web-config.json and the demo page's static files. */
#ifndef HERALD_GW_HTTP_H
#define HERALD_GW_HTTP_H

#include <stddef.h>

#include <libwebsockets.h>

/* lws callback of protocol "http" (and of the session protocols' HTTP reasons: the core
 * hands them here). */
int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len);

#endif
