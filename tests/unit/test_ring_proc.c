/* test_ring_proc.c - ring suite: doorbell wake-ups and producer/consumer processes. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
#include "herald_time.h"
#include "ring.h"
#include "ring_testrec.h"
#include "test_ring.h"

/* --- processes --- */

typedef struct {
    pid_t pid;
    int out; /* read end of its stdout */
} peer_t;

static peer_t peer_start(char *const argv[])
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(peer_path, argv);
        _exit(127);
    }
    close(p[1]);
    return (peer_t){pid, p[0]};
}

/* Read the peer's report line and reap it; returns its exit status. */
static int peer_finish(peer_t *pr, char *report, size_t n)
{
    size_t used = 0;
    ssize_t k;
    while (used + 1 < n && (k = read(pr->out, report + used, n - 1 - used)) > 0)
        used += (size_t)k;
    report[used] = 0;
    close(pr->out);
    int st;
    ck_assert_int_eq(waitpid(pr->pid, &st, 0), pr->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static unsigned long long report_get(const char *report, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = strstr(report, pat);
    ck_assert_msg(p != NULL, "no %s in report '%s'", key, report);
    return strtoull(p + strlen(pat), NULL, 10);
}

/* --- doorbell, in process --- */

static int kernel_at_least(int major, int minor)
{
    struct utsname u;
    int a = 0, b = 0;
    if (uname(&u) == 0) sscanf(u.release, "%d.%d", &a, &b);
    return a > major || (a == major && b >= minor);
}

/* Arm the doorbell on an empty ring; a forked producer writes one record 50 ms later; the
 * CQE must arrive and the record be readable. */
static void check_doorbell_delivers(const char *mech)
{
    char name[128];
    ring_test_name(name, sizeof name, mech);
    ring_t *c0 = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_close(c0);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    setenv("HERALD_DOORBELL", mech, 1);
    struct io_uring uring;
    ck_assert_int_eq(io_uring_queue_init(4, &uring, 0), 0);
    doorbell_t d;
    ck_assert_int_eq(doorbell_open(&d, &uring, c), 0);
    ck_assert_str_eq(doorbell_kind_name(d.kind), mech);
    ck_assert_int_eq(doorbell_arm(&d, 42), 1);
    ck_assert_int_eq(doorbell_arm(&d, 42), 1); /* already armed: no second SQE */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        usleep(50000);
        herald_error_t err;
        ring_t *p;
        if (ring_open(&p, name, RING_PRODUCER, 0, 0, &err) < 0) _exit(1);
        uint8_t buf[16] = {0};
        ring_write(p, RING_REC_USER, buf, 16);
        if (ring_publish(p)) ring_wake(p);
        _exit(0);
    }
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {10, 0};
    ck_assert_int_eq(io_uring_wait_cqe_timeout(&uring, &cqe, &ts), 0);
    ck_assert_uint_eq(cqe->user_data, 42);
    ck_assert_int_eq(doorbell_complete(&d, cqe->res), 0);
    io_uring_cqe_seen(&uring, cqe);
    long n = 0;
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), 1);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_uint_eq(atomic_load(&ring_header(c)->wakeups), 1);
    /* close with a wait armed: it is cancelled, nothing hangs */
    ck_assert_int_eq(doorbell_arm(&d, 43), 1);
    doorbell_close(&d);
    io_uring_queue_exit(&uring);
    ring_close(c);
}

START_TEST(doorbell_io_uring_futex_wait_delivers_wakeup)
{
    if (!kernel_at_least(6, 7)) return; /* no IORING_OP_FUTEX_WAIT: the fallback is tested */
    check_doorbell_delivers("uring-futex");
}
END_TEST

START_TEST(doorbell_thread_fallback_delivers_wakeup)
{
    check_doorbell_delivers("thread");
}
END_TEST

/* --- processes --- */

START_TEST(ring_moves_ten_million_records_between_processes)
{
    const char *count = "10000000";
    char name[128], rep_c[512], rep_p[512];
    ring_test_name(name, sizeof name, "stress");
    ring_close(open_ok(name, RING_PRODUCER, 1 << 20));
    char *cargv[] = {"ring_peer", "consume",   name,     "--count", (char *)count,
                     "--wait",    "doorbell",  "--spin", "64",      "--batch",
                     "512",       "--timeout", "120",    NULL};
    char *pargv[] = {"ring_peer", "produce", name,      "--count", (char *)count, "--min", "16",
                     "--max",     "120",     "--batch", "256",     "--timeout",   "120",   NULL};
    peer_t c = peer_start(cargv);
    peer_t p = peer_start(pargv);
    ck_assert_int_eq(peer_finish(&p, rep_p, sizeof rep_p), 0);
    ck_assert_int_eq(peer_finish(&c, rep_c, sizeof rep_c), 0);
    unsigned long long n = strtoull(count, NULL, 10);
    ck_assert_uint_eq(report_get(rep_p, "sent"), n);
    ck_assert_uint_eq(report_get(rep_c, "received"), n);
    ck_assert_uint_eq(report_get(rep_c, "first"), 0);
    ck_assert_uint_eq(report_get(rep_c, "last"), n - 1);
    ck_assert_uint_eq(report_get(rep_c, "bad_order"), 0);
    ck_assert_uint_eq(report_get(rep_c, "bad_sum"), 0);
    ck_assert_uint_eq(report_get(rep_c, "corrupt"), 0);
    ck_assert_uint_eq(report_get(rep_c, "timeouts"), 0);
    ring_t *i = open_ok(name, RING_INSPECT, 0);
    ring_stats_t s;
    ring_stats(i, &s);
    ck_assert_uint_eq(s.records_written, n);
    ck_assert_uint_eq(s.records_read, n);
    ck_assert_uint_eq(s.head, s.tail);
    ring_close(i);
}
END_TEST

typedef struct {
    uint64_t seq;
    int bad;
} first_seq_t;

static int take_first_seq(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    first_seq_t *f = ctx;
    (void)type;
    if (testrec_check(data, len, &f->seq) < 0) f->bad++;
    return 1;
}

START_TEST(ring_consumer_restart_continues_at_published_head)
{
    const char *count = "2000000";
    char name[128], rep_c[512], rep_p[512];
    ring_test_name(name, sizeof name, "restart");
    ring_close(open_ok(name, RING_PRODUCER, 1 << 18));
    char *c1argv[] = {"ring_peer", "consume",    name,  "--count",   (char *)count, "--batch",
                      "64",        "--delay-us", "200", "--timeout", "120",         NULL};
    char *pargv[] = {"ring_peer", "produce", name,  "--count",   (char *)count, "--min",
                     "16",        "--max",   "200", "--timeout", "120",         NULL};
    peer_t c1 = peer_start(c1argv);
    peer_t p = peer_start(pargv);
    ring_t *i = open_ok(name, RING_INSPECT, 0);
    ring_stats_t s;
    double deadline = mono_s() + 60;
    do {
        usleep(1000);
        ring_stats(i, &s);
    } while (s.records_read < 100000 && mono_s() < deadline);
    ck_assert_uint_ge(s.records_read, 100000);
    kill(c1.pid, SIGKILL);
    ck_assert_int_eq(peer_finish(&c1, rep_c, sizeof rep_c), 128 + SIGKILL);
    /* Nobody consumes now: the published head is where the next consumer must start. */
    ring_stats(i, &s);
    ck_assert_uint_lt(s.records_read, 2000000);
    first_seq_t f = {0};
    ck_assert_int_eq(ring_peek(i, take_first_seq, &f, 1), 1);
    ck_assert_int_eq(f.bad, 0);
    ck_assert_uint_eq(f.seq, s.records_read);
    char *c2argv[] = {"ring_peer", "consume",  name,        "--count", (char *)count,
                      "--wait",    "doorbell", "--timeout", "120",     NULL};
    peer_t c2 = peer_start(c2argv);
    ck_assert_int_eq(peer_finish(&c2, rep_c, sizeof rep_c), 0);
    ck_assert_int_eq(peer_finish(&p, rep_p, sizeof rep_p), 0);
    ck_assert_uint_eq(report_get(rep_c, "first"), f.seq);
    ck_assert_uint_eq(report_get(rep_c, "last"), 2000000 - 1);
    ck_assert_uint_eq(report_get(rep_c, "received"), 2000000 - f.seq);
    ck_assert_uint_eq(report_get(rep_c, "bad_order"), 0);
    ck_assert_uint_eq(report_get(rep_c, "bad_sum"), 0);
    ring_stats(i, &s);
    ck_assert_uint_eq(s.records_read, 2000000);
    ck_assert_uint_eq(s.head, s.tail);
    ring_close(i);
}
END_TEST

typedef struct {
    long seen;
    int bad;
} peek_check_t;

static int peek_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    peek_check_t *pc = ctx;
    uint64_t seq;
    if (type != RING_REC_USER || testrec_check(data, len, &seq) < 0) pc->bad++;
    pc->seen++;
    return 0;
}

START_TEST(ring_inspector_reads_live_ring)
{
    const char *count = "3000000";
    char name[128], rep_c[512], rep_p[512];
    ring_test_name(name, sizeof name, "live");
    ring_close(open_ok(name, RING_PRODUCER, 1 << 16));
    char *cargv[] = {"ring_peer", "consume", name, "--count",   (char *)count, "--wait",
                     "doorbell",  "--spin",  "16", "--timeout", "120",         NULL};
    char *pargv[] = {"ring_peer",   "produce",   name,  "--count",
                     (char *)count, "--timeout", "120", NULL};
    peer_t c = peer_start(cargv);
    peer_t p = peer_start(pargv);
    ring_t *i = open_ok(name, RING_INSPECT, 0);
    ring_stats_t prev = {0}, s;
    peek_check_t pc = {0};
    unsigned long long n = strtoull(count, NULL, 10);
    double deadline = mono_s() + 100;
    long rounds = 0;
    do {
        ring_stats(i, &s);
        ck_assert_uint_le(s.head, s.tail);
        ck_assert_uint_ge(s.head, prev.head);
        ck_assert_uint_ge(s.tail, prev.tail);
        ck_assert_uint_ge(s.records_read, prev.records_read);
        ck_assert_uint_ge(s.records_written, prev.records_written);
        ck_assert_uint_le(s.used_bytes, s.capacity);
        prev = s;
        ck_assert_int_ge(ring_peek(i, peek_record, &pc, 16), 0);
        rounds++;
        usleep(200); /* leave the CPUs to the peers */
    } while (s.records_read < n && mono_s() < deadline);
    ck_assert_int_eq(peer_finish(&p, rep_p, sizeof rep_p), 0);
    ck_assert_int_eq(peer_finish(&c, rep_c, sizeof rep_c), 0);
    ring_stats(i, &s);
    ck_assert_int_eq(pc.bad, 0);
    ck_assert_int_gt(pc.seen, 0);
    ck_assert_uint_eq(report_get(rep_c, "received"), n);
    ck_assert_uint_eq(report_get(rep_c, "bad_order"), 0);
    ck_assert_uint_eq(report_get(rep_c, "bad_sum"), 0);
    ck_assert_uint_eq(s.records_read, n);
    ck_assert_int_gt(rounds, 1);
    ring_close(i);
}
END_TEST

/* 100k rounds of: producer writes one record, waits until it is consumed; consumer sleeps
 * through its io_uring between records. A lost wake-up shows up as a 5 s wait timeout. */
static void check_no_lost_wakeup(const char *mech)
{
    const char *count = "100000";
    char name[128], rep_c[512], rep_p[512];
    ring_test_name(name, sizeof name, mech);
    ring_close(open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY));
    setenv("HERALD_DOORBELL", mech, 1);
    char *cargv[] = {"ring_peer", "consume",  name,        "--count", (char *)count,
                     "--wait",    "doorbell", "--timeout", "120",     NULL};
    char *pargv[] = {"ring_peer", "produce",    name,        "--count", (char *)count, "--batch",
                     "1",         "--pingpong", "--timeout", "120",     NULL};
    peer_t c = peer_start(cargv);
    peer_t p = peer_start(pargv);
    ck_assert_int_eq(peer_finish(&p, rep_p, sizeof rep_p), 0);
    ck_assert_int_eq(peer_finish(&c, rep_c, sizeof rep_c), 0);
    unsigned long long n = strtoull(count, NULL, 10);
    ck_assert_uint_eq(report_get(rep_c, "received"), n);
    ck_assert_uint_eq(report_get(rep_c, "bad_order"), 0);
    ck_assert_uint_eq(report_get(rep_c, "timeouts"), 0);
    ck_assert_msg(strstr(rep_c, mech) != NULL, "mechanism: %s", rep_c);
    /* the rounds really went through sleeps and doorbell rings (most of them when the machine
     * is quiet; a loaded machine lets the producer win some races) */
    ck_assert_uint_gt(report_get(rep_c, "sleeps"), n / 10);
    ck_assert_uint_gt(report_get(rep_p, "wakes"), n / 10);
}

START_TEST(doorbell_loses_no_wakeup_in_100k_rounds_uring_futex)
{
    if (!kernel_at_least(6, 7)) return;
    check_no_lost_wakeup("uring-futex");
}
END_TEST

START_TEST(doorbell_loses_no_wakeup_in_100k_rounds_thread)
{
    check_no_lost_wakeup("thread");
}
END_TEST

void ring_add_process_tests(TCase *tc)
{
    tcase_add_test(tc, doorbell_io_uring_futex_wait_delivers_wakeup);
    tcase_add_test(tc, doorbell_thread_fallback_delivers_wakeup);
    tcase_add_test(tc, ring_moves_ten_million_records_between_processes);
    tcase_add_test(tc, ring_consumer_restart_continues_at_published_head);
    tcase_add_test(tc, ring_inspector_reads_live_ring);
    tcase_add_test(tc, doorbell_loses_no_wakeup_in_100k_rounds_uring_futex);
    tcase_add_test(tc, doorbell_loses_no_wakeup_in_100k_rounds_thread);
}
