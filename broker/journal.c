/* journal.c - the broker's restart state: records appended to a preallocated file in /dev/shm
 * (pwrite on its first lap, memcpy into its mapping after), compacted into a snapshot (user
 * seqs, live history, dedup window) written to the other of two files when it grows past
 * its bound. Format: docs/architecture.md. */
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

/* Tests only: HERALD_TEST_JOURNAL_FAIL_AFTER=N: after N good flushes the mapping counts as
 * full and the next growth fails with ENOSPC, once. The round after them so takes the path
 * of a full /dev/shm: its records wait in spill, its flush fails, the retry grows the file
 * (a full /dev/shm cannot be had on demand). Called at open and after each good flush. */
static void jr_fault_tick(bk_journal_t *j)
{
    if (j->fail_after < 0) return;
    if (j->fail_after-- == 0) {
        j->room = j->used;
        j->inject = true;
    }
}

/* Tests only: HERALD_TEST_JOURNAL_KILL_AT_GROWTH=N: the broker kills itself (SIGKILL) right
 * after the Nth growth of the journal, between the file's new size and anything written in
 * it, to show a kill -9 at any growth step loses nothing acknowledged. */
static void jr_growth_fault(bk_journal_t *j)
{
    if (j->kill_at_growth > 0 && --j->kill_at_growth == 0) raise(SIGKILL);
}

/* Make f[cur] hold at least want bytes; 0, or -1 with errno. */
static int jr_grow(bk_journal_t *j, uint64_t want)
{
    if (j->inject) {
        j->inject = false;
        j->injected = true;
        errno = ENOSPC;
        return -1;
    }
    jf_t *f = &j->f[j->cur];
    /* Past the mapping the round would go out by pwrite into pages allocated one by one: grow
     * by a step instead (doubling up to JR_GROW_MAX, never past what the file can need), and
     * map and fault it in one go, so this round and the next are a memcpy. */
    uint64_t step = j->grow_step ? j->grow_step : JR_START_BYTES;
    uint64_t target = j->used + step, cap = j->bound + JF_CHUNK;
    if (target > cap) target = cap;
    if (target < want) target = want;
    uint64_t old = f->map_len;
    if (jf_grow(f, target) < 0 && jf_grow(f, want) < 0) return -1; /* the step, else enough */
    jr_growth_fault(j);
    if (jf_map_all(f) == 0) jf_prefault(f, old, f->map_len);
    if (step < JR_GROW_MAX) j->grow_step = 2 * step;
    j->room = f->map_len;
    return 0;
}

/* Allocate and map both files up to the compaction bound now, so that appends and the first
 * compactions write into pages that exist: allocating tmpfs pages as records arrive (a
 * fallocate, a pwrite or a page fault per few records) was about 12 % of the broker's CPU
 * for its first few million notifications. This is most of the journal's steady-state
 * size, allocated at start instead of during the first minutes of load, as the rings are
 * (ring_open). Skipped, with a warning, when /dev/shm has less than twice that free. */
/* A fresh broker allocates (and maps, page tables filled) only JR_START_BYTES of each file;
 * bk_journal_tick then keeps the current file ahead of the append rate. A broker that
 * restarts on a full journal maps what is there. */
static void jr_preallocate(bk_journal_t *j)
{
    for (int i = 0; i < 2; i++) {
        jf_t *f = &j->f[i];
        uint64_t want = f->size > JR_START_BYTES ? f->size : JR_START_BYTES;
        if (jf_grow(f, want) < 0 || jf_map_all(f) < 0) {
            log_warn("journal %s: cannot allocate %llu MiB: %s (pages are allocated as records "
                     "are written)",
                     f->path, (unsigned long long)(want >> 20), strerror(errno));
            break;
        }
        jf_prefault(f, 0, f->map_len);
    }
    j->room = j->f[j->cur].map_len;
}

void bk_journal_tick(broker_t *b)
{
    bk_journal_t *j = b->jr;
    jf_t *f = &j->f[j->cur];
    uint64_t rate = j->used > j->tick_used ? j->used - j->tick_used : 0; /* bytes per second */
    j->tick_used = j->used;
    if (j->failing || j->inject) return; /* (tests: a growth failure is due) */
    /* Room for two seconds at the last second's rate (at least one start size), up to what
     * the file ever needs: the compaction bound and a chunk. Growing here, once a second,
     * keeps the allocation of pages out of the drain rounds. */
    uint64_t want = j->used + (2 * rate > JR_START_BYTES ? 2 * rate : JR_START_BYTES);
    if (want > j->bound + JF_CHUNK) want = j->bound + JF_CHUNK;
    if (want <= f->map_len) return;
    uint64_t old = f->map_len;
    if (jf_grow(f, want) < 0) return; /* the drain round grows it then */
    jr_growth_fault(j);
    if (jf_map_all(f) < 0) return;
    jf_prefault(f, old, f->map_len);
    if (!j->spill_len) j->room = f->map_len;
}

int bk_journal_open(broker_t *b, herald_error_t *err)
{
    bk_journal_t *j = calloc(1, sizeof *j);
    if (!j) abort();
    j->f[0].fd = j->f[1].fd = -1;
    /* Tests only: HERALD_TEST_JOURNAL_MIN_BOUND=bytes compacts sooner (cheaper tests). */
    const char *mb = getenv("HERALD_TEST_JOURNAL_MIN_BOUND");
    j->min_bound = mb && *mb ? strtoull(mb, NULL, 10) : JR_MIN_BOUND;
    for (int i = 0; i < 2; i++) {
        char path[320];
        snprintf(path, sizeof path, "/dev/shm/%s.broker.journal%s", b->cfg.shm_prefix,
                 i ? ".1" : "");
        if (jf_open(&j->f[i], path, err) < 0) goto fail;
    }
    bk_users_loading(b, true);
    int started = jr_start(b, j);
    bk_users_loading(b, false);
    if (started < 0) {
        herr_set(err, HERR_IO, "journal", "journal %s: %s", j->f[j->cur].path,
                 errno == ENOSPC ? "no space in /dev/shm" : strerror(errno));
        goto fail;
    }
    /* Growth stops short of filling /dev/shm: what it keeps free lets rings be made and
     * others work (1/16 of it, at most 64 MiB). */
    struct statvfs sv;
    if (fstatvfs(j->f[0].fd, &sv) == 0) {
        uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
        j->reserve = total / 16 < JR_SHM_RESERVE ? total / 16 : JR_SHM_RESERVE;
        j->f[0].reserve = j->f[1].reserve = j->reserve;
    }
    jr_preallocate(j);
    const char *kg = getenv("HERALD_TEST_JOURNAL_KILL_AT_GROWTH");
    j->kill_at_growth = kg && *kg ? strtol(kg, NULL, 10) : 0;
    const char *fa = getenv("HERALD_TEST_JOURNAL_FAIL_AFTER");
    j->fail_after = fa && *fa ? strtol(fa, NULL, 10) : -1;
    jr_fault_tick(j);
    b->jr = j;
    return 0;
fail:
    jf_close(&j->f[0]);
    jf_close(&j->f[1]);
    free(j);
    return -(int)err->code;
}

void bk_journal_append(broker_t *b, const bk_item_t *it)
{
    jr_put(b->jr, J_NOTIF, it->at_ns, it->bytes, it->len);
}

void bk_journal_append_hist(broker_t *b, const bk_item_t *it)
{
    jr_put(b->jr, J_HIST, it->at_ns, it->bytes, it->len);
}

void bk_journal_clpos(broker_t *b, uint32_t p, uint64_t stream_seq)
{
    jr_put(b->jr, J_CLPOS, stream_seq, &p, 4);
}

void bk_journal_floor(broker_t *b, uint32_t slot, uint64_t seq)
{
    if (b->jr) jr_put(b->jr, J_FLOOR, seq, &slot, 4);
}

/* Records in spill are behind a file that could not grow (/dev/shm full). Such a round is
 * not acknowledged: the caller discards it (bk_journal_discard) and answers io_error, and
 * while the journal is failing bk_ingest_body refuses publishes; bk_journal_probe, every
 * 100 ms, tells when the file can grow again. */
int bk_journal_flush(broker_t *b)
{
    bk_journal_t *j = b->jr;
    bool compacted = false;
again:
    if (j->spill_len) {
        size_t n = j->spill_len;
        jf_t *f = &j->f[j->cur];
        memset(jr_spill(j, JR_REC_HDR), 0, JR_REC_HDR); /* the end mark goes with them */
        f->reserve = j->reserve + jr_snapshot_room(b);
        int rc = jr_grow(j, j->used + n + JR_REC_HDR);
        if (rc == 0 && j->used + n + JR_REC_HDR <= f->map_len) {
            uint8_t *p = f->map + j->used;
            memcpy(p + JR_REC_HDR, j->spill + JR_REC_HDR, n);
            atomic_signal_fence(memory_order_release); /* the first header last, as in jr_encode */
            memcpy(p, j->spill, JR_REC_HDR);
        } else if (rc == 0) { /* the file's first lap: fresh pages, filled without zeroing */
            rc = jf_write(f, j->used + JR_REC_HDR, j->spill + JR_REC_HDR, n);
            if (rc == 0) rc = jf_write(f, j->used, j->spill, JR_REC_HDR); /* header last */
        }
        j->spill_len = n;
        if (rc < 0) {
            int e = errno;
            if (e == ENOSPC && !compacted && jr_compact_instead(b) == 0) {
                compacted = true;
                goto again;
            }
            b->c.journal_errors++;
            if (log_ratelimit_ok(&b->rl_journal, 1))
                log_error("journal %s: cannot grow past %llu bytes or write: %s%s; refusing "
                          "publishes until it can",
                          f->path, (unsigned long long)f->size, strerror(e),
                          e == ENOSPC && f->reserve_hit ? " (keeping /dev/shm's last free "
                                                          "space for rings and others)"
                                                        : "");
            f->reserve_hit = false;
            j->failing = true;
            return -HERR_IO;
        }
        j->used += n;
        j->spill_len = 0;
    }
    if (j->used == j->committed) return 0;
    /* The records are in the file once memcpy'd or written: the pages belong to tmpfs, not
     * to us, so a kill -9 cannot lose them (a reboot loses /dev/shm whole, as protocol.md 4
     * allows). committed only lets the next start tell a cut file from a corrupt one;
     * release keeps the compiler from storing it before the records. */
    atomic_store_explicit(&jf_header(&j->f[j->cur])->committed, j->used, memory_order_release);
    /* the next round's pages, if this lap is in the mapping: about as far as this round went */
    jf_prefault(&j->f[j->cur], j->used, j->used + 2 * (j->used - j->committed) + JR_REC_HDR);
    b->c.journal_bytes += j->used - j->committed;
    j->committed = j->used;
    jr_fault_tick(j);
    return 0;
}

void bk_journal_compact_due(broker_t *b)
{
    if (b->jr->used > b->jr->bound) jr_compact(b);
}

bool bk_journal_failing(const broker_t *b)
{
    return b->jr->failing;
}

void bk_journal_discard(broker_t *b)
{
    bk_journal_t *j = b->jr;
    j->spill_len = 0;
    if (j->used == j->committed) return;
    /* The round's records copied into the mapping are cut off by an end mark where the last
     * acknowledged round ended (the mapping covers it: they were copied there). */
    memset(j->f[j->cur].map + j->committed, 0, JR_REC_HDR);
    j->used = j->committed;
}

int bk_journal_probe(broker_t *b)
{
    bk_journal_t *j = b->jr;
    if (!j->failing) return 0;
    /* a full /dev/shm may be the journal's own old records: compacting makes room */
    if (jr_grow(j, j->used + JR_PROBE_BYTES) < 0 &&
        !(errno == ENOSPC && jr_compact_instead(b) == 0)) {
        b->c.journal_errors++;
        return -HERR_IO;
    }
    j->failing = false;
    log_info("journal %s: writes work again", j->f[j->cur].path);
    return 0;
}

void bk_journal_close(broker_t *b)
{
    bk_journal_t *j = b->jr;
    if (!j) return;
    jf_close(&j->f[0]);
    jf_close(&j->f[1]);
    free(j->spill);
    free(j);
    b->jr = NULL;
}
