/* ring_shm.c - the ring as a shared-memory object: its fixed header layout, names,
 * create/attach with validation, close and unlink. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ring_int.h"
#include "rtdir.h"

/* The header is a file format: every offset in ring.h's table is fixed here. */
_Static_assert(offsetof(ring_header_t, magic) == 0, "magic");
_Static_assert(offsetof(ring_header_t, version) == 8, "version");
_Static_assert(offsetof(ring_header_t, header_bytes) == 12, "header_bytes");
_Static_assert(offsetof(ring_header_t, capacity) == 16, "capacity");
_Static_assert(offsetof(ring_header_t, max_record) == 24, "max_record");
_Static_assert(offsetof(ring_header_t, gateway_id) == 28, "gateway_id");
_Static_assert(offsetof(ring_header_t, created_ns) == 32, "created_ns");
_Static_assert(offsetof(ring_header_t, ready) == 40, "ready");
_Static_assert(offsetof(ring_header_t, tail) == 128, "tail");
_Static_assert(offsetof(ring_header_t, head_cache) == 136, "head_cache");
_Static_assert(offsetof(ring_header_t, records_written) == 144, "records_written");
_Static_assert(offsetof(ring_header_t, drops) == 152, "drops");
_Static_assert(offsetof(ring_header_t, producer_pid) == 160, "producer_pid");
_Static_assert(offsetof(ring_header_t, producer_alive_ns) == 168, "producer_alive_ns");
_Static_assert(offsetof(ring_header_t, head) == 256, "head");
_Static_assert(offsetof(ring_header_t, tail_cache) == 264, "tail_cache");
_Static_assert(offsetof(ring_header_t, records_read) == 272, "records_read");
_Static_assert(offsetof(ring_header_t, corrupt) == 280, "corrupt");
_Static_assert(offsetof(ring_header_t, consumer_pid) == 288, "consumer_pid");
_Static_assert(offsetof(ring_header_t, consumer_alive_ns) == 296, "consumer_alive_ns");
_Static_assert(offsetof(ring_header_t, sleeping) == 384, "sleeping");
_Static_assert(offsetof(ring_header_t, doorbell) == 388, "doorbell");
_Static_assert(offsetof(ring_header_t, wakeups) == 392, "wakeups");
_Static_assert(offsetof(ring_header_t, wake_by_ns) == 400, "wake_by_ns");
_Static_assert(sizeof(ring_header_t) <= RING_HEADER_BYTES, "header fits its page");

/* Two processes share these atomics: an atomic emulated with a lock would be per-process. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(long) == 8, "uint64_t atomics are long-sized");
void ring_name(char *out, size_t outlen, const char *prefix, unsigned gateway_id)
{
    snprintf(out, outlen, "%s.gw%u.ring", prefix, gateway_id);
}

static void shm_path(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s%s", name[0] == '/' ? "" : "/", name);
}

/* Check the identity line and the file size of a mapped ring. Reports the first field
 * that does not match. */
static int header_validate(const ring_header_t *h, size_t file_bytes, const char *name,
                           herald_error_t *err)
{
    if (h->magic != RING_MAGIC)
        return herr_set(err, HERR_CORRUPT, "magic", "ring %s: bad magic 0x%016llx", name,
                        (unsigned long long)h->magic);
    /* pairs with the creator's release store of ready after filling the identity line */
    if (atomic_load_explicit(&h->ready, memory_order_acquire) != 1)
        return herr_set(err, HERR_CORRUPT, "ready", "ring %s: header not initialised (ready=0)",
                        name);
    if (h->version != RING_VERSION)
        return herr_set(err, HERR_CORRUPT, "version", "ring %s: version %u, expected %u", name,
                        h->version, RING_VERSION);
    if (h->header_bytes != RING_HEADER_BYTES)
        return herr_set(err, HERR_CORRUPT, "header_bytes", "ring %s: header_bytes %u, expected %u",
                        name, h->header_bytes, RING_HEADER_BYTES);
    uint64_t cap = h->capacity;
    if (cap < RING_MIN_CAPACITY || cap > RING_MAX_CAPACITY || (cap & (cap - 1)) != 0)
        return herr_set(err, HERR_CORRUPT, "capacity",
                        "ring %s: capacity %llu is not a power of two in [%u, %llu]", name,
                        (unsigned long long)cap, RING_MIN_CAPACITY, RING_MAX_CAPACITY);
    if (h->max_record != cap / 8)
        return herr_set(err, HERR_CORRUPT, "max_record", "ring %s: max_record %u, expected %llu",
                        name, h->max_record, (unsigned long long)(cap / 8));
    if (file_bytes != RING_HEADER_BYTES + cap)
        return herr_set(err, HERR_CORRUPT, "size",
                        "ring %s: file is %zu bytes, header + capacity is %llu", name, file_bytes,
                        (unsigned long long)(RING_HEADER_BYTES + cap));
    return 0;
}

/* Positions must be 8-aligned with 0 <= tail - head <= capacity. */
static int positions_validate(uint64_t head, uint64_t tail, uint64_t cap, const char *name,
                              herald_error_t *err)
{
    if ((head | tail) & 7 || tail - head > cap)
        return herr_set(err, HERR_CORRUPT, "tail", "ring %s: head %llu / tail %llu inconsistent",
                        name, (unsigned long long)head, (unsigned long long)tail);
    return 0;
}

/* Fill a fresh (zeroed) header; ready is stored last with release. */
static void header_init(ring_header_t *h, uint64_t cap, unsigned gateway_id)
{
    h->magic = RING_MAGIC;
    h->version = RING_VERSION;
    h->header_bytes = RING_HEADER_BYTES;
    h->capacity = cap;
    h->max_record = (uint32_t)(cap / 8);
    h->gateway_id = gateway_id;
    h->created_ns = ring_realtime_ns();
    /* pairs with the acquire load of ready in header_validate (any attaching process) */
    atomic_store_explicit(&h->ready, 1, memory_order_release);
}

static uint64_t capacity_round(size_t want)
{
    uint64_t cap = RING_MIN_CAPACITY;
    while (cap < want && cap < RING_MAX_CAPACITY)
        cap <<= 1;
    return cap;
}

/* Open (or, for the producer, create) the shm object. Sets *created when we made it. An
 * object that was already there is only used read-write when it is ours and private
 * (/dev/shm is writable by everyone: anyone could have made it first, to read or forge the
 * records or truncate it under us); read-only inspection takes any. */
static int shm_open_role(const char *path, ring_mode_t mode, bool *created, herald_error_t *err)
{
    *created = false;
    if (mode == RING_PRODUCER) {
        int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            *created = true;
            return fd;
        }
        if (errno != EEXIST)
            return herr_set(err, HERR_IO, "shm", "shm_open %s: %s", path, strerror(errno));
    }
    int fd = shm_open(path, (mode == RING_INSPECT ? O_RDONLY : O_RDWR) | O_NOFOLLOW, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return herr_set(err, HERR_NOT_FOUND, "shm", "ring %s does not exist", path);
        return herr_set(err, HERR_IO, "shm", "shm_open %s: %s", path, strerror(errno));
    }
    char what[300];
    snprintf(what, sizeof what, "ring /dev/shm%s", path);
    int rc = mode == RING_INSPECT ? 0 : rtdir_check_private(fd, what, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* Give the object at fd its size: a new one (or, for a producer, an empty one its
 * predecessor left right after creating it) gets the header and capacity (rounded up to a
 * power of two), every page allocated; one that was there must hold a header. st holds
 * the object's size after; *created says whether it is to be initialised. */
static int ring_size_object(int fd, const char *path, ring_mode_t mode, size_t capacity,
                            bool *created, struct stat *st, herald_error_t *err)
{
    if (fstat(fd, st) < 0)
        return herr_set(err, HERR_IO, "shm", "fstat %s: %s", path, strerror(errno));
    if (mode == RING_PRODUCER && st->st_size == 0) *created = true;
    if (*created) {
        uint64_t cap = capacity_round(capacity);
        st->st_size = (off_t)(RING_HEADER_BYTES + cap);
        if (ftruncate(fd, st->st_size) < 0)
            return herr_set(err, HERR_IO, "shm", "ftruncate %s: %s", path, strerror(errno));
        /* Allocate every page now: a full /dev/shm is an error here rather than a SIGBUS at
         * some later write, and the first lap does not allocate pages in the broker's hot
         * path (it still maps each on first touch: prefaulting the producer's mapping with
         * MADV_POPULATE_WRITE made gateway_recovery's kill -9 test fail under load, cause
         * not found). On failure the object (never initialised: no one can use it) is
         * removed. */
        int e = posix_fallocate(fd, 0, st->st_size);
        if (e) {
            int rc = herr_set(err, HERR_IO, "shm", "ring %s: %s for %lld bytes", path,
                              e == ENOSPC ? "no space in /dev/shm" : strerror(e),
                              (long long)st->st_size);
            shm_unlink(path);
            return rc;
        }
    } else if ((size_t)st->st_size < RING_HEADER_BYTES) {
        return herr_set(err, HERR_CORRUPT, "size",
                        "ring %s: file is %lld bytes, shorter than header", path,
                        (long long)st->st_size);
    }
    return 0;
}

/* Take up the positions a producer or consumer continues from (checked against the
 * capacity) and record our pid; an inspector takes nothing. */
static int ring_take_positions(ring_t *r, ring_mode_t mode, const char *path, herald_error_t *err)
{
    int rc;
    ring_header_t *h = r->hdr;
    if (mode == RING_PRODUCER) {
        /* only we write tail; head can only grow towards it while we read it second */
        r->wpos = atomic_load_explicit(&h->tail, memory_order_relaxed);
        /* pairs with the consumer's release store of head */
        r->head_cache = atomic_load_explicit(&h->head, memory_order_acquire);
        rc = positions_validate(r->head_cache, r->wpos, r->capacity, path, err);
        if (rc < 0) return rc;
        r->written = atomic_load_explicit(&h->records_written, memory_order_relaxed);
        h->head_cache = r->head_cache;
        atomic_store_explicit(&h->producer_pid, (uint32_t)getpid(), memory_order_relaxed);
    } else if (mode == RING_CONSUMER) {
        r->rpos = atomic_load_explicit(&h->head, memory_order_relaxed);
        /* pairs with the producer's release store of tail */
        r->tail_cache = atomic_load_explicit(&h->tail, memory_order_acquire);
        rc = positions_validate(r->rpos, r->tail_cache, r->capacity, path, err);
        if (rc < 0) return rc;
        r->read = atomic_load_explicit(&h->records_read, memory_order_relaxed);
        h->tail_cache = r->tail_cache;
        /* a dead predecessor may have left them set: sleeping only ever costs a spare
         * wake-up, but its promise to wake by itself is not ours */
        atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
        atomic_store_explicit(&h->wake_by_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&h->consumer_pid, (uint32_t)getpid(), memory_order_relaxed);
    }
    return 0;
}

int ring_open(ring_t **out, const char *name, ring_mode_t mode, size_t capacity,
              unsigned gateway_id, herald_error_t *err)
{
    char path[256];
    shm_path(path, sizeof path, name);
    *out = NULL;
    ring_t *r = calloc(1, sizeof *r);
    if (!r) return herr_set(err, HERR_INTERNAL, "ring", "out of memory");
    r->mode = mode;
    bool created;
    int rc;
    int fd = shm_open_role(path, mode, &created, err);
    if (fd < 0) {
        rc = fd;
        goto fail;
    }
    struct stat st;
    rc = ring_size_object(fd, path, mode, capacity, &created, &st, err);
    if (rc < 0) goto fail;
    int prot = mode == RING_INSPECT ? PROT_READ : PROT_READ | PROT_WRITE;
    void *map = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = herr_set(err, HERR_IO, "shm", "mmap %s: %s", path, strerror(errno));
        goto fail;
    }
    r->hdr = map;
    r->map_bytes = (size_t)st.st_size;
    if (created) header_init(r->hdr, (uint64_t)st.st_size - RING_HEADER_BYTES, gateway_id);
    rc = header_validate(r->hdr, r->map_bytes, path, err);
    if (rc < 0) goto fail;
    /* From the validated mapping size, not from the header again: another process could
     * change the header after our check, never our mapping. */
    r->capacity = r->map_bytes - RING_HEADER_BYTES;
    r->mask = r->capacity - 1;
    r->max_record = (uint32_t)(r->capacity / 8);
    r->data = (uint8_t *)map + RING_HEADER_BYTES;

    rc = ring_take_positions(r, mode, path, err);
    if (rc < 0) goto fail;
    close(fd);
    ring_heartbeat(r);
    *out = r;
    return 0;
fail:
    if (r->hdr) munmap(r->hdr, r->map_bytes);
    if (fd >= 0) close(fd);
    free(r);
    return rc;
}

void ring_close(ring_t *r)
{
    if (!r) return;
    uint32_t me = (uint32_t)getpid();
    /* only clear the pid if a successor has not already taken the role */
    if (r->mode == RING_PRODUCER)
        atomic_compare_exchange_strong_explicit(&r->hdr->producer_pid, &me, 0, memory_order_relaxed,
                                                memory_order_relaxed);
    else if (r->mode == RING_CONSUMER)
        atomic_compare_exchange_strong_explicit(&r->hdr->consumer_pid, &me, 0, memory_order_relaxed,
                                                memory_order_relaxed);
    munmap(r->hdr, r->map_bytes);
    free(r->peek_buf);
    free(r);
}

/* Returns 0 or -errno (ENOENT when there is no such ring). */
int ring_unlink(const char *name)
{
    char path[256];
    shm_path(path, sizeof path, name);
    return shm_unlink(path) < 0 ? -errno : 0;
}

ring_header_t *ring_header(ring_t *r)
{
    return r->hdr;
}

size_t ring_max_record(const ring_t *r)
{
    return r->max_record;
}
