/* test_bench_wsframe.c - herald-bench's RFC 6455 frame parser and writer: every length form,
 * frames split at every byte, control frames, refusals without reading past the buffer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check_run.h"
#include "bench_wsframe.h"

/* A server frame (unmasked) of opcode with plen payload bytes 'a'+i%26 and the length in
 * the form given by form (0: 7-bit, 2: 16-bit, 8: 64-bit). Returns its size. */
static size_t make_frame(uint8_t *out, bool fin, unsigned opcode, size_t plen, int form)
{
    size_t h = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (form == 0) {
        out[1] = (uint8_t)plen;
    } else if (form == 2) {
        out[1] = 126;
        out[2] = (uint8_t)(plen >> 8);
        out[3] = (uint8_t)plen;
        h = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)plen >> (56 - 8 * i));
        h = 10;
    }
    for (size_t i = 0; i < plen; i++)
        out[h + i] = (uint8_t)('a' + i % 26);
    return h + plen;
}

/* Parse a copy of buf[0..len) in a heap block of exactly len bytes (ASan sees overreads). */
static bwsf_rc_t parse_exact(const uint8_t *buf, size_t len, uint64_t max, bwsf_frame_t *f,
                             uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    memcpy(*copy, buf, len);
    return bwsf_parse(*copy, len, max, f);
}

static void check_whole(size_t plen, int form, size_t hdr)
{
    uint8_t *buf = malloc(plen + 16), *copy;
    bwsf_frame_t f;
    size_t n = make_frame(buf, true, BWSF_TEXT, plen, form);
    ck_assert_uint_eq(n, hdr + plen);
    ck_assert_int_eq(parse_exact(buf, n, 1u << 20, &f, &copy), BWSF_OK);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.opcode, BWSF_TEXT);
    ck_assert_uint_eq(f.len, plen);
    ck_assert_uint_eq(f.frame_len, n);
    ck_assert_ptr_eq(f.payload, copy + hdr);
    ck_assert_int_eq(memcmp(f.payload, buf + hdr, plen), 0);
    free(copy);
    free(buf);
}

START_TEST(wsframe_parses_7_bit_lengths)
{
    check_whole(0, 0, 2);
    check_whole(1, 0, 2);
    check_whole(125, 0, 2);
}
END_TEST

START_TEST(wsframe_parses_16_bit_lengths)
{
    check_whole(126, 2, 4);
    check_whole(600, 2, 4);
    check_whole(65535, 2, 4);
}
END_TEST

START_TEST(wsframe_parses_64_bit_lengths)
{
    check_whole(65536, 8, 10);
    check_whole(200000, 8, 10);
}
END_TEST

/* Every prefix of a frame is incomplete; need is the frame size once the header is in. */
static void check_split(size_t plen, int form, size_t hdr)
{
    uint8_t *buf = malloc(plen + 16), *copy;
    bwsf_frame_t f;
    size_t n = make_frame(buf, true, BWSF_TEXT, plen, form);
    for (size_t cut = 0; cut < n; cut++) {
        ck_assert_int_eq(parse_exact(buf, cut, 1u << 20, &f, &copy), BWSF_NEED_MORE);
        ck_assert_uint_eq(f.need, cut >= hdr ? n : 0);
        free(copy);
    }
    ck_assert_int_eq(parse_exact(buf, n, 1u << 20, &f, &copy), BWSF_OK);
    free(copy);
    free(buf);
}

START_TEST(wsframe_waits_for_a_frame_split_at_every_byte)
{
    check_split(5, 0, 2);
    check_split(300, 2, 4);
    check_split(70000, 8, 10);
}
END_TEST

/* A stream of frames fed in two reads cut at every position yields the same messages, as
 * the receiver does it: parse, keep the tail, append the next read. */
START_TEST(wsframe_stream_cut_anywhere_yields_every_frame_once)
{
    uint8_t stream[2048], work[4096];
    size_t n = 0, lens[] = {3, 125, 126, 400, 0, 90};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        n += make_frame(stream + n, true, BWSF_TEXT, lens[i], lens[i] < 126 ? 0 : 2);
    n += make_frame(stream + n, true, BWSF_PING, 4, 0);
    for (size_t cut = 0; cut <= n; cut++) {
        size_t have = 0, got = 0, bytes = 0;
        const size_t parts[2][2] = {{0, cut}, {cut, n}};
        for (int part = 0; part < 2; part++) {
            memcpy(work + have, stream + parts[part][0], parts[part][1] - parts[part][0]);
            have += parts[part][1] - parts[part][0];
            size_t off = 0;
            bwsf_frame_t f;
            while (bwsf_parse(work + off, have - off, 1u << 20, &f) == BWSF_OK) {
                ck_assert_uint_eq(f.len, got < 6 ? lens[got] : 4);
                bytes += f.len;
                off += f.frame_len;
                got++;
            }
            memmove(work, work + off, have - off);
            have -= off;
        }
        ck_assert_uint_eq(got, 7);
        ck_assert_uint_eq(have, 0);
        ck_assert_uint_eq(bytes, 3 + 125 + 126 + 400 + 0 + 90 + 4);
    }
}
END_TEST

START_TEST(wsframe_parses_ping_close_and_continuation_frames)
{
    uint8_t buf[200], *copy;
    bwsf_frame_t f;
    size_t n = make_frame(buf, true, BWSF_PING, 125, 0);
    ck_assert_int_eq(parse_exact(buf, n, 1000, &f, &copy), BWSF_OK);
    ck_assert_uint_eq(f.opcode, BWSF_PING);
    ck_assert_uint_eq(f.len, 125);
    free(copy);
    n = make_frame(buf, true, BWSF_CLOSE, 2, 0);
    ck_assert_int_eq(parse_exact(buf, n, 1000, &f, &copy), BWSF_OK);
    ck_assert_uint_eq(f.opcode, BWSF_CLOSE);
    free(copy);
    n = make_frame(buf, false, BWSF_TEXT, 10, 0);
    ck_assert_int_eq(parse_exact(buf, n, 1000, &f, &copy), BWSF_OK);
    ck_assert(!f.fin);
    free(copy);
    n = make_frame(buf, true, BWSF_CONT, 10, 0);
    ck_assert_int_eq(parse_exact(buf, n, 1000, &f, &copy), BWSF_OK);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.opcode, BWSF_CONT);
    free(copy);
}
END_TEST

static bwsf_rc_t parse_hdr(const uint8_t *hdr, size_t len, uint64_t max)
{
    uint8_t *copy;
    bwsf_frame_t f;
    bwsf_rc_t rc = parse_exact(hdr, len, max, &f, &copy);
    free(copy);
    return rc;
}

START_TEST(wsframe_refuses_what_a_server_must_not_send)
{
    const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    const uint8_t rsv[] = {0xc1, 0x01, 'x'};
    const uint8_t opcode3[] = {0x83, 0x00};
    const uint8_t opcode11[] = {0x8b, 0x00};
    const uint8_t long_ping[] = {0x89, 126, 0, 200};
    const uint8_t split_ping[] = {0x09, 0x00};
    const uint8_t short16[] = {0x81, 126, 0, 5};
    const uint8_t short64[] = {0x81, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t huge64[] = {0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t over_max[] = {0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0};
    ck_assert_int_eq(parse_hdr(masked, sizeof masked, 1000), BWSF_ERR_MASKED);
    ck_assert_int_eq(parse_hdr(rsv, sizeof rsv, 1000), BWSF_ERR_RSV);
    ck_assert_int_eq(parse_hdr(opcode3, sizeof opcode3, 1000), BWSF_ERR_OPCODE);
    ck_assert_int_eq(parse_hdr(opcode11, sizeof opcode11, 1000), BWSF_ERR_OPCODE);
    ck_assert_int_eq(parse_hdr(long_ping, sizeof long_ping, 1000), BWSF_ERR_CONTROL);
    ck_assert_int_eq(parse_hdr(split_ping, sizeof split_ping, 1000), BWSF_ERR_CONTROL);
    ck_assert_int_eq(parse_hdr(short16, sizeof short16, 1000), BWSF_ERR_LENGTH);
    ck_assert_int_eq(parse_hdr(short64, sizeof short64, 1u << 20), BWSF_ERR_LENGTH);
    ck_assert_int_eq(parse_hdr(huge64, sizeof huge64, UINT64_MAX), BWSF_ERR_TOO_BIG);
    ck_assert_int_eq(parse_hdr(over_max, sizeof over_max, 1u << 20), BWSF_ERR_TOO_BIG);
    ck_assert_str_eq(bwsf_strerror(BWSF_ERR_MASKED), "masked server frame");
}
END_TEST

/* Random bytes never make the parser read past the buffer or claim more than it has. */
START_TEST(wsframe_garbage_is_refused_or_bounded)
{
    uint8_t buf[64];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % (sizeof buf + 1));
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand_r(&seed);
        uint8_t *copy;
        bwsf_frame_t f;
        bwsf_rc_t rc = parse_exact(buf, len, 1u << 20, &f, &copy);
        if (rc == BWSF_OK) {
            ck_assert_uint_le(f.frame_len, len);
            ck_assert_ptr_eq(f.payload + f.len, copy + f.frame_len);
        }
        free(copy);
    }
}
END_TEST

START_TEST(wsframe_writes_masked_client_frames)
{
    const uint8_t payload[] = "ping-data";
    uint8_t out[200];
    size_t n = bwsf_write_masked(out, sizeof out, BWSF_PONG, payload, 9, 0x11223344u);
    ck_assert_uint_eq(n, 15);
    ck_assert_uint_eq(out[0], 0x8a);
    ck_assert_uint_eq(out[1], 0x80 | 9);
    ck_assert_int_eq(memcmp(out + 2, "\x11\x22\x33\x44", 4), 0);
    for (size_t i = 0; i < 9; i++)
        ck_assert_uint_eq(out[6 + i] ^ out[2 + (i & 3)], payload[i]);
    ck_assert_uint_eq(bwsf_write_masked(out, sizeof out, BWSF_PONG, out, 126, 1), 0);
    ck_assert_uint_eq(bwsf_write_masked(out, 10, BWSF_PONG, payload, 9, 1), 0);
    /* a server parses it only as masked: the bench never sends unmasked */
    ck_assert_int_eq(bwsf_parse(out, n, 1000, &(bwsf_frame_t){0}), BWSF_ERR_MASKED);
}
END_TEST

START_TEST(wsframe_accept_key_matches_rfc_6455_example)
{
    char accept[BWSF_ACCEPT_LEN + 1];
    bwsf_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(wsframe_new_keys_are_16_random_bytes_in_base64)
{
    char a[BWSF_KEY_LEN + 1], b[BWSF_KEY_LEN + 1];
    unsigned char raw[20];
    ck_assert_int_eq(bwsf_new_key(a), 0);
    ck_assert_int_eq(bwsf_new_key(b), 0);
    ck_assert_uint_eq(strlen(a), BWSF_KEY_LEN);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(EVP_DecodeBlock(raw, (const unsigned char *)a, BWSF_KEY_LEN), 18);
    ck_assert_int_eq(memcmp(a + 22, "==", 2), 0); /* 16 bytes: two pad characters */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench_wsframe");
    TCase *tc = tcase_create("bench_wsframe");
    tcase_add_test(tc, wsframe_parses_7_bit_lengths);
    tcase_add_test(tc, wsframe_parses_16_bit_lengths);
    tcase_add_test(tc, wsframe_parses_64_bit_lengths);
    tcase_add_test(tc, wsframe_waits_for_a_frame_split_at_every_byte);
    tcase_add_test(tc, wsframe_stream_cut_anywhere_yields_every_frame_once);
    tcase_add_test(tc, wsframe_parses_ping_close_and_continuation_frames);
    tcase_add_test(tc, wsframe_refuses_what_a_server_must_not_send);
    tcase_add_test(tc, wsframe_garbage_is_refused_or_bounded);
    tcase_add_test(tc, wsframe_writes_masked_client_frames);
    tcase_add_test(tc, wsframe_accept_key_matches_rfc_6455_example);
    tcase_add_test(tc, wsframe_new_keys_are_16_random_bytes_in_base64);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
