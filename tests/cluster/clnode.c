/* clnode.c - the cluster tests' stand-in broker: sequencing, rollback, and records of what
 * the cluster layer reported. */
#include "clnode.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herald_time.h"

void cln_recs_push(cln_recs_t *r, const char *user, size_t ulen, const char *id, size_t idlen,
                   uint64_t seq)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (!r->v) abort();
    }
    cln_rec_t *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->user, user, ulen < 64 ? ulen : 64);
    if (id) memcpy(e->id, id, idlen < 64 ? idlen : 64);
    e->seq = seq;
}

void cln_recs_free(cln_recs_t *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

static cln_rec_t *cln_user(clnode_t *n, const char *user, bool create)
{
    for (size_t i = 0; i < n->users.n; i++)
        if (strcmp(n->users.v[i].user, user) == 0) return &n->users.v[i];
    if (!create) return NULL;
    cln_recs_push(&n->users, user, strlen(user), NULL, 0, 0);
    return &n->users.v[n->users.n - 1];
}

uint64_t clnode_user_seq(clnode_t *n, const char *user)
{
    cln_rec_t *u = cln_user(n, user, false);
    return u ? u->seq : 0;
}

static void cb_appended(void *ctx, unsigned p, void *round_ctx, cl_status_t st)
{
    clnode_t *n = ctx;
    cln_round_t *r = round_ctx;
    (void)p;
    r->done = true;
    r->st = st;
    r->answered = ++n->order;
    if (st == CL_OK) {
        n->rounds_ok++;
        for (size_t i = 0; i < r->n; i++)
            cln_recs_push(&n->acked, r->recs[i].user, strlen(r->recs[i].user), r->recs[i].id,
                          strlen(r->recs[i].id), r->recs[i].seq);
        return;
    }
    n->rounds_failed[st]++;
    /* Roll back as the broker does: each user to the first seq it had in the round, less 1. */
    for (size_t i = 0; i < r->n; i++) {
        cln_rec_t *u = cln_user(n, r->recs[i].user, false);
        if (u && u->seq >= r->recs[i].seq) u->seq = r->recs[i].seq - 1;
    }
}

static void cb_owner(void *ctx, unsigned p, const cl_takeover_t *tk, cl_status_t why)
{
    clnode_t *n = ctx;
    (void)why;
    if (p >= CLN_MAXP) return;
    unsigned parts = cl_partitions(n->cl);
    if (!tk) {
        n->owns[p] = false;
        n->losses[p]++;
        /* The partition's users are sequenced elsewhere now. */
        for (size_t i = 0; i < n->users.n; i++) {
            cln_rec_t *u = &n->users.v[i];
            if (cl_partition_of(n->cl, u->user, strlen(u->user)) == p) u->seq = 0;
        }
        return;
    }
    (void)parts;
    n->owns[p] = true;
    n->gains[p]++;
    n->tk_ckpt[p] = tk->ckpt_seq;
    n->tk_replayed[p] = tk->replayed;
    n->tk_users[p].n = n->tk_ids[p].n = 0;
    for (size_t i = 0; i < tk->n_users; i++) {
        const cl_user_seq_t *us = &tk->users[i];
        cln_recs_push(&n->tk_users[p], us->user, us->user_len, NULL, 0, us->seq);
        char name[65] = "";
        memcpy(name, us->user, us->user_len);
        cln_user(n, name, true)->seq = us->seq;
    }
    for (size_t i = 0; i < tk->n_ids; i++)
        cln_recs_push(&n->tk_ids[p], "", 0, tk->ids[i].message_id, tk->ids[i].id_len,
                      tk->ids[i].seq);
}

static void cb_records(void *ctx, unsigned p, uint64_t stream_seq, const cl_rec_t *recs, size_t k,
                       uint64_t pending)
{
    clnode_t *n = ctx;
    (void)pending;
    if (p >= CLN_MAXP) return;
    if (stream_seq <= n->consumed_last[p]) n->consumed_disorder = true;
    n->consumed_last[p] = stream_seq;
    for (size_t i = 0; i < k; i++)
        cln_recs_push(&n->consumed[p], recs[i].user, recs[i].user_len, recs[i].message_id,
                      recs[i].id_len, recs[i].seq);
}

static void cb_forwarded(void *ctx, unsigned p, cl_fwd_t *req, const uint8_t *frame, size_t len)
{
    clnode_t *n = ctx;
    (void)p;
    n->forwarded_in++;
    if (n->forward_silent && n->n_held < 16) { /* not answered now: the request times out */
        n->held[n->n_held++] = req;
        return;
    }
    char resp[300];
    int k = snprintf(resp, sizeof resp, "ack:%.*s", (int)len, (const char *)frame);
    cl_forward_reply(n->cl, req, resp, (size_t)k);
}

static void cb_forward_done(void *ctx, void *req_ctx, cl_status_t st, const uint8_t *resp,
                            size_t len)
{
    (void)ctx;
    cln_fwd_t *f = req_ctx;
    f->done = true;
    f->st = st;
    if (resp) snprintf(f->resp, sizeof f->resp, "%.*s", (int)len, (const char *)resp);
}

void clnode_config(cl_config_t *cfg, const char *url, unsigned node_id, unsigned partitions,
                   unsigned replicas)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->nats = url;
    cfg->node_id = node_id;
    cfg->partitions = partitions;
    cfg->replicas = replicas;
    cfg->history_age_s = 300;
    cfg->dedup_window = 1000;
    cfg->lease_ttl_ms = 3000;
    cfg->tick_ms = 100;
    cfg->ack_wait_ms = 1000;
    cfg->forward_timeout_ms = 1000;
    cfg->ckpt_interval_ms = 300;
    cfg->probe_grace_ms = 1000;
}

void clnode_production_timings(cl_config_t *cfg)
{
    cfg->lease_ttl_ms = cfg->tick_ms = cfg->ack_wait_ms = cfg->forward_timeout_ms = 0;
    cfg->ckpt_interval_ms = cfg->probe_grace_ms = 0; /* 0: cl_open's defaults */
}

int clnode_open(clnode_t *n, const cl_config_t *cfg)
{
    memset(n, 0, sizeof *n);
    n->id = cfg->node_id;
    cl_callbacks_t cb = {
        .ctx = n,
        .appended = cb_appended,
        .owner = cb_owner,
        .records = cb_records,
        .forwarded = cb_forwarded,
        .forward_done = cb_forward_done,
    };
    herald_error_t err = {0};
    if (cl_open(&n->cl, cfg, &cb, &err) < 0) {
        fprintf(stderr, "cl_open node %u: %s\n", cfg->node_id, err.message);
        return -1;
    }
    return 0;
}

void clnode_close(clnode_t *n)
{
    if (!n->cl) return;
    for (unsigned i = 0; i < n->n_held; i++)
        cl_forward_reply(n->cl, n->held[i], "", 0);
    n->n_held = 0;
    cl_close(n->cl);
    n->cl = NULL;
    cln_recs_free(&n->users);
    cln_recs_free(&n->acked);
    for (unsigned p = 0; p < CLN_MAXP; p++) {
        cln_recs_free(&n->consumed[p]);
        cln_recs_free(&n->tk_users[p]);
        cln_recs_free(&n->tk_ids[p]);
    }
}

void clnode_pump(clnode_t **nodes, size_t count, int ms)
{
    struct pollfd pfd[8];
    long end = (long)mono_ms() + ms;
    do {
        size_t k = 0;
        for (size_t i = 0; i < count && k < 8; i++)
            if (nodes[i] && nodes[i]->cl)
                pfd[k++] = (struct pollfd){cl_fd(nodes[i]->cl), POLLIN, 0};
        long left = end - (long)mono_ms();
        poll(pfd, k, left > 0 ? (int)(left < 20 ? left : 20) : 0);
        for (size_t i = 0; i < count; i++)
            if (nodes[i] && nodes[i]->cl) cl_dispatch(nodes[i]->cl);
    } while ((long)mono_ms() < end);
}

bool clnode_wait(clnode_t **nodes, size_t count, int ms, bool (*cond)(void *), void *ctx)
{
    long end = (long)mono_ms() + ms;
    while (!cond(ctx)) {
        if ((long)mono_ms() >= end) return false;
        clnode_pump(nodes, count, 20);
    }
    return true;
}

cln_round_t *clnode_append_users(clnode_t *n, const char *const *users, size_t n_users,
                                 size_t count, const char *prefix)
{
    size_t total = n_users * count;
    cln_round_t *r = calloc(1, sizeof *r + total * sizeof(cln_rec_t));
    cl_rec_t *recs = calloc(total ? total : 1, sizeof *recs);
    size_t width = 96 + n->pad;
    char *bytes = calloc(total ? total : 1, width);
    if (!r || !recs || !bytes) abort();
    r->n = total;
    r->p = cl_partition_of(n->cl, users[0], strlen(users[0]));
    size_t k = 0;
    for (size_t c = 0; c < count; c++)
        for (size_t u = 0; u < n_users; u++, k++) {
            cln_rec_t *user = cln_user(n, users[u], true);
            cln_rec_t *rec = &r->recs[k];
            snprintf(rec->user, sizeof rec->user, "%s", users[u]);
            rec->seq = ++user->seq;
            snprintf(rec->id, sizeof rec->id, "%s-%s-%llu", prefix, users[u],
                     (unsigned long long)rec->seq);
            char *b = bytes + k * width;
            int blen = snprintf(b, 96, "{\"user\":\"%s\",\"seq\":%llu}", users[u],
                                (unsigned long long)rec->seq);
            memset(b + blen, ' ', n->pad);
            blen += (int)n->pad;
            recs[k] = (cl_rec_t){.user = rec->user,
                                 .user_len = (uint8_t)strlen(rec->user),
                                 .message_id = rec->id,
                                 .id_len = (uint8_t)strlen(rec->id),
                                 .seq = rec->seq,
                                 .bytes = (const uint8_t *)b,
                                 .len = (uint32_t)blen,
                                 .prio = 1};
        }
    cl_append_round(n->cl, r->p, recs, total, r);
    free(recs);
    free(bytes);
    return r;
}

cln_round_t *clnode_publish_id(clnode_t *n, const char *user, const char *id, uint64_t *dup_seq)
{
    unsigned p = cl_partition_of(n->cl, user, strlen(user));
    *dup_seq = 0;
    for (size_t i = 0; p < CLN_MAXP && i < n->tk_ids[p].n; i++)
        if (strcmp(n->tk_ids[p].v[i].id, id) == 0) *dup_seq = n->tk_ids[p].v[i].seq;
    for (size_t i = 0; i < n->acked.n; i++)
        if (strcmp(n->acked.v[i].id, id) == 0) *dup_seq = n->acked.v[i].seq;
    if (*dup_seq) return NULL;
    cln_round_t *r = calloc(1, sizeof *r + sizeof(cln_rec_t));
    if (!r) abort();
    r->n = 1;
    r->p = p;
    cln_rec_t *rec = &r->recs[0];
    snprintf(rec->user, sizeof rec->user, "%s", user);
    snprintf(rec->id, sizeof rec->id, "%s", id);
    rec->seq = ++cln_user(n, user, true)->seq;
    char body[96];
    int blen = snprintf(body, sizeof body, "{\"user\":\"%s\",\"seq\":%llu}", user,
                        (unsigned long long)rec->seq);
    cl_rec_t cr = {.user = rec->user,
                   .user_len = (uint8_t)strlen(rec->user),
                   .message_id = rec->id,
                   .id_len = (uint8_t)strlen(rec->id),
                   .seq = rec->seq,
                   .bytes = (const uint8_t *)body,
                   .len = (uint32_t)blen,
                   .prio = 1};
    cl_append_round(n->cl, p, &cr, 1, r);
    return r;
}

cln_round_t *clnode_append(clnode_t *n, const char *user, size_t count, const char *prefix)
{
    const char *users[] = {user};
    return clnode_append_users(n, users, 1, count, prefix);
}

int clnode_round_wait(clnode_t **nodes, size_t count, cln_round_t *r, int ms)
{
    long end = (long)mono_ms() + ms;
    while (!r->done && (long)mono_ms() < end)
        clnode_pump(nodes, count, 10);
    return r->done ? (int)r->st : -1;
}

int clnode_forward(clnode_t *n, unsigned p, const char *frame, cln_fwd_t *f)
{
    memset(f, 0, sizeof *f);
    return cl_forward(n->cl, p, frame, strlen(frame), f);
}
