/* metrics.c - the gateway's counters as one table of values, rendered as Prometheus text
 * (/metrics) and as JSON (/stats), with the delivery latency histograms. */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "control.h"
#include "deliver.h"
#include "drain.h"
#include "users.h"

typedef struct {
    const char *name;   /* JSON key */
    const char *family; /* Prometheus name: herald_gateway_<family> */
    const char *type;   /* "gauge" | "counter" */
    const char *label;  /* extra Prometheus label (key="value"), or NULL */
    uint64_t value;
} metric_t;

#define N_METRICS 96 /* room for the entries metrics_collect writes (32 per-type ones) */

static size_t metrics_collect(gw_t *g, metric_t *m)
{
    ring_stats_t rs;
    gw_drain_stats(g, &rs);
    size_t n = 0;
#define M(nm, ty, lb, v) m[n++] = (metric_t){nm, nm, ty, lb, (uint64_t)(v)}
#define L(nm, fam, lb, v)                                                                          \
    m[n++] = (metric_t)                                                                            \
    {                                                                                              \
        nm, fam, "counter", lb, (uint64_t)(v)                                                      \
    }
    M("active_sessions", "gauge", NULL, gw_users_n_sessions(g->users));
    M("active_users", "gauge", NULL, gw_users_n_users(g->users));
    M("sessions_opened", "counter", NULL, g->c.sessions_opened);
    M("messages_pushed", "counter", NULL, g->c.pushed);
    M("messages_failed", "counter", NULL, g->c.failed);
    M("slow_consumer_closes", "counter", NULL, g->c.slow_closes);
    M("timeout_closes", "counter", NULL, g->c.timeout_closes);
    M("flood_closes", "counter", NULL, g->c.flood_closes);
    L("auth_failures_missing", "auth_failures_total", "reason=\"missing\"", g->c.auth_fail[0]);
    L("auth_failures_bad_signature", "auth_failures_total", "reason=\"bad_signature\"",
      g->c.auth_fail[1]);
    L("auth_failures_expired", "auth_failures_total", "reason=\"expired\"", g->c.auth_fail[2]);
    L("auth_failures_invalid", "auth_failures_total", "reason=\"invalid\"", g->c.auth_fail[3]);
    L("auth_failures_no_exp", "auth_failures_total", "reason=\"no_exp\"", g->c.auth_fail[4]);
    L("auth_failures_not_yet_valid", "auth_failures_total", "reason=\"not_yet_valid\"",
      g->c.auth_fail[5]);
    L("auth_failures_wrong_audience", "auth_failures_total", "reason=\"wrong_audience\"",
      g->c.auth_fail[6]);
    L("auth_failures_revoked", "auth_failures_total", "reason=\"revoked\"", g->c.auth_fail[7]);
    M("token_expiry_closes", "counter", NULL, g->c.expiry_closes);
    M("token_refreshes", "counter", NULL, g->c.refreshes);
    M("token_refresh_denied", "counter", NULL, g->c.refresh_denied);
    M("session_limit_closes", "counter", NULL, g->c.session_limit_closes);
    M("resumes_rate_limited", "counter", NULL, g->c.resumes_limited);
    M("connections_refused", "counter", NULL, g->c.connections_refused);
    M("disconnect_closes", "counter", NULL, g->c.disconnect_closes);
    M("config_reloads", "counter", NULL, g->c.reloads);
    M("config_reload_errors", "counter", NULL, g->c.reload_errors);
    M("bad_client_messages", "counter", NULL, g->c.bad_client_msgs);
    M("bad_http_paths", "counter", NULL, g->c.bad_http_paths);
    M("ring_lag_bytes", "gauge", NULL, rs.used_bytes);
    M("ring_lag_records", "gauge", NULL, rs.pending_records);
    M("ring_records", "counter", NULL, g->c.ring_records);
    M("ring_corrupt", "counter", NULL, g->c.ring_corrupt);
    M("ring_bad_records", "counter", NULL, g->c.bad_records);
    M("idle_spin_hits", "counter", NULL, g->c.idle_spin_hits);
    M("ring_drops", "counter", NULL, rs.drops);
    M("seq_gaps", "counter", NULL, g->c.gaps_detected);
    M("replays_requested", "counter", NULL, g->c.replays_requested);
    M("gap_messages", "counter", NULL, g->c.gap_msgs);
    M("broker_connected", "gauge", NULL, gw_control_up(g));
    M("broker_connects", "counter", NULL, g->c.ctl_connects);
    M("broker_errors", "counter", NULL, g->c.ctl_errors);
    /* protocol.md 14: conflation per message_type (the configured types, and any with a count) */
    static char names[32][48], labels[32][48];
    size_t ntypes;
    const msg_type_t *types = model_types(&ntypes);
    for (size_t t = 0; t < ntypes && t < 32; t++) {
        if (!(g->masks.conflate >> t & 1u) && !g->c.conflated[t]) continue;
        snprintf(names[t], sizeof names[t], "conflated_%s", types[t].name);
        snprintf(labels[t], sizeof labels[t], "type=\"%s\"", types[t].name);
        L(names[t], "conflated_total", labels[t], g->c.conflated[t]);
    }
    M("conflated_messages", "counter", NULL, g->c.conflated_frames);
    M("conflate_starts", "counter", NULL, g->c.conflate_entries);
    M("acks", "counter", NULL, g->c.acks);
    M("acks_rate_limited", "counter", NULL, g->c.acks_limited);
    M("redeliveries", "counter", NULL, g->c.redeliveries);
#undef M
#undef L
    return n;
}

void gw_metrics_prometheus(gw_t *g, jbuf_t *b)
{
    metric_t m[N_METRICS];
    size_t n = metrics_collect(g, m);
    char line[320];
    for (size_t i = 0; i < n; i++) {
        size_t fl = strlen(m[i].family);
        const char *suffix =
            !strcmp(m[i].type, "counter") && (fl < 6 || strcmp(m[i].family + fl - 6, "_total"))
                ? "_total"
                : "";
        if (i == 0 || strcmp(m[i].family, m[i - 1].family)) {
            snprintf(line, sizeof line, "# TYPE herald_gateway_%s%s %s\n", m[i].family, suffix,
                     m[i].type);
            jbuf_puts(b, line);
        }
        snprintf(line, sizeof line, "herald_gateway_%s%s{gateway=\"%u\"%s%s} %llu\n", m[i].family,
                 suffix, g->id, m[i].label ? "," : "", m[i].label ? m[i].label : "",
                 (unsigned long long)m[i].value);
        jbuf_puts(b, line);
    }
    char lab[32];
    snprintf(lab, sizeof lab, "gateway=\"%u\"", g->id);
    latency_prometheus(gw_deliver_latency(g), b, "herald_delivery_latency_seconds",
                       "Notification timestamp to the socket write that sent it (live, not "
                       "resume replays).",
                       lab);
    latency_slo_prometheus(b, g->cfg.slo_ms);
}

void gw_metrics_json(gw_t *g, jbuf_t *b)
{
    metric_t m[N_METRICS];
    size_t n = metrics_collect(g, m);
    jbuf_puts(b, "{\"gateway\":");
    jbuf_put_u64(b, g->id);
    for (size_t i = 0; i < n; i++) {
        jbuf_putc(b, ',');
        json_put_str(b, m[i].name, strlen(m[i].name));
        jbuf_putc(b, ':');
        jbuf_put_u64(b, m[i].value);
    }
    jbuf_puts(b, ",\"latency\":{\"delivery\":");
    latency_json(gw_deliver_latency(g), b);
    jbuf_puts(b, "},\"slo_ms\":[");
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        if (p) jbuf_putc(b, ',');
        jbuf_put_u64(b, g->cfg.slo_ms[p]);
    }
    jbuf_puts(b, "]}");
}
