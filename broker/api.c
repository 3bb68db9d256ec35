/* api.c - the broker's HTTP endpoints: publish, stats, route, metrics, healthz. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "api.h"
#include "broker.h"
#include "clustered.h"
#include "http.h"
#include "ingest.h"
#include "pipeline.h"
#include "presence.h"
#include "revoke.h"
#include "shard.h"
#include "stats.h"
#include "webui.h"

int bk_api_status_of(herr_t code)
{
    switch (code) {
    case HERR_QUEUE_FULL:
    case HERR_IO:
    case HERR_OVER_CAPACITY:
    case HERR_UNAVAILABLE:
        return 503; /* all four with Retry-After */
    case HERR_ID_CONFLICT:
        return 409; /* retrying cannot help: no Retry-After */
    case HERR_TOO_LARGE:
        return 413;
    case HERR_UNAUTHORIZED:
        return 401;
    case HERR_NOT_FOUND:
        return 404;
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

/* Answer a publish whose every item has its outcome. */
static void publish_answer(broker_t *b, bk_http_msg_t *m, bk_req_t *req)
{
    const bk_result_t *r = &req->res[0];
    unsigned cors = bk_webui_cors(b, "/api/publish") ? BK_HTTP_CORS : 0;
    if (req->frame_code != HERR_OK) {
        bk_http_error_flags(b, m, bk_api_status_of(req->frame_code), req->frame_code,
                            req->frame_msg, cors);
    } else if (!req->batch && r->code != HERR_OK) {
        bk_http_error_flags(b, m, bk_api_status_of(r->code), r->code, r->message ? r->message : "",
                            cors);
    } else {
        jbuf_t *o = &b->api_out;
        jbuf_reset(o);
        if (req->batch) jbuf_putc(o, '[');
        for (uint32_t i = 0; i < req->n; i++) {
            if (i) jbuf_putc(o, ',');
            put_result(o, &req->res[i]);
        }
        if (req->batch) jbuf_putc(o, ']');
        bk_http_respond(b, m, 200, o->data, o->len, cors);
    }
    bk_req_free(req);
}

void bk_http_req_done(broker_t *b, bk_req_t *req)
{
    publish_answer(b, req->http, req);
}

/* Constant-time check of "Authorization: apikey <key>" (protocol.md 12). */
static bool authorized(const broker_t *b, const bk_http_request_t *rq)
{
    const char *key = b->cfg.broker_api_key;
    size_t klen = strlen(key);
    if (!klen) return true;
    if (!rq->auth || rq->auth_len != 7 + klen || strncmp(rq->auth, "apikey ", 7)) return false;
    return CRYPTO_memcmp(rq->auth + 7, key, klen) == 0;
}

static void publish(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    if (!authorized(b, rq)) {
        b->c.unauthorized++;
        bk_http_error_flags(b, m, 401, HERR_UNAUTHORIZED,
                            "missing or wrong Authorization: apikey <key> header",
                            bk_webui_cors(b, "/api/publish") ? BK_HTTP_CORS : 0);
        return;
    }
    /* A batch over BK_MAX_BATCH is refused by bk_ingest_body from the converted array's
     * header, before any item is decoded (the conversion itself is linear and bounded by
     * broker.http_body_max). */
    herald_error_t err = {0};
    msgpack_sbuffer *mp = bk_http_scratch(b);
    mp->size = 0;
    if (json_to_msgpack((const char *)rq->body, rq->body_len, mp, &err) < 0) {
        b->c.bad_frames++;
        if (log_ratelimit_ok(&b->rl_bad, 5)) log_warn("bad HTTP publish body: %s", err.message);
        bk_http_error_flags(b, m, bk_api_status_of(err.code), err.code, err.message,
                            bk_webui_cors(b, "/api/publish") ? BK_HTTP_CORS : 0);
        return;
    }
    bk_req_t *req = bk_ingest_body(b, (const uint8_t *)mp->data, mp->size);
    if (req->pending) {
        req->http = m;
        return;
    }
    publish_answer(b, m, req);
}

/* The value of query parameter name (URL-decoded into out), or NULL. */
static const char *query_arg(const bk_http_request_t *rq, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *q = rq->query, *end = q ? q + rq->query_len : NULL;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) > nl && !memcmp(q, name, nl) && q[nl] == '=') {
            size_t o = 0;
            for (const char *p = q + nl + 1; p < stop && o + 1 < cap; p++) {
                unsigned v;
                if (*p == '%' && stop - p >= 3 && sscanf(p + 1, "%2x", &v) == 1) {
                    out[o++] = (char)v;
                    p += 2;
                } else {
                    out[o++] = *p == '+' ? ' ' : *p;
                }
            }
            out[o] = '\0';
            return out;
        }
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static void route(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    char buf[160];
    const char *user = query_arg(rq, "user", buf, sizeof buf);
    if (!user || !*user || strlen(user) > HERALD_MAX_ID_LEN) {
        bk_http_error(b, m, 400, HERR_MISSING_FIELD, "query parameter user is required");
        return;
    }
    unsigned count = b->cfg.gateway_count ? b->cfg.gateway_count : 1;
    unsigned gw = shard_gateway(user, strlen(user), count);
    jbuf_t *o = &b->api_out;
    jbuf_reset(o);
    jbuf_puts(o, "{\"user\":");
    json_put_str(o, user, strlen(user));
    jbuf_puts(o, ",\"gateway\":");
    jbuf_put_u64(o, gw);
    char url[128];
    shard_url(&b->cfg, gw, url, sizeof url); /* wss:// when the gateways serve TLS */
    jbuf_puts(o, ",\"url\":");
    json_put_str(o, url, strlen(url));
    jbuf_putc(o, '}');
    bk_http_respond(b, m, 200, o->data, o->len, 0);
}

/* The user= query parameter as GET /api/presence and /api/unacked take it: 1..64 bytes, not
 * the broadcast user. Answers 400 and returns NULL otherwise. */
static const char *user_arg(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq, char *buf,
                            size_t cap)
{
    const char *user = query_arg(rq, "user", buf, cap);
    if (!user || !*user || strlen(user) > HERALD_MAX_ID_LEN || !strcmp(user, "*")) {
        bk_http_error(b, m, 400, HERR_MISSING_FIELD,
                      "query parameter user (a user id of 1 to 64 bytes) is required");
        return NULL;
    }
    return user;
}

static bool api_key_ok(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    if (authorized(b, rq)) return true;
    b->c.unauthorized++;
    bk_http_error(b, m, 401, HERR_UNAUTHORIZED,
                  "missing or wrong Authorization: apikey <key> header");
    return false;
}

/* GET /api/presence?user=U, or POST /api/presence {"users":[...]} (protocol.md 14). */
static void presence(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    char buf[160];
    jbuf_t *o = &b->api_out;
    jbuf_reset(o);
    if (!api_key_ok(b, m, rq)) return;
    if (rq->method == BK_HTTP_POST) {
        herald_error_t err = {0};
        if (bk_presence_batch_json(b, (const char *)rq->body, rq->body_len, o, &err) < 0) {
            bk_http_error(b, m, bk_api_status_of(err.code), err.code, err.message);
            return;
        }
    } else {
        const char *user = user_arg(b, m, rq, buf, sizeof buf);
        if (!user) return;
        bk_presence_json(b, user, strlen(user), o);
    }
    bk_http_respond(b, m, 200, o->data, o->len, 0);
}

/* GET /api/unacked?user=U: the user's outstanding ack_required notifications (protocol.md 14). */
static void unacked(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    char buf[160];
    jbuf_t *o = &b->api_out;
    jbuf_reset(o);
    if (!api_key_ok(b, m, rq)) return;
    const char *user = user_arg(b, m, rq, buf, sizeof buf);
    if (!user) return;
    bk_acks_unacked_json(b, user, strlen(user), o);
    bk_http_respond(b, m, 200, o->data, o->len, 0);
}

static void disconnect_done(broker_t *b, void *ctx, uint64_t closed)
{
    jbuf_t *o = &b->api_out;
    jbuf_reset(o);
    bk_disconnect_render(o, closed);
    bk_http_respond(b, ctx, 200, o->data, o->len, 0); /* dropped if the client went away */
}

/* POST /api/disconnect {"user_id":U[,"until":ns]}: close U's sessions everywhere (revoke.h);
 * answered once every gateway said how many it closed. */
static void disconnect(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    bk_disconnect_args_t a;
    herald_error_t err = {0};
    uint64_t closed = 0, handle = 0;
    if (!authorized(b, rq)) {
        b->c.unauthorized++;
        bk_http_error(b, m, 401, HERR_UNAUTHORIZED,
                      "missing or wrong Authorization: apikey <key> header");
        return;
    }
    if (bk_disconnect_parse((const char *)rq->body, rq->body_len, &a, &err) < 0) {
        bk_http_error(b, m, 400, err.code, err.message);
        return;
    }
    int rc = bk_disconnect(b, &a, disconnect_done, m, &handle, &closed, &err);
    if (rc < 0) {
        bk_http_error(b, m, bk_api_status_of(err.code), err.code, err.message);
    } else if (rc == 0) {
        jbuf_t *o = &b->api_out;
        jbuf_reset(o);
        bk_disconnect_render(o, closed);
        bk_http_respond(b, m, 200, o->data, o->len, 0);
    }
}

/* The web pages and their API (webui.c): /ui, /api/status, /api/dev/token, else 404. */
static void web_get(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    char path[512], query[1024];
    if (rq->path_len >= sizeof path || rq->query_len >= sizeof query) {
        bk_http_error(b, m, 404, HERR_NOT_FOUND, "no such path");
        return;
    }
    memcpy(path, rq->path, rq->path_len);
    path[rq->path_len] = '\0';
    if (rq->query) memcpy(query, rq->query, rq->query_len);
    query[rq->query ? rq->query_len : 0] = '\0';
    jbuf_t *o = &b->api_out;
    jbuf_reset(o);
    const char *ctype = NULL;
    int status = bk_webui_get(b, path, rq->query ? query : NULL, o, &ctype);
    if (!status) {
        bk_http_error(b, m, 404, HERR_NOT_FOUND, "no such path");
        return;
    }
    bk_http_respond_as(b, m, status, ctype, o->data, o->len,
                       bk_webui_cors(b, path) ? BK_HTTP_CORS : 0);
}

static bool path_is(const bk_http_request_t *rq, const char *p)
{
    size_t n = strlen(p);
    return rq->path_len == n && !memcmp(rq->path, p, n);
}

void bk_api_handle(broker_t *b, bk_http_msg_t *m, const bk_http_request_t *rq)
{
    jbuf_t *o = &b->api_out;
    if (path_is(rq, "/api/publish")) {
        if (rq->method != BK_HTTP_POST)
            bk_http_error(b, m, 405, HERR_BAD_VALUE, "use POST for /api/publish");
        else
            publish(b, m, rq);
        return;
    }
    if (path_is(rq, "/api/disconnect")) {
        if (rq->method != BK_HTTP_POST)
            bk_http_error(b, m, 405, HERR_BAD_VALUE, "use POST for /api/disconnect");
        else
            disconnect(b, m, rq);
        return;
    }
    bool get = rq->method == BK_HTTP_GET;
    if (path_is(rq, "/api/presence")) {
        if (!get && rq->method != BK_HTTP_POST)
            bk_http_error(b, m, 405, HERR_BAD_VALUE, "use GET or POST for /api/presence");
        else
            presence(b, m, rq);
        return;
    }
    if (path_is(rq, "/api/unacked")) {
        if (!get)
            bk_http_error(b, m, 405, HERR_BAD_VALUE, "use GET for /api/unacked");
        else
            unacked(b, m, rq);
        return;
    }
    jbuf_reset(o);
    if (path_is(rq, "/api/stats") && get) {
        bk_stats_json(b, o);
        bk_http_respond(b, m, 200, o->data, o->len, 0);
    } else if (path_is(rq, "/api/route") && get) {
        route(b, m, rq);
    } else if (path_is(rq, "/api/cluster") && get) {
        bk_cluster_json(b, o);
        bk_http_respond(b, m, 200, o->data, o->len, 0);
    } else if (path_is(rq, "/metrics") && get) {
        bk_metrics_text(b, o);
        bk_http_respond(b, m, 200, o->data, o->len, BK_HTTP_TEXT);
    } else if (path_is(rq, "/healthz") && get) {
        jbuf_puts(o, "{\"status\":\"ok\"}");
        bk_http_respond(b, m, 200, o->data, o->len, 0);
    } else if (path_is(rq, "/api/stats") || path_is(rq, "/api/route") || path_is(rq, "/metrics") ||
               path_is(rq, "/healthz") || path_is(rq, "/api/cluster")) {
        bk_http_error(b, m, 405, HERR_BAD_VALUE, "use GET for this path");
    } else if (get) {
        web_get(b, m, rq);
    } else {
        bk_http_error(b, m, 404, HERR_NOT_FOUND, "no such path");
    }
}
