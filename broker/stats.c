/* stats.c - the broker's counters as /api/stats JSON and /metrics Prometheus text. */
#include <stdio.h>
#include <string.h>

#include "acks.h"
#include "broker.h"
#include "clustered.h"
#include "dedup.h"
#include "http.h"
#include "pipeline.h"
#include "presence.h"
#include "revoke.h"
#include "route.h"
#include "stats.h"
#include "users.h"
#include "webui.h"

/* The pipeline's counters, from messages_accepted to loop_wakeups. */
static void stats_counters(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    jbuf_put_kv_u64(o, "messages_accepted", c->accepted, true);
    jbuf_put_kv_u64(o, "messages_sent", c->sent, true);
    jbuf_put_kv_u64(o, "messages_deduplicated", c->deduplicated, true);
    jbuf_put_kv_u64(o, "id_conflicts", c->id_conflicts, true);
    jbuf_put_kv_u64(o, "messages_dropped", c->dropped, true);
    jbuf_put_kv_u64(o, "messages_invalid", c->invalid, true);
    jbuf_put_kv_u64(o, "messages_too_large", c->too_large, true);
    jbuf_put_kv_u64(o, "bad_frames", c->bad_frames, true);
    jbuf_put_kv_u64(o, "unauthorized", c->unauthorized, true);
    jbuf_put_kv_u64(o, "ctrl_refused", c->ctrl_refused, true);
    jbuf_put_kv_u64(o, "native_refused", c->native_refused, true);
    jbuf_put_kv_u64(o, "ring_drops", c->ring_drops, true);
    jbuf_put_kv_u64(o, "backlogged", c->backlogged, true);
    jbuf_put_kv_u64(o, "replays", c->replays, true);
    jbuf_put_kv_u64(o, "gaps", c->gaps, true);
    jbuf_put_kv_u64(o, "replay_overflows", c->replay_overflows, true);
    jbuf_put_kv_u64(o, "read_pauses", c->read_pauses, true);
    jbuf_put_kv_u64(o, "journal_bytes", c->journal_bytes, true);
    jbuf_put_kv_u64(o, "journal_compactions", c->journal_compactions, true);
    jbuf_put_kv_u64(o, "journal_corrupt", c->journal_corrupt, true);
    jbuf_put_kv_u64(o, "journal_errors", c->journal_errors, true);
    jbuf_put_kv_u64(o, "dedup_entries", bk_dedup_count(b), true);
    jbuf_put_kv_u64(o, "drain_rounds", c->drain_rounds, true);
    jbuf_put_kv_u64(o, "loop_wakeups", loop_wakeups(b->loop), true);
    jbuf_put_kv_u64(o, "presence_last_seen_users", bk_presence_remembered(b), true);
}

static void stats_http(broker_t *b, const bk_counters_t *c, jbuf_t *o)
{
    jbuf_puts(o, ",\"http\":{");
    jbuf_put_kv_u64(o, "requests", c->http_requests, false);
    jbuf_put_kv_u64(o, "connections_open", bk_http_connections(b), true);
    jbuf_put_kv_u64(o, "connections", c->http_connections, true);
    jbuf_put_kv_u64(o, "refused", c->http_refused, true);
    jbuf_put_kv_u64(o, "errors", c->http_errors, true);
    jbuf_put_kv_u64(o, "timeouts", c->http_timeouts, true);
    jbuf_put_kv_u64(o, "idle_closes", c->http_idle_closes, true);
    jbuf_puts(o, ",\"responses\":{");
    for (int k = 2; k <= 5; k++) {
        char key[4] = {(char)('0' + k), 'x', 'x', 0};
        jbuf_put_kv_u64(o, key, c->http_responses[k], k > 2);
    }
    jbuf_puts(o, "}}");
    jbuf_put_kv_u64(o, "disconnects", c->disconnects, true);
    jbuf_put_kv_u64(o, "disconnect_sessions_closed", c->disconnect_closed, true);
    jbuf_put_kv_u64(o, "disconnect_timeouts", c->disconnect_timeouts, true);
    jbuf_put_kv_u64(o, "user_locks", bk_revoke_locks(b), true);
    jbuf_put_kv_u64(o, "config_reloads", c->reloads, true);
    jbuf_put_kv_u64(o, "config_reload_errors", c->reload_errors, true);
}

static void stats_queues(broker_t *b, const bk_counters_t *c, jbuf_t *o)
{
    jbuf_puts(o, ",\"queue_sizes\":[");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        if (p) jbuf_putc(o, ',');
        jbuf_put_u64(o, bk_pipeline_queued(b, p));
    }
    jbuf_puts(o, "],\"queue_full\":[");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        if (p) jbuf_putc(o, ',');
        jbuf_put_u64(o, c->queue_full[p]);
    }
}

/* "gateways":[...] */
static void stats_gateways(broker_t *b, jbuf_t *o)
{
    jbuf_puts(o, "],\"gateways\":[");
    bool first = true;
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        bk_gateway_t *g = bk_route_gateway(b, i);
        if (!g) continue;
        ring_stats_t rs;
        ring_stats(g->ring, &rs);
        if (!first) jbuf_putc(o, ',');
        first = false;
        jbuf_putc(o, '{');
        jbuf_put_kv_u64(o, "id", g->id, false);
        jbuf_put_kv_u64(o, "pid", (uint64_t)g->pid, true);
        jbuf_puts(o, g->attached ? ",\"attached\":true" : ",\"attached\":false");
        jbuf_put_kv_u64(o, "users", g->users, true);
        jbuf_put_kv_u64(o, "records", g->records, true);
        jbuf_put_kv_u64(o, "backlog", g->bl_count, true);
        jbuf_put_kv_u64(o, "backlog_bytes", g->bl_bytes, true);
        jbuf_put_kv_u64(o, "drops", g->drops, true);
        jbuf_puts(o, ",\"ring\":{");
        jbuf_put_kv_u64(o, "capacity", rs.capacity, false);
        jbuf_put_kv_u64(o, "used_bytes", rs.used_bytes, true);
        jbuf_put_kv_u64(o, "pending_records", rs.pending_records, true);
        jbuf_put_kv_u64(o, "records_written", rs.records_written, true);
        jbuf_put_kv_u64(o, "records_read", rs.records_read, true);
        jbuf_put_kv_u64(o, "drops", rs.drops, true);
        jbuf_put_kv_u64(o, "wakeups", rs.wakeups, true);
        jbuf_put_kv_u64(o, "consumer_pid", (uint64_t)rs.consumer_pid, true);
        jbuf_puts(o, "}}");
    }
    jbuf_putc(o, ']');
}

void bk_stats_json(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    jbuf_putc(o, '{');
    jbuf_put_kv_u64(o, "active_gateways", bk_route_active(b), false);
    jbuf_put_kv_u64(o, "active_users", bk_users_active(b), true);
    jbuf_put_kv_u64(o, "users", bk_users_count(b), true);
    jbuf_put_kv_u64(o, "users_forgotten", b->c.users_forgotten, true);
    jbuf_put_kv_u64(o, "memory_bytes", bk_mem_used(b), true);
    jbuf_put_kv_u64(o, "memory_limit_bytes", b->cfg.max_memory, true);
    jbuf_put_kv_u64(o, "over_capacity", b->c.over_capacity, true);
    stats_counters(b, o);
    bk_acks_stats_json(b, o);
    jbuf_puts(o, ",\"latency\":{\"ingest\":");
    latency_json(&b->ingest_lat, o);
    jbuf_puts(o, "},\"slo_ms\":[");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        if (p) jbuf_putc(o, ',');
        jbuf_put_u64(o, b->cfg.slo_ms[p]);
    }
    jbuf_putc(o, ']');
    stats_http(b, c, o);
    stats_queues(b, c, o);
    stats_gateways(b, o);
    bk_webui_stats_json(o);
    bk_cluster_stats_json(b, o);
    jbuf_putc(o, '}');
}

static void metric(jbuf_t *o, const char *name, const char *type, const char *help, uint64_t v)
{
    char line[256];
    snprintf(line, sizeof line, "# HELP herald_broker_%s %s\n# TYPE herald_broker_%s %s\n", name,
             help, name, type);
    jbuf_puts(o, line);
    snprintf(line, sizeof line, "herald_broker_%s %llu\n", name, (unsigned long long)v);
    jbuf_puts(o, line);
}

static void gw_metric(jbuf_t *o, broker_t *b, const char *name, const char *type, const char *help,
                      uint64_t (*get)(bk_gateway_t *))
{
    char line[256];
    snprintf(line, sizeof line, "# HELP herald_broker_%s %s\n# TYPE herald_broker_%s %s\n", name,
             help, name, type);
    jbuf_puts(o, line);
    for (unsigned i = 0; i < BK_MAX_GATEWAYS; i++) {
        if (!bk_route_gateway(b, i)) continue;
        snprintf(line, sizeof line, "herald_broker_%s{gateway=\"%u\"} %llu\n", name, i,
                 (unsigned long long)get(bk_route_gateway(b, i)));
        jbuf_puts(o, line);
    }
}

static uint64_t g_attached(bk_gateway_t *g)
{
    return g->attached;
}
static uint64_t g_users(bk_gateway_t *g)
{
    return g->users;
}
static uint64_t g_records(bk_gateway_t *g)
{
    return g->records;
}
static uint64_t g_backlog(bk_gateway_t *g)
{
    return g->bl_count;
}
static uint64_t g_drops(bk_gateway_t *g)
{
    return g->drops;
}

static uint64_t g_used(bk_gateway_t *g)
{
    ring_stats_t rs;
    ring_stats(g->ring, &rs);
    return rs.used_bytes;
}

static void metrics_counters(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    metric(o, "messages_accepted_total", "counter", "Notifications queued.", c->accepted);
    metric(o, "messages_sent_total", "counter", "Notifications sequenced and routed.", c->sent);
    metric(o, "messages_deduplicated_total", "counter", "Duplicate publishes.", c->deduplicated);
    metric(o, "id_conflicts_total", "counter",
           "Publishes refused: message_id reused for another user, type or payload.",
           c->id_conflicts);
    metric(o, "messages_dropped_total", "counter", "Refused (queue full) or dropped (ring).",
           c->dropped);
    metric(o, "messages_invalid_total", "counter", "Notifications refused as invalid.", c->invalid);
    metric(o, "messages_too_large_total", "counter", "Notifications over 64 KiB.", c->too_large);
    metric(o, "bad_frames_total", "counter", "Undecodable frames or bodies.", c->bad_frames);
    metric(o, "unauthorized_total", "counter",
           "Publishes (HTTP, native TCP) without the right api key.", c->unauthorized);
    metric(o, "ctrl_refused_total", "counter",
           "control.sock connections refused: peer of another uid.", c->ctrl_refused);
    metric(o, "native_refused_total", "counter",
           "broker.sock connections refused: peer of another uid.", c->native_refused);
    metric(o, "ring_drops_total", "counter", "Notifications dropped for a full gateway.",
           c->ring_drops);
    metric(o, "replay_overflows_total", "counter",
           "Replays answered with a gap because the gateway's backlog was full.",
           c->replay_overflows);
    metric(o, "journal_corrupt_total", "counter", "Corrupt journal tails truncated.",
           c->journal_corrupt);
    metric(o, "journal_errors_total", "counter", "Journal write failures.", c->journal_errors);
    metric(o, "drain_rounds_total", "counter", "Drain rounds (one journal write each).",
           c->drain_rounds);
    metric(o, "loop_wakeups_total", "counter", "Times the event loop slept and was woken.",
           loop_wakeups(b->loop));
}

static void metrics_http(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    metric(o, "http_requests_total", "counter", "HTTP requests served.", c->http_requests);
    metric(o, "http_connections", "gauge", "HTTP connections open.", bk_http_connections(b));
    metric(o, "http_refused_total", "counter",
           "HTTP connections refused (broker.http_max_connections, no descriptors).",
           c->http_refused);
    metric(o, "http_errors_total", "counter",
           "Malformed or refused HTTP requests (400, 408, 411, 413, 414, 431).", c->http_errors);
    metric(o, "http_timeouts_total", "counter",
           "Requests not complete within broker.http_timeout_s (408).", c->http_timeouts);
    metric(o, "http_idle_closes_total", "counter",
           "Keep-alive connections closed after broker.http_idle_s.", c->http_idle_closes);
    jbuf_puts(o, "# HELP herald_broker_http_responses_total HTTP responses by status class.\n"
                 "# TYPE herald_broker_http_responses_total counter\n");
    for (int k = 2; k <= 5; k++) {
        char line[96];
        snprintf(line, sizeof line, "herald_broker_http_responses_total{class=\"%dxx\"} %llu\n", k,
                 (unsigned long long)c->http_responses[k]);
        jbuf_puts(o, line);
    }
}

static void metrics_queues(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    jbuf_puts(o, "# HELP herald_broker_queue_size Queued notifications per priority.\n"
                 "# TYPE herald_broker_queue_size gauge\n");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        char line[96];
        snprintf(line, sizeof line, "herald_broker_queue_size{priority=\"%d\"} %u\n", p,
                 bk_pipeline_queued(b, p));
        jbuf_puts(o, line);
    }
    jbuf_puts(o, "# HELP herald_broker_queue_full_total Publishes refused per priority.\n"
                 "# TYPE herald_broker_queue_full_total counter\n");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        char line[96];
        snprintf(line, sizeof line, "herald_broker_queue_full_total{priority=\"%d\"} %llu\n", p,
                 (unsigned long long)c->queue_full[p]);
        jbuf_puts(o, line);
    }
}

void bk_metrics_text(broker_t *b, jbuf_t *o)
{
    const bk_counters_t *c = &b->c;
    metric(o, "active_gateways", "gauge", "Gateways attached.", bk_route_active(b));
    metric(o, "active_users", "gauge", "Users routed to at least one gateway.", bk_users_active(b));
    metric(o, "users", "gauge", "Users known (sequence, history).", bk_users_count(b));
    metric(o, "users_forgotten_total", "counter", "Users forgotten after history_age_s idle.",
           c->users_forgotten);
    metric(o, "memory_bytes", "gauge", "Users, history and dedup bytes (broker.max_memory).",
           bk_mem_used(b));
    metric(o, "memory_limit_bytes", "gauge", "broker.max_memory.", b->cfg.max_memory);
    metric(o, "over_capacity_total", "counter", "Publishes refused at broker.max_memory.",
           c->over_capacity);
    metrics_counters(b, o);
    metrics_http(b, o);
    metric(o, "disconnects_total", "counter", "POST /api/disconnect requests.", c->disconnects);
    metric(o, "disconnect_sessions_closed_total", "counter",
           "Sessions the gateways closed for /api/disconnect.", c->disconnect_closed);
    metric(o, "disconnect_timeouts_total", "counter",
           "Disconnects answered before every gateway did.", c->disconnect_timeouts);
    metric(o, "user_locks", "gauge", "Users locked out by /api/disconnect with until.",
           bk_revoke_locks(b));
    metric(o, "config_reloads_total", "counter", "Configurations applied on SIGHUP.", c->reloads);
    metric(o, "config_reload_errors_total", "counter", "SIGHUP reloads refused (bad config).",
           c->reload_errors);
    metrics_queues(b, o);
    metric(o, "presence_last_seen_users", "gauge",
           "Offline users whose last_seen the broker remembers.", bk_presence_remembered(b));
    bk_acks_metrics(b, o);
    latency_prometheus(&b->ingest_lat, o, "herald_ingest_latency_seconds",
                       "Notification timestamp to durable and written to the rings.", NULL);
    latency_slo_prometheus(o, b->cfg.slo_ms);
    gw_metric(o, b, "gateway_attached", "gauge", "1 while attached.", g_attached);
    gw_metric(o, b, "gateway_users", "gauge", "Users routed to the gateway.", g_users);
    gw_metric(o, b, "gateway_records_total", "counter", "Records written.", g_records);
    gw_metric(o, b, "gateway_backlog", "gauge", "Records waiting for ring space.", g_backlog);
    gw_metric(o, b, "gateway_drops_total", "counter", "Notifications dropped.", g_drops);
    gw_metric(o, b, "gateway_ring_used_bytes", "gauge", "Ring bytes not yet consumed.", g_used);
    bk_cluster_metrics(b, o);
}
