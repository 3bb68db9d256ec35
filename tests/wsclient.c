/* wsclient.c - blocking-style WebSocket test client (ws:// and wss://) over one shared lws
 * client context. */
#include "wsclient.h"
#include "herald_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

typedef struct wsc_msg {
    struct wsc_msg *next;
    bool binary;
    size_t len;
    char data[]; /* len + NUL */
} wsc_msg_t;

typedef struct wsc_out {
    struct wsc_out *next;
    bool binary;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} wsc_out_t;

struct wsc {
    struct lws *wsi;
    char token[4200];
    int status; /* 0 pending, 101 ok, >0 refused status, -1 failed */
    bool closed;
    int close_code;
    wsc_msg_t *head, *tail;
    wsc_msg_t *last; /* returned by the last recv, freed on the next */
    wsc_out_t *out_head, *out_tail;
    char *rx;
    size_t rx_len, rx_cap;
};

static struct lws_context *wsc_ctx;
static unsigned wsc_users;
static bool wsc_deflate, wsc_ctx_deflate;
static char wsc_ca[512], wsc_ctx_ca[512]; /* CA file for wss:// ("" = the system's) */

static const struct lws_extension wsc_exts[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_max_window_bits"},
    {NULL, NULL, NULL},
};
static lws_sorted_usec_list_t wsc_tick; /* bounds each lws_service wait */

static void wsc_tick_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* firing is the point: it ends the current poll wait */
}

/* One service pass that waits at most 10 ms (lws ignores lws_service's timeout argument). */
static void wsc_step(void)
{
    lws_sul_schedule(wsc_ctx, 0, &wsc_tick, wsc_tick_cb, 10000);
    lws_service(wsc_ctx, 0);
}

static void wsc_push(wsc_t *c, const char *p, size_t n, bool binary)
{
    wsc_msg_t *m = malloc(sizeof *m + n + 1);
    if (!m) abort();
    m->next = NULL;
    m->binary = binary;
    m->len = n;
    memcpy(m->data, p, n);
    m->data[n] = '\0';
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
}

static int wsc_write_pending(wsc_t *c, struct lws *wsi)
{
    wsc_out_t *o = c->out_head;
    if (!o) return 0;
    if (lws_write(wsi, o->buf + LWS_PRE, o->len, o->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
        return -1;
    c->out_head = o->next;
    if (!c->out_head) c->out_tail = NULL;
    free(o);
    if (c->out_head) lws_callback_on_writable(wsi);
    return 0;
}

static int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    wsc_t *c = lws_get_opaque_user_data(wsi);
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c && c->token[0]) {
            unsigned char **p = in, *end = *p + len;
            char v[4300];
            int n = snprintf(v, sizeof v, "Bearer %s", c->token);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v,
                                             n, p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c) c->status = 101;
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c) {
            unsigned code = lws_http_client_http_response(wsi);
            const char *why = in ? (const char *)in : "";
            if (!code && strstr(why, "unauthorized")) code = 401;
            c->status = code && code != 101 ? (int)code : -1;
            c->closed = true;
            c->wsi = NULL;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c) return 0;
        if (c->rx_len + len + 1 > c->rx_cap) {
            c->rx_cap = (c->rx_len + len + 1) * 2;
            c->rx = realloc(c->rx, c->rx_cap);
            if (!c->rx) abort();
        }
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            wsc_push(c, c->rx, c->rx_len, lws_frame_is_binary(wsi));
            c->rx_len = 0;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2) {
            const unsigned char *b = in;
            c->close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return c ? wsc_write_pending(c, wsi) : 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c) {
            c->closed = true;
            c->wsi = NULL;
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols wsc_protocols[] = {
    {"wsc", wsc_callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void wsc_offer_deflate(bool on)
{
    wsc_deflate = on;
}

void wsc_trust(const char *cafile)
{
    snprintf(wsc_ca, sizeof wsc_ca, "%s", cafile ? cafile : "");
}

static int wsc_ctx_get(void)
{
    if (wsc_ctx && (wsc_ctx_deflate != wsc_deflate || strcmp(wsc_ctx_ca, wsc_ca)) && !wsc_users) {
        lws_sul_cancel(&wsc_tick);
        lws_context_destroy(wsc_ctx);
        wsc_ctx = NULL;
    }
    if (wsc_ctx) return 0;
    wsc_ctx_deflate = wsc_deflate;
    memcpy(wsc_ctx_ca, wsc_ca, sizeof wsc_ca);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = wsc_protocols;
    info.extensions = wsc_deflate ? wsc_exts : NULL;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = wsc_ca[0] ? wsc_ca : NULL;
    info.timeout_secs = 10;
    lws_set_log_level(LLL_ERR, NULL);
    wsc_ctx = lws_create_context(&info);
    return wsc_ctx ? 0 : -1;
}

void wsc_pump(int ms)
{
    if (!wsc_ctx) return;
    uint64_t end = mono_ms() + (uint64_t)(ms > 0 ? ms : 0);
    do
        wsc_step();
    while (mono_ms() < end);
}

static void wsc_free(wsc_t *c)
{
    while (c->head) {
        wsc_msg_t *m = c->head;
        c->head = m->next;
        free(m);
    }
    while (c->out_head) {
        wsc_out_t *o = c->out_head;
        c->out_head = o->next;
        free(o);
    }
    free(c->last);
    free(c->rx);
    free(c);
    if (--wsc_users == 0) {
        lws_sul_cancel(&wsc_tick);
        lws_context_destroy(wsc_ctx);
        wsc_ctx = NULL;
    }
}

int wsc_connect(wsc_t **out, const char *url, const char *token, const char *subprotocol,
                int timeout_ms)
{
    *out = NULL;
    if (wsc_ctx_get() < 0) return -1;
    wsc_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    wsc_users++;
    if (token) snprintf(c->token, sizeof c->token, "%s", token);

    char copy[4600], path[4600];
    const char *prot, *addr, *p;
    int port;
    snprintf(copy, sizeof copy, "%s", url);
    if (lws_parse_uri(copy, &prot, &addr, &port, &p)) {
        wsc_free(c);
        return -1;
    }
    snprintf(path, sizeof path, "/%s", p);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = wsc_ctx;
    ci.address = addr;
    ci.port = port;
    ci.path = path;
    ci.host = addr;
    ci.origin = addr;
    ci.protocol = subprotocol;
    ci.local_protocol_name = "wsc";
    ci.ietf_version_or_minus_one = -1;
    /* wss:// verifies the chain (against wsc_trust's file) and the host name */
    ci.ssl_connection = strcmp(prot, "wss") == 0 ? LCCSCF_USE_SSL : 0;
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        wsc_free(c);
        return -1;
    }
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while (c->status == 0 && mono_ms() < end)
        wsc_step();
    int status = c->status;
    if (status != 101) {
        if (c->wsi) {
            lws_set_opaque_user_data(c->wsi, NULL);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            wsc_step();
        }
        wsc_free(c);
        return status ? status : -1;
    }
    *out = c;
    return 101;
}

long wsc_recv(wsc_t *c, const char **data, bool *binary, int timeout_ms)
{
    free(c->last);
    c->last = NULL;
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    while (!c->head && !c->closed && mono_ms() < end)
        wsc_step();
    if (!c->head) return c->closed ? -2 : -1;
    wsc_msg_t *m = c->head;
    c->head = m->next;
    if (!c->head) c->tail = NULL;
    c->last = m;
    *data = m->data;
    if (binary) *binary = m->binary;
    return (long)m->len;
}

long wsc_recv_match(wsc_t *c, const char *needle, const char **data, int timeout_ms)
{
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = mono_ms();
        long n = wsc_recv(c, data, NULL, now < end ? (int)(end - now) : 0);
        if (n < 0) return n;
        if (strstr(*data, needle)) return n;
    }
}

static int wsc_send(wsc_t *c, const void *p, size_t n, bool binary)
{
    if (c->closed || !c->wsi) return -1;
    wsc_out_t *o = malloc(sizeof *o + LWS_PRE + n);
    if (!o) abort();
    o->next = NULL;
    o->binary = binary;
    o->len = n;
    memcpy(o->buf + LWS_PRE, p, n);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    lws_callback_on_writable(c->wsi);
    wsc_step();
    return 0;
}

int wsc_send_text(wsc_t *c, const char *text)
{
    return wsc_send(c, text, strlen(text), false);
}

int wsc_send_binary(wsc_t *c, const void *data, size_t len)
{
    return wsc_send(c, data, len, true);
}

void wsc_set_reading(wsc_t *c, bool reading)
{
    if (c->wsi) lws_rx_flow_control(c->wsi, reading ? 1 : 0);
}

bool wsc_is_closed(const wsc_t *c)
{
    return c->closed;
}

int wsc_close_code(const wsc_t *c)
{
    return c->close_code;
}

void wsc_close(wsc_t *c)
{
    if (!c) return;
    if (c->wsi) {
        lws_set_opaque_user_data(c->wsi, NULL);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        wsc_step();
    }
    wsc_free(c);
}
