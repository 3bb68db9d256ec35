/* clustered_fwd.c - cluster mode's forwarding: publishes of partitions owned elsewhere go
 * to their owner in one request per partition (clustered.h), answered slot by slot; and the
 * owner's side, which runs a forwarded publish through its pipeline and answers it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustered_int.h"
#include "codec.h"
#include "native.h"
#include "ingest.h"
#include "pipeline.h"

static const char fwd_failed_msg[] =
    "the user's partition has no owner right now (cluster failover): not accepted, retry later";
static const char bad_answer_msg[] = "malformed answer from the partition's owner";

/* --- forwarding --- */

static void fwd_unlink(bk_cluster_t *st, bk_clfwd_t *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        st->fwds = f->next;
    if (f->next) f->next->prev = f->prev;
}

static void fwd_fail_slots(bk_cluster_t *st, bk_req_t *req, const uint32_t *idx, uint32_t n,
                           herr_t code, const char *msg)
{
    for (uint32_t i = 0; i < n; i++)
        bk_result_fail_static(req, idx[i], code, msg);
    st->b->c.dropped += n;
    st->c.forward_failed += n;
}

/* Send p's collected forward for req. */
static void fwd_send(bk_cluster_t *st, bk_req_t *req, unsigned p)
{
    bk_clpart_t *pt = &st->parts[p];
    uint32_t n = pt->fw_n;
    pt->fw_n = 0;
    if (!n) return;
    bk_clfwd_t *f = malloc(sizeof *f + n * sizeof f->idx[0]);
    if (!f) abort();
    f->req = req;
    f->p = p;
    f->n = n;
    memcpy(f->idx, pt->fw_idx, n * sizeof f->idx[0]);
    uint8_t *h = pt->fw_buf;
    h[0] = 0xdd; /* array32: the owner answers one result per item, in order */
    h[1] = (uint8_t)(n >> 24);
    h[2] = (uint8_t)(n >> 16);
    h[3] = (uint8_t)(n >> 8);
    h[4] = (uint8_t)n;
    int rc = cl_forward(st->cl, p, pt->fw_buf, pt->fw_len, f);
    pt->fw_len = CL_FWD_HEAD;
    if (rc < 0) {
        if (log_ratelimit_ok(&st->rl_fwd, 1))
            log_warn("cluster: forward of %u publishes to partition %u not sent (NATS "
                     "connection down?): refused unavailable",
                     n, p);
        fwd_fail_slots(st, req, f->idx, n, HERR_UNAVAILABLE, fwd_failed_msg);
        free(f);
        return;
    }
    f->prev = NULL;
    f->next = st->fwds;
    if (st->fwds) st->fwds->prev = f;
    st->fwds = f;
    req->pending++;
    st->c.forwarded += n;
}

void bk_cluster_forward_add(broker_t *b, bk_req_t *req, unsigned part, uint32_t idx,
                            const uint8_t *rec, size_t len)
{
    bk_cluster_t *st = b->cl;
    bk_clpart_t *pt = &st->parts[part];
    if (pt->fw_n && pt->fw_len + len > CL_FWD_FRAME_MAX) fwd_send(st, req, part);
    if (!pt->fw_touched) {
        pt->fw_touched = true;
        st->touched[st->n_touched++] = part;
    }
    if (pt->fw_len + len > pt->fw_cap) {
        size_t cap = pt->fw_cap ? pt->fw_cap : 4096;
        while (cap < pt->fw_len + len)
            cap *= 2;
        uint8_t *nb = realloc(pt->fw_buf, cap);
        if (!nb) abort();
        pt->fw_buf = nb;
        pt->fw_cap = cap;
    }
    if (pt->fw_n == pt->fw_idx_cap) {
        uint32_t cap = pt->fw_idx_cap ? pt->fw_idx_cap * 2 : 64;
        uint32_t *ni = realloc(pt->fw_idx, cap * sizeof *ni);
        if (!ni) abort();
        pt->fw_idx = ni;
        pt->fw_idx_cap = cap;
    }
    memcpy(pt->fw_buf + pt->fw_len, rec, len);
    pt->fw_len += len;
    pt->fw_idx[pt->fw_n++] = idx;
}

void bk_cluster_forward_flush(broker_t *b, bk_req_t *req)
{
    bk_cluster_t *st = b->cl;
    for (unsigned i = 0; i < st->n_touched; i++) {
        unsigned p = st->touched[i];
        fwd_send(st, req, p);
        st->parts[p].fw_touched = false;
    }
    st->n_touched = 0;
}

/* The code of an error string ("unavailable" ...), HERR_INTERNAL when unknown. */
static herr_t code_of(const char *s, size_t len)
{
    for (unsigned i = 1; i < HERR__COUNT; i++) {
        const char *name = herr_code(herr_at(i));
        if (strlen(name) == len && !memcmp(name, s, len)) return herr_at(i);
    }
    return HERR_INTERNAL;
}

/* Apply one result map of the owner's answer to slot idx of req. */
static void fwd_result(bk_req_t *req, uint32_t idx, const msgpack_object *o)
{
    const msgpack_object *ok = codec_map_get(o, "ok");
    if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean) {
        const msgpack_object *seq = codec_map_get(o, "seq");
        const msgpack_object *dup = codec_map_get(o, "duplicate");
        bk_result_t *r = &req->res[idx];
        r->code = HERR_OK;
        r->seq = seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? seq->via.u64 : 0;
        r->duplicate = dup && dup->type == MSGPACK_OBJECT_BOOLEAN && dup->via.boolean;
        r->done = 1;
        return;
    }
    const msgpack_object *err = codec_map_get(o, "error");
    const msgpack_object *msg = codec_map_get(o, "message");
    if (!err || err->type != MSGPACK_OBJECT_STR) {
        bk_result_fail_static(req, idx, HERR_INTERNAL, bad_answer_msg);
        return;
    }
    char text[256] = "";
    if (msg && msg->type == MSGPACK_OBJECT_STR)
        snprintf(text, sizeof text, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
    bk_result_fail(req, idx, code_of(err->via.str.ptr, err->via.str.size), text);
}

void bk_cl_on_forward_done(void *ctx, void *req_ctx, cl_status_t s, const uint8_t *resp, size_t len)
{
    bk_cluster_t *st = ctx;
    bk_clfwd_t *f = req_ctx;
    bk_req_t *req = f->req;
    fwd_unlink(st, f);
    herald_error_t err;
    if (s != CL_OK) {
        fwd_fail_slots(st, req, f->idx, f->n, HERR_UNAVAILABLE, fwd_failed_msg);
    } else if (codec_unpack(resp, len, len, &st->unp, &err) < 0) {
        fwd_fail_slots(st, req, f->idx, f->n, HERR_INTERNAL, bad_answer_msg);
    } else {
        const msgpack_object *o = &st->unp.data;
        if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == f->n) {
            for (uint32_t i = 0; i < f->n; i++)
                fwd_result(req, f->idx[i], &o->via.array.ptr[i]);
        } else if (o->type == MSGPACK_OBJECT_MAP) { /* the whole frame was refused */
            for (uint32_t i = 0; i < f->n; i++)
                fwd_result(req, f->idx[i], o);
        } else {
            fwd_fail_slots(st, req, f->idx, f->n, HERR_INTERNAL, bad_answer_msg);
        }
    }
    bk_req_slot_done(st->b, req);
    free(f);
}

/* Answer a forwarded publish with req's response frame. */
static void served_reply(bk_cluster_t *st, cl_fwd_t *fwd, const bk_req_t *req)
{
    bk_native_pack_response(req, &st->resp);
    cl_forward_reply(st->cl, fwd, st->resp.data, st->resp.size);
}

void bk_cl_on_forwarded(void *ctx, unsigned p, cl_fwd_t *fwd, const uint8_t *frame, size_t len)
{
    bk_cluster_t *st = ctx;
    (void)p;
    st->c.served++;
    bk_req_t *req = bk_ingest_forwarded(st->b, frame, len);
    if (req->pending == 0) {
        served_reply(st, fwd, req);
        bk_req_free(req);
        return;
    }
    struct bk_clin *in = calloc(1, sizeof *in);
    if (!in) abort();
    in->fwd = fwd;
    in->req = req;
    in->next = st->ins;
    if (st->ins) st->ins->prev = in;
    st->ins = in;
    req->fwd = in;
}

static void in_unlink(bk_cluster_t *st, struct bk_clin *in)
{
    if (in->prev)
        in->prev->next = in->next;
    else
        st->ins = in->next;
    if (in->next) in->next->prev = in->prev;
}

void bk_cluster_req_done(broker_t *b, bk_req_t *req)
{
    bk_cluster_t *st = b->cl;
    struct bk_clin *in = req->fwd;
    served_reply(st, in->fwd, req);
    in_unlink(st, in);
    free(in);
    bk_req_free(req);
}

void bk_cl_served_close(bk_cluster_t *st)
{
    for (struct bk_clin *in = st->ins, *nx; in; in = nx) {
        nx = in->next;
        bk_req_t stop = {.frame_code = HERR_UNAVAILABLE};
        snprintf(stop.frame_msg, sizeof stop.frame_msg, "the partition's owner is shutting down");
        served_reply(st, in->fwd, &stop);
        in->req->fwd = NULL;
        bk_req_orphan(st->b, in->req); /* freed when its last item is answered */
        free(in);
    }
    st->ins = NULL;
}

void bk_cl_forwards_close(bk_cluster_t *st)
{
    while (st->fwds) {
        bk_clfwd_t *f = st->fwds;
        fwd_unlink(st, f);
        fwd_fail_slots(st, f->req, f->idx, f->n, HERR_UNAVAILABLE, fwd_failed_msg);
        bk_req_slot_done(st->b, f->req);
        free(f);
    }
}
