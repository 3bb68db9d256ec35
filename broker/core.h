/* core.h - the broker's event-loop core (core.c, main.c): the only part that may call every
 * module; it gives the lower modules their calls up (bk_hooks_t in broker.h). */
#ifndef HERALD_BK_CORE_H
#define HERALD_BK_CORE_H

#include "broker.h"

/* Set b->hooks to the modules that answer them. Before any module is initialised. */
void bk_core_hooks(broker_t *b);

#endif
