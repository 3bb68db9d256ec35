/* http.c - the broker's HTTP API on lws: publish, stats, route, metrics, healthz. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "shard.h"

typedef struct {
    uint8_t *body;
    size_t len, cap;
    bool publish, too_large, unauthorized;
    bk_req_t *req; /* publish waiting for its seqs */
    bool ready;    /* out holds the response */
    int status;
    bool retry_after;
    bool text; /* Prometheus text, not JSON */
    jbuf_t out;
} http_pss_t;

static msgpack_sbuffer mp;

static void pss_reset(http_pss_t *p)
{
    free(p->body);
    p->body = NULL;
    p->len = p->cap = 0;
    p->publish = p->too_large = p->unauthorized = p->ready = p->retry_after = p->text = false;
    p->req = NULL;
    p->status = 0;
    if (p->out.base) jbuf_reset(&p->out);
}

static void out_begin(http_pss_t *p)
{
    if (!p->out.base) jbuf_init(&p->out, LWS_PRE);
    jbuf_reset(&p->out);
}

static void respond(struct lws *wsi, http_pss_t *p, int status)
{
    p->status = status;
    p->ready = true;
    lws_callback_on_writable(wsi);
}

static void respond_error(struct lws *wsi, http_pss_t *p, int status, herr_t code, const char *msg)
{
    out_begin(p);
    jbuf_puts(&p->out, "{\"error\":");
    json_put_str(&p->out, herr_code(code), strlen(herr_code(code)));
    jbuf_puts(&p->out, ",\"message\":");
    json_put_str(&p->out, msg, strlen(msg));
    jbuf_putc(&p->out, '}');
    p->retry_after = code == HERR_QUEUE_FULL || code == HERR_IO || code == HERR_OVER_CAPACITY;
    respond(wsi, p, status);
}

static int status_of(herr_t code)
{
    switch (code) {
    case HERR_QUEUE_FULL:
    case HERR_IO:
    case HERR_OVER_CAPACITY:
        return 503; /* journal write failing, memory bound: retry later */
    case HERR_ID_CONFLICT:
        return 409;
    case HERR_TOO_LARGE:
        return 413;
    case HERR_UNAUTHORIZED:
        return 401;
    default:
        return 400;
    }
}

static void put_result(jbuf_t *o, const bk_result_t *r)
{
    if (r->code != HERR_OK) {
        jbuf_puts(o, "{\"error\":");
        json_put_str(o, herr_code(r->code), strlen(herr_code(r->code)));
        jbuf_puts(o, ",\"message\":");
        json_put_str(o, r->message ? r->message : "", r->message ? strlen(r->message) : 0);
        jbuf_putc(o, '}');
        return;
    }
    jbuf_puts(o, "{\"seq\":");
    jbuf_put_u64(o, r->seq);
    jbuf_puts(o, ",\"message_id\":");
    json_put_str(o, r->message_id, strlen(r->message_id));
    jbuf_puts(o, r->duplicate ? ",\"duplicate\":true}" : ",\"duplicate\":false}");
}

static void render_publish(struct lws *wsi, http_pss_t *p, bk_req_t *req)
{
    if (req->frame_code != HERR_OK) {
        respond_error(wsi, p, status_of(req->frame_code), req->frame_code, req->frame_msg);
    } else if (!req->batch) {
        const bk_result_t *r = &req->res[0];
        if (r->code != HERR_OK) {
            respond_error(wsi, p, status_of(r->code), r->code, r->message ? r->message : "");
        } else {
            out_begin(p);
            put_result(&p->out, r);
            respond(wsi, p, 200);
        }
    } else {
        out_begin(p);
        jbuf_putc(&p->out, '[');
        for (uint32_t i = 0; i < req->n; i++) {
            if (i) jbuf_putc(&p->out, ',');
            put_result(&p->out, &req->res[i]);
        }
        jbuf_putc(&p->out, ']');
        respond(wsi, p, 200);
    }
    bk_req_free(req);
    p->req = NULL;
}

void bk_http_req_done(broker_t *b, bk_req_t *req)
{
    (void)b;
    struct lws *wsi = req->wsi;
    render_publish(wsi, lws_wsi_user(wsi), req);
}

static void publish_complete(broker_t *b, struct lws *wsi, http_pss_t *p)
{
    b->c.http_requests++;
    if (p->unauthorized) {
        b->c.unauthorized++;
        respond_error(wsi, p, 401, HERR_UNAUTHORIZED,
                      "missing or wrong Authorization: apikey <key> header");
        return;
    }
    if (p->too_large) {
        b->c.too_large++;
        respond_error(wsi, p, 413, HERR_TOO_LARGE, "request body exceeds 16 MiB");
        return;
    }
    /* A batch over BK_MAX_BATCH is refused by bk_ingest_body from the converted array's
     * header, before any item is decoded (the conversion itself is linear and bounded by
     * the 16 MiB body limit). */
    herald_error_t err = {0};
    mp.size = 0;
    if (json_to_msgpack((const char *)p->body, p->len, &mp, &err) < 0) {
        b->c.bad_frames++;
        if (log_ratelimit_ok(&b->rl_bad, 5)) log_warn("bad HTTP publish body: %s", err.message);
        respond_error(wsi, p, status_of(err.code), err.code, err.message);
        return;
    }
    bk_req_t *req = bk_ingest_body(b, (const uint8_t *)mp.data, mp.size);
    if (req->pending) {
        req->wsi = wsi;
        p->req = req;
        return;
    }
    render_publish(wsi, p, req);
}

static void route_response(broker_t *b, struct lws *wsi, http_pss_t *p)
{
    char buf[160];
    const char *user = lws_get_urlarg_by_name(wsi, "user=", buf, sizeof buf);
    if (!user || !*user || strlen(user) > HERALD_MAX_ID_LEN) {
        respond_error(wsi, p, 400, HERR_MISSING_FIELD, "query parameter user is required");
        return;
    }
    unsigned count = b->cfg.gateway_count ? b->cfg.gateway_count : 1;
    unsigned gw = shard_gateway(user, strlen(user), count);
    out_begin(p);
    jbuf_puts(&p->out, "{\"user\":");
    json_put_str(&p->out, user, strlen(user));
    jbuf_puts(&p->out, ",\"gateway\":");
    jbuf_put_u64(&p->out, gw);
    jbuf_puts(&p->out, ",\"url\":\"ws://");
    jbuf_puts(&p->out, b->cfg.gateway_listen.host);
    jbuf_putc(&p->out, ':');
    jbuf_put_u64(&p->out, (uint64_t)b->cfg.gateway_listen.port + gw);
    jbuf_puts(&p->out, "/ws\"}");
    respond(wsi, p, 200);
}

static bool authorized(broker_t *b, struct lws *wsi)
{
    if (!b->cfg.broker_api_key[0]) return true;
    char hdr[200];
    if (lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0) return false;
    return !strncmp(hdr, "apikey ", 7) && bk_guard_key_ok(b, hdr + 7, strlen(hdr + 7));
}

static int on_http(broker_t *b, struct lws *wsi, http_pss_t *p, const char *uri)
{
    pss_reset(p);
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    if (!strcmp(uri, "/api/publish")) {
        if (!post) {
            respond_error(wsi, p, 405, HERR_BAD_VALUE, "use POST for /api/publish");
            return 0;
        }
        p->publish = true;
        p->unauthorized = !authorized(b, wsi);
        char cl[32];
        if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > BK_MAX_FRAME) p->too_large = true;
            if (n == 0) publish_complete(b, wsi, p); /* no body will follow */
        }
        return 0;
    }
    b->c.http_requests++;
    out_begin(p);
    if (!strcmp(uri, "/api/stats")) {
        bk_stats_json(b, &p->out);
        respond(wsi, p, 200);
    } else if (!strcmp(uri, "/api/route")) {
        route_response(b, wsi, p);
    } else if (!strcmp(uri, "/metrics")) {
        bk_metrics_text(b, &p->out);
        p->text = true;
        respond(wsi, p, 200);
    } else if (!strcmp(uri, "/healthz")) {
        jbuf_puts(&p->out, "{\"status\":\"ok\"}");
        respond(wsi, p, 200);
    } else {
        respond_error(wsi, p, 404, HERR_NOT_FOUND, "no such path");
    }
    return 0;
}

static int on_writeable(struct lws *wsi, http_pss_t *p, const char *ctype)
{
    if (!p->ready) return 0;
    uint8_t hbuf[LWS_PRE + 512];
    uint8_t *start = hbuf + LWS_PRE, *ptr = start, *end = hbuf + sizeof hbuf;
    if (lws_add_http_common_headers(wsi, (unsigned)p->status, ctype, p->out.len, &ptr, end))
        return -1;
    if (p->retry_after && lws_add_http_header_by_name(wsi, (const uint8_t *)"Retry-After:",
                                                      (const uint8_t *)"1", 1, &ptr, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &ptr, end)) return -1;
    if (lws_write(wsi, (uint8_t *)p->out.data, p->out.len, LWS_WRITE_HTTP_FINAL) != (int)p->out.len)
        return -1;
    pss_reset(p);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    broker_t *b = g_broker;
    http_pss_t *p = user;
    if (!p) return lws_callback_http_dummy(wsi, reason, user, in, len); /* no request yet */
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(b, wsi, p, in);
    case LWS_CALLBACK_HTTP_BODY:
        if (!p->publish || p->too_large || p->unauthorized) return 0;
        if (p->len + len > BK_MAX_FRAME) {
            p->too_large = true;
            return 0;
        }
        if (p->len + len > p->cap) {
            size_t cap = p->cap ? p->cap : 4096;
            while (cap < p->len + len)
                cap *= 2;
            uint8_t *nb = realloc(p->body, cap);
            if (!nb) abort();
            p->body = nb;
            p->cap = cap;
        }
        memcpy(p->body + p->len, in, len);
        p->len += len;
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (p->publish && !p->ready && !p->req) publish_complete(b, wsi, p);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, p, p->text ? "text/plain; version=0.0.4" : "application/json");
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* either may be the last call for this session */
        if (p->req) bk_req_orphan(b, p->req);
        p->req = NULL;
        pss_reset(p);
        jbuf_free(&p->out);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

const struct lws_protocols bk_http_protocol = {"http", http_cb, sizeof(http_pss_t), 0, 0, NULL, 0};
