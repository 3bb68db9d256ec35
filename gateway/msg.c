/* msg.c - output frames: allocation and reference counting. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

gw_msg_t *gw_msg_new(const void *data, size_t len, bool binary)
{
    gw_msg_t *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m) abort();
    m->refs = 1;
    m->len = (uint32_t)len;
    m->binary = binary;
    m->notification = m->live = m->conflatable = m->conflated = false;
    m->prio = m->type = 0;
    m->cap = 0;
    m->ts_ns = m->seq = m->ckey = 0;
    if (len) memcpy(gw_msg_data(m), data, len);
    return m;
}

void gw_msg_unref(gw_msg_t *m)
{
    if (m && --m->refs == 0) free(m);
}
