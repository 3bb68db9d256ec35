/* journal_int.h - the journal's private parts, shared by journal.c (appends, growth,
 * flush), journal_replay.c (the file format read back at start) and journal_snap.c
 * (snapshots and compaction). Not for other modules: they use journal.h. */
#ifndef HERALD_BK_JOURNAL_INT_H
#define HERALD_BK_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "jfile.h"

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
    uint64_t pf;         /* f[cur] is prefetched for writing up to here (jr_put) */
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

void jr_encode(uint8_t *p, uint64_t epoch, uint16_t type, uint64_t word, const void *data,
               size_t dlen);
uint8_t *jr_spill(bk_journal_t *j, size_t n);
void jr_put(bk_journal_t *j, uint16_t type, uint64_t word, const void *data, size_t dlen);
uint64_t jr_bound(const bk_journal_t *j, uint64_t live);
int jr_mark_end(jf_t *f, uint64_t off);
int jr_start(broker_t *b, bk_journal_t *j);
void jr_compact(broker_t *b);
uint64_t jr_snapshot_room(broker_t *b);
int jr_compact_instead(broker_t *b);

#endif
