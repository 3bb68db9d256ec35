/* bench_wsframe.h - the RFC 6455 pieces herald-bench's lean receiver needs: parsing server
 * frames in place, writing masked client frames, the handshake's accept key. */
#ifndef HERALD_BENCH_WSFRAME_H
#define HERALD_BENCH_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BWSF_TEXT   0x1
#define BWSF_BINARY 0x2
#define BWSF_CONT   0x0
#define BWSF_CLOSE  0x8
#define BWSF_PING   0x9
#define BWSF_PONG   0xA

#define BWSF_KEY_LEN    24 /* base64 of 16 random bytes */
#define BWSF_ACCEPT_LEN 28 /* base64 of a SHA-1 */

typedef enum {
    BWSF_NEED_MORE = 0,    /* buffer holds less than one frame (see need) */
    BWSF_OK = 1,           /* one whole frame parsed */
    BWSF_ERR_MASKED = -1,  /* a server frame carried a mask (RFC 6455 5.1) */
    BWSF_ERR_RSV = -2,     /* reserved bits set: no extension was negotiated */
    BWSF_ERR_OPCODE = -3,  /* reserved opcode */
    BWSF_ERR_CONTROL = -4, /* control frame fragmented or over 125 bytes */
    BWSF_ERR_TOO_BIG = -5, /* payload over the caller's limit, or a 64-bit length >= 2^63 */
    BWSF_ERR_LENGTH = -6,  /* length not in its shortest form */
} bwsf_rc_t;

typedef struct {
    bool fin;
    unsigned opcode;
    const uint8_t *payload; /* points into the parsed buffer */
    uint64_t len;           /* payload bytes */
    size_t frame_len;       /* header + payload: bytes to consume */
    size_t need;            /* BWSF_NEED_MORE: whole-frame size once the header is known, else 0 */
} bwsf_frame_t;

/* Parse the server frame at buf[0..len): never reads past len. BWSF_OK with *f filled,
 * BWSF_NEED_MORE if the frame is not complete yet (f->need says how big it will be when
 * known), or a negative bwsf_rc_t for a frame the client must refuse. max_payload bounds
 * the payload the caller accepts. */
bwsf_rc_t bwsf_parse(const uint8_t *buf, size_t len, uint64_t max_payload, bwsf_frame_t *f);

/* Write a client frame (FIN set, masked with mask) of opcode and payload[0..len) to out.
 * Returns the frame length, or 0 if it does not fit in cap or len > 125 (control frames
 * only need the short form). */
size_t bwsf_write_masked(uint8_t *out, size_t cap, unsigned opcode, const uint8_t *payload,
                         size_t len, uint32_t mask);

/* The Sec-WebSocket-Accept value for key: base64(SHA-1(key + RFC 6455 GUID)), NUL-ended. */
void bwsf_accept(const char *key, char out[BWSF_ACCEPT_LEN + 1]);

/* A fresh random Sec-WebSocket-Key, NUL-ended. Returns 0, or -1 if no randomness. */
int bwsf_new_key(char out[BWSF_KEY_LEN + 1]);

/* A short name for a refusal, for messages. */
const char *bwsf_strerror(bwsf_rc_t rc);

#endif
