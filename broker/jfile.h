/* jfile.h - one journal file: preallocated in chunks, mapped shared, with a fixed header
 * (private to journal.c and jfile.c; the format is described in docs/architecture.md). */
#ifndef HERALD_BROKER_JFILE_H
#define HERALD_BROKER_JFILE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define JF_MAGIC    "HRLDJRN2"
#define JF_MAGIC_V1 "HRLDJRN1" /* the write()-appended format before version 2 */
#define JF_VERSION  2u
#define JF_HDR      64u
/* Growth step: 1024 pages allocated and mapped at once. Fresh pages cost ~4 us each here
 * (allocate, zero, map), so a chunk is a ~4 ms pause every ~16k notifications, and only
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
    uint8_t *map;  /* MAP_SHARED over [0, size); NULL while the file is empty */
    uint64_t size; /* bytes allocated: the file's size */
} jf_t;

/* Open (creating it empty if absent) and map the file at path. Returns 0, or -1 with errno. */
int jf_open(jf_t *f, const char *path);

/* Make the file at least `want` bytes, allocating whole JF_CHUNKs of pages with fallocate
 * (so a full /dev/shm is an error here, never a SIGBUS later) and mapping them prefaulted.
 * Returns 0, or -1 with errno (ENOSPC: /dev/shm is full); the file is unchanged then. */
int jf_grow(jf_t *f, uint64_t want);

/* Give back the pages past `keep` (rounded up to a chunk) when the file is larger.
 * Returns 0, or -1 with errno. */
int jf_shrink(jf_t *f, uint64_t keep);

/* Empty the file (size 0, unmapped). Returns 0, or -1 with errno. */
int jf_clear(jf_t *f);

/* Empty the file and start it again: one chunk, a header of this epoch, no records.
 * Returns 0, or -1 with errno. */
int jf_reset(jf_t *f, uint64_t epoch);

/* Write magic, version and header size (everything but epoch and committed). */
void jf_header_init(jf_t *f);

void jf_close(jf_t *f);

static inline jf_header_t *jf_header(const jf_t *f)
{
    return (jf_header_t *)(void *)f->map;
}

#endif
