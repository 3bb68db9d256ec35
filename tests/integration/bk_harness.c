/* bk_harness.c - broker-specific test helpers on tests/procs: a private herald-broker, a
 * keep-alive HTTP/1.1 client, producer payloads, and a test gateway on the control socket. */
#include "bk_harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec.h"
#include "fdio.h"
#include "frame.h"
#include "json.h"
#include "proto.h"

void bkh_init(bkh_t *h, const char *const *overrides)
{
    char ini[256];
    memset(h, 0, sizeof *h);
    if (procs_env_init(&h->env, "bk") < 0) abort();
    snprintf(h->sock, sizeof h->sock, "%.80s/broker.sock", h->env.dir);
    snprintf(h->ctrl, sizeof h->ctrl, "%.80s/control.sock", h->env.dir);
    snprintf(h->logpath, sizeof h->logpath, "%s/broker.log", h->env.dir);
    h->http_port = procs_free_ports(1);
    snprintf(ini, sizeof ini,
             "[broker]\nhttp = 127.0.0.1:%u\n[gateway]\nring_bytes = 1M\n"
             "[auth]\nsecret = test-secret\n",
             h->http_port);
    if (!h->http_port || procs_env_write_config(&h->env, ini) < 0) abort();
    for (; overrides && *overrides && h->n_over < BKH_MAX_OVERRIDES; overrides++)
        snprintf(h->over[h->n_over++], sizeof h->over[0], "%s", *overrides);
}

#define BKH_UNSHARE "/usr/bin/unshare"

bool bkh_private_shm_ok(void)
{
    /* root is not enough in a container without CAP_SYS_ADMIN: try it once */
    return geteuid() == 0 && access(BKH_UNSHARE, X_OK) == 0 &&
           system(BKH_UNSHARE " --mount --propagation private /bin/sh -c "
                              "'mount -t tmpfs -o size=1m tmpfs /dev/shm' >/dev/null 2>&1") == 0;
}

int bkh_start(bkh_t *h)
{
    char exe[512], mnt[160], *argv[12 + 2 * BKH_MAX_OVERRIDES];
    int n = 0;
    procs_build_path("broker/herald-broker", exe, sizeof exe);
    if (h->shm_mb) { /* unshare execs sh, which mounts and execs the broker: one pid */
        snprintf(mnt, sizeof mnt, "mount -t tmpfs -o size=%um tmpfs /dev/shm && exec \"$@\"",
                 h->shm_mb);
        argv[n++] = (char *)BKH_UNSHARE;
        argv[n++] = (char *)"--mount";
        argv[n++] = (char *)"--propagation";
        argv[n++] = (char *)"private";
        argv[n++] = (char *)"/bin/sh";
        argv[n++] = (char *)"-c";
        argv[n++] = mnt;
        argv[n++] = (char *)"sh";
    }
    argv[n++] = exe;
    argv[n++] = (char *)"-c";
    argv[n++] = h->env.config;
    for (int i = 0; i < h->n_over; i++) {
        argv[n++] = (char *)"-o";
        argv[n++] = h->over[i];
    }
    argv[n] = NULL;
    unlink(h->sock);
    unlink(h->ctrl); /* a restart must not find the last broker's socket file */
    h->pid = procs_spawn(h->shm_mb ? BKH_UNSHARE : exe, argv, h->logpath);
    if (h->pid < 0) return -1;
    /* control.sock is bound after broker.sock: wait for both, or a loaded machine lets a
     * test gateway connect in between. */
    if (procs_wait_unix(h->sock, 5000) < 0 || procs_wait_unix(h->ctrl, 5000) < 0 ||
        procs_wait_tcp("127.0.0.1", h->http_port, 5000) < 0)
        return -1;
    return 0;
}

int bkh_wait_exit(bkh_t *h, int timeout_ms)
{
    if (h->pid <= 0) return -1;
    int st = procs_reap(h->pid, timeout_ms); /* reaped either way (killed if it stayed) */
    h->pid = 0;
    if (st < 0) return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

void bkh_stop(bkh_t *h, int sig)
{
    if (h->pid <= 0) return;
    procs_kill(h->pid, sig);
    procs_reap(h->pid, 10000);
    h->pid = 0;
}

void bkh_cleanup(bkh_t *h)
{
    if (!h->env.dir[0]) return;
    bkh_stop(h, SIGKILL);
    if (getenv("BKH_SHOWLOG")) { /* debugging aid: the broker's log on stderr */
        FILE *f = fopen(h->logpath, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            fputs(line, stderr);
        if (f) fclose(f);
    }
    procs_cleanup(); /* our shm objects, the runtime dir */
    h->env.dir[0] = '\0';
}

/* --- HTTP --- */

int bkh_http_connect(bkh_t *h)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(h->http_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int bkh_http_send(int fd, const char *method, const char *path, const char *extra_headers,
                  const char *body, size_t body_len)
{
    size_t blen = body ? body_len : 0;
    char *head = malloc(1024 + blen);
    int hl = snprintf(head, 1024,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, extra_headers ? extra_headers : "", body ? body_len : 0);
    if (blen) memcpy(head + hl, body, blen);
    int wrc = fd_write_all(fd, head, (size_t)hl + blen); /* one write: no Nagle stall */
    free(head);
    return wrc < 0 ? -1 : 0;
}

int bkh_http(int fd, const char *method, const char *path, const char *extra_headers,
             const char *body, size_t body_len, bkh_http_resp_t *resp)
{
    memset(resp, 0, sizeof *resp);
    if (bkh_http_send(fd, method, path, extra_headers, body, body_len) < 0) return -1;
    return bkh_http_recv(fd, resp);
}

int bkh_http_recv(int fd, bkh_http_resp_t *resp)
{
    memset(resp, 0, sizeof *resp);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    char *eoh = NULL;
    size_t clen = 0;
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = '\0';
        if (!eoh && (eoh = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "content-length:");
            clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
        }
        if (eoh && len >= (size_t)(eoh + 4 - buf) + clen) break;
    }
    if (!eoh) {
        free(buf);
        return -1;
    }
    size_t hlen = (size_t)(eoh - buf);
    snprintf(resp->headers, sizeof resp->headers, "%.*s", (int)hlen, buf);
    resp->status = atoi(buf + 9);
    resp->body = malloc(clen + 1);
    memcpy(resp->body, eoh + 4, clen);
    resp->body[clen] = '\0';
    resp->body_len = clen;
    free(buf);
    return resp->status;
}

void bkh_http_free(bkh_http_resp_t *resp)
{
    free(resp->body);
    resp->body = NULL;
}

uint64_t bkh_stat_of(const char *body, const char *key)
{
    char k[80];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(body, k);
    ck_assert_msg(p != NULL, "no %s in %s", key, body);
    return strtoull(p + strlen(k), NULL, 10);
}

uint64_t bkh_stat(bkh_t *h, const char *key)
{
    int fd = bkh_http_connect(h);
    bkh_http_resp_t hr;
    ck_assert_int_eq(bkh_http(fd, "GET", "/api/stats", "", NULL, 0, &hr), 200);
    uint64_t v = bkh_stat_of(hr.body, key);
    bkh_http_free(&hr);
    close(fd);
    return v;
}

/* --- payloads --- */

void bkh_msgpack(msgpack_sbuffer *sb, const char *json)
{
    herald_error_t err;
    msgpack_sbuffer_clear(sb);
    if (json_to_msgpack(json, strlen(json), sb, &err) < 0) {
        fprintf(stderr, "bad fixture JSON (%s): %s\n", err.message, json);
        abort();
    }
}

herald_result_t bkh_publish_json(herald_client_t *c, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, json);
    herald_result_t r;
    herald_error_t err;
    ck_assert_msg(herald_publish(c, (uint8_t *)sb.data, sb.size, &r, &err) == 0, "publish: %s",
                  err.message);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

void bkh_notice_json(char *out, size_t cap, const char *user, int prio, const char *id)
{
    char idf[120] = "";
    if (id && *id) snprintf(idf, sizeof idf, "\"message_id\":\"%s\",", id);
    snprintf(
        out, cap,
        "{%s\"message_type\":\"system_notice\",\"user_id\":\"%s\",\"priority\":%d,"
        "\"source\":\"test\",\"payload\":{\"title\":\"t\",\"content\":\"c\",\"level\":\"info\"}}",
        idf, user, prio);
}

/* --- test gateway --- */

static int ctl_send(bkh_gw_t *g, msgpack_sbuffer *sb)
{
    uint8_t hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)sb->size);
    int rc =
        fd_write_all(g->fd, hdr, FRAME_HDR) || fd_write_all(g->fd, sb->data, sb->size) ? -1 : 0;
    msgpack_sbuffer_destroy(sb);
    return rc;
}

static void pk_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_kv_u(msgpack_packer *pk, const char *k, uint64_t v)
{
    pk_s(pk, k);
    msgpack_pack_uint64(pk, v);
}

static msgpack_packer ctl_begin(msgpack_sbuffer *sb, const char *op, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    pk_s(&pk, "op");
    pk_s(&pk, op);
    return pk;
}

int bkh_gw_attach(bkh_gw_t *g, bkh_t *h, unsigned id)
{
    if (!g->recs) memset(g, 0, sizeof *g);
    g->id = id;
    g->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", h->ctrl);
    if (connect(g->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fprintf(stderr, "bkh_gw_attach: connect %s: %s\n", h->ctrl, strerror(errno));
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(g->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    msgpack_sbuffer sb;
    msgpack_packer pk = ctl_begin(&sb, "hello", 4);
    pk_kv_u(&pk, "gw", id);
    pk_kv_u(&pk, "pid", (uint64_t)getpid());
    pk_kv_u(&pk, "version", PROTO_VERSION);
    if (ctl_send(g, &sb) < 0) return -1;
    uint8_t buf[4096];
    size_t len = 0;
    const uint8_t *body = NULL;
    size_t blen = 0;
    while (frame_next(buf, len, sizeof buf - FRAME_HDR, &body, &blen) == 0) {
        ssize_t r = read(g->fd, buf + len, sizeof buf - len);
        if (r <= 0) {
            fprintf(stderr, "bkh_gw_attach: read from control.sock: %s\n",
                    r ? strerror(errno) : "EOF");
            return -1;
        }
        len += (size_t)r;
    }
    if (blen < 10 || !memmem(body, blen, "hello_ok", 8)) {
        fprintf(stderr, "bkh_gw_attach: no hello_ok: %.*s\n", (int)blen, (const char *)body);
        return -1;
    }
    if (!g->ring) {
        char name[160];
        herald_error_t err;
        ring_name(name, sizeof name, h->env.shm_prefix, id);
        if (ring_open(&g->ring, name, RING_CONSUMER, 0, id, &err) < 0) {
            fprintf(stderr, "bkh_gw_attach: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

void bkh_gw_disconnect(bkh_gw_t *g)
{
    if (g->fd > 0) close(g->fd);
    g->fd = -1;
}

void bkh_gw_free(bkh_gw_t *g)
{
    bkh_gw_disconnect(g);
    if (g->ring) ring_close(g->ring);
    free(g->recs);
    memset(g, 0, sizeof *g);
}

int bkh_gw_open(bkh_gw_t *g, uint64_t session, const char *user, uint64_t since)
{
    msgpack_sbuffer sb;
    msgpack_packer pk = ctl_begin(&sb, "open", 4);
    pk_kv_u(&pk, "session", session);
    pk_s(&pk, "user");
    pk_s(&pk, user);
    pk_kv_u(&pk, "since", since);
    return ctl_send(g, &sb);
}

int bkh_gw_close(bkh_gw_t *g, uint64_t session, const char *user)
{
    msgpack_sbuffer sb;
    msgpack_packer pk = ctl_begin(&sb, "close", 3);
    pk_kv_u(&pk, "session", session);
    pk_s(&pk, "user");
    pk_s(&pk, user);
    return ctl_send(g, &sb);
}

int bkh_gw_replay(bkh_gw_t *g, uint64_t session, const char *user, uint64_t from, uint64_t to)
{
    msgpack_sbuffer sb;
    msgpack_packer pk = ctl_begin(&sb, "replay", 5);
    pk_kv_u(&pk, "session", session);
    pk_s(&pk, "user");
    pk_s(&pk, user);
    pk_kv_u(&pk, "from", from);
    pk_kv_u(&pk, "to", to);
    return ctl_send(g, &sb);
}

int bkh_gw_resync(bkh_gw_t *g, const char *user, uint64_t sessions, uint64_t after)
{
    msgpack_sbuffer sb;
    msgpack_packer pk = ctl_begin(&sb, "resync", 4);
    pk_s(&pk, "user");
    pk_s(&pk, user);
    pk_kv_u(&pk, "sessions", sessions);
    pk_kv_u(&pk, "after", after);
    return ctl_send(g, &sb);
}

static void rec_notif(bkh_rec_t *r, const uint8_t *data, uint32_t len)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    notif_t n;
    herald_error_t err;
    if (codec_decode(data, len, &u, &n, &err) == 0) {
        r->seq = n.seq;
        r->prio = n.priority;
        snprintf(r->user, sizeof r->user, "%s", n.user_id);
        snprintf(r->message_id, sizeof r->message_id, "%s", n.message_id);
    }
    msgpack_unpacked_destroy(&u);
}

static int on_rec(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    bkh_gw_t *g = ctx;
    if (type == REC_CLOCK) { /* timing only: kept out so tests index the records that count */
        g->clocks++;
        return 0;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->recs = realloc(g->recs, g->cap * sizeof *g->recs);
    }
    bkh_rec_t *r = &g->recs[g->n++];
    memset(r, 0, sizeof *r);
    r->type = type;
    if (type == REC_NOTIFY) {
        rec_notif(r, data, len);
    } else if (type == REC_REPLAY && len >= sizeof(rec_replay_t)) {
        rec_replay_t h;
        memcpy(&h, data, sizeof h);
        r->session = h.session;
        rec_notif(r, data + sizeof h, len - (uint32_t)sizeof h);
    } else if (type == REC_SESSION_READY && len >= sizeof(rec_session_ready_t)) {
        rec_session_ready_t s;
        memcpy(&s, data, sizeof s);
        r->session = s.session;
        r->last_seq = s.last_seq;
    } else if ((type == REC_GAP || type == REC_REPLAY_END) && len >= sizeof(rec_range_t)) {
        rec_range_t x;
        memcpy(&x, data, sizeof x);
        r->session = x.session;
        r->from = x.from;
        r->to = x.to;
        snprintf(r->user, sizeof r->user, "%.*s", (int)(len - sizeof x), data + sizeof x);
    }
    return 0;
}

size_t bkh_gw_collect(bkh_gw_t *g, size_t want, int timeout_ms)
{
    for (int waited = 0;;) {
        long n = ring_read_batch(g->ring, on_rec, g, 65536);
        if (g->n >= want || waited >= timeout_ms) return g->n;
        if (n <= 0) {
            usleep(1000);
            waited++;
        }
    }
}

long bkh_gw_wait_type(bkh_gw_t *g, size_t from, uint32_t type, int timeout_ms)
{
    for (int waited = 0;; waited++) {
        for (size_t i = from; i < g->n; i++)
            if (g->recs[i].type == type) return (long)i;
        if (waited >= timeout_ms) return -1;
        if (ring_read_batch(g->ring, on_rec, g, 65536) <= 0) usleep(1000);
    }
}
