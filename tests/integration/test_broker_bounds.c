/* test_broker_bounds.c - herald-broker's bounds (protocol.md 12): a message_id reused for another
 * notification is refused (id_conflict, 409), idle users are forgotten without their seq
 * going back (also across restarts and compactions), publishes past broker.max_memory are
 * refused (over_capacity, 503) until memory is freed, and the journal keeps /dev/shm's last
 * free space, compacting instead of filling it. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bk_harness.h"
#include "broker.h"
#include "proto.h"
#include "users.h"

static bkh_t H;
static bkh_gw_t G;
static bool exit_hook;

static void cleanup(void)
{
    bkh_gw_free(&G);
    bkh_cleanup(&H);
}

static void start_with(const char *const *over, unsigned shm_mb)
{
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    H.shm_mb = shm_mb;
    ck_assert_msg(bkh_start(&H) == 0, "broker did not start (log %s)", H.logpath);
}

static herald_client_t *client(void)
{
    herald_error_t err;
    herald_client_t *c = herald_connect(H.sock, &err);
    ck_assert_msg(c != NULL, "connect: %s", err.message);
    return c;
}

/* A system_notice for user, with message id (NULL: none) and `content` bytes of content
 * (0: a short one) or the given text. */
static char *notice(const char *user, const char *id, size_t content, const char *text)
{
    size_t cap = content + 512;
    char *json = malloc(cap);
    ck_assert_ptr_nonnull(json);
    int n = snprintf(json, cap,
                     "{%s%s%s\"message_type\":\"system_notice\",\"user_id\":\"%s\","
                     "\"source\":\"test\",\"payload\":{\"title\":\"t\",\"level\":\"info\","
                     "\"content\":\"",
                     id ? "\"message_id\":\"" : "", id ? id : "", id ? "\"," : "", user);
    if (content) {
        memset(json + n, 'x', content);
        n += (int)content;
    } else {
        n += snprintf(json + n, cap - (size_t)n, "%s", text ? text : "c");
    }
    snprintf(json + n, cap - (size_t)n, "\"}}");
    return json;
}

static herald_result_t publish(herald_client_t *c, const char *user, const char *id, size_t content,
                               const char *text)
{
    char *json = notice(user, id, content, text);
    herald_result_t r = bkh_publish_json(c, json);
    free(json);
    return r;
}

static uint64_t seq_of(herald_client_t *c, const char *user)
{
    herald_result_t r = publish(c, user, NULL, 0, NULL);
    ck_assert_msg(r.ok, "%s: %s %s", user, r.error, r.message);
    return r.seq;
}

/* Wait (bounded) until the stat key reaches at least want. */
static void wait_stat(const char *key, uint64_t want, int timeout_s)
{
    time_t end = time(NULL) + timeout_s;
    uint64_t v;
    while ((v = bkh_stat(&H, key)) < want && time(NULL) < end)
        usleep(100000);
    ck_assert_msg(v >= want, "%s = %llu, waited for %llu", key, (unsigned long long)v,
                  (unsigned long long)want);
}

static size_t count_notify_for(const char *user)
{
    size_t n = 0;
    for (size_t i = 0; i < G.n; i++)
        n += G.recs[i].type == REC_NOTIFY && !strcmp(G.recs[i].user, user);
    return n;
}

static void open_session(uint64_t session, const char *user)
{
    size_t from = G.n;
    ck_assert_int_eq(bkh_gw_open(&G, session, user, 0), 0);
    ck_assert_int_ge(bkh_gw_wait_type(&G, from, REC_SESSION_READY, 5000), 0);
}

/* The last seq a new session of user is told (REC_SESSION_READY). */
static uint64_t session_last_seq(uint64_t session, const char *user)
{
    size_t from = G.n;
    ck_assert_int_eq(bkh_gw_open(&G, session, user, 0), 0);
    long i = bkh_gw_wait_type(&G, from, REC_SESSION_READY, 5000);
    ck_assert_int_ge(i, 0);
    uint64_t last = G.recs[i].last_seq;
    ck_assert_int_eq(bkh_gw_close(&G, session, user), 0);
    return last;
}

/* --- finding 7: dedup across users --- */

START_TEST(message_id_reused_for_another_user_type_or_payload_is_refused_409)
{
    start_with(NULL, 0);
    ck_assert_int_eq(bkh_gw_attach(&G, &H, 0), 0);
    open_session(1, "bob");
    open_session(2, "carol");
    herald_client_t *c = client();
    herald_result_t r = publish(c, "bob", "order-1", 0, "A");
    ck_assert(r.ok && !r.duplicate && r.seq == 1);
    r = publish(c, "carol", "order-1", 0, "A"); /* another user */
    ck_assert_msg(!r.ok && !strcmp(r.error, "id_conflict"), "carol: %s", r.error);
    ck_assert_uint_eq(r.seq, 0);              /* bob's seq is not told */
    r = publish(c, "bob", "order-1", 0, "B"); /* another payload */
    ck_assert(!r.ok && !strcmp(r.error, "id_conflict"));
    r = bkh_publish_json(c, "{\"message_id\":\"order-1\",\"message_type\":\"market_halt\","
                            "\"user_id\":\"bob\",\"payload\":{\"title\":\"t\",\"level\":\"info\","
                            "\"content\":\"A\"}}"); /* another type */
    ck_assert(!r.ok && !strcmp(r.error, "id_conflict"));
    r = publish(c, "bob", "order-1", 0, "A"); /* the same again: a duplicate */
    ck_assert(r.ok && r.duplicate && r.seq == 1);
    ck_assert_uint_eq(seq_of(c, "carol"), 1); /* carol's own first notification */

    /* in one batch, while the first is still queued */
    char *a = notice("dave", "batch-1", 0, "A"), *b = notice("erin", "batch-1", 0, "A");
    char body[2048];
    snprintf(body, sizeof body, "[%s,%s,%s]", a, b, a);
    free(a);
    free(b);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, body);
    herald_error_t err;
    ck_assert_int_eq(herald_send(c, (const uint8_t *)sb.data, sb.size, &err), 0);
    herald_result_t res[3];
    ck_assert_int_eq(herald_recv_results(c, res, 3, &err), 3);
    msgpack_sbuffer_destroy(&sb);
    ck_assert(res[0].ok && res[0].seq == 1);
    ck_assert(!res[1].ok && !strcmp(res[1].error, "id_conflict"));
    ck_assert(res[2].ok && res[2].duplicate && res[2].seq == 1);
    herald_close(c);

    /* HTTP: 409, no Retry-After (retrying cannot help) */
    char *json = notice("carol", "order-1", 0, "A");
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", json, strlen(json), &hr), 409);
    ck_assert_ptr_nonnull(strstr(hr.body, "\"error\":\"id_conflict\""));
    ck_assert_ptr_null(strcasestr(hr.headers, "retry-after"));
    bkh_http_free(&hr);
    close(fd);
    free(json);

    ck_assert_uint_eq(bkh_stat(&H, "id_conflicts"), 5);
    bkh_gw_collect(&G, 100, 500);
    ck_assert_uint_eq(count_notify_for("bob"), 1);
    ck_assert_uint_eq(count_notify_for("carol"), 1); /* only its own, not bob's order-1 */
}
END_TEST

/* --- finding 6: users forgotten, seq kept --- */

START_TEST(idle_users_are_forgotten_and_their_seq_never_goes_back)
{
    setenv("HERALD_TEST_JOURNAL_MIN_BOUND", "1048576", 1); /* compactions every ~1 MiB */
    const char *over[] = {"broker.history_age_s=1", "broker.history_size=5", NULL};
    start_with(over, 0);
    unsetenv("HERALD_TEST_JOURNAL_MIN_BOUND");
    ck_assert_int_eq(bkh_gw_attach(&G, &H, 0), 0);
    open_session(1, "kept"); /* a user with a session is never forgotten */
    herald_client_t *c = client();
    for (int i = 1; i <= 3; i++)
        ck_assert_uint_eq(seq_of(c, "u0"), (uint64_t)i);
    char user[32];
    for (int i = 1; i <= 20; i++) {
        snprintf(user, sizeof user, "u%d", i);
        ck_assert_uint_eq(seq_of(c, user), 1);
    }
    ck_assert_uint_eq(seq_of(c, "kept"), 1);
    ck_assert_uint_ge(bkh_stat(&H, "users"), 23);
    wait_stat("users_forgotten", 21, 15);
    ck_assert_uint_eq(bkh_stat(&H, "users"), 2); /* the broadcast user and "kept" */
    /* back again: on from where they were, not from 1 */
    ck_assert_uint_eq(seq_of(c, "u0"), 4);
    ck_assert_uint_eq(seq_of(c, "u2"), 2);
    ck_assert_uint_eq(seq_of(c, "kept"), 2);

    /* a compaction keeps the floors of the forgotten (their own records are gone) */
    uint64_t comp = bkh_stat(&H, "journal_compactions");
    for (int i = 0; i < 200 && bkh_stat(&H, "journal_compactions") == comp; i++)
        ck_assert(publish(c, "filler", NULL, 60000, NULL).ok);
    ck_assert_uint_gt(bkh_stat(&H, "journal_compactions"), comp);
    herald_close(c);
    bkh_stop(&H, SIGKILL);
    bkh_gw_free(&G);
    ck_assert_int_eq(bkh_start(&H), 0);
    c = client();
    ck_assert_uint_eq(seq_of(c, "u1"), 2);
    ck_assert_uint_eq(seq_of(c, "u3"), 2);
    herald_close(c);
}
END_TEST

/* A user created live in the slot of a forgotten one starts above the slot's floor, and
 * still does after a restart before any compaction (the floor was appended to the journal). */
START_TEST(floor_of_a_forgotten_user_survives_a_restart_without_compaction)
{
    const char *over[] = {"broker.history_age_s=1", NULL};
    start_with(over, 0);
    /* two ids in one floor slot */
    char other[32];
    uint32_t slot = bk_users_floor_slot("w", 1);
    int i = 0;
    for (; i < 10000000; i++) {
        snprintf(other, sizeof other, "x%d", i);
        if (bk_users_floor_slot(other, strlen(other)) == slot) break;
    }
    ck_assert_int_lt(i, 10000000);
    herald_client_t *c = client();
    for (int k = 1; k <= 5; k++)
        ck_assert_uint_eq(seq_of(c, "w"), (uint64_t)k);
    herald_close(c);
    wait_stat("users_forgotten", 1, 15);
    ck_assert_int_eq(bkh_gw_attach(&G, &H, 0), 0);
    ck_assert_uint_eq(session_last_seq(1, other), 5);
    bkh_stop(&H, SIGKILL);
    bkh_gw_free(&G);
    ck_assert_int_eq(bkh_start(&H), 0);
    ck_assert_int_eq(bkh_gw_attach(&G, &H, 0), 0);
    ck_assert_uint_eq(session_last_seq(2, other), 5);
    c = client();
    ck_assert_uint_eq(seq_of(c, other), 6);
    ck_assert_uint_eq(seq_of(c, "w"), 6);
    herald_close(c);
}
END_TEST

/* --- finding 6: memory bound --- */

START_TEST(memory_bound_refuses_with_over_capacity_503_then_recovers)
{
    const char *over[] = {"broker.max_memory=16M", "broker.history_size=100000",
                          "broker.history_age_s=2", NULL};
    start_with(over, 0);
    herald_client_t *c = client();
    herald_result_t r = {0};
    int accepted = 0;
    for (int i = 0; i < 2000; i++) {
        r = publish(c, "big", NULL, 60000, NULL);
        if (!r.ok) break;
        accepted++;
    }
    ck_assert_msg(!r.ok && !strcmp(r.error, "over_capacity"), "last answer %s", r.error);
    ck_assert_int_gt(accepted, 100);
    ck_assert_int_lt(accepted, 300); /* 16 MiB of 60 KB notifications, and not much more */
    ck_assert_uint_le(bkh_stat(&H, "memory_bytes"), (16u << 20) + 2 * 61000);
    r = publish(c, "small", NULL, 0, NULL); /* every publish, of any user */
    ck_assert(!r.ok && !strcmp(r.error, "over_capacity"));
    char *json = notice("web", NULL, 0, NULL);
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", json, strlen(json), &hr), 503);
    ck_assert_ptr_nonnull(strstr(hr.body, "\"error\":\"over_capacity\""));
    ck_assert_ptr_nonnull(strcasestr(hr.headers, "retry-after: 1"));
    bkh_http_free(&hr);
    close(fd);
    free(json);
    ck_assert_uint_ge(bkh_stat(&H, "over_capacity"), 3);
    /* the history ages out (the sweep trims it without traffic): publishes work again */
    time_t end = time(NULL) + 20;
    do {
        usleep(200000);
        r = publish(c, "small", NULL, 0, NULL);
    } while (!r.ok && time(NULL) < end);
    ck_assert_msg(r.ok, "still refused: %s", r.error);
    ck_assert_uint_lt(bkh_stat(&H, "memory_bytes"), 8u << 20);
    herald_close(c);
}
END_TEST

START_TEST(max_memory_below_what_the_dedup_window_needs_is_refused_at_start)
{
    const char *over[] = {"broker.max_memory=16M", "broker.dedup_window=1000000", NULL};
    if (!exit_hook) {
        atexit(cleanup);
        exit_hook = true;
    }
    bkh_init(&H, over);
    ck_assert_int_ne(bkh_start(&H), 0);
    int st = procs_reap(H.pid, 10000);
    H.pid = 0;
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    FILE *f = fopen(H.logpath, "r");
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_msg(strstr(text, "broker.max_memory") && strstr(text, "broker.dedup_window"), "%s",
                  text);
}
END_TEST

/* --- finding 6: /dev/shm --- */

START_TEST(journal_keeps_dev_shm_free_and_compacts_instead_of_filling_it)
{
    if (!bkh_private_shm_ok()) TEST_SKIP("needs root and unshare for a private /dev/shm");
    /* 64 MiB of /dev/shm (4 MiB kept free), 1 MiB rings; a user history of up to 100 big
     * notifications (6 MiB) that the journal, at 4x the live state, would grow past */
    const char *over[] = {"broker.history_size=100", NULL};
    start_with(over, 64);
    herald_client_t *c = client();
    int refused = 0;
    for (int i = 0; i < 2500; i++) {
        herald_result_t r = publish(c, "heavy", NULL, 60000, NULL);
        if (!r.ok) {
            ck_assert_msg(!strcmp(r.error, "io_error"), "refused with %s", r.error);
            refused++;
        }
    }
    /* ~150 MiB went through a 64 MiB /dev/shm: compactions made the room, none failed */
    ck_assert_uint_ge(bkh_stat(&H, "journal_compactions"), 2);
    ck_assert_int_eq(refused, 0);
    ck_assert_uint_eq(bkh_stat(&H, "journal_errors"), 0);
    FILE *f = fopen(H.logpath, "r");
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_ptr_nonnull(strstr(text, "compacted instead of growing"));
    ck_assert_uint_eq(seq_of(c, "heavy"), 2501);
    herald_close(c);
    /* (the private /dev/shm goes with the broker's mount namespace: no restart here; the
     * compaction itself is the one compaction_then_restart_keeps_seq_history_and_dedup
     * restarts from, in test_journal) */
}
END_TEST

static Suite *bounds_suite(void)
{
    Suite *s = suite_create("broker_bounds");
    TCase *t = tcase_create("bounds");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t, message_id_reused_for_another_user_type_or_payload_is_refused_409);
    tcase_add_test(t, idle_users_are_forgotten_and_their_seq_never_goes_back);
    tcase_add_test(t, floor_of_a_forgotten_user_survives_a_restart_without_compaction);
    tcase_add_test(t, memory_bound_refuses_with_over_capacity_503_then_recovers);
    tcase_add_test(t, max_memory_below_what_the_dedup_window_needs_is_refused_at_start);
    tcase_add_test(t, journal_keeps_dev_shm_free_and_compacts_instead_of_filling_it);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(bounds_suite());
}
