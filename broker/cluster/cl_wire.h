/* cl_wire.h - the bytes the cluster layer stores in JetStream: round messages (records of a
 * partition), ownership markers, checkpoints. All integers little-endian; see docs/cluster.md. */
#ifndef HERALD_CL_WIRE_H
#define HERALD_CL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#define CL_WIRE_VERSION   1
#define CL_KIND_ROUND     1           /* subject <name>.p.<p>.r: records */
#define CL_KIND_MARKER    2           /* subject <name>.p.<p>.o: a new owner's first write */
#define CL_MSG_HEAD       8           /* u8 version, u8 kind, u16 0, u32 count */
#define CL_REC_HEAD       16          /* u32 len, u64 seq, u8 user_len, u8 id_len, u8 prio, u8 0 */
#define CL_CKPT_MAGIC     0x504b4348u /* "HCKP" */
#define CL_CKPT_HDR_MAGIC 0x484b4348u /* "HCKH" */

/* Encoded size of one record. */
static inline size_t cl_rec_size(const cl_rec_t *r)
{
    return CL_REC_HEAD + r->user_len + r->id_len + r->len;
}

/* Write the message head for count records into out[0..CL_MSG_HEAD). */
void cl_wire_msg_head(uint8_t *out, uint8_t kind, uint32_t count);
/* Write one record at out (cl_rec_size(r) bytes). Returns the bytes written. */
size_t cl_wire_rec_put(uint8_t *out, const cl_rec_t *r);

/* Read the record at *p (records laid back to back up to end) into r, pointing into the
 * buffer, and advance *p. Returns false at a malformed record. */
bool cl_wire_next(const uint8_t **p, const uint8_t *end, cl_rec_t *r);

/* Parse a round message body: fills recs (pointing into body) and returns how many, or -1
 * when the body is not a well-formed version-1 round (count above cap included). With recs
 * NULL only counts and checks. */
long cl_wire_parse_round(const uint8_t *body, size_t len, cl_rec_t *recs, size_t cap);

/* Marker body: head + u32 node + u64 lease epoch. */
#define CL_MARKER_LEN (CL_MSG_HEAD + 12)
void cl_wire_marker(uint8_t out[CL_MARKER_LEN], unsigned node, uint64_t epoch);

/* Little-endian helpers. */
static inline void cl_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void cl_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t cl_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static inline uint64_t cl_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#endif
