/* cl_wire.c - encoding and checked decoding of round messages and ownership markers. */
#include "cl_wire.h"

#include <string.h>

void cl_wire_msg_head(uint8_t *out, uint8_t kind, uint32_t count)
{
    out[0] = CL_WIRE_VERSION;
    out[1] = kind;
    out[2] = out[3] = 0;
    cl_put32(out + 4, count);
}

size_t cl_wire_rec_put(uint8_t *out, const cl_rec_t *r)
{
    cl_put32(out, r->len);
    cl_put64(out + 4, r->seq);
    out[12] = r->user_len;
    out[13] = r->id_len;
    out[14] = r->prio;
    out[15] = 0;
    uint8_t *p = out + CL_REC_HEAD;
    memcpy(p, r->user, r->user_len);
    p += r->user_len;
    memcpy(p, r->message_id, r->id_len);
    p += r->id_len;
    memcpy(p, r->bytes, r->len);
    return CL_REC_HEAD + (size_t)r->user_len + r->id_len + r->len;
}

bool cl_wire_next(const uint8_t **p, const uint8_t *end, cl_rec_t *r)
{
    const uint8_t *h = *p;
    if (end - h < CL_REC_HEAD) return false;
    *r = (cl_rec_t){
        .len = cl_get32(h),
        .seq = cl_get64(h + 4),
        .user_len = h[12],
        .id_len = h[13],
        .prio = h[14],
    };
    size_t need = (size_t)r->user_len + r->id_len + r->len;
    if (r->user_len == 0 || r->id_len == 0 || r->seq == 0 || (size_t)(end - h - CL_REC_HEAD) < need)
        return false;
    r->user = (const char *)h + CL_REC_HEAD;
    r->message_id = r->user + r->user_len;
    r->bytes = (const uint8_t *)r->message_id + r->id_len;
    *p = h + CL_REC_HEAD + need;
    return true;
}

long cl_wire_parse_round(const uint8_t *body, size_t len, cl_rec_t *recs, size_t cap)
{
    if (len < CL_MSG_HEAD || body[0] != CL_WIRE_VERSION || body[1] != CL_KIND_ROUND) return -1;
    uint32_t count = cl_get32(body + 4);
    if (recs && count > cap) return -1;
    const uint8_t *p = body + CL_MSG_HEAD, *end = body + len;
    for (uint32_t i = 0; i < count; i++) {
        cl_rec_t r;
        if (!cl_wire_next(&p, end, &r)) return -1;
        if (recs) recs[i] = r;
    }
    return p == end ? (long)count : -1;
}

void cl_wire_marker(uint8_t out[CL_MARKER_LEN], unsigned node, uint64_t epoch)
{
    cl_wire_msg_head(out, CL_KIND_MARKER, 0);
    cl_put32(out + CL_MSG_HEAD, node);
    cl_put64(out + CL_MSG_HEAD + 4, epoch);
}
