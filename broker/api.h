/* api.h - the broker's HTTP API: routes a parsed request to publish, stats, disconnect, web. */
#ifndef HERALD_BK_API_H
#define HERALD_BK_API_H

#include "err.h"
#include "http.h"

/* Serve one request: answer m now or keep it for later (publish). */
void bk_api_handle(struct broker *b, bk_http_msg_t *m, const bk_http_request_t *rq);
/* HTTP status of an error code. */
int bk_api_status_of(herr_t code);

#endif
