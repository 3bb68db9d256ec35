/* test_log.c - log line format, levels, HERALD_LOG override and the rate limiter. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "log.h"

static int saved_stderr = -1;
static int pipe_rd = -1;

/* Point stderr at a pipe until capture_end, which returns what was written. */
static void capture_begin(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    pipe_rd = p[0];
}

static size_t capture_end(char *buf, size_t cap)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    ssize_t n = read(pipe_rd, buf, cap - 1);
    close(pipe_rd);
    if (n < 0) n = 0;
    buf[n] = '\0';
    return (size_t)n;
}

static void setup(void)
{
    unsetenv("HERALD_LOG");
    log_threshold = LOG_INFO;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "\"%s\" does not match %s", text, pattern);
}

#define TS "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

START_TEST(log_line_has_timestamp_level_process_and_gateway_id)
{
    char out[4096];
    log_init("gateway", 1);
    capture_begin();
    log_info("session %d opened for %s", 42, "u1");
    capture_end(out, sizeof out);
    assert_matches(out, TS "INFO gateway\\[1\\]: session 42 opened for u1\n$");

    log_init("broker", -1);
    capture_begin();
    log_error("gateway %d died (pid %d)", 0, 123);
    capture_end(out, sizeof out);
    assert_matches(out, TS "ERROR broker: gateway 0 died \\(pid 123\\)\n$");
}
END_TEST

START_TEST(log_level_parse_knows_the_four_levels)
{
    ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
    ck_assert_int_eq(log_level_parse("info"), LOG_INFO);
    ck_assert_int_eq(log_level_parse("warn"), LOG_WARN);
    ck_assert_int_eq(log_level_parse("error"), LOG_ERROR);
    ck_assert_int_eq(log_level_parse("INFO"), -1);
    ck_assert_int_eq(log_level_parse("warning"), -1);
    ck_assert_int_eq(log_level_parse(""), -1);
    ck_assert_int_eq(log_level_parse(NULL), -1);
}
END_TEST

START_TEST(log_drops_lines_below_the_threshold)
{
    char out[4096];
    log_init("broker", -1);
    log_set_level(LOG_WARN);
    capture_begin();
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
    capture_end(out, sizeof out);
    assert_matches(out, TS "WARN broker: w\n[^\n]+ERROR broker: e\n$");
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(log_enabled(LOG_ERROR));
}
END_TEST

START_TEST(log_herald_log_env_overrides_the_configured_level)
{
    setenv("HERALD_LOG", "debug", 1);
    log_set_level(LOG_ERROR);
    ck_assert_int_eq(log_threshold, LOG_DEBUG);
    setenv("HERALD_LOG", "error", 1);
    log_init("broker", -1);
    ck_assert_int_eq(log_threshold, LOG_ERROR);
    setenv("HERALD_LOG", "nonsense", 1);
    log_set_level(LOG_WARN);
    ck_assert_int_eq(log_threshold, LOG_WARN);
    unsetenv("HERALD_LOG");
    log_set_level(LOG_INFO);
    ck_assert_int_eq(log_threshold, LOG_INFO);
}
END_TEST

START_TEST(log_replaces_control_characters_and_bounds_long_lines)
{
    char out[8192];
    log_init("broker", -1);
    capture_begin();
    log_warn("bad user %s", "u1\nFAKE ERROR line");
    capture_end(out, sizeof out);
    assert_matches(out, TS "WARN broker: bad user u1\\?FAKE ERROR line\n$");

    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    capture_begin();
    log_info("%s", big);
    size_t n = capture_end(out, sizeof out);
    ck_assert_uint_lt(n, 4096); /* one atomic pipe write */
    ck_assert_int_eq(out[n - 1], '\n');
    ck_assert_mem_eq(out + n - 4, "...", 3);
    ck_assert_ptr_eq(strchr(out, '\n'), out + n - 1);
}
END_TEST

START_TEST(log_keeps_errno)
{
    char out[256];
    capture_begin();
    errno = 1234;
    log_info("x");
    ck_assert_int_eq(errno, 1234);
    capture_end(out, sizeof out);
}
END_TEST

/* Not timing-based: a run that crosses a second boundary is retried (bounded). */
START_TEST(log_ratelimit_allows_per_sec_within_one_window)
{
    int tries = 0;
    for (; tries < 20; tries++) {
        log_ratelimit_t rl = {0};
        unsigned ok = log_ratelimit_ok(&rl, 10);
        long first = rl.window_s;
        for (int i = 1; i < 30; i++)
            ok += log_ratelimit_ok(&rl, 10);
        ck_assert_uint_ge(ok, 10);
        if (rl.window_s == first) { /* all 30 calls fell in one window */
            ck_assert_uint_eq(ok, 10);
            ck_assert_uint_eq(rl.suppressed, 20);
            break;
        }
    }
    ck_assert_int_lt(tries, 20);
}
END_TEST

START_TEST(log_ratelimit_opens_again_in_a_new_window)
{
    log_ratelimit_t rl = {0};
    while (log_ratelimit_ok(&rl, 3)) {
    }
    unsigned long suppressed = rl.suppressed;
    ck_assert_uint_ge(suppressed, 1);
    rl.window_s -= 5; /* as if the window were five seconds old */
    ck_assert(log_ratelimit_ok(&rl, 3));
    ck_assert_uint_eq(rl.suppressed, suppressed);
    log_ratelimit_t none = {0};
    ck_assert(!log_ratelimit_ok(&none, 0));
    ck_assert_uint_eq(none.suppressed, 1);
}
END_TEST

/* protocol.md 12 / finding 9: a flood of one complaint costs one line per window, with a count. */
START_TEST(log_folds_identical_lines_into_a_count)
{
    char out[8192];
    log_init("gateway", 0);
    capture_begin();
    for (int i = 0; i < 1000; i++)
        log_info("handshake refused: %s", "bad signature");
    log_warn("something else");
    capture_end(out, sizeof out);
    assert_matches(out, TS "INFO gateway\\[0\\]: handshake refused: bad signature\n"
                           "[^\n]+INFO gateway\\[0\\]: handshake refused: bad signature "
                           "\\(repeated 999 times\\)\n"
                           "[^\n]+WARN gateway\\[0\\]: something else\n$");
    /* the same text at another level is another line (the repeat before it is told) */
    capture_begin();
    log_warn("something else");
    log_error("something else");
    capture_end(out, sizeof out);
    assert_matches(out, TS "WARN gateway\\[0\\]: something else \\(repeated 1 time\\)\n"
                           "[^\n]+ERROR gateway\\[0\\]: something else\n$");
}
END_TEST

START_TEST(log_repeats_are_reported_again_after_the_window)
{
    char out[8192];
    log_init("broker", -1);
    log_repeat_window_s = 0; /* every repeat is past the window */
    capture_begin();
    log_info("x");
    log_info("x");
    log_info("y");
    capture_end(out, sizeof out);
    log_repeat_window_s = LOG_REPEAT_WINDOW_S;
    assert_matches(out, TS "INFO broker: x\n[^\n]+INFO broker: x\n[^\n]+INFO broker: y\n$");
    capture_begin();
    log_info("z");
    log_info("z");
    log_info("z");
    log_repeat_window_s = 0;
    log_info("z"); /* the window is over: it, with the two folded before */
    log_repeat_window_s = LOG_REPEAT_WINDOW_S;
    capture_end(out, sizeof out);
    assert_matches(out, TS "INFO broker: z\n[^\n]+INFO broker: z \\(repeated 3 times\\)\n$");
}
END_TEST

START_TEST(log_ratelimit_take_counts_the_refusals_since_it_was_last_asked)
{
    log_ratelimit_t rl = {0};
    while (log_ratelimit_ok(&rl, 2)) {
    }
    log_ratelimit_ok(&rl, 2);
    ck_assert_uint_ge(log_ratelimit_take(&rl), 2);
    ck_assert_uint_eq(log_ratelimit_take(&rl), 0);
    ck_assert_uint_ge(rl.suppressed, 2); /* the total stays */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, log_line_has_timestamp_level_process_and_gateway_id);
    tcase_add_test(tc, log_level_parse_knows_the_four_levels);
    tcase_add_test(tc, log_drops_lines_below_the_threshold);
    tcase_add_test(tc, log_herald_log_env_overrides_the_configured_level);
    tcase_add_test(tc, log_replaces_control_characters_and_bounds_long_lines);
    tcase_add_test(tc, log_keeps_errno);
    tcase_add_test(tc, log_ratelimit_allows_per_sec_within_one_window);
    tcase_add_test(tc, log_ratelimit_opens_again_in_a_new_window);
    tcase_add_test(tc, log_folds_identical_lines_into_a_count);
    tcase_add_test(tc, log_repeats_are_reported_again_after_the_window);
    tcase_add_test(tc, log_ratelimit_take_counts_the_refusals_since_it_was_last_asked);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
