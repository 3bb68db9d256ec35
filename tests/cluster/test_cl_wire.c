/* test_cl_wire.c - the cluster layer's stored bytes without a server: round messages encode
 * and decode, malformed ones are refused (never read past the end), and a partition's
 * durable view (users' seqs, dedup window) survives a checkpoint round trip. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "cl_state.h"
#include "cl_wire.h"

static cl_rec_t rec(const char *user, const char *id, uint64_t seq, const char *body)
{
    return (cl_rec_t){.user = user,
                      .user_len = (uint8_t)strlen(user),
                      .message_id = id,
                      .id_len = (uint8_t)strlen(id),
                      .seq = seq,
                      .bytes = (const uint8_t *)body,
                      .len = (uint32_t)strlen(body),
                      .prio = 2};
}

/* A round message of recs; returns its length. */
static size_t build(uint8_t *buf, const cl_rec_t *recs, size_t n)
{
    size_t len = CL_MSG_HEAD;
    for (size_t i = 0; i < n; i++)
        len += cl_wire_rec_put(buf + len, &recs[i]);
    cl_wire_msg_head(buf, CL_KIND_ROUND, (uint32_t)n);
    return len;
}

START_TEST(round_message_decodes_to_the_records_written)
{
    cl_rec_t in[3] = {rec("u1", "m1", 7, "{\"a\":1}"), rec("user-2", "id-2", 1, ""),
                      rec("u1", "m3", 8, "payload")};
    uint8_t buf[512];
    size_t len = build(buf, in, 3);
    ck_assert_uint_eq(len, CL_MSG_HEAD + cl_rec_size(&in[0]) + cl_rec_size(&in[1]) +
                               cl_rec_size(&in[2]));
    cl_rec_t out[3];
    ck_assert_int_eq(cl_wire_parse_round(buf, len, NULL, 0), 3);
    ck_assert_int_eq(cl_wire_parse_round(buf, len, out, 3), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(out[i].seq, in[i].seq);
        ck_assert_uint_eq(out[i].prio, 2);
        ck_assert_int_eq(memcmp(out[i].user, in[i].user, in[i].user_len), 0);
        ck_assert_uint_eq(out[i].user_len, in[i].user_len);
        ck_assert_int_eq(memcmp(out[i].message_id, in[i].message_id, in[i].id_len), 0);
        ck_assert_uint_eq(out[i].len, in[i].len);
        ck_assert_int_eq(memcmp(out[i].bytes, in[i].bytes, in[i].len), 0);
    }
    /* Too small an array is refused rather than overrun. */
    ck_assert_int_eq(cl_wire_parse_round(buf, len, out, 2), -1);
}
END_TEST

START_TEST(truncated_or_corrupt_round_messages_are_refused)
{
    cl_rec_t in[2] = {rec("u1", "m1", 1, "abc"), rec("u2", "m2", 1, "defg")};
    uint8_t buf[256];
    size_t len = build(buf, in, 2);
    for (size_t cut = 0; cut < len; cut++) /* every truncation */
        ck_assert_int_eq(cl_wire_parse_round(buf, cut, NULL, 0), -1);
    uint8_t bad[256];
    memcpy(bad, buf, len);
    bad[0] = 9; /* version */
    ck_assert_int_eq(cl_wire_parse_round(bad, len, NULL, 0), -1);
    memcpy(bad, buf, len);
    bad[1] = CL_KIND_MARKER;
    ck_assert_int_eq(cl_wire_parse_round(bad, len, NULL, 0), -1);
    memcpy(bad, buf, len);
    cl_put32(bad + 4, 3); /* one record more than there is */
    ck_assert_int_eq(cl_wire_parse_round(bad, len, NULL, 0), -1);
    memcpy(bad, buf, len);
    cl_put32(bad + CL_MSG_HEAD, 0xfffffff0u); /* a length past the end */
    ck_assert_int_eq(cl_wire_parse_round(bad, len, NULL, 0), -1);
    memcpy(bad, buf, len);
    bad[CL_MSG_HEAD + 12] = 0; /* empty user */
    ck_assert_int_eq(cl_wire_parse_round(bad, len, NULL, 0), -1);
    memcpy(bad, buf, len);
    bad[len] = 0; /* a trailing byte */
    ck_assert_int_eq(cl_wire_parse_round(bad, len + 1, NULL, 0), -1);
    /* Random bytes: refused or parsed, never read out of bounds (ASan watches). */
    srand(12);
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)rand() % 96;
        uint8_t *r = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            r[j] = (uint8_t)rand();
        if (n >= 2) {
            r[0] = CL_WIRE_VERSION;
            r[1] = CL_KIND_ROUND;
        }
        cl_rec_t out[8];
        cl_wire_parse_round(r, n, out, 8);
        free(r);
    }
}
END_TEST

START_TEST(marker_carries_node_and_lease_epoch)
{
    uint8_t m[CL_MARKER_LEN];
    cl_wire_marker(m, 7, 123456789012ull);
    ck_assert_uint_eq(m[0], CL_WIRE_VERSION);
    ck_assert_uint_eq(m[1], CL_KIND_MARKER);
    ck_assert_uint_eq(cl_get32(m + CL_MSG_HEAD), 7);
    ck_assert_uint_eq(cl_get64(m + CL_MSG_HEAD + 4), 123456789012ull);
    ck_assert_int_eq(cl_wire_parse_round(m, sizeof m, NULL, 0), -1); /* not a round */
}
END_TEST

START_TEST(state_keeps_each_users_last_seq_and_the_last_ids)
{
    cl_state_t *s = cl_state_new(3);
    char user[16], id[16];
    for (uint64_t seq = 1; seq <= 5; seq++)
        for (int u = 0; u < 100; u++) {
            snprintf(user, sizeof user, "user%d", u);
            snprintf(id, sizeof id, "m%d-%llu", u, (unsigned long long)seq);
            cl_rec_t r = rec(user, id, seq, "x");
            cl_state_apply(s, &r);
        }
    ck_assert_uint_eq(cl_state_user_count(s), 100);
    ck_assert_uint_eq(cl_state_user_seq(s, "user42", 6), 5);
    ck_assert_uint_eq(cl_state_user_seq(s, "nobody", 6), 0);
    cl_rec_t old = rec("user42", "late", 2, "x"); /* never lowers a seq */
    cl_state_apply(s, &old);
    ck_assert_uint_eq(cl_state_user_seq(s, "user42", 6), 5);
    ck_assert_uint_eq(cl_state_id_count(s), 3); /* the window */
    cl_takeover_t *tk = cl_state_takeover(s);
    ck_assert_uint_eq(tk->n_users, 100);
    ck_assert_uint_eq(tk->n_ids, 3);
    ck_assert_int_eq(memcmp(tk->ids[0].message_id, "m98-5", 5), 0); /* oldest first */
    ck_assert_int_eq(memcmp(tk->ids[2].message_id, "late", 4), 0);
    ck_assert_uint_eq(tk->ids[2].seq, 2);
    free(tk);
    cl_state_free(s);
}
END_TEST

/* A stand-in fingerprint: the record's length and first byte. */
static uint64_t test_fp(const uint8_t *bytes, size_t len)
{
    return (uint64_t)len << 8 | bytes[0];
}

START_TEST(checkpoint_round_trip_gives_the_same_state)
{
    cl_state_t *s = cl_state_new(1000);
    cl_state_set_fingerprint(s, test_fp);
    char user[70], id[70];
    for (int i = 0; i < 3000; i++) {
        snprintf(user, sizeof user, "u%04d-%0*d", i % 700, 50, i % 700); /* long ids too */
        snprintf(id, sizeof id, "id-%d", i);
        cl_rec_t r = rec(user, id, (uint64_t)(i / 700 + 1), "x");
        cl_state_apply(s, &r);
    }
    size_t len = 0;
    uint8_t *buf = cl_state_encode(s, 4242, &len);
    ck_assert_ptr_nonnull(buf);
    cl_state_t *t = cl_state_new(1000);
    uint64_t at = 0;
    ck_assert_int_eq(cl_state_decode(t, buf, len, &at), 0);
    ck_assert_uint_eq(at, 4242);
    ck_assert_uint_eq(cl_state_user_count(t), 700);
    ck_assert_uint_eq(cl_state_id_count(t), 1000);
    cl_takeover_t *a = cl_state_takeover(s), *b = cl_state_takeover(t);
    ck_assert_uint_eq(a->n_users, b->n_users);
    for (size_t i = 0; i < a->n_users; i++) {
        ck_assert_uint_eq(a->users[i].user_len, b->users[i].user_len);
        ck_assert_int_eq(memcmp(a->users[i].user, b->users[i].user, a->users[i].user_len), 0);
        ck_assert_uint_eq(a->users[i].seq, b->users[i].seq);
    }
    for (size_t i = 0; i < a->n_ids; i++) {
        ck_assert_int_eq(memcmp(a->ids[i].message_id, b->ids[i].message_id, a->ids[i].id_len), 0);
        ck_assert_uint_eq(a->ids[i].seq, b->ids[i].seq);
        ck_assert_uint_eq(a->ids[i].fp, test_fp((const uint8_t *)"x", 1)); /* kept with the id */
        ck_assert_uint_eq(b->ids[i].fp, a->ids[i].fp);
    }
    /* Any truncation or a changed magic is refused. */
    for (size_t cut = 0; cut < len; cut += 97) {
        cl_state_t *u = cl_state_new(10);
        ck_assert_int_eq(cl_state_decode(u, buf, cut, &at), -1);
        cl_state_free(u);
    }
    buf[0] ^= 1;
    cl_state_t *u = cl_state_new(10);
    ck_assert_int_eq(cl_state_decode(u, buf, len, &at), -1);
    cl_state_free(u);
    free(a);
    free(b);
    free(buf);
    cl_state_free(s);
    cl_state_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_wire");
    TCase *tc = tcase_create("wire");
    tcase_add_test(tc, round_message_decodes_to_the_records_written);
    tcase_add_test(tc, truncated_or_corrupt_round_messages_are_refused);
    tcase_add_test(tc, marker_carries_node_and_lease_epoch);
    tcase_add_test(tc, state_keeps_each_users_last_seq_and_the_last_ids);
    tcase_add_test(tc, checkpoint_round_trip_gives_the_same_state);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
