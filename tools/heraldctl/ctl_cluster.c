/* ctl_cluster.c - heraldctl cluster: this node's view of the cluster (protocol.md 11) from the
 * broker's GET /api/cluster: live nodes, and per partition its state here, owner, preferred
 * owner, lease revision, stream position, this node's consumer (delivered, lag) and the
 * rounds waiting for JetStream; then the cluster counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_table(json_t *c)
{
    json_t *nodes = json_object_get(c, "nodes"), *parts = json_object_get(c, "partition");
    printf("node %lld; live nodes:", jint(c, "node"));
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v) printf(" %lld", (long long)json_integer_value(v));
    printf("; %lld partitions (+1 broadcast), %lld replicas\n\n", jint(c, "partitions"),
           jint(c, "replicas"));
    printf("%-9s %-10s %-6s %-9s %-8s %-10s %-10s %-6s %-8s %s\n", "partition", "state", "owner",
           "preferred", "lease", "stream", "delivered", "lag", "waiting", "in-doubt");
    json_array_foreach(parts, i, v)
    {
        char name[16];
        snprintf(name, sizeof name, "%lld%s", jint(v, "p"),
                 json_is_true(json_object_get(v, "broadcast")) ? " (*)" : "");
        const char *state = json_string_value(json_object_get(v, "state"));
        printf("%-9s %-10s %-6lld %-9lld %-8lld %-10lld %-10lld %-6lld %-8lld %s\n", name,
               state ? state : "?", jint(v, "owner"), jint(v, "preferred"), jint(v, "lease_rev"),
               jint(v, "stream_last"), jint(v, "delivered_to"), jint(v, "lag"),
               jint(v, "rounds_waiting") + jint(v, "inflight"),
               json_is_true(json_object_get(v, "in_doubt")) ? "yes" : "no");
    }
    json_t *cnt = json_object_get(c, "counters");
    const char *key;
    int col = 0;
    printf("\ncounters\n");
    json_object_foreach(cnt, key, v)
    {
        printf("  %-22s %-10lld%s", key, (long long)json_integer_value(v), ++col % 3 ? "" : "\n");
    }
    if (col % 3) printf("\n");
}

int ctl_cmd_cluster(ctl_t *ctl)
{
    const herald_config_t *cfg = &ctl->cfg;
    static const char *const names[] = {"ca", NULL};
    if (ctl_check_args(ctl, names, NULL, 0, 0)) return 1;
    char why[300];
    json_t *c = ctl_get_json(ctl, &cfg->broker_http, cfg->broker_http.port,
                             cfg->broker_tls_cert[0] != '\0', "/api/cluster", why, sizeof why);
    if (!c) return ctl_fail("broker unreachable: %s", why);
    if (ctl->json) {
        char *s = json_dumps(c, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else if (!json_is_true(json_object_get(c, "enabled"))) {
        printf("cluster mode is off (cluster.nats is not set): a single node\n");
    } else {
        print_table(c);
    }
    json_decref(c);
    return 0;
}
