/* test_ring.c - ring suite: header layout, wrap, limits, corruption, attach errors, inspector. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "doorbell.h"
#include "ring.h"
#include "ring_testrec.h"
#include "test_ring.h"

const char *peer_path;  /* argv[1]: the ring_peer executable */
static char prefix[64]; /* herald-test-<runner pid>: every shm object we create */

static void names_setup(void)
{
    snprintf(prefix, sizeof prefix, "herald-test-%d", (int)getpid());
}

/* Runs in the runner process after the test case, pass or fail: remove our shm objects. */
static void names_teardown(void)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) ring_unlink(e->d_name);
    closedir(d);
}

void ring_test_name(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "%s.%s.ring", prefix, tag);
}

ring_t *open_ok(const char *name, ring_mode_t mode, size_t cap)
{
    herald_error_t err;
    ring_t *r = NULL;
    int rc = ring_open(&r, name, mode, cap, 3, &err);
    ck_assert_msg(rc == 0, "ring_open %s: %s", name, err.message);
    return r;
}

/* --- layout and single-process behaviour --- */

START_TEST(ring_creates_header_as_documented)
{
    char name[128];
    ring_test_name(name, sizeof name, "hdr");
    ring_t *r = open_ok(name, RING_PRODUCER, 5000);
    ring_header_t *h = ring_header(r);
    ck_assert_uint_eq(h->magic, RING_MAGIC);
    ck_assert_uint_eq(h->version, RING_VERSION);
    ck_assert_uint_eq(h->header_bytes, RING_HEADER_BYTES);
    ck_assert_uint_eq(h->capacity, 8192);
    ck_assert_uint_eq(h->max_record, 1024);
    ck_assert_uint_eq(ring_max_record(r), 1024);
    ck_assert_uint_eq(h->gateway_id, 3);
    ck_assert_uint_eq(atomic_load(&h->ready), 1);
    ck_assert_uint_eq(atomic_load(&h->producer_pid), (uint32_t)getpid());
    ck_assert_uint_ne(atomic_load(&h->producer_alive_ns), 0);
    char path[160];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, RING_HEADER_BYTES + 8192);
    char gw[64];
    ring_name(gw, sizeof gw, "herald", 7);
    ck_assert_str_eq(gw, "herald.gw7.ring");
    ring_close(r);
}
END_TEST

typedef struct {
    uint64_t next_seq, bytes;
    int bad;
} verify_t;

static int verify_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    verify_t *v = ctx;
    uint64_t seq;
    if (type != RING_REC_USER + 1 || testrec_check_bytes(data, len, &seq) < 0 || seq != v->next_seq)
        v->bad++;
    v->next_seq++;
    v->bytes += len;
    return 0;
}

START_TEST(ring_wraps_with_mixed_record_sizes_intact)
{
    char name[128];
    ring_test_name(name, sizeof name, "wrap");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint32_t max = (uint32_t)ring_max_record(p);
    uint8_t buf[4096];
    verify_t v = {0};
    uint64_t seq = 0, total = 20000;
    while (v.next_seq < total) {
        /* write what fits (sizes from the minimum to max_record), then read some */
        while (seq < total) {
            uint32_t len = testrec_len(seq, TESTREC_HDR, max);
            testrec_fill(buf, seq, len);
            int rc = ring_write(p, RING_REC_USER + 1, buf, len);
            if (rc == -HERR_NO_ROOM) break;
            ck_assert_int_eq(rc, 0);
            seq++;
        }
        ring_publish(p);
        long n = ring_read_batch(c, verify_record, &v, 1 + seq % 7);
        ck_assert_int_ge(n, 1);
    }
    ck_assert_int_eq(v.bad, 0);
    ring_stats_t s;
    ring_stats(c, &s);
    ck_assert_uint_eq(s.records_written, total);
    ck_assert_uint_eq(s.records_read, total);
    ck_assert_uint_eq(s.head, s.tail);
    ck_assert_uint_gt(s.tail, 100 * s.capacity); /* wrapped many times */
    ck_assert_uint_eq(s.corrupt, 0);
    ring_close(c);
    ring_close(p);
}
END_TEST

START_TEST(ring_refuses_record_larger_than_max)
{
    char name[128];
    ring_test_name(name, sizeof name, "max");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    uint32_t max = (uint32_t)ring_max_record(p);
    uint8_t *buf = calloc(1, max + 1);
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, max + 1), -HERR_TOO_LARGE);
    ck_assert_int_eq(ring_write2(p, RING_REC_USER, buf, max, buf, 1), -HERR_TOO_LARGE);
    ck_assert_int_eq(ring_write(p, 0, buf, 8), -EINVAL);
    ck_assert_int_eq(ring_write(p, RING_REC_PAD, buf, 8), -EINVAL);
    ck_assert(!ring_publish(p));
    ck_assert_uint_eq(atomic_load(&ring_header(p)->tail), 0);
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, max), 0);
    free(buf);
    ring_close(p);
}
END_TEST

START_TEST(ring_full_refuses_with_enospc_and_keeps_data)
{
    char name[128];
    ring_test_name(name, sizeof name, "full");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint8_t buf[256];
    uint64_t seq = 0;
    int rc;
    for (;;) {
        uint32_t len = testrec_len(seq, TESTREC_HDR, 200);
        testrec_fill(buf, seq, len);
        if ((rc = ring_write(p, RING_REC_USER + 1, buf, len)) != 0) break;
        seq++;
    }
    ck_assert_int_eq(rc, -HERR_NO_ROOM);
    ck_assert_uint_lt(ring_free_bytes(p), 8 + 200 + 8);
    /* refusing again changes nothing */
    ck_assert_int_eq(ring_write(p, RING_REC_USER + 1, buf, 200), -HERR_NO_ROOM);
    ring_publish(p);
    verify_t v = {0};
    ck_assert_int_eq(ring_read_batch(c, verify_record, &v, SIZE_MAX), (long)seq);
    ck_assert_int_eq(v.bad, 0);
    ck_assert_uint_eq(ring_free_bytes(p), RING_MIN_CAPACITY);
    ck_assert_int_eq(ring_write(p, RING_REC_USER + 1, buf, 200), 0);
    ring_close(c);
    ring_close(p);
}
END_TEST

START_TEST(ring_reattached_producer_keeps_positions)
{
    char name[128];
    ring_test_name(name, sizeof name, "reattach");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    uint8_t buf[64];
    for (uint64_t s = 0; s < 10; s++) {
        testrec_fill(buf, s, 40);
        ck_assert_int_eq(ring_write(p, RING_REC_USER + 1, buf, 40), 0);
    }
    ring_publish(p);
    uint64_t tail = atomic_load(&ring_header(p)->tail);
    ring_close(p);
    p = open_ok(name, RING_PRODUCER, 1 << 20); /* capacity only applies when creating */
    ck_assert_uint_eq(ring_header(p)->capacity, RING_MIN_CAPACITY);
    ck_assert_uint_eq(atomic_load(&ring_header(p)->tail), tail);
    for (uint64_t s = 10; s < 20; s++) {
        testrec_fill(buf, s, 40);
        ck_assert_int_eq(ring_write(p, RING_REC_USER + 1, buf, 40), 0);
    }
    ring_publish(p);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    verify_t v = {0};
    ck_assert_int_eq(ring_read_batch(c, verify_record, &v, SIZE_MAX), 20);
    ck_assert_int_eq(v.bad, 0);
    ck_assert_uint_eq(atomic_load(&ring_header(c)->records_written), 20);
    ring_close(c);
    ring_close(p);
}
END_TEST

int count_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    (void)type, (void)data, (void)len;
    (*(long *)ctx)++;
    return 0;
}

/* The inspector's mapping must be read-only: /proc/self/maps shows it as r--s. */
START_TEST(ring_inspector_maps_read_only_and_peeks_without_consuming)
{
    char name[128];
    ring_test_name(name, sizeof name, "inspect");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    uint8_t buf[64];
    for (uint64_t s = 0; s < 5; s++) {
        testrec_fill(buf, s, 48);
        ck_assert_int_eq(ring_write(p, RING_REC_USER + 1, buf, 48), 0);
    }
    ring_publish(p);
    ring_t *i = open_ok(name, RING_INSPECT, 0);
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, maps))
        if (strstr(line, name)) {
            found++;
            if (strstr(line, "r--s")) found += 10;
        }
    fclose(maps);
    ck_assert_int_eq(found, 11 + 1); /* the producer's rw-s mapping and our r--s one */
    verify_t v = {0};
    ck_assert_int_eq(ring_peek(i, verify_record, &v, 3), 3);
    ck_assert_int_eq(v.bad, 0);
    v = (verify_t){0};
    ck_assert_int_eq(ring_peek(i, verify_record, &v, 100), 5);
    ring_stats_t s;
    ring_stats(i, &s);
    ck_assert_uint_eq(s.head, 0);
    ck_assert_uint_eq(s.pending_records, 5);
    ck_assert_uint_eq(s.used_bytes, 5 * 56);
    ck_assert_int_eq(s.producer_pid, getpid());
    ring_heartbeat(i); /* a no-op for inspectors (it would fault otherwise) */
    ring_close(i);
    ring_close(p);
}
END_TEST

START_TEST(ring_sleep_handshake_reports_pending_records)
{
    char name[128];
    ring_test_name(name, sizeof name, "sleep");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint32_t v0, v1;
    ck_assert(ring_prepare_sleep(c, &v0));
    ck_assert(atomic_load(&ring_header(c)->sleeping));
    uint8_t buf[16] = {0};
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 16), 0);
    ck_assert(ring_publish(p)); /* the consumer said it sleeps: the producer must wake */
    ring_wake(p);
    ck_assert(!atomic_load(&ring_header(c)->sleeping));
    ck_assert_uint_ne(atomic_load(ring_doorbell_word(c)), v0);
    ck_assert(!ring_prepare_sleep(c, &v1)); /* a record is pending: no sleep */
    ck_assert(!atomic_load(&ring_header(c)->sleeping));
    long n = 0;
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 1);
    ck_assert(ring_prepare_sleep(c, &v1));
    ring_end_sleep(c);
    ck_assert_uint_eq(atomic_load(&ring_header(c)->wakeups), 1);
    ring_close(c);
    ring_close(p);
}
END_TEST

/* ring_publish_due: a sleeping consumer that promised to wake by W is rung only for a round
 * due before W (or a quarter-full ring); without a promise, for every round. */
START_TEST(ring_doorbell_is_skipped_for_records_that_can_wait_for_the_consumers_timer)
{
    char name[128];
    ring_test_name(name, sizeof name, "due");
    ring_t *p = open_ok(name, RING_PRODUCER, 64 * 1024);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint8_t buf[64] = {0};
    uint32_t v;
    long n = 0;
    /* no promise: rung even for a record due in an hour */
    ck_assert(!ring_set_wake_by(c, 0));
    ck_assert(ring_prepare_sleep(c, &v));
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ck_assert_int_eq(ring_publish_due(p, 3600000000000ull), RING_PUB_WAKE);
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 1);
    /* wakes by itself at 1000: a record due at 1000 or later waits, one due at 999 rings */
    ck_assert(!ring_set_wake_by(c, 1000));
    ck_assert(ring_prepare_sleep(c, &v));
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ck_assert_int_eq(ring_publish_due(p, 1000), RING_PUB_WAITS);
    ck_assert(atomic_load(&ring_header(c)->sleeping)); /* still asleep: no ring */
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ck_assert_int_eq(ring_publish_due(p, 999), RING_PUB_WAKE);
    /* moving the promise while records wait reports them (they may not have been rung) */
    ck_assert(ring_set_wake_by(c, 5000));
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 2);
    ck_assert(!ring_set_wake_by(c, 5000));
    ring_end_sleep(c); /* awake: published records are simply read */
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ck_assert_int_eq(ring_publish_due(p, 0), RING_PUB_AWAKE);
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 1);
    ck_assert(ring_prepare_sleep(c, &v));
    /* a quarter-full ring rings whatever the deadline */
    for (int k = 0; k < 16 * 1024 / 72 - 1; k++)
        ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 64), 0);
    ck_assert_int_eq(ring_publish_due(p, 9000), RING_PUB_WAITS);
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 64), 0);
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 64), 0);
    ck_assert_int_eq(ring_publish_due(p, 9000), RING_PUB_WAKE);
    /* a new consumer does not inherit its predecessor's promise */
    ring_close(c);
    c = open_ok(name, RING_CONSUMER, 0);
    ck_assert_uint_eq(atomic_load(&ring_header(c)->wake_by_ns), 0);
    ring_close(c);
    ring_close(p);
}
END_TEST

/* The quarter-full rule counts what is unread, not the producer's cached view of the
 * consumer's head (refreshed only when a write runs out of room): after the consumer has
 * read half a ring, one more record that can wait is not rung for. */
START_TEST(ring_doorbell_quarter_rule_counts_what_is_unread)
{
    char name[128];
    ring_test_name(name, sizeof name, "quarter");
    ring_t *p = open_ok(name, RING_PRODUCER, 64 * 1024);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint8_t buf[64] = {0};
    long n = 0;
    for (int k = 0; k < 32 * 1024 / 72; k++)
        ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 64), 0);
    ck_assert_int_eq(ring_publish_due(p, 0), RING_PUB_AWAKE);
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 1000), 32 * 1024 / 72);
    uint32_t v;
    ck_assert(!ring_set_wake_by(c, 1000));
    ck_assert(ring_prepare_sleep(c, &v));
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ck_assert_int_eq(ring_publish_due(p, 5000), RING_PUB_WAITS);
    ck_assert(atomic_load(&ring_header(c)->sleeping));
    ring_close(c);
    ring_close(p);
}
END_TEST

START_TEST(ring_skip_all_discards_pending_and_counts_them)
{
    char name[128];
    ring_test_name(name, sizeof name, "skip");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    uint8_t buf[64] = {0};
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 64), 0);
    ring_publish(p);
    ring_count_drops(p, 3);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    ring_skip_all(c);
    ring_stats_t s;
    ring_stats(c, &s);
    ck_assert_uint_eq(s.head, s.tail);
    ck_assert_uint_eq(s.records_read, 5);
    ck_assert_uint_eq(s.pending_records, 0);
    ck_assert_uint_eq(s.drops, 3);
    ck_assert_int_eq(s.consumer_pid, getpid());
    ck_assert_uint_ne(s.consumer_alive_ns, 0);
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 8), 0);
    ring_publish(p);
    long n = 0;
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 1);
    ring_close(c);
    ck_assert_int_eq(atomic_load(&ring_header(p)->consumer_pid), 0); /* close clears our pid */
    ring_close(p);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_add_unchecked_fixture(tc, names_setup, names_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, ring_creates_header_as_documented);
    tcase_add_test(tc, ring_wraps_with_mixed_record_sizes_intact);
    tcase_add_test(tc, ring_refuses_record_larger_than_max);
    tcase_add_test(tc, ring_full_refuses_with_enospc_and_keeps_data);
    tcase_add_test(tc, ring_reattached_producer_keeps_positions);
    tcase_add_test(tc, ring_inspector_maps_read_only_and_peeks_without_consuming);
    tcase_add_test(tc, ring_sleep_handshake_reports_pending_records);
    tcase_add_test(tc, ring_skip_all_discards_pending_and_counts_them);
    tcase_add_test(tc, ring_doorbell_is_skipped_for_records_that_can_wait_for_the_consumers_timer);
    tcase_add_test(tc, ring_doorbell_quarter_rule_counts_what_is_unread);
    ring_add_damage_tests(tc);
    ring_add_process_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    peer_path = argc > 1 ? argv[1] : getenv("RING_PEER");
    if (!peer_path) {
        fprintf(stderr, "usage: test_ring PATH-TO-ring_peer\n");
        return 2;
    }
    return check_run_suite(ring_suite());
}
