/* msg.h - an output frame: a WebSocket message with LWS_PRE headroom, shared by reference
 * among the sessions it goes to. */
#ifndef HERALD_GW_MSG_H
#define HERALD_GW_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

/* One output frame with LWS_PRE headroom. Notification frames are rendered once and shared
 * by every session that receives them (refs); control frames have one owner. */
typedef struct gw_msg {
    uint32_t refs;
    uint32_t len;
    bool binary;
    bool notification; /* counts as "pushed" when written */
    bool live;         /* counts in the delivery latency when written (not a resume replay) */
    uint8_t prio;
    /* Conflation (conflate.c). A notification of a conflatable type (delivery.conflate, not
     * P0, not a broadcast) has conflatable set; its key is computed when first needed
     * (ckey 0 = not yet). A `conflated` frame (conflated set) is owned by one session and
     * grows in place up to cap bytes as it names more seqs. */
    bool conflatable;
    bool conflated;
    uint8_t type;        /* model_type_index of a notification */
    uint32_t cap;        /* conflated frames: bytes allocated after LWS_PRE */
    uint64_t seq;        /* a notification's seq */
    uint64_t ckey;       /* conflation key (user + type + instrument or account), 0 = unknown */
    uint64_t ts_ns;      /* the notification's timestamp (wall clock) */
    unsigned char buf[]; /* LWS_PRE + len */
} gw_msg_t;

/* Bytes a queued frame costs beyond its payload: the gw_msg_t header and LWS_PRE headroom,
 * the allocator's header, the queue slot and the WebSocket frame header. The slow-consumer
 * bound counts these, so a flood of tiny frames is bounded by the memory it really holds. */
#define GW_MSG_OVERHEAD (sizeof(struct gw_msg) + LWS_PRE + 16 + sizeof(void *) + 10)

/* A frame holding a copy of data (one reference; aborts when out of memory). */
gw_msg_t *gw_msg_new(const void *data, size_t len, bool binary);
/* Drop one reference (NULL is a no-op); the last one frees m. */
void gw_msg_unref(gw_msg_t *m);

static inline unsigned char *gw_msg_data(gw_msg_t *m)
{
    return m->buf + LWS_PRE;
}

/* Bytes frame m holds while queued for one session (payload + GW_MSG_OVERHEAD). */
static inline size_t gw_msg_cost(const gw_msg_t *m)
{
    return m->len + GW_MSG_OVERHEAD;
}

#endif
