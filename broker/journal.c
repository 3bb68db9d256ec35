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
#include "clustered.h"
#include "codec.h"
#include "herald_time.h"
#include "jfile.h"
#include "jsum.h"

#define JR_REC_HDR     16u
#define JR_SNAP_PIECE  (1u << 20)     /* snapshot bytes encoded before they are written out */
#define JR_MIN_BOUND   (128ull << 20) /* per file; the two files hold about twice this */
#define JR_SHM_RESERVE (64ull << 20)  /* /dev/shm kept free, at most (1/16 of it when smaller) */
#define JR_PROBE_BYTES (1u << 20)     /* growth tried while failing, to tell it works again */
#define JR_START_BYTES (8ull << 20)   /* each file at start: allocated, mapped and faulted */
#define JR_GROW_MAX    (64ull << 20)  /* the largest growth step of a drain round */
#define JR_BEAT_EVERY  65536u         /* records replayed between two heartbeats */

/* Record types. J_DEDUP (an id alone) is what version 2 wrote; version 3 snapshots write
 * J_DEDUP_FP (the fingerprint, then the id), and version 2 files still load. J_FLOOR (the
 * seq floor in the word, the slot as 4 bytes) is appended when a user is forgotten and
 * written for every raised slot at the end of a snapshot, after the users, so that replayed
 * users are created exactly as recorded. Cluster mode appends what its consumers deliver as
 * J_HIST, each stream message's records followed by J_CLPOS (the stream seq in the word,
 * the partition as 4 bytes), and snapshots end with every partition's J_CLPOS. */
enum { J_NOTIF = 1, J_HIST, J_USER, J_DEDUP, J_DEDUP_FP, J_FLOOR, J_CLPOS };

/* Record header; the payload (an 8-byte word, then data) follows, zero-padded to 8 bytes.
 * An all-zero header ends the records (preallocated pages, or the mark written after the
 * last record). */
typedef struct {
    uint32_t len; /* payload bytes before padding */
    uint16_t type;
    uint16_t zero;
    uint32_t epoch; /* low half of the file's epoch */
    uint32_t sum;   /* jsum of the first 8 header bytes and the payload (not the padding) */
} jr_rec_t;

_Static_assert(sizeof(jr_rec_t) == JR_REC_HDR, "journal record header is 16 bytes");

typedef struct bk_journal {
    jf_t f[2];
    int cur;             /* the file appended to; the other holds the previous epoch */
    uint64_t epoch;      /* of f[cur] */
    uint64_t used;       /* end of the records written into f[cur] */
    uint64_t committed;  /* end of the flushed records, as stored in f[cur]'s header */
    uint64_t room;       /* records are memcpy'd into the mapping up to here, then spilled */
    uint64_t tick_used;  /* `used` at the last bk_journal_tick (the append rate) */
    long kill_at_growth; /* tests: HERALD_TEST_JOURNAL_KILL_AT_GROWTH */
    uint64_t grow_step;  /* the next growth of a drain round (doubles, JR_GROW_MAX at most) */
    uint64_t bound;      /* compact when used passes this */
    uint8_t *spill;      /* records past the mapping: written by the flush, after any growth */
    size_t spill_len, spill_cap;
    bool failing;     /* the last flush could not grow the file: spill holds records */
    bool inject;      /* test fault: the next growth fails with ENOSPC */
    bool injected;    /* a test fault fired: no compaction instead (see jr_compact_instead) */
    uint64_t reserve; /* of /dev/shm, kept free by every growth (JR_SHM_RESERVE at most) */
    uint64_t next_compact_ns; /* jr_compact_instead tries again from then (monotonic) */
    long fail_after;          /* test fault: good flushes left before the injection (-1: off) */
    uint64_t min_bound;       /* JR_MIN_BOUND, or smaller in tests */
} bk_journal_t;

static inline size_t jr_padded(size_t len)
{
    return (len + 7) & ~(size_t)7;
}

/* Encode a record at p (JR_REC_HDR + padded payload bytes). The checksum is taken from the
 * source, so the file is only written. The header is stored last, after a compiler fence: a
 * broker killed mid-record leaves the zero end mark at p, not a torn record (x86 and a kill
 * -9 keep program order; only the compiler could reorder). */
static void jr_encode(uint8_t *p, uint64_t epoch, uint16_t type, uint64_t word, const void *data,
                      size_t dlen)
{
    jr_rec_t h = {.len = (uint32_t)(8 + dlen), .type = type, .epoch = (uint32_t)epoch};
    uint64_t head;
    memcpy(&head, &h, 8);
    h.sum = jsum(epoch, head, word, data, dlen);
    uint8_t *pl = p + JR_REC_HDR;
    memset(pl + jr_padded(8 + dlen) - 8, 0, 8);
    memcpy(pl, &word, 8);
    memcpy(pl + 8, data, dlen);
    atomic_signal_fence(memory_order_release);
    memcpy(p, &h, JR_REC_HDR);
}

/* n more bytes at the end of spill. */
static uint8_t *jr_spill(bk_journal_t *j, size_t n)
{
    if (j->spill_len + n > j->spill_cap) {
        size_t cap = j->spill_cap ? j->spill_cap : 1 << 20;
        while (cap < j->spill_len + n)
            cap *= 2;
        uint8_t *p = realloc(j->spill, cap);
        if (!p) abort();
        j->spill = p;
        j->spill_cap = cap;
    }
    uint8_t *p = j->spill + j->spill_len;
    j->spill_len += n;
    return p;
}

/* Append a record of the current epoch: into the mapping while it has room (the end mark
 * after it first), else into spill (a file's first lap), keeping file order: spill is only
 * ever behind what is in the file. */
static void jr_put(bk_journal_t *j, uint16_t type, uint64_t word, const void *data, size_t dlen)
{
    size_t n = JR_REC_HDR + jr_padded(8 + dlen);
    uint8_t *p;
    if (!j->spill_len && j->used + n + JR_REC_HDR <= j->room) {
        p = j->f[j->cur].map + j->used;
        memset(p + n, 0, JR_REC_HDR);
        j->used += n;
    } else {
        p = jr_spill(j, n);
    }
    jr_encode(p, j->epoch, type, word, data, dlen);
}

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
        bk_floor_raise(b, slot, word);
        return 0;
    }
    if (type == J_CLPOS) {
        uint32_t part;
        if (dlen != 4) return -1;
        memcpy(&part, d, 4);
        bk_cluster_pos_restore(b, part, word); /* ignored without cluster mode */
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
        bk_user_t *u = bk_user_get(b, id, dlen, true);
        if (word > u->last_seq) u->last_seq = word;
        return 0;
    }
    if (type != J_NOTIF && type != J_HIST) return -1;
    notif_t n;
    herald_error_t err;
    if (codec_decode(d, dlen, scratch, &n, &err) < 0 || n.seq == 0) return -1;
    bk_user_t *u = bk_user_get(b, n.user_id, strlen(n.user_id), true);
    if (n.seq > u->last_seq) u->last_seq = n.seq;
    if (type == J_NOTIF) {
        size_t idl = strlen(n.message_id);
        bk_dedup_insert(b, n.message_id, idl, bk_dedup_hash(n.message_id, idl), n.seq, NULL,
                        bk_dedup_fp(d, dlen));
    }
    if (u->hist_tail && u->hist_tail->seq >= n.seq) return 0; /* already held */
    bk_item_t *it = bk_item_new(dlen);
    *it = (bk_item_t){.user = u, .seq = n.seq, .at_ns = word, .len = dlen, .prio = n.priority};
    memcpy(it->bytes, d, dlen);
    bk_history_append(b, u, it);
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
             (unsigned long long)records, (unsigned long long)epoch, b->n_users);
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

static uint64_t jr_bound(const bk_journal_t *j, uint64_t live)
{
    return j->min_bound > 4 * live ? j->min_bound : 4 * live;
}

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

/* Write an end mark (a zero record header) at off. 0, or -1 with errno. */
static int jr_mark_end(jf_t *f, uint64_t off)
{
    static const uint8_t zero[JR_REC_HDR];
    if (jf_grow(f, off + JR_REC_HDR) < 0) return -1;
    if (off + JR_REC_HDR <= f->map_len) {
        memset(f->map + off, 0, JR_REC_HDR);
        return 0;
    }
    return jf_write(f, off, zero, JR_REC_HDR);
}

/* Start from the current file (f[0] when neither loads, reset to epoch 1); cut whatever
 * follows its valid records. */
static int jr_start(broker_t *b, bk_journal_t *j)
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
    b->loading = true;
    int started = jr_start(b, j);
    b->loading = false;
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

/* Write the live state as epoch+1 into the other file, which then becomes current: its
 * pages stay allocated and mapped from its last use, so nothing is freed or allocated in
 * bulk. The epoch in its header is stored last: a broker killed before that restarts from
 * the current file, still whole; after it, from the snapshot. */
static void jr_compact(broker_t *b)
{
    bk_journal_t *j = b->jr;
    jf_t *t = &j->f[!j->cur];
    t->reserve = j->reserve; /* the snapshot may use the room the appends left it */
    jr_snap_ctx_t s = {j, t, j->epoch + 1, JF_HDR, 0};
    uint64_t now = now_ns(), t0 = mono_ns();
    bk_item_t *cur[JR_WALK];
    unsigned n = 0;
    for (size_t h = 0; h < b->utab_size; h++) {
        for (bk_user_t *u = b->utab[h]; u; u = u->hnext) {
            if (!u->last_seq) continue;
            snap_put(&s, J_USER, u->last_seq, u->id, strlen(u->id));
            bk_history_trim(b, u, now);
            if (!u->hist_head) continue;
            __builtin_prefetch(u->hist_head->next);
            cur[n++] = u->hist_head;
            if (n == JR_WALK) {
                snap_history(&s, cur, n);
                n = 0;
            }
        }
    }
    snap_history(&s, cur, n);
    bk_dedup_each(b, snap_dedup, &s);
    for (uint32_t slot = 0; slot < BK_FLOOR_SLOTS; slot++)
        if (b->floors[slot]) snap_put(&s, J_FLOOR, b->floors[slot], &slot, 4);
    for (uint32_t p = 0; p < bk_cluster_pos_count(b); p++)
        if (bk_cluster_pos(b, p)) snap_put(&s, J_CLPOS, bk_cluster_pos(b, p), &p, 4);
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
static uint64_t jr_snapshot_room(broker_t *b)
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
static int jr_compact_instead(broker_t *b)
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
     * to us, so a kill -9 cannot lose them (a reboot loses /dev/shm whole, as SPEC 4 allows). committed
     * only lets the next start tell a cut file from a corrupt one; release keeps the
     * compiler from storing it before the records. */
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
