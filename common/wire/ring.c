/* ring.c - the SPSC shared-memory ring: layout checks, attach/create, producer, consumer. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
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

/* Bounds on capacity so that max_record fits its uint32 field. */
#define RING_MAX_CAPACITY (1ull << 34)

struct ring {
    ring_header_t *hdr;
    uint8_t *data;
    size_t map_bytes;
    uint64_t capacity, mask;
    uint32_t max_record;
    ring_mode_t mode;
    /* producer-local: tail including unpublished records, cached head, records written */
    uint64_t wpos, head_cache, written;
    uint64_t pf; /* producer: lines before this position are prefetched for writing */
    /* consumer-local: our head, cached tail, records read */
    uint64_t rpos, tail_cache, read;
    uint8_t *peek_buf; /* max_record bytes, allocated by the first ring_peek */
};

static inline uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static uint64_t now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

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
    h->created_ns = now_realtime_ns();
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
    if (fstat(fd, &st) < 0) {
        rc = herr_set(err, HERR_IO, "shm", "fstat %s: %s", path, strerror(errno));
        goto fail;
    }
    /* A producer that finds an empty object (its predecessor died right after creating it)
     * initialises it as if it had created it. */
    if (mode == RING_PRODUCER && st.st_size == 0) created = true;
    if (created) {
        uint64_t cap = capacity_round(capacity);
        st.st_size = (off_t)(RING_HEADER_BYTES + cap);
        if (ftruncate(fd, st.st_size) < 0) {
            rc = herr_set(err, HERR_IO, "shm", "ftruncate %s: %s", path, strerror(errno));
            goto fail;
        }
        /* Allocate every page now: a full /dev/shm is an error here rather than a SIGBUS at
         * some later write, and the first lap does not allocate pages in the broker's hot
         * path (it still maps each on first touch: prefaulting the producer's mapping with
         * MADV_POPULATE_WRITE made gateway_recovery's kill -9 test fail under load, cause
         * not found). On failure the object (never initialised: no one can use it) is
         * removed. */
        int e = posix_fallocate(fd, 0, st.st_size);
        if (e) {
            rc =
                herr_set(err, HERR_IO, "shm", "ring %s: %s for %lld bytes", path,
                         e == ENOSPC ? "no space in /dev/shm" : strerror(e), (long long)st.st_size);
            shm_unlink(path);
            goto fail;
        }
    } else if ((size_t)st.st_size < RING_HEADER_BYTES) {
        rc = herr_set(err, HERR_CORRUPT, "size", "ring %s: file is %lld bytes, shorter than header",
                      path, (long long)st.st_size);
        goto fail;
    }
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

    ring_header_t *h = r->hdr;
    if (mode == RING_PRODUCER) {
        /* only we write tail; head can only grow towards it while we read it second */
        r->wpos = atomic_load_explicit(&h->tail, memory_order_relaxed);
        /* pairs with the consumer's release store of head */
        r->head_cache = atomic_load_explicit(&h->head, memory_order_acquire);
        rc = positions_validate(r->head_cache, r->wpos, r->capacity, path, err);
        if (rc < 0) goto fail;
        r->written = atomic_load_explicit(&h->records_written, memory_order_relaxed);
        h->head_cache = r->head_cache;
        atomic_store_explicit(&h->producer_pid, (uint32_t)getpid(), memory_order_relaxed);
    } else if (mode == RING_CONSUMER) {
        r->rpos = atomic_load_explicit(&h->head, memory_order_relaxed);
        /* pairs with the producer's release store of tail */
        r->tail_cache = atomic_load_explicit(&h->tail, memory_order_acquire);
        rc = positions_validate(r->rpos, r->tail_cache, r->capacity, path, err);
        if (rc < 0) goto fail;
        r->read = atomic_load_explicit(&h->records_read, memory_order_relaxed);
        h->tail_cache = r->tail_cache;
        /* a dead predecessor may have left them set: sleeping only ever costs a spare
         * wake-up, but its promise to wake by itself is not ours */
        atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
        atomic_store_explicit(&h->wake_by_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&h->consumer_pid, (uint32_t)getpid(), memory_order_relaxed);
    }
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

/* --- producer --- */

#define RING_PF_AHEAD 2048u /* bytes of ring prefetched for writing ahead of the producer */

/* Make room for a record of `need` bytes at wpos (writing a pad record first if it would
 * cross the end). Returns the data offset for the record, or -HERR_NO_ROOM. */
static inline long producer_reserve(ring_t *r, uint64_t need)
{
    uint64_t off = r->wpos & r->mask;
    uint64_t to_end = r->capacity - off;
    uint64_t total = need <= to_end ? need : to_end + need;
    if (r->capacity - (r->wpos - r->head_cache) < total) {
        /* pairs with the consumer's release store of head: its reads of that space are done */
        r->head_cache = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
        r->hdr->head_cache = r->head_cache;
        if (r->capacity - (r->wpos - r->head_cache) < total) return -HERR_NO_ROOM;
    }
    if (need > to_end) {
        uint32_t pad[2] = {(uint32_t)(to_end - RING_REC_HDR), RING_REC_PAD};
        memcpy(r->data + off, pad, sizeof pad);
        r->wpos += to_end;
        off = 0;
    }
    return (long)off;
}

int ring_write2(ring_t *r, uint32_t type, const void *a, uint32_t alen, const void *b,
                uint32_t blen)
{
    uint64_t len = (uint64_t)alen + blen;
    if (type < RING_REC_USER) return -EINVAL;
    if (len > r->max_record) return -HERR_TOO_LARGE;
    uint64_t need = align8(RING_REC_HDR + len);
    long off = producer_reserve(r, need);
    if (off < 0) return (int)off;
    uint8_t *p = r->data + off;
    uint32_t rec[2] = {(uint32_t)len, type};
    memcpy(p, rec, sizeof rec);
    if (alen) memcpy(p + RING_REC_HDR, a, alen);
    if (blen) memcpy(p + RING_REC_HDR + alen, b, blen);
    r->wpos += need;
    r->written++;
    /* The space ahead was last written a lap ago and is out of cache: stores into it would
     * miss, and fill the store buffer. Fetch it for writing a few records early. Only a
     * hint: a line still being read (a nearly full ring) is merely shared for a while. */
    if (r->pf < r->wpos) r->pf = r->wpos & ~(uint64_t)63;
    for (uint64_t upto = r->wpos + RING_PF_AHEAD; r->pf < upto; r->pf += 64)
        __builtin_prefetch(r->data + (r->pf & r->mask), 1);
    return 0;
}

int ring_write(ring_t *r, uint32_t type, const void *data, uint32_t len)
{
    return ring_write2(r, type, data, len, NULL, 0);
}

ring_pub_t ring_publish_due(ring_t *r, uint64_t due_ns)
{
    if (!ring_publish(r)) return RING_PUB_AWAKE;
    ring_header_t *h = r->hdr;
    /* after ring_publish's fence: a consumer that stored a later wake_by_ns before we load it
     * has also loaded our tail (Dekker, see ring.h) */
    uint64_t wake_by = atomic_load_explicit(&h->wake_by_ns, memory_order_relaxed);
    if (!wake_by || due_ns < wake_by) return RING_PUB_WAKE;
    if (r->wpos - r->head_cache >= r->capacity / 4) return RING_PUB_WAKE; /* before it fills */
    return RING_PUB_WAITS;
}

bool ring_publish(ring_t *r)
{
    ring_header_t *h = r->hdr;
    if (r->wpos == atomic_load_explicit(&h->tail, memory_order_relaxed)) return false;
    atomic_store_explicit(&h->records_written, r->written, memory_order_relaxed);
    /* pairs with the consumer's acquire load of tail: our record stores become visible */
    atomic_store_explicit(&h->tail, r->wpos, memory_order_release);
    /* Dekker: tail store above, fence, sleeping load below; pairs with the fence in
     * ring_prepare_sleep (sleeping store, fence, tail load) */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&h->sleeping, memory_order_relaxed) != 0;
}

void ring_wake(ring_t *r)
{
    ring_header_t *h = r->hdr;
    atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
    /* pairs with the acquire load of doorbell in ring_prepare_sleep: a consumer that sees
     * this value also sees sleeping cleared before it sets it again */
    atomic_fetch_add_explicit(&h->doorbell, 1, memory_order_release);
    atomic_fetch_add_explicit(&h->wakeups, 1, memory_order_relaxed);
    doorbell_wake(&h->doorbell);
}

size_t ring_free_bytes(ring_t *r)
{
    /* pairs with the consumer's release store of head */
    r->head_cache = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    r->hdr->head_cache = r->head_cache;
    return (size_t)(r->capacity - (r->wpos - r->head_cache));
}

void ring_count_drops(ring_t *r, uint64_t n)
{
    atomic_fetch_add_explicit(&r->hdr->drops, n, memory_order_relaxed);
}

void ring_heartbeat(ring_t *r)
{
    if (r->mode == RING_PRODUCER)
        atomic_store_explicit(&r->hdr->producer_alive_ns, now_realtime_ns(), memory_order_relaxed);
    else if (r->mode == RING_CONSUMER)
        atomic_store_explicit(&r->hdr->consumer_alive_ns, now_realtime_ns(), memory_order_relaxed);
}

/* --- consumer --- */

/* Decode and check the record header at position pos (< tail). The shared memory is read
 * once through volatile so the checks and the use see the same values. Returns the
 * record's total size, or 0 when the header is invalid. */
static inline uint64_t record_check(const ring_t *r, uint64_t pos, uint64_t tail, uint32_t *len,
                                    uint32_t *type)
{
    uint64_t off = pos & r->mask;
    const volatile uint32_t *w = (const volatile uint32_t *)(r->data + off);
    *len = w[0];
    *type = w[1];
    uint64_t need = align8(RING_REC_HDR + (uint64_t)*len);
    if (*len > r->max_record || need > r->capacity - off || need > tail - pos) return 0;
    if (*type == RING_REC_PAD) return need == r->capacity - off ? need : 0;
    return *type >= RING_REC_USER ? need : 0;
}

/* Load tail (acquire) and check it against our head; corrupt when it is not a position a
 * producer could have published. */
static inline bool consumer_load_tail(ring_t *r)
{
    /* pairs with the producer's release store of tail: records before it are written */
    uint64_t t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
    r->tail_cache = t;
    r->hdr->tail_cache = t;
    return (t & 7) == 0 && t - r->rpos <= r->capacity;
}

static void consumer_commit(ring_t *r)
{
    atomic_store_explicit(&r->hdr->records_read, r->read, memory_order_relaxed);
    /* pairs with the producer's acquire load of head: we are done reading that space */
    atomic_store_explicit(&r->hdr->head, r->rpos, memory_order_release);
}

/* Skip to the current tail after a bad record or position; counts `corrupt`. */
static long consumer_resync(ring_t *r)
{
    /* pairs with the producer's release store of tail */
    uint64_t t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
    r->rpos = t & ~(uint64_t)7;
    r->tail_cache = r->rpos;
    atomic_fetch_add_explicit(&r->hdr->corrupt, 1, memory_order_relaxed);
    consumer_commit(r);
    return -HERR_CORRUPT;
}

long ring_read_batch(ring_t *r, ring_handler_fn fn, void *ctx, size_t max)
{
    if (r->rpos == r->tail_cache && !consumer_load_tail(r)) return consumer_resync(r);
    size_t n = 0;
    while (n < max) {
        if (r->rpos == r->tail_cache) break;
        uint32_t len, type;
        uint64_t need = record_check(r, r->rpos, r->tail_cache, &len, &type);
        if (!need) return consumer_resync(r);
        const uint8_t *payload = r->data + (r->rpos & r->mask) + RING_REC_HDR;
        r->rpos += need;
        if (type == RING_REC_PAD) continue;
        n++;
        r->read++;
        if (fn(type, payload, len, ctx) != 0) break;
    }
    if (n || r->rpos != atomic_load_explicit(&r->hdr->head, memory_order_relaxed))
        consumer_commit(r);
    return (long)n;
}

static int skip_count(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    (void)type, (void)data, (void)len, (void)ctx;
    return 0;
}

void ring_skip_all(ring_t *r)
{
    /* walking (rather than jumping) keeps records_read equal to the records consumed */
    if (!consumer_load_tail(r)) {
        consumer_resync(r);
        return;
    }
    while (r->rpos != r->tail_cache)
        if (ring_read_batch(r, skip_count, NULL, SIZE_MAX) < 0) return;
}

bool ring_prepare_sleep(ring_t *r, uint32_t *doorbell_value)
{
    ring_header_t *h = r->hdr;
    /* pairs with the release increment in ring_wake; read before announcing the sleep so a
     * wake-up after our check changes the value and the futex wait returns at once */
    *doorbell_value = atomic_load_explicit(&h->doorbell, memory_order_acquire);
    atomic_store_explicit(&h->sleeping, 1, memory_order_relaxed);
    /* Dekker: sleeping store above, fence, tail load below; pairs with the fence in
     * ring_publish (tail store, fence, sleeping load) */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&h->tail, memory_order_relaxed) != r->rpos) {
        atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
        return false;
    }
    return true;
}

_Atomic uint32_t *ring_doorbell_word(ring_t *r)
{
    return &r->hdr->doorbell;
}

bool ring_set_wake_by(ring_t *r, uint64_t wake_by_ns)
{
    ring_header_t *h = r->hdr;
    atomic_store_explicit(&h->wake_by_ns, wake_by_ns, memory_order_relaxed);
    /* Dekker: wake_by store above, fence, tail load below; pairs with the fence in
     * ring_publish (tail store, fence, wake_by load in ring_publish_due) */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(&h->tail, memory_order_relaxed) != r->rpos;
}

bool ring_pending(ring_t *r)
{
    /* pairs with the producer's release store of tail (ring_publish) */
    return atomic_load_explicit(&r->hdr->tail, memory_order_acquire) != r->rpos;
}

void ring_end_sleep(ring_t *r)
{
    atomic_store_explicit(&r->hdr->sleeping, 0, memory_order_relaxed);
}

/* --- inspection --- */

/* Head and tail as they were at one instant, for a reader that owns neither: head is read
 * before and after tail, and only an unchanged head (it only grows) proves the pair
 * consistent (head <= tail <= head + capacity). Gives up after a few tries under heavy
 * traffic and returns the last pair read. */
static void positions_snapshot(ring_header_t *h, uint64_t *head, uint64_t *tail)
{
    /* all three pair with the release stores of head (consumer) and tail (producer) */
    uint64_t hd = atomic_load_explicit(&h->head, memory_order_acquire);
    for (int tries = 0; tries < 64; tries++) {
        *tail = atomic_load_explicit(&h->tail, memory_order_acquire);
        *head = atomic_load_explicit(&h->head, memory_order_acquire);
        if (*head == hd) return;
        hd = *head;
    }
}

void ring_stats(ring_t *r, ring_stats_t *s)
{
    ring_header_t *h = r->hdr;
    memset(s, 0, sizeof *s);
    s->capacity = r->capacity;
    s->max_record = r->max_record;
    s->gateway_id = h->gateway_id;
    s->created_ns = h->created_ns;
    s->records_read = atomic_load_explicit(&h->records_read, memory_order_relaxed);
    positions_snapshot(h, &s->head, &s->tail);
    s->records_written = atomic_load_explicit(&h->records_written, memory_order_relaxed);
    s->used_bytes = s->tail >= s->head ? s->tail - s->head : 0;
    s->pending_records =
        s->records_written >= s->records_read ? s->records_written - s->records_read : 0;
    s->drops = atomic_load_explicit(&h->drops, memory_order_relaxed);
    s->corrupt = atomic_load_explicit(&h->corrupt, memory_order_relaxed);
    s->wakeups = atomic_load_explicit(&h->wakeups, memory_order_relaxed);
    s->producer_pid = (pid_t)atomic_load_explicit(&h->producer_pid, memory_order_relaxed);
    s->consumer_pid = (pid_t)atomic_load_explicit(&h->consumer_pid, memory_order_relaxed);
    s->producer_alive_ns = atomic_load_explicit(&h->producer_alive_ns, memory_order_relaxed);
    s->consumer_alive_ns = atomic_load_explicit(&h->consumer_alive_ns, memory_order_relaxed);
    s->sleeping = atomic_load_explicit(&h->sleeping, memory_order_relaxed) != 0;
    s->wake_by_ns = atomic_load_explicit(&h->wake_by_ns, memory_order_relaxed);
}

long ring_peek(ring_t *r, ring_handler_fn fn, void *ctx, size_t max)
{
    ring_header_t *h = r->hdr;
    if (!r->peek_buf && !(r->peek_buf = malloc(r->max_record ? r->max_record : 1)))
        return -HERR_INTERNAL;
    uint64_t pos, tail;
    positions_snapshot(h, &pos, &tail);
    if ((pos | tail) & 7 || tail - pos > r->capacity) return -HERR_CORRUPT;
    size_t n = 0;
    while (n < max && pos != tail) {
        uint32_t len, type;
        uint64_t need = record_check(r, pos, tail, &len, &type);
        if (need && type != RING_REC_PAD)
            memcpy(r->peek_buf, r->data + (pos & r->mask) + RING_REC_HDR, len);
        /* Our reads above must complete before we re-check head (a seqlock-style check):
         * once head has moved past pos the producer may be reusing that space. */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->head, memory_order_relaxed) > pos) break;
        if (!need) return -HERR_CORRUPT;
        pos += need;
        if (type == RING_REC_PAD) continue;
        n++;
        if (fn(type, r->peek_buf, len, ctx) != 0) break;
    }
    return (long)n;
}

long ring_peek_last(ring_t *r, ring_handler_fn fn, void *ctx, size_t max, size_t *first_pending)
{
    ring_header_t *h = r->hdr;
    if (!r->peek_buf && !(r->peek_buf = malloc(r->max_record ? r->max_record : 1)))
        return -HERR_INTERNAL;
    uint64_t head, tail;
    positions_snapshot(h, &head, &tail);
    if ((head | tail) & 7 || tail - head > r->capacity) return -HERR_CORRUPT;
    uint64_t off = tail & r->mask;
    uint64_t start = off ? tail - off : tail >= r->capacity ? tail - r->capacity : 0;
    /* First pass: count the records of the lap, to skip all but the last max. */
    size_t total = 0;
    for (uint64_t pos = start; pos != tail;) {
        uint32_t len, type;
        uint64_t need = record_check(r, pos, tail, &len, &type);
        if (!need) return -HERR_CORRUPT;
        pos += need;
        total += type != RING_REC_PAD;
    }
    size_t skip = total > max ? total - max : 0, i = 0, n = 0;
    *first_pending = SIZE_MAX; /* while visiting: not reached yet */
    bool pending_seen = false;
    for (uint64_t pos = start; pos != tail;) {
        uint32_t len, type;
        uint64_t need = record_check(r, pos, tail, &len, &type);
        bool want = need && type != RING_REC_PAD && i >= skip;
        if (want) memcpy(r->peek_buf, r->data + (pos & r->mask) + RING_REC_HDR, len);
        /* Our reads must complete before we check that the producer has not come round to
         * this space again (a seqlock-style check, as in ring_peek). */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->tail, memory_order_relaxed) > pos + r->capacity) break;
        if (!need) return -HERR_CORRUPT;
        uint64_t at = pos;
        pos += need;
        if (type == RING_REC_PAD) continue;
        if (i++ < skip) continue;
        if (!pending_seen && at >= head) {
            pending_seen = true;
            *first_pending = n;
        }
        n++;
        if (fn(type, r->peek_buf, len, ctx) != 0) break;
    }
    if (!pending_seen) *first_pending = n;
    return (long)n;
}
