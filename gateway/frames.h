/* frames.h - control frames to clients, rendered as JSON text (binary false) or as a msgpack
 * map with the same fields (binary true). Each returns a new frame with one reference; jb is
 * scratch for the JSON text. */
#ifndef HERALD_GW_FRAMES_H
#define HERALD_GW_FRAMES_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "msg.h"

/* {"type":"welcome","session_id":S,"user_id":U,"gateway":N} */
gw_msg_t *gw_frames_welcome(jbuf_t *jb, bool binary, const char *session_id, const char *user_id,
                            unsigned gateway);
/* {"type":T,"from":F,"to":T}: `gap` and `resumed` */
gw_msg_t *gw_frames_range(jbuf_t *jb, bool binary, const char *type, uint64_t from, uint64_t to);
/* {"type":"subscribed","channels":[names of the bits of channels]} */
gw_msg_t *gw_frames_subscribed(jbuf_t *jb, bool binary, uint32_t channels);
/* {"type":"pong"} */
gw_msg_t *gw_frames_pong(jbuf_t *jb, bool binary);
/* {"type":"error","code":C,"message":M} */
gw_msg_t *gw_frames_error(jbuf_t *jb, bool binary, const char *code, const char *message);
/* {"type":"refreshed","exp":E} */
gw_msg_t *gw_frames_refreshed(jbuf_t *jb, bool binary, uint64_t exp);
/* {"type":"acks","on":B} */
gw_msg_t *gw_frames_acks(jbuf_t *jb, bool binary, bool on);

#endif
