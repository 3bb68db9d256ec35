/* natsfix.c - start, kill, restart and read real nats-server processes for the cluster tests. */
#include "natsfix.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "herald_time.h"

int natsfix_run_suite(struct Suite *suite)
{
    if (!natsfix_server_path()) {
        printf("SKIP: nats-server is not installed (deploy/setup.sh --test installs it)\n");
        return 77;
    }
    return procs_run_suite(suite);
}

const char *natsfix_server_path(void)
{
    static const char *const candidates[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server",
                                             "/usr/local/bin/nats-server"};
    const char *env = getenv("HERALD_NATS_SERVER");
    if (env && access(env, X_OK) == 0) return env;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0) return candidates[i];
    return NULL;
}

static int natsfix_spawn(natsfix_t *f, int i)
{
    char name[16], port[8], store[320], log[320], cluster[64], routes[256] = "";
    snprintf(name, sizeof name, "n%d", (i & 7) + 1);
    snprintf(port, sizeof port, "%u", f->client_port[i]);
    snprintf(store, sizeof store, "%s/%s", f->env.dir, name);
    snprintf(log, sizeof log, "%s/%s.log", f->env.dir, name);
    mkdir(store, 0700);
    char *argv[20];
    int a = 0;
    argv[a++] = (char *)natsfix_server_path();
    argv[a++] = "-js";
    argv[a++] = "-a";
    argv[a++] = "127.0.0.1";
    argv[a++] = "-n";
    argv[a++] = name;
    argv[a++] = "-p";
    argv[a++] = port;
    argv[a++] = "-sd";
    argv[a++] = store;
    if (f->n > 1) {
        snprintf(cluster, sizeof cluster, "nats://127.0.0.1:%u", f->route_port[i]);
        for (int j = 0; j < f->n; j++) {
            size_t off = strlen(routes);
            snprintf(routes + off, sizeof routes - off, "%snats://127.0.0.1:%u", j ? "," : "",
                     f->route_port[j]);
        }
        argv[a++] = "--cluster_name";
        argv[a++] = "herald";
        argv[a++] = "--cluster";
        argv[a++] = cluster;
        argv[a++] = "--routes";
        argv[a++] = routes;
    }
    argv[a] = NULL;
    f->pid[i] = procs_spawn(argv[0], argv, log);
    if (f->pid[i] < 0) {
        f->pid[i] = 0;
        return -1;
    }
    return procs_wait_tcp("127.0.0.1", f->client_port[i], 10000);
}

/* JetStream answers an account info request: the meta leader is elected. */
static int natsfix_wait_js(natsfix_t *f, int timeout_ms)
{
    natsOptions *o = NULL;
    natsOptions_Create(&o);
    const char *urls[NATSFIX_MAX];
    for (int i = 0; i < f->n; i++)
        urls[i] = f->one_url[i];
    natsOptions_SetServers(o, urls, f->n);
    natsOptions_SetTimeout(o, 1000);
    natsConnection *nc = NULL;
    int rc = -1;
    uint64_t t0 = mono_ms();
    for (;;) {
        if (!nc) natsConnection_Connect(&nc, o);
        if (nc) {
            jsCtx *js = NULL;
            jsAccountInfo *ai = NULL;
            jsOptions jo;
            jsOptions_Init(&jo);
            jo.Wait = 1000;
            /* The meta leader answers, and a stream on every server can be placed. */
            jsStreamConfig sc;
            jsStreamConfig_Init(&sc);
            sc.Name = "NATSFIX_READY";
            sc.Storage = js_MemoryStorage;
            sc.Replicas = f->n;
            jsStreamInfo *si = NULL;
            if (natsConnection_JetStream(&js, nc, &jo) == NATS_OK &&
                js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK &&
                js_AddStream(&si, js, &sc, NULL, NULL) == NATS_OK) {
                jsStreamInfo_Destroy(si);
                js_DeleteStream(js, sc.Name, NULL, NULL);
                jsAccountInfo_Destroy(ai);
                jsCtx_Destroy(js);
                rc = 0;
                break;
            }
            jsAccountInfo_Destroy(ai);
            jsCtx_Destroy(js);
        }
        if ((long)(mono_ms() - t0) > timeout_ms) break;
        usleep(100000);
    }
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return rc;
}

int natsfix_start(natsfix_t *f, int n)
{
    memset(f, 0, sizeof *f);
    f->n = n;
    if (n < 1 || n > NATSFIX_MAX || procs_env_init(&f->env, "nats") < 0) return -1;
    uint16_t base = procs_free_ports(2u * (unsigned)n);
    if (!base) return -1;
    for (int i = 0; i < n; i++) {
        f->client_port[i] = (uint16_t)(base + i);
        f->route_port[i] = (uint16_t)(base + n + i);
        snprintf(f->one_url[i], sizeof f->one_url[i], "nats://127.0.0.1:%u", f->client_port[i]);
        size_t off = strlen(f->url);
        snprintf(f->url + off, sizeof f->url - off, "%s%s", i ? "," : "", f->one_url[i]);
    }
    for (int i = 0; i < n; i++)
        if (natsfix_spawn(f, i) < 0) return -1;
    return natsfix_wait_js(f, 30000);
}

int natsfix_restart(natsfix_t *f, int i)
{
    if (f->pid[i]) return 0;
    return natsfix_spawn(f, i);
}

void natsfix_signal(natsfix_t *f, int i, int sig)
{
    if (!f->pid[i]) return;
    procs_kill(f->pid[i], sig);
    if (sig == SIGKILL) {
        procs_reap(f->pid[i], 5000);
        f->pid[i] = 0;
    }
}

static natsConnection *natsfix_connect(natsfix_t *f)
{
    natsOptions *o = NULL;
    natsOptions_Create(&o);
    const char *urls[NATSFIX_MAX];
    int k = 0;
    for (int i = 0; i < f->n; i++)
        if (f->pid[i]) urls[k++] = f->one_url[i];
    natsOptions_SetServers(o, urls, k);
    natsOptions_SetTimeout(o, 2000);
    natsConnection *nc = NULL;
    natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    return nc;
}

int natsfix_stream_leader(natsfix_t *f, const char *stream)
{
    natsConnection *nc = natsfix_connect(f);
    if (!nc) return -1;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int leader = -1;
    if (natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK && si->Cluster &&
        si->Cluster->Leader && si->Cluster->Leader[0] == 'n')
        leader = atoi(si->Cluster->Leader + 1) - 1;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return leader >= 0 && leader < f->n ? leader : -1;
}

long natsfix_read_stream(natsfix_t *f, const char *stream, natsfix_msg_fn fn, void *ctx)
{
    natsConnection *nc = natsfix_connect(f);
    if (!nc) return -1;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    long count = -1;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) goto out;
    /* Right after a leader kill the stream answers once its replicas elect a new leader. */
    for (int attempt = 0; attempt < 30; attempt++) {
        if (js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK) break;
        usleep(500000);
    }
    if (!si) goto out;
    count = 0;
    for (uint64_t seq = si->State.FirstSeq; seq && seq <= si->State.LastSeq; seq++) {
        natsMsg *m = NULL;
        natsStatus s = NATS_TIMEOUT;
        for (int attempt = 0; attempt < 150 && s != NATS_OK && s != NATS_NOT_FOUND; attempt++) {
            s = js_GetMsg(&m, js, stream, seq, NULL, NULL);
            if (s != NATS_OK && s != NATS_NOT_FOUND) usleep(200000);
        }
        if (s == NATS_NOT_FOUND) continue;
        if (s != NATS_OK) {
            count = -1;
            break;
        }
        const char *id = NULL;
        natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
        fn(seq, natsMsg_GetSubject(m), natsMsg_GetData(m), natsMsg_GetDataLength(m), id, ctx);
        natsMsg_Destroy(m);
        count++;
    }
out:
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return count;
}

void natsfix_stop(natsfix_t *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->pid[i]) {
            procs_stop(f->pid[i], 5000);
            f->pid[i] = 0;
        }
}

int natsfix_kv_rewrite(natsfix_t *f, const char *bucket, const char *key)
{
    natsConnection *nc = natsfix_connect(f);
    if (!nc) return -1;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    kvEntry *e = NULL;
    int rc = -1;
    uint64_t rev = 0;
    if (natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_KeyValue(&kv, js, bucket) == NATS_OK && kvStore_Get(&e, kv, key) == NATS_OK &&
        kvStore_Put(&rev, kv, key, kvEntry_Value(e), kvEntry_ValueLen(e)) == NATS_OK)
        rc = 0;
    kvEntry_Destroy(e);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

int natsfix_kv_put(natsfix_t *f, const char *bucket, const char *key, const char *value)
{
    natsConnection *nc = natsfix_connect(f);
    if (!nc) return -1;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    uint64_t rev = 0;
    int rc = natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
                     js_KeyValue(&kv, js, bucket) == NATS_OK &&
                     kvStore_PutString(&rev, kv, key, value) == NATS_OK
                 ? 0
                 : -1;
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
