/* journal_snap.c - compaction: the live state (user seqs, histories, dedup window, floors)
 * written as the next epoch into the other journal file, which becomes current. */
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

typedef struct {
    bk_journal_t *j;
    jf_t *t;        /* the file the snapshot goes to */
    uint64_t epoch; /* its new epoch */
    uint64_t end;   /* end of the snapshot records written to t so far */
    int err;        /* errno of a failed growth or write: the snapshot is abandoned */
} jr_snap_ctx_t;

/* Write the encoded part of the snapshot (in spill) to the target file. */
static void snap_flush(jr_snap_ctx_t *s)
{
    bk_journal_t *j = s->j;
    size_t n = j->spill_len;
    j->spill_len = 0;
    if (s->err || !n) return;
    if (jf_grow(s->t, s->end + n + JR_REC_HDR) < 0) {
        s->err = errno;
        return;
    }
    if (s->end + n <= s->t->map_len)
        memcpy(s->t->map + s->end, j->spill, n);
    else if (jf_write(s->t, s->end, j->spill, n) < 0)
        s->err = errno;
    s->end += n;
}

/* A snapshot record goes straight into the target's mapping while it reaches that far (it
 * is allocated up to the compaction bound at start), else through spill and a write. */
static void snap_put(jr_snap_ctx_t *s, uint16_t type, uint64_t word, const void *data, size_t dlen)
{
    if (s->err) return;
    size_t n = JR_REC_HDR + jr_padded(8 + dlen);
    if (!s->j->spill_len && s->end + n + JR_REC_HDR <= s->t->map_len) {
        jr_encode(s->t->map + s->end, s->epoch, type, word, data, dlen);
        s->end += n;
        return;
    }
    jr_encode(jr_spill(s->j, n), s->epoch, type, word, data, dlen);
    if (s->j->spill_len >= JR_SNAP_PIECE) snap_flush(s);
}

static void snap_dedup(const char *id, uint64_t seq, uint64_t fp, void *ctx)
{
    uint8_t rec[8 + HERALD_MAX_ID_LEN];
    size_t n = strlen(id);
    memcpy(rec, &fp, 8);
    memcpy(rec + 8, id, n);
    snap_put(ctx, J_DEDUP_FP, seq, rec, 8 + n);
}

/* Snapshot the histories of up to JR_WALK users at once, one record of each in turn. Their
 * items are scattered in the heap, so following one list waits a cache miss per item;
 * walking several lists side by side lets those misses overlap. An item's first line was
 * prefetched a round earlier (with its successor's link), so its other lines are fetched
 * the round before it is copied. Each user's records stay in seq order. */
#define JR_WALK 8

static void snap_history(jr_snap_ctx_t *s, bk_item_t **cur, unsigned n)
{
    while (n) {
        for (unsigned i = 0; i < n;) {
            bk_item_t *it = cur[i], *nx = it->next;
            if (nx) {
                __builtin_prefetch(nx->next);
                for (uint32_t off = 64; off < sizeof *nx + nx->len; off += 64)
                    __builtin_prefetch((const uint8_t *)nx + off);
            }
            snap_put(s, J_HIST, it->at_ns, it->bytes, it->len);
            if (nx)
                cur[i++] = nx;
            else
                cur[i] = cur[--n];
        }
    }
}

/* The users' walk of a snapshot: each user's J_USER, and its history JR_WALK users at once. */
typedef struct {
    broker_t *b;
    jr_snap_ctx_t *s;
    uint64_t now;
    bk_item_t *cur[JR_WALK];
    unsigned n;
} jr_snap_users_t;

static void snap_user(bk_user_t *u, void *ctx)
{
    jr_snap_users_t *su = ctx;
    if (!u->last_seq) return;
    snap_put(su->s, J_USER, u->last_seq, u->id, strlen(u->id));
    bk_users_history_trim(su->b, u, su->now);
    if (!u->hist_head) return;
    __builtin_prefetch(u->hist_head->next);
    su->cur[su->n++] = u->hist_head;
    if (su->n == JR_WALK) {
        snap_history(su->s, su->cur, su->n);
        su->n = 0;
    }
}

/* Write the live state as epoch+1 into the other file, which then becomes current: its
 * pages stay allocated and mapped from its last use, so nothing is freed or allocated in
 * bulk. The epoch in its header is stored last: a broker killed before that restarts from
 * the current file, still whole; after it, from the snapshot. */
void jr_compact(broker_t *b)
{
    bk_journal_t *j = b->jr;
    jf_t *t = &j->f[!j->cur];
    t->reserve = j->reserve; /* the snapshot may use the room the appends left it */
    jr_snap_ctx_t s = {j, t, j->epoch + 1, JF_HDR, 0};
    uint64_t now = now_ns(), t0 = mono_ns();
    jr_snap_users_t su = {b, &s, now, {0}, 0};
    bk_users_each(b, snap_user, &su);
    snap_history(&s, su.cur, su.n);
    bk_dedup_each(b, snap_dedup, &s);
    for (uint32_t slot = 0; slot < BK_FLOOR_SLOTS; slot++)
        if (bk_users_floor(b, slot)) snap_put(&s, J_FLOOR, bk_users_floor(b, slot), &slot, 4);
    for (uint32_t p = 0; p < b->hooks.cl_pos_count(b); p++)
        if (b->hooks.cl_pos(b, p)) snap_put(&s, J_CLPOS, b->hooks.cl_pos(b, p), &p, 4);
    snap_flush(&s);
    /* the next lap of t appends into its mapping: map what its last lap wrote with pwrite */
    if (s.err || jr_mark_end(t, s.end) < 0 || jf_map_all(t) < 0) {
        j->bound *= 2; /* try again later rather than every round */
        b->c.journal_errors++;
        log_error("journal compaction into %s failed: %s", t->path,
                  strerror(s.err ? s.err : errno));
        return;
    }
    jf_header_init(t);
    jf_header_t *h = jf_header(t);
    atomic_store_explicit(&h->committed, s.end, memory_order_relaxed);
    /* release: the snapshot and committed above are in place before the file is current */
    atomic_store_explicit(&h->epoch, s.epoch, memory_order_release);
    j->cur = !j->cur;
    j->epoch = s.epoch;
    j->used = j->committed = s.end;
    j->pf = 0; /* another file: jr_put prefetches from its end */
    j->bound = jr_bound(j, s.end);
    if (jf_shrink(t, j->bound + JF_CHUNK) < 0)
        log_warn("journal %s: cannot give back pages past %llu bytes: %s", t->path,
                 (unsigned long long)(j->bound + JF_CHUNK), strerror(errno));
    j->room = t->map_len;
    b->c.journal_compactions++;
    log_info("journal compacted into %s: %llu bytes, epoch %llu, in %.1f ms", t->path,
             (unsigned long long)s.end, (unsigned long long)s.epoch, (mono_ns() - t0) / 1e6);
}

/* Free space the current file's growth leaves for a snapshot into the other file: the live
 * state (its memory, an upper bound of the snapshot) less what the other file holds
 * already, in whole chunks. So the appends stop while a compaction can still be made. */
uint64_t jr_snapshot_room(broker_t *b)
{
    bk_journal_t *j = b->jr;
    uint64_t live = bk_mem_used(b), have = j->f[!j->cur].size;
    return live > have ? (live - have + 2 * JF_CHUNK - 1) / JF_CHUNK * JF_CHUNK : 0;
}

/* The current file cannot grow (/dev/shm full, or at the free space it keeps) while a round
 * waits to be flushed: its records in the mapping past `committed`, then in spill. A
 * snapshot of the state into the other file (whose pages exist from its last lap), with the
 * round's records appended to it again under the new epoch, holds everything the current
 * file would, and starts a file with room: when live state is what fills /dev/shm (it may
 * take 4x of it before a compaction) this goes on without refusing anything. Tried whenever
 * the snapshot looks like it fits (its memory, an upper bound, within the other file and
 * the free space), else at most once a second; never for an injected test fault, which
 * stands for a /dev/shm where nothing fits. Returns 0 when the snapshot was made (the
 * round is then in the new file's mapping or its spill), else -1 (nothing changed). */
int jr_compact_instead(broker_t *b)
{
    bk_journal_t *j = b->jr;
    if (j->injected) return -1;
    uint64_t now = mono_ns(), room = j->f[!j->cur].size;
    struct statvfs sv;
    if (fstatvfs(j->f[0].fd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize > j->reserve)
        room += (uint64_t)sv.f_bavail * sv.f_frsize - j->reserve;
    if (bk_mem_used(b) > room) {
        if (now < j->next_compact_ns) return -1;
        j->next_compact_ns = now + 1000000000ull;
    }
    jf_t *f = &j->f[j->cur];
    size_t mapped = (size_t)(j->used - j->committed), n = mapped + j->spill_len;
    uint8_t *round = malloc(n ? n : 1);
    if (!round) abort();
    memcpy(round, f->map + j->committed, mapped);
    memcpy(round + mapped, j->spill, j->spill_len);
    uint8_t *saved = j->spill;
    size_t saved_len = j->spill_len, saved_cap = j->spill_cap;
    j->spill = NULL; /* jr_compact encodes the snapshot through spill */
    j->spill_len = j->spill_cap = 0;
    uint64_t epoch = j->epoch;
    jr_compact(b);
    if (j->epoch == epoch) {
        free(j->spill);
        j->spill = saved;
        j->spill_len = saved_len;
        j->spill_cap = saved_cap;
        free(round);
        return -1;
    }
    free(saved);
    for (size_t off = 0; off + JR_REC_HDR <= n;) { /* the round again, in the new epoch */
        jr_rec_t h;
        uint64_t word;
        memcpy(&h, round + off, JR_REC_HDR);
        memcpy(&word, round + off + JR_REC_HDR, 8);
        jr_put(j, h.type, word, round + off + JR_REC_HDR + 8, h.len - 8);
        off += JR_REC_HDR + jr_padded(h.len);
    }
    free(round);
    /* The file it left stopped where /dev/shm did; at the size of the new one it still takes
     * the next snapshot, and the rest of its pages go to the appends. */
    jf_t *old = &j->f[!j->cur];
    if (jf_shrink(old, j->f[j->cur].size) < 0)
        log_warn("journal %s: cannot give back pages: %s", old->path, strerror(errno));
    log_info("journal: /dev/shm is short of space: compacted instead of growing %s", old->path);
    return 0;
}
