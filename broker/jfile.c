/* jfile.c - a journal file in /dev/shm grown by fallocate in chunks and mapped MAP_SHARED, so
 * that appends are a memcpy into pages that exist. The broker allocates both files up to
 * the compaction bound at start (journal.c: jr_preallocate); past what is mapped (a file's
 * first lap beyond that) records are written with pwrite, which fills fresh tmpfs pages
 * without page faults, and the file is mapped after. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "jfile.h"
#include "rtdir.h"

static uint64_t chunk_round(uint64_t n)
{
    return (n + JF_CHUNK - 1) / JF_CHUNK * JF_CHUNK;
}

int jf_open(jf_t *f, const char *path, herald_error_t *err)
{
    f->map = NULL;
    f->map_len = f->faulted = f->size = 0;
    snprintf(f->path, sizeof f->path, "%s", path);
    /* /dev/shm is writable by everyone: a file found there is only used when it is ours
     * and private (someone else's could be read, or truncated under our mapping) */
    int rc = 0;
    f->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f->fd < 0 && errno == EEXIST) {
        f->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (f->fd >= 0) rc = rtdir_check_private(f->fd, path, err);
    }
    if (f->fd < 0)
        return herr_set(err, HERR_IO, "journal", "open %s: %s", path,
                        errno == ELOOP ? "refused, it is a symbolic link" : strerror(errno));
    if (rc < 0) goto fail;
    struct stat st;
    if (fstat(f->fd, &st) == 0) f->size = (uint64_t)st.st_size;
    if (f->size != (uint64_t)st.st_size || jf_map_all(f) < 0) {
        rc = herr_set(err, HERR_IO, "journal", "map %s: %s", path, strerror(errno));
        goto fail;
    }
    jf_prefault(f, 0, f->map_len); /* read whole at load anyway */
    return 0;
fail:
    close(f->fd);
    f->fd = -1;
    f->size = 0;
    return rc;
}

int jf_grow(jf_t *f, uint64_t want)
{
    if (want <= f->size) return 0;
    uint64_t size = chunk_round(want);
    struct statvfs sv;
    if (f->reserve && fstatvfs(f->fd, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < size - f->size + f->reserve) {
        f->reserve_hit = true;
        errno = ENOSPC;
        return -1;
    }
    /* tmpfs allocates every page of the range here and undoes it all on ENOSPC */
    if (fallocate(f->fd, 0, (off_t)f->size, (off_t)(size - f->size)) < 0) return -1;
    f->size = size;
    return 0;
}

int jf_write(jf_t *f, uint64_t off, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t w = pwrite(f->fd, b, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        off += (uint64_t)w;
        len -= (size_t)w;
    }
    return 0;
}

int jf_map_all(jf_t *f)
{
    if (f->map_len >= f->size) return 0;
    uint8_t *m;
    if (!f->map)
        m = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
    else
        m = mremap(f->map, f->map_len, f->size, MREMAP_MAYMOVE);
    if (m == MAP_FAILED) return -1;
    f->map = m;
    f->map_len = f->size;
    return 0;
}

void jf_prefault(jf_t *f, uint64_t from, uint64_t upto)
{
    if (upto > f->map_len) upto = f->map_len;
    if (from < f->faulted) from = f->faulted;
    if (upto <= from) return;
    /* Writable: cheaper here than MAP_POPULATE's read faults. Only a speed-up (absent
     * before Linux 5.14), so its result is unused. */
    (void)madvise(f->map + (from & ~4095ull), upto - (from & ~4095ull), MADV_POPULATE_WRITE);
    f->faulted = upto;
}

int jf_shrink(jf_t *f, uint64_t keep)
{
    uint64_t size = chunk_round(keep);
    if (size >= f->size || !size) return 0;
    if (f->map_len > size) {
        uint8_t *m = mremap(f->map, f->map_len, size, 0);
        if (m == MAP_FAILED) return -1;
        f->map = m;
        f->map_len = size;
        if (f->faulted > size) f->faulted = size;
    }
    /* on failure the file merely keeps pages past its size (jf_grow reuses them) */
    f->size = size;
    return ftruncate(f->fd, (off_t)size);
}

int jf_clear(jf_t *f)
{
    if (f->map) munmap(f->map, f->map_len);
    f->map = NULL;
    f->map_len = f->faulted = f->size = 0;
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
    if (jf_clear(f) < 0 || jf_grow(f, JF_HDR) < 0 || jf_map_all(f) < 0) return -1;
    jf_prefault(f, 0, f->map_len);
    jf_header_init(f);
    jf_header_t *h = jf_header(f);
    atomic_store_explicit(&h->committed, JF_HDR, memory_order_relaxed);
    /* after the rest of the header, as in a compaction (see jr_compact) */
    atomic_store_explicit(&h->epoch, epoch, memory_order_release);
    return 0;
}

void jf_close(jf_t *f)
{
    if (f->map) munmap(f->map, f->map_len);
    if (f->fd >= 0) close(f->fd);
    f->map = NULL;
    f->map_len = f->faulted = f->size = 0;
    f->fd = -1;
}
