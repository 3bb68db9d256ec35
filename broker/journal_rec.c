/* journal_rec.c - the journal's records: encoding, appending into the mapping or the spill
 * buffer, the end mark, the compaction bound. Used by journal.c, journal_replay.c and
 * journal_snap.c; calls none of them. */
#include <stdlib.h>
#include <string.h>

#include "journal_int.h"
#include "jsum.h"

/* Encode a record at p (JR_REC_HDR + padded payload bytes). The checksum is taken from the
 * source, so the file is only written. The header is stored last, after a compiler fence: a
 * broker killed mid-record leaves the zero end mark at p, not a torn record (x86 and a kill
 * -9 keep program order; only the compiler could reorder). */
void jr_encode(uint8_t *p, uint64_t epoch, uint16_t type, uint64_t word, const void *data,
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
uint8_t *jr_spill(bk_journal_t *j, size_t n)
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

#define JR_PF_AHEAD 2048u /* bytes of the journal prefetched for writing ahead of jr_put */

/* Append a record of the current epoch: into the mapping while it has room (the end mark
 * after it first), else into spill (a file's first lap), keeping file order: spill is only
 * ever behind what is in the file. */
void jr_put(bk_journal_t *j, uint16_t type, uint64_t word, const void *data, size_t dlen)
{
    size_t n = JR_REC_HDR + jr_padded(8 + dlen);
    uint8_t *p;
    if (!j->spill_len && j->used + n + JR_REC_HDR <= j->room) {
        uint8_t *map = j->f[j->cur].map;
        p = map + j->used;
        memset(p + n, 0, JR_REC_HDR);
        j->used += n;
        /* Space last written a journal lap ago, or never: fetch the lines 2 KiB ahead for
         * writing now, as the ring does, or each record's stores stall on a cold line
         * (a few per cent of the broker's CPU at one notification per request). */
        if (j->pf < j->used || j->pf > j->room) j->pf = j->used & ~(uint64_t)63;
        uint64_t upto = j->used + JR_PF_AHEAD < j->room ? j->used + JR_PF_AHEAD : j->room;
        for (; j->pf < upto; j->pf += 64)
            __builtin_prefetch(map + j->pf, 1);
    } else {
        p = jr_spill(j, n);
    }
    jr_encode(p, j->epoch, type, word, data, dlen);
}

uint64_t jr_bound(const bk_journal_t *j, uint64_t live)
{
    return j->min_bound > 4 * live ? j->min_bound : 4 * live;
}

/* Write an end mark (a zero record header) at off. 0, or -1 with errno. */
int jr_mark_end(jf_t *f, uint64_t off)
{
    static const uint8_t zero[JR_REC_HDR];
    if (jf_grow(f, off + JR_REC_HDR) < 0) return -1;
    if (off + JR_REC_HDR <= f->map_len) {
        memset(f->map + off, 0, JR_REC_HDR);
        return 0;
    }
    return jf_write(f, off, zero, JR_REC_HDR);
}
