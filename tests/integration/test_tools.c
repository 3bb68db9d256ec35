/* test_tools.c - heraldctl as an operator runs it: exit codes, one-line errors, tokens,
 * sharding, and read-only ring inspection of a ring this test produces itself; and what
 * herald-supervisor decides before it starts anything (config, lock, binaries). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "procs.h"
#include "jwt.h"
#include "model.h"
#include "proto.h"
#include "ring.h"
#include "shard.h"

#define SECRET "test-secret-for-heraldctl"

static char ctl_bin[512], sup_bin[512];
static char tmpdir[256], cfgpath[300], prefix[64];

/* Run argv to completion (bounded: 30 s, then SIGKILL) capturing stdout and stderr. */
static void run_cmd(procs_output_t *r, const char *const *argv)
{
    procs_run(argv, r, 30);
}

/* heraldctl -c <test config> args... */
#define CTL(r, ...) run_cmd(r, (const char *const[]){ctl_bin, "-c", cfgpath, __VA_ARGS__, NULL})

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A failure is exit 1, nothing on stdout, exactly one line on stderr. */
static void assert_one_line_failure(const procs_output_t *r)
{
    ck_assert_msg(r->rc == 1, "exit %d, stderr: %s", r->rc, r->err);
    ck_assert_int_eq(count_lines(r->err), 1);
    ck_assert_msg(strncmp(r->err, "heraldctl: ", 11) == 0, "stderr: %s", r->err);
}

static void setup(void)
{
    const char *build = getenv("HERALD_BUILD_ROOT");
    snprintf(ctl_bin, sizeof ctl_bin, "%s/tools/heraldctl/heraldctl", build ? build : "build");
    snprintf(sup_bin, sizeof sup_bin, "%s/tools/supervisor/herald-supervisor",
             build ? build : "build");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/herald-test-tools-%d", (int)getpid());
    snprintf(prefix, sizeof prefix, "htools%d", (int)getpid());
    snprintf(cfgpath, sizeof cfgpath, "%s/herald.ini", tmpdir);
    mkdir(tmpdir, 0700);
    FILE *f = fopen(cfgpath, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "[runtime]\ndir = %s/run\nshm_prefix = %s\n[gateway]\ncount = 3\n"
            "listen = 127.0.0.1:17500\n[auth]\nsecret = %s\n",
            tmpdir, prefix, SECRET);
    fclose(f);
}

/* Verify tok like a gateway configured with secret (and aud/iss when given) would at now:
 * exp required, no leeway. Returns jwt_verify's result; the user goes to user. */
static int tok_verify(const char *secret, const char *aud, const char *iss, const char *tok,
                      uint64_t now, char *user)
{
    herald_config_t cfg;
    jwt_policy_t p;
    jwt_claims_t c;
    herald_error_t err;
    config_defaults(&cfg);
    snprintf(cfg.auth_secret, sizeof cfg.auth_secret, "%s", secret);
    snprintf(cfg.auth_audience, sizeof cfg.auth_audience, "%s", aud ? aud : "");
    snprintf(cfg.auth_issuer, sizeof cfg.auth_issuer, "%s", iss ? iss : "");
    cfg.auth_leeway_s = 0;
    ck_assert_int_eq(jwt_policy_init(&p, &cfg, &err), 0);
    int rc = jwt_verify(&p, tok, strlen(tok), now, &c, &err);
    if (rc == 0) strcpy(user, c.sub);
    return rc;
}

static void teardown(void)
{
    char name[128];
    for (unsigned i = 0; i < 4; i++) {
        ring_name(name, sizeof name, prefix, i);
        ring_unlink(name);
    }
    char path[400];
    static const char *const files[] = {"supervisor.lock", "supervisor.pid", "status.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/run/%s", tmpdir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/run", tmpdir);
    rmdir(path);
    unlink(cfgpath);
    rmdir(tmpdir);
}

START_TEST(ctl_token_verifies_with_the_configured_secret)
{
    static procs_output_t r;
    char user[HERALD_MAX_ID_LEN + 1];
    CTL(&r, "token", "--user", "alice");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 1);
    r.out[strcspn(r.out, "\n")] = '\0';
    uint64_t now = (uint64_t)time(NULL);
    ck_assert_int_eq(tok_verify(SECRET, NULL, NULL, r.out, now, user), 0);
    ck_assert_str_eq(user, "alice");
    /* expired after the default ttl of one hour, not before: it carries exp */
    ck_assert_int_eq(tok_verify(SECRET, NULL, NULL, r.out, now + 3500, user), 0);
    ck_assert_int_ne(tok_verify(SECRET, NULL, NULL, r.out, now + 3700, user), 0);
    ck_assert_int_ne(tok_verify("other", NULL, NULL, r.out, now, user), 0);
}
END_TEST

START_TEST(ctl_token_json_and_ttl_work_after_the_subcommand_arguments)
{
    static procs_output_t r;
    char user[HERALD_MAX_ID_LEN + 1];
    run_cmd(&r, (const char *const[]){ctl_bin, "token", "--user", "bob", "--ttl", "60", "--json",
                                      "-c", cfgpath, NULL});
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    json_t *v = json_loads(r.out, 0, NULL);
    ck_assert_ptr_nonnull(v);
    const char *tok = json_string_value(json_object_get(v, "token"));
    ck_assert_ptr_nonnull(tok);
    ck_assert_str_eq(json_string_value(json_object_get(v, "user")), "bob");
    uint64_t now = (uint64_t)time(NULL);
    ck_assert_int_eq(tok_verify(SECRET, NULL, NULL, tok, now, user), 0);
    ck_assert_int_ne(tok_verify(SECRET, NULL, NULL, tok, now + 120, user), 0);
    json_decref(v);
}
END_TEST

/* aud and iss come from auth.audience / auth.issuer, or from --aud / --iss; the token is
 * signed with auth.secret, never with a previous secret. */
START_TEST(ctl_token_carries_the_configured_audience_and_issuer)
{
    static procs_output_t r;
    char user[HERALD_MAX_ID_LEN + 1];
    uint64_t now;
    CTL(&r, "-o", "auth.audience=herald-web", "-o", "auth.issuer=accounts", "-o",
        "auth.previous_secrets=old-secret", "token", "--user", "carol");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    r.out[strcspn(r.out, "\n")] = '\0';
    now = (uint64_t)time(NULL); /* after the mint: iat is checked without leeway here */
    ck_assert_int_eq(tok_verify(SECRET, "herald-web", "accounts", r.out, now, user), 0);
    ck_assert_str_eq(user, "carol");
    ck_assert_int_ne(tok_verify(SECRET, "other-aud", "accounts", r.out, now, user), 0);
    ck_assert_int_ne(tok_verify(SECRET, "herald-web", "other-iss", r.out, now, user), 0);
    ck_assert_int_ne(tok_verify("old-secret", "herald-web", "accounts", r.out, now, user), 0);
    CTL(&r, "token", "--user", "carol", "--aud", "a2", "--iss", "i2");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    r.out[strcspn(r.out, "\n")] = '\0';
    now = (uint64_t)time(NULL);
    ck_assert_int_eq(tok_verify(SECRET, "a2", "i2", r.out, now, user), 0);
    CTL(&r, "token", "--user", "carol", "--nbf", "4000000000");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    r.out[strcspn(r.out, "\n")] = '\0';
    now = (uint64_t)time(NULL);
    ck_assert_int_ne(tok_verify(SECRET, NULL, NULL, r.out, now, user), 0);
}
END_TEST

START_TEST(ctl_shard_matches_shard_gateway_and_its_url)
{
    static const char *const users[] = {"alice", "bob", "carol", "u-1234", "trader.42"};
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        static procs_output_t r;
        char url[64];
        CTL(&r, "--json", "shard", users[i]);
        ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
        json_t *v = json_loads(r.out, 0, NULL);
        ck_assert_ptr_nonnull(v);
        unsigned g = shard_gateway(users[i], strlen(users[i]), 3);
        snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", 17500 + g);
        ck_assert_int_eq(json_integer_value(json_object_get(v, "gateway")), g);
        ck_assert_str_eq(json_string_value(json_object_get(v, "url")), url);
        ck_assert_str_eq(json_string_value(json_object_get(v, "user")), users[i]);
        json_decref(v);
        CTL(&r, "shard", users[i], "-o", "gateway.count=1");
        ck_assert_str_eq(r.out, "gateway 0 ws://127.0.0.1:17500/ws\n");
        /* with TLS on the gateways the URL says wss:// */
        CTL(&r, "shard", users[i], "-o", "gateway.count=1", "-o", "gateway.tls_cert=/etc/c.pem",
            "-o", "gateway.tls_key=/etc/k.pem");
        ck_assert_str_eq(r.out, "gateway 0 wss://127.0.0.1:17500/ws\n");
    }
}
END_TEST

START_TEST(ctl_bad_arguments_exit_1_with_one_line)
{
    static procs_output_t r;
    run_cmd(&r, (const char *const[]){ctl_bin, "-c", cfgpath, NULL});
    assert_one_line_failure(&r);
    CTL(&r, "frobnicate");
    assert_one_line_failure(&r);
    CTL(&r, "token");
    assert_one_line_failure(&r);
    CTL(&r, "token", "--user", "a", "--ttl", "soon");
    assert_one_line_failure(&r);
    CTL(&r, "token", "--user", "a", "--ttl", "0");
    assert_one_line_failure(&r);
    CTL(&r, "token", "--usr", "a");
    assert_one_line_failure(&r);
    CTL(&r, "shard");
    assert_one_line_failure(&r);
    CTL(&r, "shard", "a", "b");
    assert_one_line_failure(&r);
    CTL(&r, "ring");
    assert_one_line_failure(&r);
    CTL(&r, "ring", "0", "--peek");
    assert_one_line_failure(&r);
    CTL(&r, "publish", "--user", "a");
    assert_one_line_failure(&r);
    CTL(&r, "publish", "--user", "a", "--type", "order_expired", "--payload", "{not json");
    assert_one_line_failure(&r);
    CTL(&r, "-o", "gateway.nonsense=1", "token", "--user", "a");
    assert_one_line_failure(&r);
    ck_assert_ptr_nonnull(strstr(r.err, "gateway.nonsense"));
    run_cmd(&r, (const char *const[]){ctl_bin, "-c", "/nonexistent/herald.ini", "token", "--user",
                                      "a", NULL});
    assert_one_line_failure(&r);
}
END_TEST

/* A loopback port that refuses connections: bound (so nobody else takes it and no connect
 * can self-connect to it) but not listening. Returns the socket; *port gets the port. */
static int refusing_port(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

START_TEST(ctl_unreachable_broker_exits_1_with_one_line)
{
    static procs_output_t r;
    char http[64];
    unsigned port;
    int fd = refusing_port(&port);
    snprintf(http, sizeof http, "broker.http=127.0.0.1:%u", port);
    CTL(&r, "publish", "--user", "a", "--type", "order_expired");
    assert_one_line_failure(&r);
    ck_assert_ptr_nonnull(strstr(r.err, "broker.sock"));
    CTL(&r, "stats", "-o", http);
    assert_one_line_failure(&r);
    ck_assert_ptr_nonnull(strstr(r.err, "broker unreachable"));
    CTL(&r, "--json", "stats", "-o", http);
    assert_one_line_failure(&r);
    CTL(&r, "cluster", "-o", http);
    assert_one_line_failure(&r);
    ck_assert_ptr_nonnull(strstr(r.err, "broker unreachable"));
    CTL(&r, "status");
    assert_one_line_failure(&r);
    close(fd);
}
END_TEST

/* The ring this test produces: session_ready, one notification, a gap. */
static ring_t *make_ring(void)
{
    char name[128];
    ring_t *r;
    herald_error_t err = {0};
    ring_name(name, sizeof name, prefix, 1);
    ck_assert_int_eq(ring_open(&r, name, RING_PRODUCER, 65536, 1, &err), 0);

    rec_session_ready_t sr = {.session = 42, .last_seq = 6, .bcast_last_seq = 3};
    ck_assert_int_eq(ring_write(r, REC_SESSION_READY, &sr, sizeof sr), 0);

    notif_t n = {.type = model_type_find("order_expired", 13),
                 .priority = 3,
                 .has_priority = true,
                 .has_timestamp = true,
                 .timestamp = 1764000000000000000ull,
                 .seq = 7};
    snprintf(n.message_id, sizeof n.message_id, "m-1");
    snprintf(n.user_id, sizeof n.user_id, "alice");
    snprintf(n.source, sizeof n.source, "MatchingEngine");
    n.payload.type = MSGPACK_OBJECT_MAP;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    ck_assert_int_gt(codec_encode(&n, &sb, NULL), 0);
    ck_assert_int_eq(ring_write(r, REC_NOTIFY, sb.data, (uint32_t)sb.size), 0);
    msgpack_sbuffer_destroy(&sb);

    char gap[sizeof(rec_range_t) + 5];
    rec_range_t rg = {.session = 0, .from = 2, .to = 5};
    memcpy(gap, &rg, sizeof rg);
    memcpy(gap + sizeof rg, "alice", 5);
    ck_assert_int_eq(ring_write(r, REC_GAP, gap, sizeof gap), 0);
    ring_publish(r);
    return r;
}

START_TEST(ctl_rings_shows_a_ring_without_disturbing_it)
{
    static procs_output_t r;
    static uint8_t before[RING_HEADER_BYTES];
    ring_t *ring = make_ring();
    ring_stats_t s;
    ring_stats(ring, &s);
    memcpy(before, ring_header(ring), sizeof before);

    CTL(&r, "rings", "--json");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    json_t *v = json_loads(r.out, 0, NULL);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(json_array_size(v), 1);
    json_t *g = json_array_get(v, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "gateway")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "capacity")), (json_int_t)s.capacity);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "pending_records")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "used_bytes")),
                     (json_int_t)s.used_bytes);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "records_written")),
                     (json_int_t)s.records_written);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "records_read")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(g, "producer_pid")), getpid());
    ck_assert_str_eq(json_string_value(json_object_get(g, "producer")), "alive");
    ck_assert_str_eq(json_string_value(json_object_get(g, "consumer")), "none");
    json_decref(v);

    CTL(&r, "rings");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 2);

    ck_assert_mem_eq(before, ring_header(ring), sizeof before);
    ring_close(ring);
}
END_TEST

START_TEST(ctl_ring_peek_decodes_pending_records_read_only)
{
    static procs_output_t r;
    static uint8_t before[RING_HEADER_BYTES];
    ring_t *ring = make_ring();
    memcpy(before, ring_header(ring), sizeof before);

    CTL(&r, "ring", "1", "--peek", "10");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 4); /* the header, then one line per record */
    char *save = NULL, *line = strtok_r(r.out, "\n", &save);
    ck_assert_msg(strstr(line, "ring 1 (/dev/shm/") == line, "header: %s", line);
    ck_assert_ptr_nonnull(strstr(line, "3 pending"));
    line = strtok_r(NULL, "\n", &save);
    json_t *v = json_loads(line, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(v, "record")), "session_ready");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "session")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "last_seq")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "bcast_last_seq")), 3);
    json_decref(v);
    v = json_loads(strtok_r(NULL, "\n", &save), 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(v, "record")), "notify");
    json_t *n = json_object_get(v, "notification");
    ck_assert_int_eq(json_integer_value(json_object_get(n, "seq")), 7);
    ck_assert_str_eq(json_string_value(json_object_get(n, "message_id")), "m-1");
    ck_assert_str_eq(json_string_value(json_object_get(n, "user_id")), "alice");
    ck_assert_str_eq(json_string_value(json_object_get(n, "message_type")), "order_expired");
    ck_assert_str_eq(json_string_value(json_object_get(n, "channel")), "trade");
    ck_assert_str_eq(json_string_value(json_object_get(n, "source")), "MatchingEngine");
    json_decref(v);
    v = json_loads(strtok_r(NULL, "\n", &save), 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(v, "record")), "gap");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "from")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(v, "to")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(v, "user_id")), "alice");
    json_decref(v);

    CTL(&r, "ring", "1", "--peek", "1", "--json");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 1);
    v = json_loads(r.out, 0, NULL);
    ck_assert_int_eq(json_array_size(v), 1);
    json_decref(v);

    CTL(&r, "ring", "3", "--peek", "1");
    assert_one_line_failure(&r);

    ck_assert_mem_eq(before, ring_header(ring), sizeof before);
    ring_close(ring);
}
END_TEST

static int count_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    (void)type, (void)data, (void)len;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(ctl_ring_on_a_drained_ring_prints_its_header_and_says_nothing_is_pending)
{
    static procs_output_t r;
    char name[128];
    herald_error_t err = {0};
    ring_t *ring = make_ring(), *consumer;
    ring_name(name, sizeof name, prefix, 1);
    ck_assert_int_eq(ring_open(&consumer, name, RING_CONSUMER, 0, 1, &err), 0);
    int read = 0;
    ck_assert_int_eq(ring_read_batch(consumer, count_record, &read, 100), 3);

    CTL(&r, "ring", "1", "--peek", "5");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 2);
    ck_assert_msg(strstr(r.out, "ring 1 (/dev/shm/") == r.out, "out: %s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "0 pending"));
    ck_assert_ptr_nonnull(strstr(r.out, "nothing pending"));

    CTL(&r, "ring", "1", "--peek", "5", "--json");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_str_eq(r.out, "[]\n");

    /* --last: the most recent records still in the ring, read ones included. */
    CTL(&r, "ring", "1", "--last", "2", "--json");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    json_t *v = json_loads(r.out, 0, NULL);
    ck_assert_int_eq(json_array_size(v), 2);
    json_t *a = json_array_get(v, 0), *b = json_array_get(v, 1);
    ck_assert_str_eq(json_string_value(json_object_get(a, "record")), "notify");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "notification"), "seq")),
                     7);
    ck_assert_str_eq(json_string_value(json_object_get(b, "record")), "gap");
    ck_assert(json_is_false(json_object_get(a, "pending")));
    ck_assert(json_is_false(json_object_get(b, "pending")));
    json_decref(v);

    /* One more record, unread: --last marks it pending. */
    rec_session_ready_t sr = {.session = 43, .last_seq = 7, .bcast_last_seq = 3};
    ck_assert_int_eq(ring_write(ring, REC_SESSION_READY, &sr, sizeof sr), 0);
    ring_publish(ring);
    CTL(&r, "ring", "1", "--last", "10");
    ck_assert_msg(r.rc == 0, "stderr: %s", r.err);
    ck_assert_int_eq(count_lines(r.out), 5);
    CTL(&r, "ring", "1", "--last", "10", "--json");
    v = json_loads(r.out, 0, NULL);
    ck_assert_int_eq(json_array_size(v), 4);
    ck_assert(json_is_false(json_object_get(json_array_get(v, 2), "pending")));
    ck_assert(json_is_true(json_object_get(json_array_get(v, 3), "pending")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(v, 3), "session")), 43);
    json_decref(v);

    CTL(&r, "ring", "1", "--peek", "1", "--last", "1");
    assert_one_line_failure(&r);
    ring_close(consumer);
    ring_close(ring);
}
END_TEST

START_TEST(supervisor_rejects_bad_arguments_with_one_line)
{
    static procs_output_t r;
    run_cmd(&r, (const char *const[]){sup_bin, "-c", cfgpath, "-o", "broker.nonsense=1", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_int_eq(count_lines(r.err), 1);
    ck_assert_ptr_nonnull(strstr(r.err, "broker.nonsense"));
    run_cmd(&r, (const char *const[]){sup_bin, "-c", "/nonexistent/herald.ini", NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_int_eq(count_lines(r.err), 1);
}
END_TEST

START_TEST(supervisor_refuses_a_runtime_dir_locked_by_another_and_names_its_pid)
{
    static procs_output_t r;
    char path[400], pid[32], run[300];
    snprintf(run, sizeof run, "%s/run", tmpdir);
    mkdir(run, 0700);
    snprintf(path, sizeof path, "%s/supervisor.lock", run);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    ck_assert_int_eq(write(fd, pid, (size_t)n), n);
    run_cmd(&r, (const char *const[]){sup_bin, "-c", cfgpath, NULL});
    ck_assert_int_eq(r.rc, 1);
    ck_assert_int_eq(count_lines(r.err), 1);
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    ck_assert_msg(strstr(r.err, pid), "stderr: %s", r.err);
    close(fd);
}
END_TEST

START_TEST(supervisor_names_a_missing_broker_binary_and_releases_its_lock)
{
    static procs_output_t r;
    char path[400];
    setenv("HERALD_BIN_DIR", "/nonexistent-herald-bin", 1);
    run_cmd(&r, (const char *const[]){sup_bin, "-c", cfgpath, NULL});
    unsetenv("HERALD_BIN_DIR");
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "herald-broker"));
    snprintf(path, sizeof path, "%s/run/supervisor.pid", tmpdir);
    ck_assert_int_lt(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/run/supervisor.lock", tmpdir);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tools");
    TCase *tc = tcase_create("heraldctl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ctl_token_verifies_with_the_configured_secret);
    tcase_add_test(tc, ctl_token_json_and_ttl_work_after_the_subcommand_arguments);
    tcase_add_test(tc, ctl_token_carries_the_configured_audience_and_issuer);
    tcase_add_test(tc, ctl_shard_matches_shard_gateway_and_its_url);
    tcase_add_test(tc, ctl_bad_arguments_exit_1_with_one_line);
    tcase_add_test(tc, ctl_unreachable_broker_exits_1_with_one_line);
    tcase_add_test(tc, ctl_rings_shows_a_ring_without_disturbing_it);
    tcase_add_test(tc, ctl_ring_peek_decodes_pending_records_read_only);
    tcase_add_test(tc, ctl_ring_on_a_drained_ring_prints_its_header_and_says_nothing_is_pending);
    suite_add_tcase(s, tc);
    TCase *sup = tcase_create("herald-supervisor");
    tcase_add_checked_fixture(sup, setup, teardown);
    tcase_add_test(sup, supervisor_rejects_bad_arguments_with_one_line);
    tcase_add_test(sup, supervisor_refuses_a_runtime_dir_locked_by_another_and_names_its_pid);
    tcase_add_test(sup, supervisor_names_a_missing_broker_binary_and_releases_its_lock);
    suite_add_tcase(s, sup);
    return procs_run_suite(s);
}
