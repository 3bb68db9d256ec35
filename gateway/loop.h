/* loop.h - the gateway's event-loop core: makes and frees every module's state, reaps the
 * io_uring (dispatching each completion by its tag), runs the 1 s tick, arms the one
 * timeout for the nearest deadline, and wraps the session protocols' lws callbacks. It is
 * the one module that may call every other. */
#ifndef HERALD_GW_LOOP_H
#define HERALD_GW_LOOP_H

#include <stddef.h>

#include <libwebsockets.h>

#include "gw.h"

/* Make every module's state (g->cfg read). session ids start above first_session. */
void gw_loop_init(gw_t *g, uint64_t first_session);
/* With the lws context made (g->lws, g->vh): the io_uring, the first broker connect, the
 * first timeout. Returns 0 or -1 logged. */
int gw_loop_start(gw_t *g);
/* Before the lws context goes: close the broker link (nothing more is sent). */
void gw_loop_stop(gw_t *g);
/* After it went: free every module's state. */
void gw_loop_fini(gw_t *g);
/* Re-arm the one timeout for the nearest deadline and submit queued SQEs. */
void gw_loop_commit(gw_t *g);
/* lws callback of the adopted io_uring fd (protocol "gw-uring"). */
int gw_loop_uring_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len);
/* lws callback of the herald.json / herald.msgpack protocols: HTTP reasons go to http.c,
 * the rest to session.c, then the timeout is re-armed. */
int gw_loop_session_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len);

#endif
