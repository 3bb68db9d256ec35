/* jfile.h - one journal file: preallocated in chunks, written with pwrite on its first lap
 * and through a shared mapping after, with a fixed header (private to journal.c and
 * jfile.c; the format is described in docs/architecture.md). */
#ifndef HERALD_BROKER_JFILE_H
#define HERALD_BROKER_JFILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define JF_MAGIC       "HRLDJRN2"
#define JF_MAGIC_V1    "HRLDJRN1" /* the write()-appended format before version 2 */
#define JF_VERSION     3u         /* 3: dedup records carry a fingerprint (J_DEDUP_FP) */
#define JF_VERSION_MIN 2u         /* oldest version still loaded */
#define JF_HDR         64u
/* Growth step: 1024 pages allocated by one fallocate, once per ~16k notifications and only
 * until both files have reached their bound: then their pages are reused. */
#define JF_CHUNK (4ull << 20)

/* The first 64 bytes of the file. Only the broker writes it, through its mapping. */
typedef struct {
    char magic[8];              /* JF_MAGIC */
    uint32_t version;           /* JF_VERSION */
    uint32_t header_bytes;      /* JF_HDR; records start here */
    _Atomic uint64_t epoch;     /* seeds every record checksum of this file; a compaction stores it
                             * last, after the snapshot and committed, to make the file current */
    _Atomic uint64_t committed; /* end of the records of the last flushed round */
    uint8_t reserved[32];
} jf_header_t;

_Static_assert(sizeof(jf_header_t) == JF_HDR, "journal header is 64 bytes");
_Static_assert(offsetof(jf_header_t, epoch) == 16, "journal header layout");
_Static_assert(offsetof(jf_header_t, committed) == 24, "journal header layout");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "journal header atomics must be lock-free");

typedef struct {
    int fd; /* -1: not open */
    char path[320];
    uint8_t *map;     /* MAP_SHARED over [0, map_len); NULL while nothing is mapped */
    uint64_t map_len; /* mapped: appends here are a memcpy */
    uint64_t faulted; /* prefaulted (page tables filled) up to here, <= map_len */
    uint64_t size;    /* bytes allocated: the file's size */
    uint64_t reserve; /* jf_grow leaves at least this much of the filesystem free (0: none) */
    bool reserve_hit; /* a growth failed for the reserve (cleared by the caller) */
} jf_t;

/* Open (creating it empty, 0600, if absent) and map the whole file. An existing file is
 * used only when it is a regular file of ours with a private mode (rtdir_check_private);
 * a symbolic link is never followed. Returns 0, or a negative HERR_* with err naming the
 * file (HERR_UNAUTHORIZED for someone else's or a shared file). */
int jf_open(jf_t *f, const char *path, herald_error_t *err);

/* Make the file at least `want` bytes, allocating whole JF_CHUNKs of pages with fallocate
 * (so a full /dev/shm is an error here, never a SIGBUS later). The new pages are not
 * mapped: fresh pages are cheapest filled by jf_write (no zeroing, no page tables).
 * Returns 0, or -1 with errno (ENOSPC: /dev/shm is full, or would have less than
 * f->reserve free: reserve_hit set); the file is unchanged then. */
int jf_grow(jf_t *f, uint64_t want);

/* Write len bytes at off (inside the allocated size) with pwrite. 0, or -1 with errno. */
int jf_write(jf_t *f, uint64_t off, const void *p, size_t len);

/* Map the whole allocated file for the appends of its next lap; jf_prefault fills in its
 * page tables a little at a time. Returns 0, or -1 with errno (the old mapping stays). */
int jf_map_all(jf_t *f);

/* Prefault [from, upto) of the mapping (less what already was), so that appends there do
 * not take a page fault per 4 KiB; called a round ahead of the appends, so there is no
 * burst for a whole file. Pages it skips may fault once when written later. */
void jf_prefault(jf_t *f, uint64_t from, uint64_t upto);

/* Give back the pages past `keep` (rounded up to a chunk) when the file is larger.
 * Returns 0, or -1 with errno. */
int jf_shrink(jf_t *f, uint64_t keep);

/* Empty the file (size 0, unmapped). Returns 0, or -1 with errno. */
int jf_clear(jf_t *f);

/* Empty the file and start it again: one chunk, mapped, a header of this epoch, no records.
 * Returns 0, or -1 with errno. */
int jf_reset(jf_t *f, uint64_t epoch);

/* Write magic, version and header size (everything but epoch and committed); mapped. */
void jf_header_init(jf_t *f);

void jf_close(jf_t *f);

static inline jf_header_t *jf_header(const jf_t *f)
{
    return (jf_header_t *)(void *)f->map;
}

#endif
