/* control.h - gateways' control connections: hello, requests (replay, routes, acks), closes. */
#ifndef HERALD_BK_CONTROL_H
#define HERALD_BK_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

void bk_control_frame(broker_t *b, bk_conn_t *c, const uint8_t *body, size_t len);
void bk_control_closed(broker_t *b, bk_conn_t *c);

#endif
