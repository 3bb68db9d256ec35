/* test_security.c - SPEC 12 against real processes: another local user (nobody, 65534)
 * plants a runtime dir, rings and journal files, connects to the broker's sockets; native
 * TCP needs the api key; exposed listeners need one; failed handshakes cannot flood the
 * log. The attacker's side runs as nobody in a forked child, which needs root: without it
 * those cases are reported as SKIP. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bk_harness.h"
#include "frame.h"
#include "gwsys.h"
#include "proto.h"
#include "ring.h"

#define NOBODY 65534

static bkh_t H;

static void cleanup(void)
{
    bkh_cleanup(&H);
}

/* Run fn(arg) in a child that has become nobody (uid, gid 65534, no other groups; with
 * keep_group, gid 65534 stays among its groups too). Returns fn's result, 100 when the
 * privileges could not be dropped, 200 when the child died. */
static int as_nobody(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) < 0)
            _exit(100);
        _exit(fn(arg) & 0x7f);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

#define NEED_ROOT()                                                                                \
    do {                                                                                           \
        if (geteuid() != 0) TEST_SKIP("needs root to act as a second user (nobody)");              \
    } while (0)

/* --- one request on a fresh connection, as whoever runs it --- */

typedef struct {
    char path[100];   /* unix socket, or "" for TCP */
    uint16_t port;    /* 127.0.0.1 port when path is "" */
    uint8_t out[512]; /* framed requests sent after connecting */
    size_t out_len;
    /* results */
    int connect_errno; /* 0 = connected */
    size_t in_len;     /* body of the first response frame, 0 = none */
    uint8_t in[4096];
    bool closed; /* the broker closed the connection (EOF/reset) within 3 s of the answer */
} xchg_t;

static void xchg_add(xchg_t *x, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, json);
    ck_assert_uint_le(x->out_len + FRAME_HDR + sb.size, sizeof x->out);
    frame_put_len(x->out + x->out_len, (uint32_t)sb.size);
    memcpy(x->out + x->out_len + FRAME_HDR, sb.data, sb.size);
    x->out_len += FRAME_HDR + sb.size;
    msgpack_sbuffer_destroy(&sb);
}

static int xchg_run(void *arg)
{
    xchg_t *x = arg;
    int fd;
    if (x->path[0]) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", x->path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) x->connect_errno = errno;
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(x->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) x->connect_errno = errno;
    }
    if (x->connect_errno) {
        close(fd);
        return 0;
    }
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    signal(SIGPIPE, SIG_IGN);
    if (write(fd, x->out, x->out_len) < 0) { /* a refused peer may be gone already */
    }
    uint8_t buf[8192];
    size_t len = 0;
    for (;;) {
        const uint8_t *body;
        size_t blen;
        if (!x->in_len && frame_next(buf, len, sizeof buf, &body, &blen) > 0) {
            x->in_len = blen < sizeof x->in ? blen : sizeof x->in;
            memcpy(x->in, body, x->in_len);
        }
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            x->closed = true;
            if (!x->in_len && frame_next(buf, len, sizeof buf, &body, &blen) > 0) {
                x->in_len = blen < sizeof x->in ? blen : sizeof x->in;
                memcpy(x->in, body, x->in_len);
            }
            break;
        }
        if (r < 0) break; /* timeout: still open */
        len += (size_t)r;
        if (len == sizeof buf) break;
    }
    close(fd);
    return 0;
}

/* A shared page, so that a child running as nobody can hand its results back. */
static xchg_t *xchg_new(void)
{
    xchg_t *x = mmap(NULL, sizeof *x, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(x, MAP_FAILED);
    memset(x, 0, sizeof *x);
    return x;
}

static bool in_has(const xchg_t *x, const char *s)
{
    return x->in_len && memmem(x->in, x->in_len, s, strlen(s)) != NULL;
}

static bool file_contains(const char *path, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

static int count_in_file(const char *path, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        count++;
    return count;
}

/* The broker alone with extra -o overrides; returns its exit status (it must stop). */
static int broker_exit_status(bkh_t *h, const char *const *extra)
{
    char exe[512], *argv[24];
    int n = 0;
    procs_build_path("broker/herald-broker", exe, sizeof exe);
    argv[n++] = exe;
    argv[n++] = (char *)"-c";
    argv[n++] = h->env.config;
    for (; extra && *extra && n < 20; extra++) {
        argv[n++] = (char *)"-o";
        argv[n++] = (char *)*extra;
    }
    argv[n] = NULL;
    pid_t pid = procs_spawn(exe, argv, h->logpath);
    ck_assert_int_gt(pid, 0);
    return procs_reap(pid, 10000);
}

/* --- finding 1: the runtime dir --- */

static char planted[300], victim[300];

static int plant_runtime_dir(void *arg)
{
    (void)arg;
    char link[400];
    if (mkdir(planted, 0777) < 0 || chmod(planted, 0777) < 0) return 1;
    snprintf(link, sizeof link, "%s/status.json.tmp", planted);
    if (symlink(victim, link) < 0) return 2;
    snprintf(link, sizeof link, "%s/supervisor.pid", planted);
    return symlink(victim, link) < 0 ? 3 : 0;
}

START_TEST(runtime_dir_planted_by_another_user_is_refused_and_nothing_written_through_it)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    /* the victim: a file of root's that nobody may write */
    snprintf(victim, sizeof victim, "%s/victim", H.env.dir);
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    /* the test's dir stands for /tmp (sticky, writable by all); it is removed at the end */
    ck_assert_int_eq(chmod(H.env.dir, 01777), 0);
    snprintf(planted, sizeof planted, "%s/planted", H.env.dir);
    ck_assert_int_eq(as_nobody(plant_runtime_dir, NULL), 0);

    char sup[512], cfgdir[400], log[400];
    procs_build_path("tools/supervisor/herald-supervisor", sup, sizeof sup);
    snprintf(cfgdir, sizeof cfgdir, "runtime.dir=%s", planted);
    snprintf(log, sizeof log, "%s/sup.log", H.env.dir);
    char *argv[] = {sup, (char *)"-c", H.env.config, (char *)"-o", cfgdir, NULL};
    pid_t pid = procs_spawn(sup, argv, log);
    int st = procs_reap(pid, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "supervisor status %d", st);
    ck_assert_msg(file_contains(log, planted) && file_contains(log, "uid 65534"),
                  "the refusal does not name the dir and its owner");
    /* the broker on its own refuses it too */
    const char *over[] = {cfgdir, NULL};
    st = broker_exit_status(&H, over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(file_contains(H.logpath, "refused"));

    ck_assert(file_contains(victim, "precious\n"));
    struct stat vs;
    ck_assert_int_eq(stat(victim, &vs), 0);
    ck_assert_int_eq(vs.st_size, 9);
    char sock[400];
    snprintf(sock, sizeof sock, "%s/broker.sock", planted);
    ck_assert_int_eq(access(sock, F_OK), -1); /* nothing of ours went in there */
}
END_TEST

START_TEST(sockets_and_files_in_the_runtime_dir_are_private)
{
    bkh_init(&H, NULL);
    ck_assert_int_eq(bkh_start(&H), 0);
    struct stat st;
    ck_assert_int_eq(stat(H.sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(H.ctrl, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(H.env.dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 022, 0);
}
END_TEST

/* --- finding 2: planted shm objects --- */

static char shm_name[200];

static int plant_shm(void *arg)
{
    (void)arg;
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0666);
    if (fd < 0) return 1;
    int rc = fchmod(fd, 0666) < 0 ? 2 : 0; /* whatever the umask */
    close(fd);
    return rc;
}

static void shm_stat(const char *name, struct stat *st)
{
    char path[260];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    ck_assert_int_eq(stat(path, st), 0);
}

START_TEST(ring_planted_by_another_user_is_refused_naming_it_and_left_alone)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    char name[160];
    ring_name(name, sizeof name, H.env.shm_prefix, 0);
    snprintf(shm_name, sizeof shm_name, "/%s", name);
    ck_assert_int_eq(as_nobody(plant_shm, NULL), 0);
    ck_assert_int_eq(bkh_start(&H), 0);
    bkh_gw_t g = {0};
    ck_assert_int_ne(bkh_gw_attach(&g, &H, 0), 0); /* hello refused */
    bkh_gw_free(&g);
    ck_assert(file_contains(H.logpath, name));
    ck_assert(file_contains(H.logpath, "refused"));
    struct stat st;
    shm_stat(name, &st);
    ck_assert_uint_eq(st.st_uid, NOBODY); /* not taken over, */
    ck_assert_int_eq(st.st_size, 0);      /* not initialised as ours */
    /* a consumer (a gateway) refuses it as well; inspection may read it */
    ring_t *r = NULL;
    herald_error_t err;
    ck_assert_int_eq(ring_open(&r, name, RING_CONSUMER, 0, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, name));
    ck_assert_ptr_nonnull(strstr(err.message, "uid 65534"));
    /* gateway 1's ring, not planted, works */
    ck_assert_int_eq(bkh_gw_attach(&g, &H, 1), 0);
    bkh_gw_free(&g);
}
END_TEST

START_TEST(ring_of_ours_that_others_can_open_is_refused_but_inspected_read_only)
{
    bkh_init(&H, NULL);
    char name[160], path[260];
    ring_name(name, sizeof name, H.env.shm_prefix, 0);
    ring_t *r = NULL;
    herald_error_t err;
    ck_assert_int_eq(ring_open(&r, name, RING_PRODUCER, 4096, 0, &err), 0);
    ring_close(r);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(ring_open(&r, name, RING_PRODUCER, 4096, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "0644"));
    ck_assert_int_eq(ring_open(&r, name, RING_CONSUMER, 0, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_msg(ring_open(&r, name, RING_INSPECT, 0, 0, &err) == 0, "%s", err.message);
    ring_close(r);
}
END_TEST

START_TEST(journal_planted_by_another_user_stops_the_broker_naming_it)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    snprintf(shm_name, sizeof shm_name, "/%s.broker.journal", H.env.shm_prefix);
    ck_assert_int_eq(as_nobody(plant_shm, NULL), 0);
    int st = broker_exit_status(&H, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(file_contains(H.logpath, shm_name + 1));
    ck_assert(file_contains(H.logpath, "uid 65534"));
    struct stat s;
    shm_stat(shm_name + 1, &s);
    ck_assert_uint_eq(s.st_uid, NOBODY);
    ck_assert_int_eq(s.st_size, 0);
    /* a symbolic link in its place is not followed either */
    char path[260], victim_path[300];
    snprintf(path, sizeof path, "/dev/shm%s", shm_name);
    unlink(path);
    snprintf(victim_path, sizeof victim_path, "%s/victim", H.env.dir);
    close(open(victim_path, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(symlink(victim_path, path), 0);
    st = broker_exit_status(&H, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(file_contains(H.logpath, "symbolic link"));
    ck_assert_int_eq(stat(victim_path, &s), 0);
    ck_assert_int_eq(s.st_size, 0);
    unlink(path);
}
END_TEST

/* --- finding 3: the control socket --- */

START_TEST(control_and_broker_sockets_refuse_a_peer_of_another_uid)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    ck_assert_int_eq(bkh_start(&H), 0);
    /* as if the directory and sockets had been left open to everyone */
    ck_assert_int_eq(chmod(H.env.dir, 0755), 0);
    ck_assert_int_eq(chmod(H.ctrl, 0666), 0);
    ck_assert_int_eq(chmod(H.sock, 0666), 0);

    xchg_t *x = xchg_new();
    snprintf(x->path, sizeof x->path, "%s", H.ctrl);
    char hello[128];
    snprintf(hello, sizeof hello, "{\"op\":\"hello\",\"gw\":0,\"pid\":1,\"version\":%u}",
             PROTO_VERSION);
    xchg_add(x, hello);
    ck_assert_int_eq(as_nobody(xchg_run, x), 0);
    ck_assert_int_eq(x->connect_errno, 0);
    ck_assert_msg(x->closed && !in_has(x, "hello_ok"), "nobody was answered on control.sock");
    ck_assert_uint_eq(bkh_stat(&H, "ctrl_refused"), 1);
    ck_assert_uint_eq(bkh_stat(&H, "active_gateways"), 0);

    char pub[512];
    bkh_notice_json(pub, sizeof pub, "victim", 1, "forged-1");
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", H.sock);
    xchg_add(x, pub);
    ck_assert_int_eq(as_nobody(xchg_run, x), 0);
    ck_assert_msg(x->closed && !in_has(x, "seq"), "nobody could publish on broker.sock");
    ck_assert_uint_eq(bkh_stat(&H, "native_refused"), 1);
    ck_assert_uint_eq(bkh_stat(&H, "messages_accepted"), 0);
    ck_assert(file_contains(H.logpath, "refused a connection from uid 65534"));

    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &hr), 200);
    ck_assert_ptr_nonnull(strstr(hr.body, "herald_broker_ctrl_refused_total 1"));
    ck_assert_ptr_nonnull(strstr(hr.body, "herald_broker_native_refused_total 1"));
    bkh_http_free(&hr);
    close(fd);

    /* our own uid still gets in */
    bkh_gw_t g = {0};
    ck_assert_int_eq(bkh_gw_attach(&g, &H, 0), 0);
    bkh_gw_free(&g);
    munmap(x, sizeof *x);
}
END_TEST

START_TEST(runtime_group_members_may_publish_but_not_reach_control)
{
    NEED_ROOT();
    struct group *gr = getgrgid(NOBODY);
    if (!gr) TEST_SKIP("no group 65534 on this machine");
    const char *over[] = {"runtime.group=65534", NULL};
    bkh_init(&H, over);
    ck_assert_int_eq(bkh_start(&H), 0);
    struct stat st;
    ck_assert_int_eq(stat(H.env.dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0710);
    ck_assert_uint_eq(st.st_gid, NOBODY);
    ck_assert_int_eq(stat(H.sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0660);
    ck_assert_uint_eq(st.st_gid, NOBODY);
    ck_assert_int_eq(stat(H.ctrl, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);

    xchg_t *x = xchg_new();
    char pub[512];
    bkh_notice_json(pub, sizeof pub, "g1", 1, "group-1");
    snprintf(x->path, sizeof x->path, "%s", H.sock);
    xchg_add(x, pub);
    ck_assert_int_eq(as_nobody(xchg_run, x), 0); /* nobody is in group 65534 */
    ck_assert_int_eq(x->connect_errno, 0);
    ck_assert_msg(in_has(x, "seq"), "a group member could not publish");
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", H.ctrl);
    xchg_add(x, "{\"op\":\"hello\",\"gw\":0,\"pid\":1,\"version\":1}");
    ck_assert_int_eq(as_nobody(xchg_run, x), 0);
    ck_assert_int_eq(x->connect_errno, EACCES);
    munmap(x, sizeof *x);
}
END_TEST

/* --- finding 4: ingress auth --- */

START_TEST(native_tcp_takes_an_auth_frame_first_when_an_api_key_is_set)
{
    uint16_t tcp = procs_free_ports(1);
    char tcpo[64];
    snprintf(tcpo, sizeof tcpo, "broker.tcp=127.0.0.1:%u", tcp);
    const char *over[] = {"broker.api_key=s3cr3t-key", tcpo, NULL};
    bkh_init(&H, over);
    ck_assert_int_eq(bkh_start(&H), 0);
    ck_assert_int_eq(procs_wait_tcp("127.0.0.1", tcp, 5000), 0);
    char pub[512];
    bkh_notice_json(pub, sizeof pub, "u1", 1, "");

    xchg_t *x = xchg_new();
    x->port = tcp;
    xchg_add(x, pub); /* no auth frame */
    xchg_run(x);
    ck_assert_msg(in_has(x, "unauthorized") && x->closed, "publish without the key answered");

    memset(x, 0, sizeof *x);
    x->port = tcp;
    xchg_add(x, "{\"auth\":\"s3cr3t-kez\"}");
    xchg_add(x, pub);
    xchg_run(x);
    ck_assert(in_has(x, "unauthorized") && x->closed);
    ck_assert(in_has(x, "wrong api key"));

    memset(x, 0, sizeof *x);
    x->port = tcp;
    xchg_add(x, "{\"auth\":12}");
    xchg_run(x);
    ck_assert(in_has(x, "unauthorized") && x->closed);
    ck_assert_uint_eq(bkh_stat(&H, "unauthorized"), 3);
    ck_assert_uint_eq(bkh_stat(&H, "messages_accepted"), 0);

    /* libherald with the key: authenticated once per connection, then publishes */
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%u", tcp);
    herald_error_t err;
    herald_connect_opts_t opts = {.api_key = "s3cr3t-key"};
    herald_client_t *c = herald_connect_opts(addr, &opts, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, pub);
    herald_result_t res;
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert(res.ok);
    ck_assert_uint_eq(res.seq, 1);
    ck_assert_int_eq(herald_reconnect(c, &err), 0); /* authenticates again */
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert_uint_eq(res.seq, 2);
    herald_close(c);
    opts.api_key = "wrong";
    ck_assert_ptr_null(herald_connect_opts(addr, &opts, &err));
    ck_assert_int_eq(err.code, HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "wrong api key"));

    /* the unix socket needs no key (its mode and the peer check guard it) */
    c = herald_connect(H.sock, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(herald_publish(c, (const uint8_t *)sb.data, sb.size, &res, &err), 0);
    ck_assert_uint_eq(res.seq, 3);
    herald_close(c);
    msgpack_sbuffer_destroy(&sb);

    /* HTTP: publishing needs the key; stats, metrics and route do not */
    int fd = bkh_http_connect(&H);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "", pub, strlen(pub), &hr), 401);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey s3cr3t-kex\r\n",
                              pub, strlen(pub), &hr),
                     401);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "POST", "/api/publish", "Authorization: apikey s3cr3t-key\r\n",
                              pub, strlen(pub), &hr),
                     200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/metrics", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/route?user=u1", "", NULL, 0, &hr), 200);
    bkh_http_free(&hr);
    close(fd);
    munmap(x, sizeof *x);
}
END_TEST

START_TEST(exposed_listeners_without_an_api_key_are_refused_at_start)
{
    bkh_init(&H, NULL);
    char tcpo[64], httpo[64];
    snprintf(tcpo, sizeof tcpo, "broker.tcp=0.0.0.0:%u", procs_free_ports(1));
    const char *tcp_over[] = {tcpo, NULL};
    int st = broker_exit_status(&H, tcp_over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(file_contains(H.logpath, "broker.tcp 0.0.0.0"));
    ck_assert(file_contains(H.logpath, "broker.api_key"));
    snprintf(httpo, sizeof httpo, "broker.http=0.0.0.0:%u", procs_free_ports(1));
    const char *http_over[] = {httpo, NULL};
    st = broker_exit_status(&H, http_over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(file_contains(H.logpath, "broker.http 0.0.0.0"));
    /* the supervisor says so before starting anything */
    char sup[512], log[400];
    procs_build_path("tools/supervisor/herald-supervisor", sup, sizeof sup);
    snprintf(log, sizeof log, "%s/sup.log", H.env.dir);
    char *argv[] = {sup, (char *)"-c", H.env.config, (char *)"-o", httpo, NULL};
    st = procs_reap(procs_spawn(sup, argv, log), 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "supervisor status %d", st);
    ck_assert(file_contains(log, "broker.api_key"));
}
END_TEST

/* --- finding 9: log flooding by failed handshakes --- */

START_TEST(failed_handshakes_are_all_counted_but_logged_rate_limited)
{
    gws_t s;
    gws_start(&s, 1, NULL);
    char url[128], log[400];
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws", s.ws);
    enum { N = 300 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        wsc_t *c = NULL;
        ck_assert_int_eq(wsc_connect(&c, url, "not-a-token", NULL, 5000), 401);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the gateway logs at most 5 a second: the bound follows how long the loop took (a
     * loaded machine makes it slower, not the limit looser) */
    int seconds = (int)(t1.tv_sec - t0.tv_sec) + 2;
    ck_assert_uint_eq(
        gws_stat(&s, 0, "auth_failures_missing") + gws_stat(&s, 0, "auth_failures_bad_signature") +
            gws_stat(&s, 0, "auth_failures_expired") + gws_stat(&s, 0, "auth_failures_invalid"),
        N);
    snprintf(log, sizeof log, "%s/gateway0.log", s.env.dir);
    int lines = count_in_file(log, "handshake refused");
    ck_assert_msg(lines <= 5 * seconds && lines < N, "%d of %d failed handshakes logged in %d s",
                  lines, N, seconds);
    ck_assert_int_ge(lines, 1);
    gws_stop(&s);
}
END_TEST

static Suite *security_suite(void)
{
    Suite *s = suite_create("security");
    TCase *t = tcase_create("security");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t,
                   runtime_dir_planted_by_another_user_is_refused_and_nothing_written_through_it);
    tcase_add_test(t, sockets_and_files_in_the_runtime_dir_are_private);
    tcase_add_test(t, ring_planted_by_another_user_is_refused_naming_it_and_left_alone);
    tcase_add_test(t, ring_of_ours_that_others_can_open_is_refused_but_inspected_read_only);
    tcase_add_test(t, journal_planted_by_another_user_stops_the_broker_naming_it);
    tcase_add_test(t, control_and_broker_sockets_refuse_a_peer_of_another_uid);
    tcase_add_test(t, runtime_group_members_may_publish_but_not_reach_control);
    tcase_add_test(t, native_tcp_takes_an_auth_frame_first_when_an_api_key_is_set);
    tcase_add_test(t, exposed_listeners_without_an_api_key_are_refused_at_start);
    tcase_add_test(t, failed_handshakes_are_all_counted_but_logged_rate_limited);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return procs_run_suite(security_suite());
}
