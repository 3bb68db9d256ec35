/* ws_tail.c - heraldctl tail: connect to the user's gateway as that user (a minted token)
 * with libwebsockets (wss:// when the gateways serve TLS) and print every server message as
 * one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "ctl.h"
#include "json.h"
#include "jwt.h"
#include "shard.h"

#define TAIL_TOKEN_TTL_S 3600

typedef struct {
    struct lws_context *lws;
    lws_sorted_usec_list_t timer; /* wakes the service loop for the --timeout check */
    jbuf_t msg;                   /* the message being reassembled from fragments */
    char subscribe[512];          /* op to send once connected ("" = none) */
    bool subscribe_pending;
    uint64_t want; /* --count (0 = unlimited) */
    uint64_t got;  /* notifications printed */
    bool done;
    bool timed_out;
    char why[300]; /* failure reason ("" = none) */
} tail_t;

/* One complete server message: print it and count notifications. */
static void tail_message(tail_t *t)
{
    json_t *v = json_loadb(t->msg.data, t->msg.len, 0, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    fwrite(t->msg.data, 1, t->msg.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    if (type && strcmp(type, "notification") == 0) t->got++;
    json_decref(v);
    jbuf_reset(&t->msg);
    if (t->want && t->got >= t->want) t->done = true;
}

static int tail_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    tail_t *t = lws_context_user(lws_get_context(wsi));
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(t->why, sizeof t->why, "connection failed: %s",
                 in ? (const char *)in : "unknown error");
        t->done = true;
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (t->subscribe_pending) lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (t->subscribe_pending) {
            size_t n = strlen(t->subscribe);
            unsigned char buf[LWS_PRE + sizeof t->subscribe];
            memcpy(buf + LWS_PRE, t->subscribe, n);
            t->subscribe_pending = false;
            if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n) {
                snprintf(t->why, sizeof t->why, "could not send subscribe");
                t->done = true;
                return -1;
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        jbuf_put(&t->msg, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) tail_message(t);
        if (t->done) return -1;
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            snprintf(t->why, sizeof t->why, "gateway closed the session: %u %.*s",
                     (unsigned)(p[0] << 8 | p[1]), (int)(len - 2), (const char *)in + 2);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!t->done && !t->why[0]) snprintf(t->why, sizeof t->why, "gateway closed the session");
        t->done = true;
        break;
    default:
        break;
    }
    return 0;
}

static void tail_tick(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* firing is the point: it ends lws_service's poll wait */
}

/* {"op":"subscribe","channels":[...]} from "trade,risk" into t->subscribe. */
static int tail_build_subscribe(tail_t *t, const char *channels)
{
    json_t *arr = json_array();
    char copy[256];
    snprintf(copy, sizeof copy, "%s", channels);
    for (char *save = NULL, *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, json_string(c));
    json_t *op = json_pack("{s:s,s:o}", "op", "subscribe", "channels", arr);
    char *s = json_dumps(op, JSON_COMPACT);
    json_decref(op);
    if (!s || strlen(s) >= sizeof t->subscribe) {
        free(s);
        return ctl_fail("--channels: too long");
    }
    snprintf(t->subscribe, sizeof t->subscribe, "%s", s);
    free(s);
    t->subscribe_pending = true;
    return 0;
}

/* Read tail's options: --user into *user, --since, --timeout, --count into t->want,
 * --channels into t's subscribe op. Returns 0, or 1 after printing the error. */
static int tail_args(ctl_t *ctl, tail_t *t, const char **user, uint64_t *since, uint64_t *timeout_s)
{
    static const char *const names[] = {"user",    "channels", "since", "count",
                                        "timeout", "ca",       NULL};
    const char *channels, *opt;
    if (ctl_check_args(ctl, names, NULL, 0, 0)) return 1;
    *user = ctl_opt(ctl, "user");
    channels = ctl_opt(ctl, "channels");
    if (!*user || !**user || strlen(*user) > HERALD_MAX_ID_LEN)
        return ctl_fail("tail needs --user U");
    if ((opt = ctl_opt(ctl, "since")) && ctl_parse_u64("--since", opt, since)) return 1;
    if ((opt = ctl_opt(ctl, "count")) && ctl_parse_u64("--count", opt, &t->want)) return 1;
    if ((opt = ctl_opt(ctl, "timeout")) && ctl_parse_u64("--timeout", opt, timeout_s)) return 1;
    if (channels && tail_build_subscribe(t, channels)) return 1;
    return 0;
}

/* Create t's WebSocket context (TLS when the gateways serve it, verified against --ca or the
 * system's CAs) and start connecting ci to path on port. Returns 0, or 1 after printing the
 * error; a connection that cannot start leaves t->why set. */
static int tail_connect(ctl_t *ctl, tail_t *t, struct lws_client_connect_info *ci, const char *path,
                        int port, bool tls)
{
    static const struct lws_protocols protocols[] = {
        {"herald.json", tail_callback, 0, 65536, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    lws_set_log_level(0, NULL);
    struct lws_context_creation_info info = {0};
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = t;
    info.gid = -1;
    info.uid = -1;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = ctl_opt(ctl, "ca");
    }
    t->lws = lws_create_context(&info);
    if (!t->lws) return ctl_fail("tail: could not create the WebSocket context");
    jbuf_init(&t->msg, 0);

    memset(ci, 0, sizeof *ci);
    ci->context = t->lws;
    ci->address = ctl->cfg.gateway_listen.host;
    ci->port = port;
    ci->path = path;
    ci->host = ci->address;
    ci->origin = ci->address;
    ci->protocol = "herald.json";
    ci->ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    if (!lws_client_connect_via_info(ci))
        snprintf(t->why, sizeof t->why, "could not start connecting");
    return 0;
}

/* Service t until it is done, fails, or timeout_s (0 = none) passes; then free it. */
static void tail_run(tail_t *t, uint64_t timeout_s)
{
    /* lws 4.1 may wait ~30 s in one service call whatever timers say (a timer set once
     * before connecting did not end it): wake it every 100 ms and keep the deadline here */
    time_t deadline = time(NULL) + (time_t)timeout_s;
    while (!t->why[0] && !t->done) {
        if (timeout_s && time(NULL) >= deadline) {
            t->timed_out = t->done = true;
            break;
        }
        lws_sul_schedule(t->lws, 0, &t->timer, tail_tick, 100 * LWS_US_PER_MS);
        if (lws_service(t->lws, 0) < 0) break;
    }
    lws_sul_cancel(&t->timer);
    lws_context_destroy(t->lws);
    jbuf_free(&t->msg);
}

int ctl_cmd_tail(ctl_t *ctl)
{
    const char *user;
    uint64_t since = 0, timeout_s = 0;
    char token[1024], path[1200];
    tail_t t = {0};
    if (tail_args(ctl, &t, &user, &since, &timeout_s)) return 1;
    if (jwt_mint_for(&ctl->cfg, user, (uint64_t)time(NULL), TAIL_TOKEN_TTL_S, token, sizeof token) <
        0)
        return ctl_fail("tail: could not mint a token for %s", user);
    /* protocol.md 6's order (token, then since): the quick-start test's resume covers it */
    if (since)
        snprintf(path, sizeof path, "/ws?token=%s&since=%llu", token, (unsigned long long)since);
    else
        snprintf(path, sizeof path, "/ws?token=%s", token);
    unsigned count = ctl->cfg.gateway_count ? ctl->cfg.gateway_count : 1;
    unsigned g = shard_gateway(user, strlen(user), count);
    int port = ctl->cfg.gateway_listen.port + (int)g;
    bool tls = ctl->cfg.gateway_tls_cert[0] != '\0';
    struct lws_client_connect_info ci;
    if (tail_connect(ctl, &t, &ci, path, port, tls)) return 1;
    tail_run(&t, timeout_s);

    if (t.want && t.got >= t.want) return 0;
    if (t.timed_out && !t.want) return 0;
    if (t.timed_out)
        return ctl_fail("tail: timed out after %llus with %llu of %llu notifications",
                        (unsigned long long)timeout_s, (unsigned long long)t.got,
                        (unsigned long long)t.want);
    return ctl_fail("tail %s://%s:%d (gateway %u): %s", tls ? "wss" : "ws", ci.address, port, g,
                    t.why[0] ? t.why : "connection ended");
}
