/* ctl_stats.c - heraldctl stats: the broker's /api/stats and every gateway's /stats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "http_client.h"

#define CTL_HTTP_TIMEOUT_MS 3000

json_t *ctl_get_json(const ctl_t *ctl, const host_port_t *hp, uint16_t port, bool tls,
                     const char *path, char *why, size_t whylen)
{
    char hdr[200] = "";
    http_response_t res;
    herald_error_t err = {0};
    json_error_t jerr;

    if (ctl->cfg.broker_api_key[0])
        snprintf(hdr, sizeof hdr, "Authorization: apikey %.150s\r\n", ctl->cfg.broker_api_key);
    http_target_t t = {.host = hp->host, .port = port, .tls = tls, .cafile = ctl_opt(ctl, "ca")};
    if (http_request_to(&t, "GET", path, hdr, NULL, 0, CTL_HTTP_TIMEOUT_MS, &res, &err) < 0) {
        snprintf(why, whylen, "%s", err.message);
        return NULL;
    }
    json_t *v = NULL;
    if (res.status != 200)
        snprintf(why, whylen, "%s:%u%s: HTTP %d", hp->host, (unsigned)port, path, res.status);
    else if (!(v = json_loadb(res.body, res.body_len, 0, &jerr)))
        snprintf(why, whylen, "%s:%u%s: bad JSON: %s", hp->host, (unsigned)port, path, jerr.text);
    http_response_free(&res);
    return v;
}

/* "key value" per member, scalars and arrays compact; an array of objects (the broker's
 * per-gateway view) gets one indented line per element. */
static void ctl_print_object(const char *indent, json_t *obj)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "gateway") == 0) continue;
        if (json_is_array(val) && json_is_object(json_array_get(val, 0))) {
            size_t i;
            json_t *el;
            printf("%s%s\n", indent, key);
            json_array_foreach(val, i, el)
            {
                char *s = json_dumps(el, JSON_COMPACT);
                printf("%s  [%zu] %s\n", indent, i, s ? s : "?");
                free(s);
            }
            continue;
        }
        char *s = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%s%-28s %s\n", indent, key, s ? s : "?");
        free(s);
    }
}

int ctl_cmd_stats(ctl_t *ctl)
{
    const herald_config_t *cfg = &ctl->cfg;
    char why[300], failed[600] = "";
    json_t *out = json_object(), *gws = json_array();

    static const char *const names[] = {"ca", NULL};
    if (ctl_check_args(ctl, names, NULL, 0, 0)) goto bad_args;
    json_t *broker = ctl_get_json(ctl, &cfg->broker_http, cfg->broker_http.port,
                                  cfg->broker_tls_cert[0] != '\0', "/api/stats", why, sizeof why);
    if (!broker) {
        snprintf(failed, sizeof failed, "broker unreachable: %s", why);
        broker = json_pack("{s:s}", "error", why);
    }
    json_object_set_new(out, "broker", broker);
    for (unsigned i = 0; i < cfg->gateway_count; i++) {
        uint16_t port = (uint16_t)(cfg->gateway_listen.port + i);
        json_t *g = ctl_get_json(ctl, &cfg->gateway_listen, port, cfg->gateway_tls_cert[0] != '\0',
                                 "/stats", why, sizeof why);
        if (!g) {
            if (!failed[0]) snprintf(failed, sizeof failed, "gateway %u unreachable: %s", i, why);
            g = json_pack("{s:s}", "error", why);
        }
        if (!json_is_object(g)) {
            json_decref(g);
            g = json_pack("{s:s}", "error", "stats is not a JSON object");
        }
        json_object_set_new(g, "gateway", json_integer(i));
        json_array_append_new(gws, g);
    }
    json_object_set_new(out, "gateways", gws);

    if (ctl->json) {
        char *s = json_dumps(out, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        printf("broker %s:%u\n", cfg->broker_http.host, (unsigned)cfg->broker_http.port);
        if (json_is_object(broker)) ctl_print_object("  ", broker);
        size_t i;
        json_t *g;
        json_array_foreach(gws, i, g)
        {
            printf("gateway %zu %s:%u\n", i, cfg->gateway_listen.host,
                   (unsigned)(cfg->gateway_listen.port + i));
            ctl_print_object("  ", g);
        }
    }
    json_decref(out);
    if (failed[0]) return ctl_fail("%s", failed);
    return 0;
bad_args:
    json_decref(out);
    json_decref(gws);
    return 1;
}
