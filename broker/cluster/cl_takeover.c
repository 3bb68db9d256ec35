/* cl_takeover.c - becoming a partition's owner: load the last checkpoint, replay the stream
 * on top of it, write the ownership marker that fences every earlier writer, start serving;
 * and the periodic checkpoints (<name>_ckpt bucket) that keep the replay short. Control
 * thread only.
 *
 * A checkpoint is a header key "p<p>" (stream position, chunk count, byte count and the
 * revision of every chunk) and chunk keys "p<p>.c<i>". Chunks are written first, the header
 * last by compare-and-set, and read back by revision: a reader never mixes two checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cl_int.h"
#include "cl_wire.h"
#include "log.h"

#define CL_CKPT_CHUNK      (512u * 1024)
#define CL_CKPT_HDR_MIN    24 /* magic, version, stream seq, chunks, bytes */
#define CL_CKPT_MAX_CHUNKS 4096

static bool cl_lease_held(cl_t *cl, cl_part_t *part)
{
    pthread_mutex_lock(&cl->mu);
    bool ok = cl->cfg.test_no_lease_check || cl_now() < part->valid_until;
    pthread_mutex_unlock(&cl->mu);
    return ok;
}

/* Load p's checkpoint into st. Returns 0 (with *seq = 0 when there is none) or -1. */
static int cl_ckpt_load(cl_t *cl, unsigned p, cl_state_t *st, uint64_t *seq, uint64_t *rev,
                        char *why, size_t cap)
{
    char key[32];
    snprintf(key, sizeof key, "p%u", p);
    *seq = *rev = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        kvEntry *h = NULL;
        natsStatus s = kvStore_Get(&h, cl->ckpt, key);
        if (s == NATS_NOT_FOUND) {
            return 0;
        }
        if (s != NATS_OK) {
            snprintf(why, cap, "header: %s", natsStatus_GetText(s));
            return -1;
        }
        const uint8_t *hv = kvEntry_Value(h);
        int hlen = kvEntry_ValueLen(h);
        uint32_t n = hlen >= CL_CKPT_HDR_MIN ? cl_get32(hv + 16) : 0;
        if (hlen < CL_CKPT_HDR_MIN || cl_get32(hv) != CL_CKPT_HDR_MAGIC ||
            cl_get32(hv + 4) != CL_WIRE_VERSION || n > CL_CKPT_MAX_CHUNKS ||
            (size_t)hlen != CL_CKPT_HDR_MIN + 8u * n) {
            log_error("cluster: partition %u: checkpoint header is malformed; ignored", p);
            *rev = kvEntry_Revision(h);
            kvEntry_Destroy(h);
            return 0;
        }
        uint64_t cseq = cl_get64(hv + 8);
        uint32_t total = cl_get32(hv + 20);
        uint8_t *buf = malloc(total ? total : 1);
        size_t got = 0;
        bool ok = buf != NULL;
        for (uint32_t i = 0; ok && i < n; i++) {
            char ckey[48];
            snprintf(ckey, sizeof ckey, "p%u.c%u", p, i);
            kvEntry *c = NULL;
            uint64_t crev = cl_get64(hv + CL_CKPT_HDR_MIN + 8u * i);
            natsStatus cs = kvStore_GetRevision(&c, cl->ckpt, ckey, crev);
            ok = cs == NATS_OK;
            if (!ok)
                snprintf(why, cap, "%s at revision %llu: %s", ckey, (unsigned long long)crev,
                         natsStatus_GetText(cs));
            if (ok) {
                size_t len = (size_t)kvEntry_ValueLen(c);
                ok = got + len <= total;
                if (ok) memcpy(buf + got, kvEntry_Value(c), len);
                got += len;
            }
            kvEntry_Destroy(c);
        }
        uint64_t hrev = kvEntry_Revision(h);
        kvEntry_Destroy(h);
        if (!ok || got != total) { /* replaced while reading: read the newer one */
            free(buf);
            continue;
        }
        uint64_t dseq = 0;
        int rc = cl_state_decode(st, buf, total, &dseq);
        free(buf);
        if (rc < 0 || dseq != cseq) {
            log_error("cluster: partition %u: checkpoint is malformed; ignored", p);
            *rev = hrev;
            return 0;
        }
        *seq = cseq;
        *rev = hrev;
        return 0;
    }
    return -1;
}

/* Apply the round messages (first..last] of p's stream to st. Returns messages read or -1. */
static long cl_replay(cl_t *cl, cl_part_t *part, cl_state_t *st, uint64_t first, uint64_t last)
{
    if (first > last) return 0;
    char stream[64], subj[96];
    cl_stream_name(cl, part->idx, stream, sizeof stream);
    /* Markers too (skipped below): the last message of the range is then always delivered,
     * even when no round follows the checkpoint. */
    cl_subject(cl, part->idx, '*', subj, sizeof subj);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = first;
    natsSubscription *sub = NULL;
    jsErrCode code = 0;
    if (js_SubscribeSync(&sub, cl->jsc, subj, NULL, &so, &code) != NATS_OK) {
        log_warn("cluster: partition %u: replay: %s", part->idx, nats_GetLastError(NULL));
        return -1;
    }
    long read = 0;
    cl_rec_t *recs = NULL;
    size_t cap = 0;
    for (;;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 2000) != NATS_OK) {
            /* The range ends at a message the stream has: silence means trouble. */
            read = -1;
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = 0, pending = 0;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            seq = meta->Sequence.Stream;
            pending = meta->NumPending;
            jsMsgMetaData_Destroy(meta);
        }
        if (seq > last) { /* written after the range was fixed: the next pass reads it */
            natsMsg_Destroy(m);
            break;
        }
        const uint8_t *body = (const uint8_t *)natsMsg_GetData(m);
        size_t len = (size_t)natsMsg_GetDataLength(m);
        const char *subject = natsMsg_GetSubject(m);
        size_t slen = strlen(subject);
        bool round = slen > 2 && strcmp(subject + slen - 2, ".r") == 0;
        long n = round ? cl_wire_parse_round(body, len, NULL, 0) : 0;
        if (n > 0 && (size_t)n > cap) {
            free(recs);
            cap = (size_t)n;
            recs = malloc(cap * sizeof *recs);
            if (!recs) abort();
        }
        if (round && (n < 0 || cl_wire_parse_round(body, len, recs, cap) < 0)) {
            log_error("cluster: partition %u: stream message %llu is not a herald round; skipped",
                      part->idx, (unsigned long long)seq);
            pthread_mutex_lock(&cl->mu);
            cl->c.corrupt_messages++;
            pthread_mutex_unlock(&cl->mu);
        } else {
            for (long i = 0; i < n; i++)
                cl_state_apply(st, &recs[i]);
        }
        natsMsg_Destroy(m);
        read++;
        if (seq >= last || pending == 0) break;
    }
    free(recs);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return read;
}

/* First and last sequence of p's stream. */
static int cl_stream_bounds(cl_t *cl, unsigned p, uint64_t *first, uint64_t *last)
{
    char stream[64];
    cl_stream_name(cl, p, stream, sizeof stream);
    jsStreamInfo *si = NULL;
    jsErrCode code = 0;
    if (js_GetStreamInfo(&si, cl->jsc, stream, NULL, &code) != NATS_OK) {
        return -1;
    }
    *first = si->State.FirstSeq;
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Write the ownership marker after stream seq `after`: 1 = written (seq in *at), 0 = someone
 * wrote after `after` (replay more), -1 = no answer (retry). */
static int cl_marker(cl_t *cl, cl_part_t *part, uint64_t after, uint64_t *at, char *id)
{
    char subj[96], num[24];
    uint8_t body[CL_MARKER_LEN];
    cl_subject(cl, part->idx, 'o', subj, sizeof subj);
    cl_wire_marker(body, cl->cfg.node_id, part->epoch);
    snprintf(id, CL_ID_MAX, "%u.%llu.m", cl->cfg.node_id, (unsigned long long)part->epoch);
    snprintf(num, sizeof num, "%llu", (unsigned long long)after);
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subj, NULL, (const char *)body, sizeof body) != NATS_OK) return -1;
    natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    natsMsgHeader_Set(m, "Nats-Expected-Last-Sequence", num);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = cl->cfg.ack_wait_ms;
    jsPubAck *pa = NULL;
    jsErrCode code = 0;
    natsStatus s = js_PublishMsg(&pa, cl->jsc, m, &po, &code);
    natsMsg_Destroy(m);
    cl_result_t r = cl_result_of(s, code);
    int rc = -1;
    if (r == CL_R_OK) {
        *at = pa->Sequence;
        rc = 1;
    } else if (r == CL_R_WRONG_LAST) {
        rc = 0;
    }
    jsPubAck_Destroy(pa);
    return rc;
}

/* Replay the stream from cursor (the checkpoint's position) into st until a marker of this
 * ownership is the stream's last message: *replayed messages, the *marker's seq and id.
 * 0, or -1 when the lease ran out meanwhile. */
static int takeover_catch_up(cl_t *cl, cl_part_t *part, cl_state_t *st, uint64_t cursor,
                             uint64_t *replayed, uint64_t *marker, char *id)
{
    unsigned p = part->idx;
    uint64_t first = 0, last = 0;
    for (;;) {
        if (!cl_lease_held(cl, part)) {
            log_warn("cluster: partition %u: lease ran out during takeover", p);
            return -1;
        }
        if (cl_stream_bounds(cl, p, &first, &last) < 0) {
            usleep(cl->cfg.tick_ms * 1000u);
            continue;
        }
        if (last > cursor) {
            if (cursor + 1 < first)
                log_error("cluster: partition %u: stream messages %llu..%llu expired before a "
                          "checkpoint covered them: seqs of users written only there may repeat",
                          p, (unsigned long long)cursor + 1, (unsigned long long)first - 1);
            long n = cl_replay(cl, part, st, cursor + 1 > first ? cursor + 1 : first, last);
            if (n < 0) {
                usleep(cl->cfg.tick_ms * 1000u);
                continue;
            }
            *replayed += (uint64_t)n;
            cursor = last;
        }
        int rc = cl_marker(cl, part, last, marker, id);
        if (rc == 1) return 0;
        if (rc < 0) usleep(cl->cfg.tick_ms * 1000u);
    }
}

int cl_takeover(cl_t *cl, cl_part_t *part)
{
    unsigned p = part->idx;
    uint64_t t0 = cl_now();
    cl_state_t *st = cl_state_new(cl->cfg.dedup_window);
    if (!st) return -1;
    cl_state_set_fingerprint(st, cl->cfg.fingerprint);
    uint64_t ckpt_seq = 0, ckpt_rev = 0, replayed = 0, marker = 0;
    char id[CL_ID_MAX];
    char why[160] = "";
    if (cl_ckpt_load(cl, p, st, &ckpt_seq, &ckpt_rev, why, sizeof why) < 0) {
        if (log_ratelimit_ok(&cl->rl_ckpt, 1))
            log_warn("cluster: partition %u: checkpoint unreadable (%s); takeover postponed", p,
                     why);
        goto fail;
    }
    if (takeover_catch_up(cl, part, st, ckpt_seq, &replayed, &marker, id) < 0) goto fail;

    cl_takeover_t *tk = cl_state_takeover(st);
    if (!tk) goto fail;
    tk->stream_seq = marker;
    tk->lease_epoch = part->epoch;
    tk->replayed = replayed;
    tk->ckpt_seq = ckpt_seq;
    char subj[96];
    cl_subject(cl, p, 'i', subj, sizeof subj);
    natsSubscription *in_sub = NULL;
    if (natsConnection_QueueSubscribe(&in_sub, cl->nc, subj, "herald", cl_forward_in, part) !=
        NATS_OK) {
        log_warn("cluster: partition %u: cannot subscribe to %s: %s", p, subj,
                 nats_GetLastError(NULL));
        free(tk);
        goto fail;
    }
    natsSubscription_SetPendingLimits(in_sub, -1, -1);
    pthread_mutex_lock(&cl->mu);
    part->st = st;
    part->last_seq = marker;
    memcpy(part->last_id, id, CL_ID_MAX);
    part->ckpt_seq = ckpt_seq;
    part->ckpt_rev = ckpt_rev;
    part->ckpt_at = cl_now() + (uint64_t)cl->cfg.ckpt_interval_ms * 1000000u;
    part->dirty = true;
    part->in_sub = in_sub;
    part->state = CL_P_OWNER;
    part->gen++;
    cl->c.takeovers++;
    size_t users = tk->n_users;
    cl_item_t *it = cl_item_new(CLI_OWNER, p);
    it->tk = tk; /* the broker thread may free it as soon as mu is released */
    it->gen = part->gen;
    cl_push(cl, it);
    pthread_mutex_unlock(&cl->mu);
    log_info("cluster: partition %u: owner (lease %llu, %zu users, checkpoint at %llu, %llu "
             "messages replayed, marker %llu, %llu ms)",
             p, (unsigned long long)part->epoch, users, (unsigned long long)ckpt_seq,
             (unsigned long long)replayed, (unsigned long long)marker,
             (unsigned long long)((cl_now() - t0) / 1000000u));
    return 0;
fail:
    cl_state_free(st);
    return -1;
}

void cl_checkpoint_tick(cl_t *cl, cl_part_t *part, bool force)
{
    uint64_t now = cl_now();
    pthread_mutex_lock(&cl->mu);
    bool due = part->st && part->dirty &&
               (part->state == CL_P_OWNER || part->state == CL_P_RELEASING) &&
               (force || now >= part->ckpt_at);
    if (!due) {
        pthread_mutex_unlock(&cl->mu);
        return;
    }
    size_t len = 0;
    uint64_t seq = part->last_seq, rev = part->ckpt_rev;
    uint8_t *buf = cl_state_encode(part->st, seq, &len);
    part->dirty = false;
    part->ckpt_at = now + (uint64_t)cl->cfg.ckpt_interval_ms * 1000000u;
    pthread_mutex_unlock(&cl->mu);
    if (!buf) return;

    size_t chunk = cl->max_body < CL_CKPT_CHUNK ? cl->max_body : CL_CKPT_CHUNK;
    uint32_t n = (uint32_t)((len + chunk - 1) / chunk);
    size_t hlen = CL_CKPT_HDR_MIN + 8u * n;
    uint8_t *hdr = malloc(hlen);
    bool ok = hdr && n <= CL_CKPT_MAX_CHUNKS;
    natsStatus st = NATS_OK;
    for (uint32_t i = 0; ok && i < n; i++) {
        char key[48];
        snprintf(key, sizeof key, "p%u.c%u", part->idx, i);
        size_t off = (size_t)i * chunk, sz = len - off < chunk ? len - off : chunk;
        uint64_t crev = 0;
        st = kvStore_Put(&crev, cl->ckpt, key, buf + off, (int)sz);
        ok = st == NATS_OK;
        if (ok) cl_put64(hdr + CL_CKPT_HDR_MIN + 8u * i, crev);
    }
    uint64_t nrev = 0;
    char key[32];
    snprintf(key, sizeof key, "p%u", part->idx);
    if (ok) {
        cl_put32(hdr, CL_CKPT_HDR_MAGIC);
        cl_put32(hdr + 4, CL_WIRE_VERSION);
        cl_put64(hdr + 8, seq);
        cl_put32(hdr + 16, n);
        cl_put32(hdr + 20, (uint32_t)len);
        natsStatus s = st = rev ? kvStore_Update(&nrev, cl->ckpt, key, hdr, (int)hlen, rev)
                                : kvStore_Create(&nrev, cl->ckpt, key, hdr, (int)hlen);
        ok = s == NATS_OK;
        if (s == NATS_ERR) { /* written by someone else: take its revision for the next one */
            kvEntry *e = NULL;
            if (kvStore_Get(&e, cl->ckpt, key) == NATS_OK) nrev = kvEntry_Revision(e);
            kvEntry_Destroy(e);
        }
    }
    free(buf);
    free(hdr);
    pthread_mutex_lock(&cl->mu);
    if (ok) {
        part->ckpt_seq = seq;
        cl->c.checkpoints++;
    } else {
        part->dirty = true;
        cl->c.checkpoint_errors++;
    }
    if (nrev) part->ckpt_rev = nrev;
    pthread_mutex_unlock(&cl->mu);
    if (!ok && log_ratelimit_ok(&cl->rl_ckpt, 1))
        log_warn("cluster: partition %u: checkpoint at %llu not written: %s (%s)", part->idx,
                 (unsigned long long)seq, natsStatus_GetText(st), nats_GetLastError(NULL));
}
