/* hnode.c - herald nodes, a publish load and checking sessions for the cluster system tests. */
#include "hnode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jwt.h"
#include "shard.h"

uint64_t hn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hnode_init(hnode_t *n, unsigned id, const char *nats_url, unsigned partitions)
{
    memset(n, 0, sizeof *n);
    n->id = id;
    char tag[16], ini[1024];
    snprintf(tag, sizeof tag, "node%u", id);
    ck_assert_int_eq(procs_env_init(&n->env, tag), 0);
    n->http = procs_free_ports(1);
    n->ws = procs_free_ports(1);
    ck_assert(n->http && n->ws);
    snprintf(ini, sizeof ini,
             "[broker]\nhttp = 127.0.0.1:%u\n[gateway]\ncount = 1\nlisten = 127.0.0.1:%u\n"
             "ring_bytes = 4M\n[auth]\nsecret = %s\n[cluster]\nnats = %s\nnode_id = %u\n"
             "partitions = %u\nreplicas = 3\n",
             n->http, n->ws, HN_SECRET, nats_url, id, partitions);
    ck_assert_int_eq(procs_env_write_config(&n->env, ini), 0);
    procs_build_path("broker/herald-broker", n->bin_broker, sizeof n->bin_broker);
    procs_build_path("gateway/herald-gateway", n->bin_gw, sizeof n->bin_gw);
}

void hnode_start_broker(hnode_t *n)
{
    char log[400], sock[400];
    char *argv[] = {n->bin_broker, (char *)"-c", n->env.config, NULL};
    snprintf(log, sizeof log, "%s/broker.log", n->env.dir);
    snprintf(sock, sizeof sock, "%s/broker.sock", n->env.dir);
    n->broker = procs_spawn(n->bin_broker, argv, log);
    ck_assert_int_gt(n->broker, 0);
    ck_assert_msg(procs_wait_tcp("127.0.0.1", n->http, HN_WAIT) == 0,
                  "node %u: broker did not come up (see %s)", n->id, log);
    ck_assert_int_eq(procs_wait_unix(sock, HN_WAIT), 0);
}

void hnode_start(hnode_t *n)
{
    hnode_start_broker(n);
    char log[400], body[256];
    char *argv[] = {n->bin_gw, (char *)"--id", (char *)"0", (char *)"-c", n->env.config, NULL};
    snprintf(log, sizeof log, "%s/gateway0.log", n->env.dir);
    n->gw = procs_spawn(n->bin_gw, argv, log);
    ck_assert_int_gt(n->gw, 0);
    int st = 0;
    for (int i = 0; i < 1000 && st != 200; i++) {
        st = procs_http_get("127.0.0.1", n->ws, "/healthz", body, sizeof body);
        if (st != 200) usleep(20000);
    }
    ck_assert_msg(st == 200, "node %u: gateway not healthy", n->id);
}

void hnode_signal_broker(hnode_t *n, int sig)
{
    if (n->broker <= 0) return;
    if (sig == SIGTERM) {
        procs_stop(n->broker, 10000);
        n->broker = 0;
        return;
    }
    ck_assert_int_eq(procs_kill(n->broker, sig), 0);
    if (sig == SIGKILL) {
        procs_reap(n->broker, HN_WAIT);
        n->broker = 0;
    }
}

void hnode_stop(hnode_t *n)
{
    if (n->gw > 0) procs_stop(n->gw, 5000);
    if (n->broker > 0) procs_stop(n->broker, 10000);
    n->gw = n->broker = 0;
}

json_t *hnode_get(hnode_t *n, const char *path)
{
    static char body[256 * 1024];
    if (procs_http_get("127.0.0.1", n->http, path, body, sizeof body) != 200) return NULL;
    return json_loads(body, 0, NULL);
}

unsigned hnode_owner(hnode_t *n, unsigned p, bool *owned_here)
{
    json_t *j = hnode_get(n, "/api/cluster");
    unsigned owner = 0;
    if (owned_here) *owned_here = false;
    json_t *parts = j ? json_object_get(j, "partition") : NULL;
    json_t *e = parts ? json_array_get(parts, p) : NULL;
    if (e) {
        owner = (unsigned)json_integer_value(json_object_get(e, "owner"));
        if (owned_here) *owned_here = json_is_true(json_object_get(e, "owned"));
    }
    json_decref(j);
    return owner;
}

uint64_t hnode_delivered_to(hnode_t *n, unsigned p)
{
    json_t *j = hnode_get(n, "/api/cluster");
    json_t *parts = j ? json_object_get(j, "partition") : NULL;
    json_t *e = parts ? json_array_get(parts, p) : NULL;
    uint64_t v = e ? (uint64_t)json_integer_value(json_object_get(e, "delivered_to")) : 0;
    json_decref(j);
    return v;
}

/* Whether n sees `live` nodes and every partition with the owner its rendezvous prefers;
 * counts the partitions n holds into held[]. */
static bool hnode_view_settled(hnode_t *n, unsigned live, unsigned partitions, unsigned *owner,
                               unsigned *holders)
{
    json_t *j = hnode_get(n, "/api/cluster");
    json_t *parts = j ? json_object_get(j, "partition") : NULL;
    bool ok = parts && json_array_size(json_object_get(j, "nodes")) == live &&
              json_array_size(parts) == partitions + 1;
    for (unsigned p = 0; ok && p <= partitions; p++) {
        json_t *e = json_array_get(parts, p);
        unsigned o = (unsigned)json_integer_value(json_object_get(e, "owner"));
        bool here = json_is_true(json_object_get(e, "owned"));
        ok = o && o == (unsigned)json_integer_value(json_object_get(e, "preferred")) &&
             (!owner[p] || owner[p] == o) && (!here || o == n->id);
        owner[p] = o;
        holders[p] += here;
    }
    json_decref(j);
    return ok;
}

bool hnode_settled(hnode_t **nodes, unsigned count, unsigned partitions, int ms)
{
    uint64_t end = hn_now_ms() + (uint64_t)ms;
    unsigned live = 0;
    for (unsigned i = 0; i < count; i++)
        live += nodes[i] && nodes[i]->broker > 0;
    do {
        unsigned owner[64] = {0}, holders[64] = {0};
        bool ok = partitions < 64;
        for (unsigned i = 0; i < count && ok; i++)
            if (nodes[i] && nodes[i]->broker > 0)
                ok = hnode_view_settled(nodes[i], live, partitions, owner, holders);
        for (unsigned p = 0; p <= partitions && ok; p++)
            ok = holders[p] == 1;
        if (ok) return true;
        usleep(200000);
    } while (hn_now_ms() < end);
    return false;
}

unsigned hnode_partition(const char *user, unsigned partitions)
{
    if (!strcmp(user, "*")) return partitions;
    return shard_gateway(user, strlen(user), partitions);
}

/* A system_notice at P1 (flushed within 5 ms, one priority: seq order holds per session). */
static int notice_json(char *out, size_t cap, const char *user, const char *id, const char *variant)
{
    return snprintf(out, cap,
                    "{\"user_id\":\"%s\",\"message_type\":\"system_notice\",\"message_id\":\"%s\","
                    "\"priority\":1,\"source\":\"test\",\"payload\":{\"title\":\"%s\","
                    "\"content\":\"cluster test\",\"level\":\"info\"}}",
                    user, id, variant ? variant : "t");
}

static int request_text(char *out, size_t cap, const char *body)
{
    return snprintf(out, cap,
                    "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                    strlen(body), body);
}

static int tcp_connect(uint16_t port, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A complete response in buf[0..len): its total length, status, and where the body is. */
static long response_parse(const char *buf, size_t len, int *status, const char **body,
                           size_t *blen, bool *retry_after)
{
    const char *eoh = memmem(buf, len, "\r\n\r\n", 4);
    if (!eoh) return 0;
    size_t hlen = (size_t)(eoh - buf) + 4;
    char head[4096];
    snprintf(head, sizeof head, "%.*s", (int)(hlen < sizeof head ? hlen : sizeof head - 1), buf);
    const char *cl = strcasestr(head, "content-length:");
    size_t clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
    if (len < hlen + clen) return 0;
    *status = atoi(head + 9);
    *body = buf + hlen;
    *blen = clen;
    if (retry_after) *retry_after = strcasestr(head, "\r\nretry-after:") != NULL;
    return (long)(hlen + clen);
}

/* The answer's fields: "seq":N, "duplicate":true, "error":"code". */
static void answer_fields(const char *body, size_t blen, uint64_t *seq, bool *dup, char *error,
                          size_t cap)
{
    char text[2048];
    snprintf(text, sizeof text, "%.*s", (int)(blen < sizeof text ? blen : sizeof text - 1), body);
    const char *s = strstr(text, "\"seq\":");
    if (seq) *seq = s ? strtoull(s + 6, NULL, 10) : 0;
    if (dup) *dup = strstr(text, "\"duplicate\":true") != NULL;
    if (error && cap) {
        error[0] = '\0';
        const char *e = strstr(text, "\"error\":\"");
        if (e) {
            e += 9;
            const char *q = strchr(e, '"');
            snprintf(error, cap, "%.*s", q ? (int)(q - e) : 0, e);
        }
    }
}

int hnode_publish(hnode_t *n, const char *user, const char *id, const char *variant, uint64_t *seq,
                  bool *dup, char *error, size_t cap, bool *retry_after)
{
    char body[1024], req[1400];
    notice_json(body, sizeof body, user, id, variant);
    int len = request_text(req, sizeof req, body);
    int fd = tcp_connect(n->http, false);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return -1;
    }
    static char buf[65536];
    size_t got = 0;
    int status = -1;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r <= 0) break;
        got += (size_t)r;
        const char *b;
        size_t blen;
        if (response_parse(buf, got, &status, &b, &blen, retry_after) > 0) {
            answer_fields(b, blen, seq, dup, error, cap);
            break;
        }
    }
    close(fd);
    return status;
}

wsc_t *hnode_client(hnode_t *n, const char *user, const char *query)
{
    char tok[512], url[400];
    wsc_t *c = NULL;
    ck_assert_int_gt(jwt_mint(HN_SECRET, user, (uint64_t)time(NULL), 3600, tok, sizeof tok), 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/ws%s", n->ws, query ? query : "");
    ck_assert_int_eq(wsc_connect(&c, url, tok, NULL, HN_WAIT), 101);
    const char *m;
    long len = wsc_recv(c, &m, NULL, HN_WAIT);
    ck_assert_int_gt(len, 0);
    ck_assert_msg(memmem(m, (size_t)len, "welcome", 7), "first message is the welcome: %s", m);
    return c;
}

/* --- sinks --- */

static void hsink_take(hsink_t *s, const char *m)
{
    json_t *j = json_loads(m, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", m);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && !strcmp(type, "notification")) {
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
        const char *u = json_string_value(json_object_get(j, "user_id"));
        if (u && !strcmp(u, "*")) {
            if (seq != s->bcast_last + 1) s->bcast_disorder++;
            if (seq > s->bcast_last) s->bcast_last = seq;
            json_decref(j);
            return;
        }
        ck_assert_msg(u && !strcmp(u, s->user), "%s got a notification of %s", s->user,
                      u ? u : "?");
        if (seq != s->last + 1) s->disorder++;
        if (seq > s->last) s->last = seq;
        s->received++;
    } else if (type && !strcmp(type, "gap")) {
        s->gaps++;
    } else if (type && !strcmp(type, "resumed")) {
        s->resumed = true;
    }
    json_decref(j);
}

void hsink_drain(hsink_t *s, int ms)
{
    const char *m;
    bool bin;
    if (wsc_recv(s->c, &m, &bin, ms) < 0) return;
    hsink_take(s, m);
    while (wsc_recv(s->c, &m, &bin, 0) >= 0)
        hsink_take(s, m);
}

bool hsink_wait(hsink_t *s, uint64_t seq, int ms)
{
    uint64_t end = hn_now_ms() + (uint64_t)ms;
    while (s->last < seq && hn_now_ms() < end)
        hsink_drain(s, 50);
    return s->last >= seq;
}

/* --- load --- */

void hload_init(hload_t *l, hnode_t **nodes, unsigned n_nodes, unsigned partitions,
                const char *prefix, unsigned users, size_t n_items, unsigned rate, unsigned conns)
{
    memset(l, 0, sizeof *l);
    ck_assert_uint_le(n_nodes, 4);
    ck_assert_uint_lt(partitions, HL_MAX_PARTS);
    ck_assert_uint_le(conns, HL_MAX_CONNS);
    for (unsigned i = 0; i < n_nodes; i++)
        l->nodes[i] = nodes[i];
    l->n_nodes = n_nodes;
    l->partitions = partitions;
    l->items = calloc(n_items, sizeof *l->items);
    l->retry = calloc(n_items, sizeof *l->retry);
    ck_assert(l->items && l->retry);
    l->n_items = n_items;
    for (size_t i = 0; i < n_items; i++) {
        hl_item_t *it = &l->items[i];
        snprintf(it->user, sizeof it->user, "%s%u", prefix, (unsigned)(i % users));
        snprintf(it->id, sizeof it->id, "%s-%d-%zu", prefix, (int)getpid(), i);
        it->part = hnode_partition(it->user, partitions);
    }
    l->rate = rate;
    l->n_conns = conns;
    for (unsigned i = 0; i < conns; i++)
        l->conns[i] = (hl_conn_t){.fd = -1, .node = i % n_nodes, .item = -1};
    l->t0_ms = hn_now_ms();
}

static void hl_close(hload_t *l, hl_conn_t *c, bool requeue)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->len = 0;
    if (c->item >= 0 && requeue) { /* unknown outcome: the same id again (dedup holds) */
        l->items[c->item].due_ms = hn_now_ms() + 100;
        l->retry[l->n_retry++] = (size_t)c->item;
    }
    c->item = -1;
    c->retry_ms = hn_now_ms() + 100;
    c->node = (c->node + 1) % l->n_nodes; /* try another entry next */
}

/* The next item to send (a due retry first), or -1. */
static long hl_next(hload_t *l, uint64_t now)
{
    for (size_t i = 0; i < l->n_retry; i++) {
        size_t k = l->retry[i];
        if (l->items[k].due_ms <= now) {
            l->retry[i] = l->retry[--l->n_retry];
            return (long)k;
        }
    }
    uint64_t allowed = l->rate ? (now - l->t0_ms) * l->rate / 1000 + 1 : l->n_items;
    if (l->next < l->n_items && l->next < allowed) return (long)l->next++;
    return -1;
}

static void hl_send(hload_t *l, hl_conn_t *c, uint64_t now)
{
    if (c->item >= 0 || now < c->retry_ms) return;
    for (unsigned k = 0; k < l->n_nodes && l->node_down[c->node]; k++)
        c->node = (c->node + 1) % l->n_nodes;
    if (l->node_down[c->node]) return;
    long k = hl_next(l, now);
    if (k < 0) return;
    if (c->fd < 0) c->fd = tcp_connect(l->nodes[c->node]->http, false);
    if (c->fd < 0) {
        l->conn_errors++;
        c->item = k;
        hl_close(l, c, true);
        return;
    }
    hl_item_t *it = &l->items[k];
    char body[1024], req[1400];
    notice_json(body, sizeof body, it->user, it->id, NULL);
    int len = request_text(req, sizeof req, body);
    c->item = k;
    c->at_ms = now;
    it->tries++;
    if (send(c->fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        l->conn_errors++;
        hl_close(l, c, true);
    }
}

static void hl_refused(hload_t *l, hl_item_t *it, long k, uint64_t now)
{
    hl_part_t *p = &l->part[it->part];
    p->refused++;
    l->refused++;
    if (!p->refusing_since) p->refusing_since = (long)now;
    it->due_ms = now + 200;
    l->retry[l->n_retry++] = (size_t)k;
}

static void hl_answer(hload_t *l, hl_conn_t *c, int status, const char *body, size_t blen,
                      bool retry_after)
{
    uint64_t now = hn_now_ms();
    long k = c->item;
    c->item = -1;
    hl_item_t *it = &l->items[k];
    char err[64];
    uint64_t seq;
    bool dup;
    answer_fields(body, blen, &seq, &dup, err, sizeof err);
    if (status == 200 && seq) {
        it->acked = true;
        it->seq = seq;
        it->dup = dup;
        l->ok++;
        hl_part_t *p = &l->part[it->part];
        p->acked++;
        if (p->refusing_since) {
            long run = (long)now - p->refusing_since;
            if (run > p->longest) p->longest = run;
            p->refusing_since = 0;
        }
        return;
    }
    if (status == 503) {
        if (!retry_after) l->refused_no_retry_after++;
        hl_refused(l, it, k, now);
        return;
    }
    l->other_errors++;
    if (!l->other[0])
        snprintf(l->other, sizeof l->other, "%s: HTTP %d %.*s", it->id, status,
                 (int)(blen < 150 ? blen : 150), body);
    it->due_ms = now + 200;
    l->retry[l->n_retry++] = (size_t)k;
}

void hload_step(hload_t *l, int ms)
{
    uint64_t end = hn_now_ms() + (uint64_t)ms;
    do {
        uint64_t now = hn_now_ms();
        struct pollfd pfd[HL_MAX_CONNS];
        unsigned map[HL_MAX_CONNS], n = 0;
        for (unsigned i = 0; i < l->n_conns; i++) {
            hl_conn_t *c = &l->conns[i];
            hl_send(l, c, now);
            if (c->fd >= 0 && c->item >= 0) {
                pfd[n] = (struct pollfd){.fd = c->fd, .events = POLLIN};
                map[n++] = i;
            }
        }
        int wait = (int)(end > now ? end - now : 0);
        if (wait > 5) wait = 5;
        if (!n) {
            usleep((useconds_t)wait * 1000u);
            continue;
        }
        if (poll(pfd, n, wait) <= 0) continue;
        for (unsigned j = 0; j < n; j++) {
            if (!pfd[j].revents) continue;
            hl_conn_t *c = &l->conns[map[j]];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r <= 0) {
                l->conn_errors++;
                hl_close(l, c, true);
                continue;
            }
            c->len += (size_t)r;
            int status;
            const char *body;
            size_t blen;
            bool ra = false;
            long used = response_parse(c->buf, c->len, &status, &body, &blen, &ra);
            if (used <= 0) continue;
            hl_answer(l, c, status, body, blen, ra);
            memmove(c->buf, c->buf + used, c->len - (size_t)used);
            c->len -= (size_t)used;
        }
    } while (hn_now_ms() < end);
}

bool hload_done(const hload_t *l)
{
    if (l->next < l->n_items || l->n_retry) return false;
    for (unsigned i = 0; i < l->n_conns; i++)
        if (l->conns[i].item >= 0) return false;
    return true;
}

size_t hload_user_acked(const hload_t *l, const char *user)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n_items; i++)
        n += l->items[i].acked && !strcmp(l->items[i].user, user);
    return n;
}

void hload_free(hload_t *l)
{
    for (unsigned i = 0; i < l->n_conns; i++)
        if (l->conns[i].fd >= 0) close(l->conns[i].fd);
    free(l->items);
    free(l->retry);
    memset(l, 0, sizeof *l);
}
