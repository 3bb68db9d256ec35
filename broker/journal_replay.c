/* journal_replay.c - the journal read back at start: which file to trust, its records applied
 * to users, histories, floors and the dedup window, the tail cut after the last good record. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "broker.h"
#include "codec.h"
#include "dedup.h"
#include "herald_time.h"
#include "items.h"
#include "jfile.h"
#include "journal.h"
#include "journal_int.h"
#include "jsum.h"
#include "users.h"

/* Apply one record to the broker state. Returns 0, or -1 if it does not decode. */
static int jr_apply(broker_t *b, uint16_t type, const uint8_t *p, uint32_t len,
                    msgpack_unpacked *scratch)
{
    uint64_t word;
    memcpy(&word, p, 8);
    const uint8_t *d = p + 8;
    uint32_t dlen = len - 8;
    if (type == J_FLOOR) {
        uint32_t slot;
        if (dlen != 4) return -1;
        memcpy(&slot, d, 4);
        if (slot >= BK_FLOOR_SLOTS) return -1;
        bk_users_floor_raise(b, slot, word);
        return 0;
    }
    if (type == J_CLPOS) {
        uint32_t part;
        if (dlen != 4) return -1;
        memcpy(&part, d, 4);
        b->hooks.cl_pos_restore(b, part, word); /* ignored without cluster mode */
        return 0;
    }
    uint64_t fp = 0;
    if (type == J_DEDUP_FP) { /* the fingerprint, then the id as in J_DEDUP */
        if (dlen < 8) return -1;
        memcpy(&fp, d, 8);
        d += 8;
        dlen -= 8;
    }
    if (type == J_USER || type == J_DEDUP || type == J_DEDUP_FP) {
        if (dlen == 0 || dlen > HERALD_MAX_ID_LEN) return -1;
        char id[HERALD_MAX_ID_LEN + 1];
        memcpy(id, d, dlen);
        id[dlen] = '\0';
        if (type != J_USER) { /* J_DEDUP (version 2): fingerprint unknown, 0 */
            bk_dedup_insert(b, id, dlen, bk_dedup_hash(id, dlen), word, NULL, fp);
            return 0;
        }
        bk_user_t *u = bk_users_get(b, id, dlen, true);
        if (word > u->last_seq) u->last_seq = word;
        return 0;
    }
    if (type != J_NOTIF && type != J_HIST) return -1;
    notif_t n;
    herald_error_t err;
    if (codec_decode(d, dlen, scratch, &n, &err) < 0 || n.seq == 0) return -1;
    bk_user_t *u = bk_users_get(b, n.user_id, strlen(n.user_id), true);
    if (n.seq > u->last_seq) u->last_seq = n.seq;
    if (type == J_NOTIF) {
        size_t idl = strlen(n.message_id);
        bk_dedup_insert(b, n.message_id, idl, bk_dedup_hash(n.message_id, idl), n.seq, NULL,
                        bk_dedup_fp(d, dlen));
    }
    if (u->hist_tail && u->hist_tail->seq >= n.seq) return 0; /* already held */
    bk_item_t *it = bk_items_new(dlen);
    *it = (bk_item_t){.user = u, .seq = n.seq, .at_ns = word, .len = dlen, .prio = n.priority};
    memcpy(it->bytes, d, dlen);
    bk_users_history_append(b, u, it);
    return 0;
}

/* Rebuild state from the records of f. Returns the end of the valid records; *why says what
 * follows them when it is neither the end mark (zero) nor the end of the file. */
static uint64_t jr_load(broker_t *b, const jf_t *f, uint64_t epoch, const char **why)
{
    const uint8_t *p = f->map;
    msgpack_unpacked scratch;
    msgpack_unpacked_init(&scratch);
    uint64_t off = JF_HDR, records = 0;
    *why = NULL;
    while (off + JR_REC_HDR <= f->map_len) {
        jr_rec_t h;
        memcpy(&h, p + off, JR_REC_HDR);
        if (!h.len && !h.type && !h.zero && !h.epoch && !h.sum) break; /* end mark */
        uint64_t padded = jr_padded(h.len), head;
        if (h.epoch != (uint32_t)epoch) {
            *why = "record of another epoch";
            break;
        }
        if (h.len < 8 || h.len > HERALD_MAX_NOTIF_BYTES + 8 || h.zero ||
            off + JR_REC_HDR + padded > f->map_len) {
            *why = "bad record header";
            break;
        }
        uint64_t word;
        memcpy(&head, p + off, 8);
        const uint8_t *rec = p + off + JR_REC_HDR;
        memcpy(&word, rec, 8);
        if (jsum(epoch, head, word, rec + 8, h.len - 8) != h.sum) {
            *why = "checksum mismatch";
            break;
        }
        if (jr_apply(b, h.type, rec, h.len, &scratch) < 0) {
            *why = "record does not decode";
            break;
        }
        off += JR_REC_HDR + padded;
        /* a long replay is progress, not a hang: keep the supervisor's grace from running out */
        if (++records % JR_BEAT_EVERY == 0) hb_beat(&b->hb, mono_ns());
    }
    msgpack_unpacked_destroy(&scratch);
    /* relaxed: our own earlier life stored it; no other process writes the file */
    uint64_t committed = atomic_load_explicit(&jf_header(f)->committed, memory_order_relaxed);
    if (!*why && off < committed) *why = "end mark before the committed end";
    log_info("journal %s: %llu records restored (epoch %llu), %zu users", f->path,
             (unsigned long long)records, (unsigned long long)epoch, bk_users_count(b));
    return off;
}

/* Can f be loaded? An old-format or unreadable file is reported and ignored (the broker
 * starts fresh); an empty one, or one whose first header was never finished, is just absent. */
static bool jr_usable(broker_t *b, const jf_t *f)
{
    static const char zero[8];
    if (f->map_len < JF_HDR) {
        if (f->map_len >= 8 && !memcmp(f->map, JF_MAGIC_V1, 8)) goto old;
        if (f->map_len) goto unknown;
        return false;
    }
    const jf_header_t *h = jf_header(f);
    if (!memcmp(h->magic, zero, 8)) return false; /* interrupted before its header */
    if (!memcmp(h->magic, JF_MAGIC_V1, 8)) goto old;
    if (memcmp(h->magic, JF_MAGIC, 8) || h->version < JF_VERSION_MIN || h->version > JF_VERSION ||
        h->header_bytes != JF_HDR)
        goto unknown;
    if (h->version < JF_VERSION)
        log_info("journal %s is version %u: loaded; its dedup entries have no fingerprint, so "
                 "a reused message_id among them is answered as a duplicate until they leave "
                 "the window",
                 f->path, h->version);
    return atomic_load_explicit(&h->epoch, memory_order_relaxed) != 0;
old:
    log_warn("journal %s is in the old format (%s); format %s version %u replaces it: its "
             "state is not restored",
             f->path, JF_MAGIC_V1, JF_MAGIC, JF_VERSION);
    return false;
unknown:
    b->c.journal_corrupt++;
    log_warn("journal %s: unknown header (%llu bytes, not %s version %u): its state is not "
             "restored",
             f->path, (unsigned long long)f->size, JF_MAGIC, JF_VERSION);
    return false;
}

/* Start from the current file (f[0] when neither loads, reset to epoch 1); cut whatever
 * follows its valid records. */
int jr_start(broker_t *b, bk_journal_t *j)
{
    bool ok[2] = {jr_usable(b, &j->f[0]), jr_usable(b, &j->f[1])};
    uint64_t ep[2];
    for (int i = 0; i < 2; i++)
        ep[i] = ok[i] ? atomic_load_explicit(&jf_header(&j->f[i])->epoch, memory_order_relaxed) : 0;
    if (!ok[0] && !ok[1]) {
        j->cur = 0;
        j->epoch = 1;
        j->used = JF_HDR;
        if (jf_reset(&j->f[0], 1) < 0 || jf_clear(&j->f[1]) < 0) return -1;
        log_info("journal %s: new (epoch 1)", j->f[0].path);
    } else {
        j->cur = ok[1] && (!ok[0] || ep[1] > ep[0]);
        j->epoch = ep[j->cur];
        jf_t *f = &j->f[j->cur];
        const char *why;
        j->used = jr_load(b, f, j->epoch, &why);
        if (why) {
            b->c.journal_corrupt++;
            log_warn("journal %s: %s at offset %llu; the records from there on are cut off",
                     f->path, why, (unsigned long long)j->used);
        }
        /* an unreadable other file would be reported at every start until reused */
        if (!ok[!j->cur] && jf_clear(&j->f[!j->cur]) < 0) return -1;
        if (jr_mark_end(f, j->used) < 0) return -1; /* the cut */
        atomic_store_explicit(&jf_header(f)->committed, j->used, memory_order_release);
    }
    j->committed = j->used;
    j->room = j->f[j->cur].map_len;
    j->bound = jr_bound(j, j->used);
    return 0;
}
