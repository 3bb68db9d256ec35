/* test_bench_e2e.c - herald-bench e2e against a herald it starts itself: it accounts for
 * every notification, reports one JSON line, and leaves no process, shm object or dir. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "check_run.h"

static const char *bench_path; /* argv[1]: the herald-bench executable */

/* Run herald-bench with args; its stdout goes to out (NUL-terminated). Returns the exit
 * status; *pid receives the bench's pid (its shm prefix is hbench<pid>). */
static int run_bench(char *const args[], char *out, size_t outlen, pid_t *pid)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    *pid = fork();
    ck_assert_int_ge(*pid, 0);
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bench_path, args);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while ((got = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int st;
    ck_assert_int_eq(waitpid(*pid, &st, 0), *pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run herald-bench with args, expecting exit 0 and a JSON report first on its stdout (the
 * readable table follows it). Returns the report; *pid as in run_bench. */
static json_t *bench_report(char *const args[], pid_t *pid)
{
    static char out[1 << 16];
    int rc = run_bench(args, out, sizeof out, pid);
    ck_assert_msg(rc == 0, "herald-bench exited %d: %s", rc, out);
    json_error_t jerr;
    json_t *rep = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    ck_assert_msg(rep != NULL, "no JSON report (%s): %s", jerr.text, out);
    return rep;
}

static long long get_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "report has no integer \"%s\"", key);
    return json_integer_value(v);
}

/* No /dev/shm object left with the bench's prefix. */
static int shm_left(pid_t pid)
{
    char prefix[32];
    int left = 0;
    struct dirent *e;
    snprintf(prefix, sizeof prefix, "hbench%d.", (int)pid);
    DIR *d = opendir("/dev/shm");
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) left++;
    if (d) closedir(d);
    return left;
}

/* One run with 30 sessions of 10 users (each notification owed to 3 sessions) on the
 * receiver chosen by receiver_flag (NULL: the default, lean one). */
static void check_full_delivery(char *receiver_flag)
{
    char *const args[] = {"herald-bench", "e2e",  "-S",          "30",    "--users",    "10",
                          "-M",           "3000", "--rate",      "20000", "--gateways", "2",
                          "--timeout",    "60",   receiver_flag, NULL};
    pid_t pid;
    json_t *rep = bench_report(args, &pid);
    ck_assert_int_eq(get_int(rep, "sent"), 3000);
    ck_assert_int_eq(get_int(rep, "acked"), 3000);
    ck_assert_int_eq(get_int(rep, "expected"), 9000);
    ck_assert_int_eq(get_int(rep, "received"), 9000);
    ck_assert_int_eq(get_int(rep, "lost"), 0);
    ck_assert_int_eq(get_int(rep, "duplicates"), 0);
    ck_assert_int_eq(get_int(rep, "out_of_order"), 0);
    json_t *lat = json_object_get(rep, "latency_us");
    long long total = 0;
    for (int p = 0; p < 4; p++) {
        char key[4];
        snprintf(key, sizeof key, "P%d", p);
        total += get_int(json_object_get(lat, key), "count");
    }
    ck_assert_int_eq(total, 9000);
    ck_assert_int_eq((int)json_array_size(json_object_get(rep, "procs")), 3);
    json_decref(rep);
    ck_assert_int_eq(shm_left(pid), 0);
}

START_TEST(bench_e2e_delivers_every_notification_to_every_session_and_cleans_up)
{
    check_full_delivery(NULL);
}
END_TEST

/* The libwebsockets receiver (--lws) is the cross-check of the lean one. */
START_TEST(bench_e2e_lws_receiver_counts_the_same_deliveries)
{
    check_full_delivery("--lws");
}
END_TEST

/* --ack-share with --acks: the margin calls are acknowledged (the receivers answer every
 * one); --slow-readers: slow sessions that get conflated position updates stay open and
 * account for every update, delivered or named conflated. The measured sessions see no
 * loss either way. */
START_TEST(bench_e2e_acks_and_slow_readers_are_accounted_for)
{
    char *const args[] = {"herald-bench",
                          "e2e",
                          "-S",
                          "20",
                          "-M",
                          "4000",
                          "--rate",
                          "2000",
                          "--ack-share",
                          "20",
                          "--acks",
                          "--slow-readers",
                          "2",
                          "--slow-rate",
                          "4000",
                          "-o",
                          "gateway.max_pending_bytes=64K",
                          "--timeout",
                          "60",
                          NULL};
    pid_t pid;
    json_t *rep = bench_report(args, &pid);
    ck_assert_int_eq(get_int(rep, "received"), 4000);
    ck_assert_int_eq(get_int(rep, "lost"), 0);
    long long acks = get_int(rep, "acks_sent");
    ck_assert_msg(acks > 400 && acks < 1200, "about 20 %% acked: %lld", acks);
    json_t *slow = json_object_get(rep, "slow_readers");
    ck_assert_ptr_nonnull(slow);
    ck_assert_int_eq(get_int(slow, "alive"), 2);
    ck_assert_int_eq(get_int(slow, "closed"), 0);
    ck_assert_int_eq(get_int(slow, "unaccounted"), 0);
    ck_assert_int_gt(get_int(slow, "conflated_seqs"), 0);
    ck_assert_int_eq(get_int(slow, "notifications") + get_int(slow, "conflated_seqs"),
                     get_int(slow, "published"));
    json_decref(rep);
    ck_assert_int_eq(shm_left(pid), 0);
}
END_TEST

/* herald-bench floor, each mode with small counts: one JSON report whose figures are
 * present and positive, and no child process left behind. */
static json_t *run_floor(char *const args[])
{
    pid_t pid;
    json_t *rep = bench_report(args, &pid);
    char probe[64];
    snprintf(probe, sizeof probe, "pgrep -P %d >/dev/null", (int)pid);
    ck_assert_msg(system(probe) != 0, "a child of herald-bench floor is still running");
    return rep;
}

static double get_num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_number(v), "report has no number \"%s\"", key);
    return json_number_value(v);
}

START_TEST(bench_floor_reports_each_measure)
{
    char *const wake[] = {"herald-bench", "floor", "--mode",   "wake", "--hops", "3",
                          "--count",      "200",   "--gap-us", "100",  NULL};
    json_t *r = run_floor(wake);
    ck_assert_int_eq(get_int(r, "hops"), 3);
    ck_assert(get_num(r, "p50_us") > 0 && get_num(r, "p99_us") >= get_num(r, "p50_us"));
    json_decref(r);
    char *const http1[] = {"herald-bench", "floor", "--mode",     "http1", "--count", "2000",
                           "--runs",       "1",     "--pipeline", "4",     NULL};
    r = run_floor(http1);
    ck_assert(get_num(r, "median_per_s") > 0);
    ck_assert(get_num(r, "responder_cpu_us_per_request") >= 0);
    json_decref(r);
    char *const fanout[] = {"herald-bench", "floor", "--mode",  "fanout", "--sessions", "50",
                            "--rate",       "5000",  "--count", "2000",   NULL};
    r = run_floor(fanout);
    ck_assert_int_eq(get_int(r, "sessions"), 50);
    ck_assert(get_num(r, "sender_cpu_us_per_send") > 0);
    json_decref(r);
}
END_TEST

START_TEST(bench_floor_refuses_an_unknown_mode)
{
    static char out[256];
    pid_t pid;
    char *const args[] = {"herald-bench", "floor", "--mode", "nope", NULL};
    ck_assert_int_eq(run_bench(args, out, sizeof out, &pid), 2);
}
END_TEST

START_TEST(bench_e2e_refuses_more_users_than_sessions)
{
    static char out[4096];
    char *const args[] = {"herald-bench", "e2e", "-S", "2", "--users", "3", "-M", "10", NULL};
    pid_t pid;
    ck_assert_int_eq(run_bench(args, out, sizeof out, &pid), 1);
    ck_assert_str_eq(out, "");
}
END_TEST

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_bench_e2e HERALD_BENCH\n");
        return EXIT_FAILURE;
    }
    bench_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("bench_e2e");
    TCase *tc = tcase_create("bench_e2e");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, bench_e2e_delivers_every_notification_to_every_session_and_cleans_up);
    tcase_add_test(tc, bench_e2e_lws_receiver_counts_the_same_deliveries);
    tcase_add_test(tc, bench_e2e_refuses_more_users_than_sessions);
    tcase_add_test(tc, bench_e2e_acks_and_slow_readers_are_accounted_for);
    tcase_add_test(tc, bench_floor_reports_each_measure);
    tcase_add_test(tc, bench_floor_refuses_an_unknown_mode);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
