/* clustered_stat.c - cluster mode's status: GET /api/cluster (heraldctl cluster), the
 * "cluster" object of /api/stats and the herald_cluster_* metrics. */
#include <stdio.h>
#include <string.h>

#include "clustered_int.h"

/* --- status --- */

static const char *state_name(cl_pstate_t s)
{
    switch (s) {
    case CL_P_FOLLOWER:
        return "follower";
    case CL_P_ACQUIRING:
        return "acquiring";
    case CL_P_OWNER:
        return "owner";
    case CL_P_RELEASING:
        return "releasing";
    }
    return "?";
}

/* The consumer's lag of p: round messages the stream held after the last one delivered
 * here, when that one was sent (markers, which consumers skip, are not counted). */
static uint64_t lag_of(const bk_clpart_t *pt)
{
    return pt->pending;
}

static void counters_json(bk_cluster_t *st, jbuf_t *o)
{
    cl_counters_t c;
    cl_counters(st->cl, &c);
    jbuf_putc(o, '{');
    jbuf_put_kv_u64(o, "rounds_ok", c.rounds_ok, false);
    jbuf_put_kv_u64(o, "rounds_unavailable", c.rounds_unavailable, true);
    jbuf_put_kv_u64(o, "rounds_fenced", c.rounds_fenced, true);
    jbuf_put_kv_u64(o, "rounds_unknown", c.rounds_unknown, true);
    jbuf_put_kv_u64(o, "records_appended", c.records_appended, true);
    jbuf_put_kv_u64(o, "messages_appended", c.messages_appended, true);
    jbuf_put_kv_u64(o, "commits", c.commits, true);
    jbuf_put_kv_u64(o, "commit_retries", c.commit_retries, true);
    jbuf_put_kv_u64(o, "in_doubt", c.in_doubt, true);
    jbuf_put_kv_u64(o, "takeovers", c.takeovers, true);
    jbuf_put_kv_u64(o, "stepdowns", c.stepdowns, true);
    jbuf_put_kv_u64(o, "leases_forced", c.leases_forced, true);
    jbuf_put_kv_u64(o, "lease_renew_errors", c.lease_renew_errors, true);
    jbuf_put_kv_u64(o, "lease_readbacks", c.lease_readbacks, true);
    jbuf_put_kv_u64(o, "checkpoints", c.checkpoints, true);
    jbuf_put_kv_u64(o, "checkpoint_errors", c.checkpoint_errors, true);
    jbuf_put_kv_u64(o, "forwarded_out", c.forwarded_out, true);
    jbuf_put_kv_u64(o, "forwarded_in", c.forwarded_in, true);
    jbuf_put_kv_u64(o, "forward_unavailable", c.forward_unavailable, true);
    jbuf_put_kv_u64(o, "consumed_messages", c.consumed_messages, true);
    jbuf_put_kv_u64(o, "consumed_records", c.consumed_records, true);
    jbuf_put_kv_u64(o, "corrupt_messages", c.corrupt_messages, true);
    jbuf_put_kv_u64(o, "consumer_restarts", c.consumer_restarts, true);
    jbuf_put_kv_u64(o, "nats_reconnects", c.nats_reconnects, true);
    jbuf_put_kv_u64(o, "nats_disconnects", c.nats_disconnects, true);
    jbuf_put_kv_u64(o, "publishes_forwarded", st->c.forwarded, true);
    jbuf_put_kv_u64(o, "forward_failed", st->c.forward_failed, true);
    jbuf_put_kv_u64(o, "refused_unavailable", st->c.unavailable, true);
    jbuf_put_kv_u64(o, "refused_busy", st->c.busy, true);
    jbuf_put_kv_u64(o, "rounds", st->c.rounds, true);
    jbuf_put_kv_u64(o, "rounds_failed", st->c.rounds_failed, true);
    jbuf_put_kv_u64(o, "forwarded_served", st->c.served, true);
    jbuf_put_kv_u64(o, "ownership_gains", st->c.gains, true);
    jbuf_put_kv_u64(o, "ownership_losses", st->c.losses, true);
    jbuf_put_kv_u64(o, "journal_failures", st->c.journal_failures, true);
    jbuf_putc(o, '}');
}

void bk_cluster_json(broker_t *b, jbuf_t *o)
{
    bk_cluster_t *st = b->cl;
    if (!st || !st->cl) {
        jbuf_puts(o, "{\"enabled\":false}");
        return;
    }
    unsigned ids[64];
    unsigned n = cl_nodes(st->cl, ids, 64);
    jbuf_puts(o, "{\"enabled\":true");
    jbuf_put_kv_u64(o, "node", b->cfg.cluster_node_id, true);
    jbuf_put_kv_u64(o, "partitions", b->cfg.cluster_partitions, true);
    jbuf_put_kv_u64(o, "replicas", b->cfg.cluster_replicas, true);
    jbuf_puts(o, ",\"nodes\":[");
    for (unsigned i = 0; i < n; i++) {
        if (i) jbuf_putc(o, ',');
        jbuf_put_u64(o, ids[i]);
    }
    jbuf_puts(o, "],\"partition\":[");
    for (unsigned p = 0; p < st->n_parts; p++) {
        cl_pinfo_t in;
        cl_info(st->cl, p, &in);
        const bk_clpart_t *pt = &st->parts[p];
        jbuf_puts(o, p ? ",{" : "{");
        jbuf_put_kv_u64(o, "p", p, false);
        jbuf_puts(o, p + 1 == st->n_parts ? ",\"broadcast\":true" : ",\"broadcast\":false");
        jbuf_puts(o, ",\"state\":\"");
        jbuf_puts(o, state_name(in.state));
        jbuf_putc(o, '"');
        jbuf_puts(o, pt->owned ? ",\"owned\":true" : ",\"owned\":false");
        jbuf_put_kv_u64(o, "owner", in.owner, true);
        jbuf_put_kv_u64(o, "preferred", in.preferred, true);
        jbuf_put_kv_u64(o, "lease_rev", in.lease_rev, true);
        jbuf_put_kv_u64(o, "stream_last", in.stream_last > pt->pos ? in.stream_last : pt->pos,
                        true);
        jbuf_put_kv_u64(o, "delivered_to", pt->pos, true);
        jbuf_put_kv_u64(o, "lag", lag_of(pt), true);
        jbuf_put_kv_u64(o, "rounds_waiting", in.rounds_waiting, true);
        jbuf_put_kv_u64(o, "inflight", pt->inflight, true);
        jbuf_puts(o, in.in_doubt ? ",\"in_doubt\":true" : ",\"in_doubt\":false");
        jbuf_put_kv_u64(o, "delivered", pt->delivered, true);
        jbuf_put_kv_u64(o, "skipped", pt->skipped, true);
        jbuf_putc(o, '}');
    }
    jbuf_puts(o, "],\"counters\":");
    counters_json(st, o);
    jbuf_putc(o, '}');
}

void bk_cluster_stats_json(broker_t *b, jbuf_t *o)
{
    bk_cluster_t *st = b->cl;
    if (!st || !st->cl) return;
    unsigned ids[64], owned = 0;
    uint64_t lag = 0;
    for (unsigned p = 0; p < st->n_parts; p++) {
        owned += st->parts[p].owned;
        lag += lag_of(&st->parts[p]);
    }
    jbuf_puts(o, ",\"cluster\":{");
    jbuf_put_kv_u64(o, "node", b->cfg.cluster_node_id, false);
    jbuf_put_kv_u64(o, "nodes_live", cl_nodes(st->cl, ids, 64), true);
    jbuf_put_kv_u64(o, "partitions_owned", owned, true);
    jbuf_put_kv_u64(o, "consumer_lag", lag, true);
    jbuf_put_kv_u64(o, "publishes_forwarded", st->c.forwarded, true);
    jbuf_put_kv_u64(o, "refused_unavailable", st->c.unavailable + st->c.forward_failed, true);
    jbuf_put_kv_u64(o, "rounds_failed", st->c.rounds_failed, true);
    jbuf_putc(o, '}');
}

static void metric(jbuf_t *o, const char *name, const char *type, const char *help,
                   const char *label, uint64_t v)
{
    char line[320];
    snprintf(line, sizeof line, "# HELP herald_cluster_%s %s\n# TYPE herald_cluster_%s %s\n", name,
             help, name, type);
    jbuf_puts(o, line);
    snprintf(line, sizeof line, "herald_cluster_%s%s %llu\n", name, label ? label : "",
             (unsigned long long)v);
    jbuf_puts(o, line);
}

/* More samples of the metric just written. */
static void sample(jbuf_t *o, const char *name, const char *label, uint64_t v)
{
    char line[200];
    snprintf(line, sizeof line, "herald_cluster_%s%s %llu\n", name, label, (unsigned long long)v);
    jbuf_puts(o, line);
}

void bk_cluster_metrics(broker_t *b, jbuf_t *o)
{
    bk_cluster_t *st = b->cl;
    if (!st || !st->cl) return;
    cl_counters_t c;
    cl_counters(st->cl, &c);
    unsigned ids[64];
    metric(o, "node", "gauge", "This node's cluster.node_id.", NULL, b->cfg.cluster_node_id);
    metric(o, "nodes_live", "gauge", "Nodes this node sees alive.", NULL,
           cl_nodes(st->cl, ids, 64));
    metric(o, "rounds_total", "counter", "Drain rounds handed to JetStream, by outcome.",
           "{result=\"ok\"}", c.rounds_ok);
    sample(o, "rounds_total", "{result=\"unavailable\"}", c.rounds_unavailable);
    sample(o, "rounds_total", "{result=\"fenced\"}", c.rounds_fenced);
    sample(o, "rounds_total", "{result=\"unknown\"}", c.rounds_unknown);
    metric(o, "records_appended_total", "counter", "Notifications stored in the streams.", NULL,
           c.records_appended);
    metric(o, "commits_total", "counter", "JetStream writes (group commits).", NULL, c.commits);
    metric(o, "in_doubt_total", "counter", "Writes whose outcome had to be resolved.", NULL,
           c.in_doubt);
    metric(o, "takeovers_total", "counter", "Partitions taken over by this node.", NULL,
           c.takeovers);
    metric(o, "stepdowns_total", "counter", "Partitions this node stepped down from.", NULL,
           c.stepdowns);
    metric(o, "leases_forced_total", "counter", "Leases taken from an unreachable node.", NULL,
           c.leases_forced);
    metric(o, "lease_renew_errors_total", "counter", "Lease renewals that failed.", NULL,
           c.lease_renew_errors);
    metric(o, "lease_readbacks_total", "counter",
           "Renewals refused for their revision that had been stored (answer lost).", NULL,
           c.lease_readbacks);
    metric(o, "checkpoint_errors_total", "counter", "Checkpoints not written.", NULL,
           c.checkpoint_errors);
    metric(o, "forwarded_total", "counter", "Publishes forwarded to their owner, by direction.",
           "{direction=\"out\"}", st->c.forwarded);
    sample(o, "forwarded_total", "{direction=\"in\"}", c.forwarded_in);
    metric(o, "refused_total", "counter",
           "Publishes refused 503 unavailable (no writable owner) or busy, by reason.",
           "{reason=\"unavailable\"}", st->c.unavailable + st->c.forward_failed);
    sample(o, "refused_total", "{reason=\"busy\"}", st->c.busy);
    sample(o, "refused_total", "{reason=\"round_failed\"}", st->c.rounds_failed);
    metric(o, "consumed_records_total", "counter", "Records read from the partition streams.", NULL,
           c.consumed_records);
    metric(o, "corrupt_messages_total", "counter", "Stream messages that were not herald rounds.",
           NULL, c.corrupt_messages);
    metric(o, "consumer_restarts_total", "counter",
           "Partition consumers replaced after delivering nothing while their stream grew.", NULL,
           c.consumer_restarts);
    metric(o, "nats_disconnects_total", "counter", "NATS connection losses.", NULL,
           c.nats_disconnects);
    jbuf_puts(o, "# HELP herald_cluster_partition_owned 1 while this node owns the partition.\n"
                 "# TYPE herald_cluster_partition_owned gauge\n");
    char label[48];
    for (unsigned p = 0; p < st->n_parts; p++) {
        snprintf(label, sizeof label, "{partition=\"%u\"}", p);
        sample(o, "partition_owned", label, st->parts[p].owned);
    }
    jbuf_puts(o, "# HELP herald_cluster_consumer_lag Stream messages not yet delivered here.\n"
                 "# TYPE herald_cluster_consumer_lag gauge\n");
    for (unsigned p = 0; p < st->n_parts; p++) {
        snprintf(label, sizeof label, "{partition=\"%u\"}", p);
        sample(o, "consumer_lag", label, lag_of(&st->parts[p]));
    }
}
