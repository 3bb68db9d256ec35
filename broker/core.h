/* core.h - the broker's event-loop core (core.c, main.c): the only part that may call every
 * module; it gives the lower modules their calls up (bk_hooks_t in broker.h). */
#ifndef HERALD_BK_CORE_H
#define HERALD_BK_CORE_H

#include "broker.h"

/* Set b->hooks to the modules that answer them. Before any module is initialised. */
void bk_core_hooks(broker_t *b);

/* The broker's state with b->cfg set: the loop, the hooks, every module, the journal read
 * back (and in cluster mode the cluster layer opened). No sockets: main.c listens after,
 * tests run the modules in-process. 0, or -1 with err set. */
int bk_core_open(broker_t *b, herald_error_t *err);
/* The journal flushed and closed, every module and the loop freed (connections closed
 * before). */
void bk_core_close(broker_t *b);

#endif
