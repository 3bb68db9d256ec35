/* http.c - the gateway's HTTP side: the upgrade gate for /ws (auth, 401/503), GET /metrics
 * (Prometheus text), /healthz and /stats (JSON) from metrics.c, and the demo page (protocol.md 13:
 * static files of runtime.web_dir, and /web-config.json that tells it where the broker is). */
#include "http.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "control.h"
#include "drain.h"
#include "metrics.h"
#include "webfile.h"

/* Refused web file paths (peer-driven): logged at most 5 a second. */
static log_ratelimit_t web_rl;

/* What the demo page needs to know: this gateway, the broker's HTTP address, dev mode. */
static void web_config_json(gw_t *g, jbuf_t *b)
{
    const host_port_t *h = &g->cfg.broker_http;
    jbuf_puts(b, "{\"gateway\":");
    jbuf_put_u64(b, g->id);
    jbuf_puts(b, g->cfg.broker_tls_cert[0] ? ",\"broker\":\"https://" : ",\"broker\":\"http://");
    if (strchr(h->host, ':')) { /* IPv6 literal */
        jbuf_putc(b, '[');
        jbuf_puts(b, h->host);
        jbuf_putc(b, ']');
    } else {
        jbuf_puts(b, h->host);
    }
    jbuf_putc(b, ':');
    jbuf_put_u64(b, h->port);
    jbuf_puts(b, g->cfg.auth_allow_dev_secret ? "\",\"dev\":true}" : "\",\"dev\":false}");
}

/* cors: /stats may be read by the broker's operations page (another origin, same host). */
static int http_reply(struct lws *wsi, unsigned status, const char *ctype, jbuf_t *body, bool cors)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
                                      *end = hdr + sizeof hdr - 1;
    static const char nosniff[] = "nosniff", any[] = "*";
    if (lws_add_http_common_headers(wsi, status, ctype, body->len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
                                    (const unsigned char *)nosniff, sizeof nosniff - 1, &p, end) ||
        (cors &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                     (const unsigned char *)any, sizeof any - 1, &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (lws_write(wsi, (unsigned char *)body->data, body->len, LWS_WRITE_HTTP_FINAL) < 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_get(gw_t *g, struct lws *wsi, const char *path)
{
    jbuf_t *b = &g->jb;
    jbuf_reset(b);
    if (!strcmp(path, "/metrics")) {
        gw_metrics_prometheus(g, b);
        return http_reply(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4", b, false);
    }
    if (!strcmp(path, "/stats")) {
        gw_metrics_json(g, b);
        return http_reply(wsi, HTTP_STATUS_OK, "application/json", b, true);
    }
    if (!strcmp(path, "/healthz")) {
        bool ok = gw_control_up(g) && gw_drain_attached(g);
        jbuf_puts(b, ok ? "{\"status\":\"ok\"}" : "{\"status\":\"degraded\",\"broker\":false}");
        return http_reply(wsi, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
                          "application/json", b, false);
    }
    if (!strcmp(path, "/web-config.json")) {
        web_config_json(g, b);
        return http_reply(wsi, HTTP_STATUS_OK, "application/json", b, false);
    }
    /* The demo page: / is demo/index.html, /js/... the client, anything else demo/... */
    char rel[256];
    if (!strcmp(path, "/"))
        snprintf(rel, sizeof rel, "demo/index.html");
    else if (!strncmp(path, "/js/", 4))
        snprintf(rel, sizeof rel, "%s", path + 1);
    else
        snprintf(rel, sizeof rel, "demo/%s", path + 1);
    const char *ctype = "text/plain";
    int status = webfile_read(config_web_dir(&g->cfg), rel, b, &ctype);
    if (status == HTTP_STATUS_OK) return http_reply(wsi, HTTP_STATUS_OK, ctype, b, false);
    if (status == HTTP_STATUS_BAD_REQUEST) {
        g->c.bad_http_paths++;
        if (log_ratelimit_ok(&web_rl, 5)) log_warn("refused HTTP path %.100s", path);
    } else if (status != HTTP_STATUS_NOT_FOUND) {
        log_warn("web file %s/%s: HTTP %d", config_web_dir(&g->cfg), rel, status);
    }
    lws_return_http_status(wsi, (unsigned)status, NULL);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int gw_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    gw_t *g = lws_context_user(lws_get_context(wsi));
    char path[256];
    gw_auth_t a;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0 || strcmp(path, "/ws")) {
            lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
            return 1;
        }
        return gw_auth_check(g, wsi, &a, true);
    case LWS_CALLBACK_HTTP:
        return http_get(g, wsi, (const char *)in);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}
