/* frame.h - length-prefixed frames: 4-byte big-endian length, then that many bytes. */
#ifndef HERALD_FRAME_H
#define HERALD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4u

/* Find the next complete frame in buf[0..len). Returns bytes consumed (header + body) and
 * sets *body and *body_len, 0 if more bytes are needed, or -1 if the announced length exceeds
 * max_body (the stream cannot be resynchronised: close it). */
static inline long frame_next(const uint8_t *buf, size_t len, size_t max_body, const uint8_t **body,
                              size_t *body_len)
{
    if (len < FRAME_HDR) return 0;
    size_t n = ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | buf[3];
    if (n > max_body) return -1;
    if (len - FRAME_HDR < n) return 0;
    *body = buf + FRAME_HDR;
    *body_len = n;
    return (long)(FRAME_HDR + n);
}

static inline void frame_put_len(uint8_t *p, uint32_t n)
{
    p[0] = (uint8_t)(n >> 24);
    p[1] = (uint8_t)(n >> 16);
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
}

#endif
