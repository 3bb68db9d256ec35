/* session.h - the herald.json / herald.msgpack WebSocket protocols: session life cycle,
 * client ops, flood control, the per-user session bound, rate limits and the heartbeat. */
#ifndef HERALD_GW_SESSION_H
#define HERALD_GW_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "gw.h"

/* lws's receive buffer per session: client messages are small ops, and a larger one arrives
 * in several callbacks (joined up to 64 KiB); every idle session holds it. */
#define GW_LWS_RX_BUF 512

/* The protocols' lws callback (per-session data: gw_session_t), for every reason but the
 * HTTP ones (the core hands those to http.c). */
int gw_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len);
/* Heartbeat tick (1 s): pings, idle closes and token expiry closes. */
void gw_session_tick(gw_t *g, uint64_t now_ns);

#endif
