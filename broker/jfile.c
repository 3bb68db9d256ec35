/* jfile.c - a journal file in /dev/shm grown by fallocate in chunks and mapped MAP_SHARED, so
 * appending is a memcpy into page-cache pages allocated in bulk ahead of time. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jfile.h"

static uint64_t chunk_round(uint64_t n)
{
    return (n + JF_CHUNK - 1) / JF_CHUNK * JF_CHUNK;
}

/* Map [0, size) of the file, or move the mapping to cover a grown file. The new part is
 * prefaulted writable (cheaper here than MAP_POPULATE's read faults, and than a fault per
 * 4 KiB in the appends). */
static int jf_map(jf_t *f, uint64_t size)
{
    uint8_t *m;
    if (!f->map)
        m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    else
        m = mremap(f->map, f->size, size, MREMAP_MAYMOVE);
    if (m == MAP_FAILED) return -1;
    /* only a speed-up (absent before Linux 5.14): the pages are allocated either way */
    (void)madvise(m + f->size, size - f->size, MADV_POPULATE_WRITE);
    f->map = m;
    f->size = size;
    return 0;
}

int jf_open(jf_t *f, const char *path)
{
    f->map = NULL;
    f->size = 0;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f->fd < 0) return -1;
    struct stat st;
    if (fstat(f->fd, &st) < 0) goto fail;
    if (st.st_size > 0 && jf_map(f, (uint64_t)st.st_size) < 0) goto fail;
    return 0;
fail:;
    int e = errno;
    close(f->fd);
    f->fd = -1;
    errno = e;
    return -1;
}

int jf_grow(jf_t *f, uint64_t want)
{
    if (want <= f->size) return 0;
    uint64_t size = chunk_round(want);
    /* tmpfs allocates every page of the range here and undoes it all on ENOSPC */
    if (fallocate(f->fd, 0, (off_t)f->size, (off_t)(size - f->size)) < 0) return -1;
    /* on failure the file keeps the pages past f->size; the next grow maps them */
    return jf_map(f, size);
}

int jf_shrink(jf_t *f, uint64_t keep)
{
    uint64_t size = chunk_round(keep);
    if (size >= f->size || !size) return 0;
    uint8_t *m = mremap(f->map, f->size, size, 0);
    if (m == MAP_FAILED) return -1;
    f->map = m;
    f->size = size;
    /* on failure the file merely keeps pages past the mapping (jf_grow reuses them) */
    return ftruncate(f->fd, (off_t)size);
}

int jf_clear(jf_t *f)
{
    if (f->map) munmap(f->map, f->size);
    f->map = NULL;
    f->size = 0;
    return ftruncate(f->fd, 0);
}

void jf_header_init(jf_t *f)
{
    jf_header_t *h = jf_header(f);
    memcpy(h->magic, JF_MAGIC, 8);
    h->version = JF_VERSION;
    h->header_bytes = JF_HDR;
}

int jf_reset(jf_t *f, uint64_t epoch)
{
    if (jf_clear(f) < 0 || jf_grow(f, JF_HDR) < 0) return -1;
    jf_header_init(f);
    jf_header_t *h = jf_header(f);
    atomic_store_explicit(&h->committed, JF_HDR, memory_order_relaxed);
    /* after the rest of the header, as in a compaction (see jr_compact) */
    atomic_store_explicit(&h->epoch, epoch, memory_order_release);
    return 0;
}

void jf_close(jf_t *f)
{
    if (f->map) munmap(f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    f->map = NULL;
    f->size = 0;
    f->fd = -1;
}
