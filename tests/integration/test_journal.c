/* test_journal.c - herald-broker's journal as a process sees it: restarts after kill -9 across
 * file growth and compactions, the preallocated zero tail, a corrupt last record, and a
 * journal of the old format. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bk_harness.h"
#include "jsum.h"
#include "proto.h"

#define BIG_CONTENT 60000 /* a notification of ~60 KiB: a 4 MiB chunk in ~70 */

static bkh_t H;
static bkh_gw_t G;
static bool exit_hook;

static void cleanup(void)
{
    bkh_gw_free(&G);
    bkh_cleanup(&H);
}

static void start(const char *const *over)
{
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
}

static void restart_after_kill9(void)
{
    bkh_stop(&H, SIGKILL);
    ck_assert_msg(bkh_start(&H) == 0, "broker did not restart (log %s)", H.logpath);
}

static herald_client_t *client(void)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(H.sock, &err);
    ck_assert_msg(c != NULL, "connect: %s", err.message);
    return c;
}

/* Publish one notification for user with message id (NULL: none) and content of `content`
 * bytes (0: the small default); the broker's answer, accepted or not. */
static herald_result_t publish_any(herald_client_t *c, const char *user, const char *id,
                                   size_t content)
{
    size_t cap = content + 512;
    char *json = malloc(cap);
    ck_assert_ptr_nonnull(json);
    if (content) {
        int n = snprintf(json, cap,
                         "{%s%s%s\"message_type\":\"system_notice\",\"user_id\":\"%s\","
                         "\"priority\":1,\"source\":\"test\",\"payload\":{\"title\":\"t\","
                         "\"level\":\"info\",\"content\":\"",
                         id ? "\"message_id\":\"" : "", id ? id : "", id ? "\"," : "", user);
        memset(json + n, 'x', content);
        snprintf(json + n + content, cap - (size_t)n - content, "\"}}");
    } else {
        bkh_notice_json(json, cap, user, 1, id);
    }
    herald_result_t r = bkh_publish_json(c, json);
    free(json);
    return r;
}

/* publish_any, which must be accepted. */
static herald_result_t publish(herald_client_t *c, const char *user, const char *id, size_t content)
{
    herald_result_t r = publish_any(c, user, id, content);
    ck_assert_msg(r.ok, "publish refused: %s %s", r.error, r.message);
    return r;
}

/* The id again with other content: refused as id_conflict, whatever was restored. */
static void assert_conflict(herald_client_t *c, const char *user, const char *id, size_t content)
{
    herald_result_t r = publish_any(c, user, id, content);
    ck_assert_msg(!r.ok && !strcmp(r.error, "id_conflict"), "%s reused: %s", id,
                  r.ok ? "accepted" : r.error);
}

/* Publish n big notifications for user with ids "<user>-<i>" (i from 1). */
static void publish_big(herald_client_t *c, const char *user, int n)
{
    for (int i = 1; i <= n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", user, i);
        ck_assert_uint_eq(publish(c, user, id, BIG_CONTENT).seq, (uint64_t)i);
    }
}

static void journal_path(char *out, size_t cap, const char *suffix)
{
    snprintf(out, cap, "/dev/shm/%s.broker.journal%s", H.env.shm_prefix, suffix);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The history of user replays seqs from..to (all of them, in order). */
static void assert_history(const char *user, uint64_t from, uint64_t to)
{
    if (G.fd <= 0) ck_assert_int_eq(bkh_gw_attach(&G, &H, 0), 0);
    size_t start = G.n;
    ck_assert_int_eq(bkh_gw_replay(&G, 0, user, from, to), 0);
    long end = bkh_gw_wait_type(&G, start, REC_REPLAY_END, 5000);
    ck_assert_int_ge(end, 0);
    ck_assert_int_eq(end - (long)start, (long)(to - from + 1));
    for (uint64_t s = from; s <= to; s++) {
        bkh_rec_t *r = &G.recs[start + (s - from)];
        ck_assert_uint_eq(r->type, REC_REPLAY);
        ck_assert_uint_eq(r->seq, s);
    }
}

static bool log_contains(const char *needle)
{
    FILE *f = fopen(H.logpath, "r");
    if (!f) return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static const char *const small_history[] = {"broker.history_size=5", NULL};

START_TEST(restart_after_the_journal_grew_past_a_chunk_keeps_seq_history_and_dedup)
{
    start(small_history);
    herald_client_t *c = client();
    publish_big(c, "cb", 150); /* ~9 MiB: the file grows by two chunks mid-run */
    herald_close(c);
    char path[200];
    journal_path(path, sizeof path, "");
    ck_assert_uint_gt(file_size(path), 8u << 20);
    restart_after_kill9();
    c = client();
    herald_result_t d = publish(c, "cb", "cb-150", BIG_CONTENT);
    ck_assert(d.duplicate && d.seq == 150);
    d = publish(c, "cb", "cb-3", BIG_CONTENT);
    ck_assert(d.duplicate && d.seq == 3);
    assert_conflict(c, "cb", "cb-3", 0);             /* another payload */
    assert_conflict(c, "cc", "cb-150", BIG_CONTENT); /* another user */
    ck_assert_uint_eq(publish(c, "cb", "cb-151", 0).seq, 151);
    herald_close(c);
    assert_history("cb", 147, 151);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
}
END_TEST

/* The journal is allocated as it fills (a fresh broker holds 8 MiB of each file): on a
 * 48 MiB /dev/shm it grows chunk by chunk to ~18 MiB with no error. */
START_TEST(small_dev_shm_grows_the_journal_as_it_goes)
{
    if (!bkh_private_shm_ok()) {
        TEST_SKIP("needs root and unshare for a private /dev/shm");
    }
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, small_history);
    H.shm_mb = 48;
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
    herald_client_t *c = client();
    publish_big(c, "sm", 300); /* ~18 MiB: the file grows by four chunks */
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_errors"), 0);
    ck_assert_uint_ge(bkh_stat(&H, "journal_bytes"), 300u * BIG_CONTENT);
    char path[200];
    journal_path(path, sizeof path, "");
    ck_assert_uint_eq(file_size(path), 0); /* it is in the broker's own /dev/shm */
}
END_TEST

/* A kill -9 at each of the first growth steps of the journal (right after the file grew,
 * before anything was written in the new part): every acknowledged notification is back
 * after the restart, seqs continue, and the journal reads clean. */
START_TEST(kill9_at_every_growth_step_of_the_journal_loses_nothing_acknowledged)
{
    start(small_history);
    herald_client_t *c = client();
    uint64_t acked = 0;
    for (int step = 1; step <= 3; step++) {
        herald_close(c);
        bkh_stop(&H, SIGTERM);
        setenv("HERALD_TEST_JOURNAL_KILL_AT_GROWTH", "1", 1);
        ck_assert_msg(bkh_start(&H) == 0, "broker did not restart (log %s)", H.logpath);
        unsetenv("HERALD_TEST_JOURNAL_KILL_AT_GROWTH");
        c = client();
        /* big notifications until the broker dies at its next growth */
        for (int i = 0; i < 400; i++) {
            char id[32];
            snprintf(id, sizeof id, "kg-%llu", (unsigned long long)acked + 1);
            herald_result_t r;
            herald_error_t err;
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            size_t cap = BIG_CONTENT + 512;
            char *json = malloc(cap);
            int n = snprintf(json, cap,
                             "{\"message_id\":\"%s\",\"message_type\":\"system_notice\","
                             "\"user_id\":\"kg\",\"priority\":1,\"payload\":{\"title\":\"t\","
                             "\"level\":\"info\",\"content\":\"",
                             id);
            memset(json + n, 'x', BIG_CONTENT);
            snprintf(json + n + BIG_CONTENT, cap - (size_t)n - BIG_CONTENT, "\"}}");
            bkh_msgpack(&sb, json);
            free(json);
            int rc = herald_publish(c, (uint8_t *)sb.data, sb.size, &r, &err);
            msgpack_sbuffer_destroy(&sb);
            if (rc < 0) break; /* the broker killed itself at the growth */
            ck_assert_msg(r.ok, "refused: %s", r.error);
            ck_assert_uint_eq(r.seq, acked + 1);
            acked = r.seq;
        }
        ck_assert_int_eq(bkh_wait_exit(&H, 5000), SIGKILL); /* it died at the growth */
        ck_assert_msg(bkh_start(&H) == 0, "broker did not restart (log %s)", H.logpath);
        herald_close(c);
        c = client();
        /* the last acknowledged one is known with its seq; the next continues after it */
        char id[32];
        snprintf(id, sizeof id, "kg-%llu", (unsigned long long)acked);
        herald_result_t d = publish_any(c, "kg", id, BIG_CONTENT);
        ck_assert_msg(d.ok && d.duplicate && d.seq == acked, "step %d: %s seq %llu", step, id,
                      (unsigned long long)d.seq);
        ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
    }
    ck_assert_uint_gt(acked, 3);
    herald_close(c);
}
END_TEST

START_TEST(preallocated_zero_tail_is_not_counted_as_corrupt)
{
    start(NULL);
    herald_client_t *c = client();
    for (int i = 1; i <= 3; i++)
        ck_assert_uint_eq(publish(c, "zt", NULL, 0).seq, (uint64_t)i);
    herald_close(c);
    restart_after_kill9();
    char path[200];
    journal_path(path, sizeof path, "");
    ck_assert_uint_ge(file_size(path), 1u << 20); /* mostly zeros after 3 records */
    c = client();
    ck_assert_uint_eq(publish(c, "zt", NULL, 0).seq, 4);
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
    ck_assert(!log_contains("cut off"));
}
END_TEST

/* Offset of the last record in the journal at path (walking the record headers). */
static long last_record(FILE *f)
{
    long off = 64, last = -1;
    for (;;) {
        uint32_t len;
        if (fseek(f, off, SEEK_SET) || fread(&len, 4, 1, f) != 1 || len == 0) return last;
        last = off;
        off += 16 + (long)((len + 7) & ~7u);
    }
}

START_TEST(corrupt_byte_in_the_last_record_is_cut_off_and_counted)
{
    start(NULL);
    herald_client_t *c = client();
    for (int i = 1; i <= 3; i++)
        publish(c, "cr", NULL, 0);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    char path[200];
    journal_path(path, sizeof path, "");
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    long last = last_record(f);
    ck_assert_int_gt(last, 64);
    uint32_t len;
    fseek(f, last, SEEK_SET);
    ck_assert_int_eq(fread(&len, 4, 1, f), 1);
    long mid = last + 16 + len / 2;
    int byte;
    fseek(f, mid, SEEK_SET);
    byte = fgetc(f);
    fseek(f, mid, SEEK_SET);
    fputc(byte ^ 0x10, f);
    fclose(f);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    ck_assert_uint_eq(publish(c, "cr", NULL, 0).seq, 3); /* the third was cut off */
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 1);
    ck_assert(log_contains("checksum mismatch"));
    /* The cut is final: the next start finds nothing corrupt. */
    restart_after_kill9();
    c = client();
    ck_assert_uint_eq(publish(c, "cr", NULL, 0).seq, 4);
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
}
END_TEST

START_TEST(compaction_then_restart_keeps_seq_history_and_dedup)
{
    setenv("HERALD_TEST_JOURNAL_MIN_BOUND", "8388608", 1); /* 8 MiB instead of 128 */
    start(small_history);
    unsetenv("HERALD_TEST_JOURNAL_MIN_BOUND"); /* restarts below load with the normal bound */
    herald_client_t *c = client();
    publish_big(c, "cp", 300); /* ~18 MiB: two compactions */
    publish(c, "other", "other-1", 0);
    herald_close(c);
    ck_assert_uint_ge(bkh_stat(&H, "journal_compactions"), 2);
    char path[200];
    journal_path(path, sizeof path, ".1");
    ck_assert_uint_gt(file_size(path), 0); /* the two files alternate */
    restart_after_kill9();
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
    c = client();
    herald_result_t d = publish(c, "cp", "cp-299", BIG_CONTENT);
    ck_assert(d.duplicate && d.seq == 299);
    d = publish(c, "other", "other-1", 0);
    ck_assert(d.duplicate && d.seq == 1);
    /* an id only the snapshot's dedup records still know */
    d = publish(c, "cp", "cp-10", BIG_CONTENT);
    ck_assert(d.duplicate && d.seq == 10);
    assert_conflict(c, "cp", "cp-10", 0);
    assert_conflict(c, "other", "cp-10", BIG_CONTENT);
    ck_assert_uint_eq(publish(c, "cp", "cp-301", 0).seq, 301);
    herald_close(c);
    assert_history("cp", 297, 301);
    /* and appending after the restart is kept too */
    bkh_gw_free(&G);
    restart_after_kill9();
    c = client();
    ck_assert_uint_eq(publish(c, "cp", NULL, 0).seq, 302);
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
}
END_TEST

/* The notification whose round made the journal compact is in the snapshot too: its id is
 * still a duplicate, and it is still in the history, after a restart right then. */
START_TEST(the_round_that_triggers_a_compaction_is_in_the_snapshot)
{
    setenv("HERALD_TEST_JOURNAL_MIN_BOUND", "1048576", 1); /* 1 MiB */
    start(small_history);
    unsetenv("HERALD_TEST_JOURNAL_MIN_BOUND");
    herald_client_t *c = client();
    char id[32];
    int i = 1;
    for (; i <= 100; i++) {
        snprintf(id, sizeof id, "ct-%d", i);
        ck_assert_uint_eq(publish(c, "ct", id, BIG_CONTENT).seq, (uint64_t)i);
        if (bkh_stat(&H, "journal_compactions") > 0) break;
    }
    ck_assert_int_le(i, 100);
    herald_close(c);
    restart_after_kill9();
    c = client();
    herald_result_t d = publish(c, "ct", id, BIG_CONTENT);
    ck_assert_msg(d.duplicate && d.seq == (uint64_t)i, "%s after the restart: seq %llu, dup %d", id,
                  (unsigned long long)d.seq, d.duplicate);
    ck_assert_uint_eq(publish(c, "ct", NULL, 0).seq, (uint64_t)i + 1);
    herald_close(c);
    assert_history("ct", (uint64_t)i - 3, (uint64_t)i + 1);
}
END_TEST

START_TEST(old_format_journal_is_reported_and_started_fresh)
{
    bkh_init(&H, NULL);
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    char path[200];
    journal_path(path, sizeof path, "");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600); /* private, as the broker's */
    ck_assert_int_ge(fd, 0);
    uint8_t v1[64] = "HRLDJRN1\x01";
    memset(v1 + 16, 0x5a, sizeof v1 - 16); /* records of the old format */
    ck_assert_int_eq(write(fd, v1, sizeof v1), sizeof v1);
    close(fd);
    ck_assert_int_eq(bkh_start(&H), 0);
    ck_assert(log_contains("old format"));
    herald_client_t *c = client();
    ck_assert_uint_eq(publish(c, "of", NULL, 0).seq, 1);
    herald_close(c);
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
    restart_after_kill9();
    c = client();
    ck_assert_uint_eq(publish(c, "of", NULL, 0).seq, 2);
    herald_close(c);
}
END_TEST

/* One record of format version 2/3 at p (see docs/architecture.md); returns its size. */
static size_t put_record(uint8_t *p, uint16_t type, uint64_t word, const char *data)
{
    size_t dlen = strlen(data);
    uint32_t len = (uint32_t)(8 + dlen), epoch = 1, zero = 0;
    memcpy(p, &len, 4);
    memcpy(p + 4, &type, 2);
    memcpy(p + 6, &zero, 2);
    memcpy(p + 8, &epoch, 4);
    uint64_t head;
    memcpy(&head, p, 8);
    uint32_t sum = jsum(1, head, word, (const uint8_t *)data, dlen);
    memcpy(p + 12, &sum, 4);
    memcpy(p + 16, &word, 8);
    memcpy(p + 24, data, dlen);
    return 16 + ((len + 7) & ~7u);
}

START_TEST(version_2_journal_still_loads_its_ids_without_fingerprints)
{
    bkh_init(&H, NULL);
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    uint8_t file[4096] = "HRLDJRN2";
    uint32_t version = 2, hdr = 64;
    uint64_t epoch = 1;
    memcpy(file + 8, &version, 4);
    memcpy(file + 12, &hdr, 4);
    memcpy(file + 16, &epoch, 8);
    size_t off = 64;
    off += put_record(file + off, 3, 7, "legacy-u");  /* J_USER: last seq 7 */
    off += put_record(file + off, 4, 7, "legacy-id"); /* J_DEDUP: id alone, seq 7 */
    uint64_t committed = off;
    memcpy(file + 24, &committed, 8);
    char path[200];
    journal_path(path, sizeof path, "");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, file, sizeof file), sizeof file); /* zeros: the end mark */
    close(fd);
    ck_assert_int_eq(bkh_start(&H), 0);
    ck_assert(log_contains("is version 2: loaded"));
    ck_assert_uint_eq(bkh_stat(&H, "journal_corrupt"), 0);
    herald_client_t *c = client();
    ck_assert_uint_eq(publish(c, "legacy-u", NULL, 0).seq, 8);
    herald_result_t d = publish(c, "anyone", "legacy-id", 0); /* fingerprint unknown */
    ck_assert(d.duplicate && d.seq == 7);
    herald_close(c);
    restart_after_kill9();
    c = client();
    ck_assert_uint_eq(publish(c, "legacy-u", NULL, 0).seq, 9);
    herald_close(c);
}
END_TEST

static Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *t = tcase_create("process");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, restart_after_the_journal_grew_past_a_chunk_keeps_seq_history_and_dedup);
    tcase_add_test(t, preallocated_zero_tail_is_not_counted_as_corrupt);
    tcase_add_test(t, small_dev_shm_grows_the_journal_as_it_goes);
    tcase_add_test(t, kill9_at_every_growth_step_of_the_journal_loses_nothing_acknowledged);
    tcase_add_test(t, corrupt_byte_in_the_last_record_is_cut_off_and_counted);
    tcase_add_test(t, compaction_then_restart_keeps_seq_history_and_dedup);
    tcase_add_test(t, the_round_that_triggers_a_compaction_is_in_the_snapshot);
    tcase_add_test(t, old_format_journal_is_reported_and_started_fresh);
    tcase_add_test(t, version_2_journal_still_loads_its_ids_without_fingerprints);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(journal_suite());
}
