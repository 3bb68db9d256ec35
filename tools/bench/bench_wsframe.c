/* bench_wsframe.c - RFC 6455 server frame parsing and client frame writing for herald-bench. */
#include "bench_wsframe.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bwsf_rc_t bwsf_parse(const uint8_t *buf, size_t len, uint64_t max_payload, bwsf_frame_t *f)
{
    size_t hdr = 2;
    uint64_t plen;
    f->need = 0;
    if (len < 2) return BWSF_NEED_MORE;
    f->fin = (buf[0] & 0x80) != 0;
    f->opcode = buf[0] & 0x0f;
    if (buf[0] & 0x70) return BWSF_ERR_RSV;
    if (buf[1] & 0x80) return BWSF_ERR_MASKED;
    if ((f->opcode > BWSF_BINARY && f->opcode < BWSF_CLOSE) || f->opcode > BWSF_PONG)
        return BWSF_ERR_OPCODE;
    plen = buf[1] & 0x7f;
    if (f->opcode >= BWSF_CLOSE && (!f->fin || plen > 125)) return BWSF_ERR_CONTROL;
    if (plen == 126) {
        hdr = 4;
        if (len < hdr) return BWSF_NEED_MORE;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126) return BWSF_ERR_LENGTH;
    } else if (plen == 127) {
        hdr = 10;
        if (len < hdr) return BWSF_NEED_MORE;
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | buf[i];
        if (plen >> 63) return BWSF_ERR_TOO_BIG;
        if (plen <= 0xffff) return BWSF_ERR_LENGTH;
    }
    if (plen > max_payload || plen > SIZE_MAX - hdr) return BWSF_ERR_TOO_BIG;
    f->len = plen;
    f->frame_len = hdr + (size_t)plen;
    if (len < f->frame_len) {
        f->need = f->frame_len;
        return BWSF_NEED_MORE;
    }
    f->payload = buf + hdr;
    return BWSF_OK;
}

size_t bwsf_write_masked(uint8_t *out, size_t cap, unsigned opcode, const uint8_t *payload,
                         size_t len, uint32_t mask)
{
    uint8_t m[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8),
                    (uint8_t)mask};
    if (len > 125 || cap < len + 6) return 0;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    out[1] = (uint8_t)(0x80 | len);
    memcpy(out + 2, m, 4);
    for (size_t i = 0; i < len; i++)
        out[6 + i] = payload[i] ^ m[i & 3];
    return len + 6;
}

void bwsf_accept(const char *key, char out[BWSF_ACCEPT_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE], in[256];
    unsigned dlen = 0;
    size_t klen = strnlen(key, sizeof in - sizeof WS_GUID);
    memcpy(in, key, klen);
    memcpy(in + klen, WS_GUID, sizeof WS_GUID - 1);
    EVP_Digest(in, klen + sizeof WS_GUID - 1, digest, &dlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
}

int bwsf_new_key(char out[BWSF_KEY_LEN + 1])
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return -1;
    EVP_EncodeBlock((unsigned char *)out, nonce, sizeof nonce);
    return 0;
}

const char *bwsf_strerror(bwsf_rc_t rc)
{
    switch (rc) {
    case BWSF_NEED_MORE:
        return "incomplete frame";
    case BWSF_OK:
        return "ok";
    case BWSF_ERR_MASKED:
        return "masked server frame";
    case BWSF_ERR_RSV:
        return "reserved bits set";
    case BWSF_ERR_OPCODE:
        return "reserved opcode";
    case BWSF_ERR_CONTROL:
        return "fragmented or oversized control frame";
    case BWSF_ERR_TOO_BIG:
        return "frame too big";
    case BWSF_ERR_LENGTH:
        return "length not in shortest form";
    }
    return "?";
}
