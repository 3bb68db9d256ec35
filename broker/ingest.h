/* ingest.h - publishes into the pipeline (ingest.c): a request body in, a request out whose
 * slots are answered as its notifications are sequenced or refused. */
#ifndef HERALD_BK_INGEST_H
#define HERALD_BK_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "pipeline.h"

/* Take a whole request body (msgpack map or array of maps) into a new request. */
bk_req_t *bk_ingest_body(broker_t *b, const uint8_t *body, size_t len);
/* The same for a body another node forwarded (cluster mode): never forwarded again. */
bk_req_t *bk_ingest_forwarded(broker_t *b, const uint8_t *body, size_t len);

#endif
