/* ring.c - the SPSC ring's two ends: the producer (write, publish, wake) and the consumer
 * (read, sleep and wake-up handshake). The memory ordering of each access is documented
 * where it is made; ring.h has the protocol. */
#include <stdint.h>
#include <string.h>

#include "doorbell.h"
#include "ring_int.h"

/* --- producer --- */

#define RING_PF_AHEAD 2048u /* bytes of ring prefetched for writing ahead of the producer */

/* The producer's view of the consumer's head, refreshed (and shown in the header). */
static inline uint64_t producer_reload_head(ring_t *r)
{
    /* pairs with the consumer's release store of head: its reads of that space are done */
    r->head_cache = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    r->hdr->head_cache = r->head_cache;
    return r->head_cache;
}

/* Make room for a record of `need` bytes at wpos (writing a pad record first if it would
 * cross the end). Returns the data offset for the record, or -HERR_NO_ROOM. */
static inline long producer_reserve(ring_t *r, uint64_t need)
{
    uint64_t off = r->wpos & r->mask;
    uint64_t to_end = r->capacity - off;
    uint64_t total = need <= to_end ? need : to_end + need;
    if (r->capacity - (r->wpos - r->head_cache) < total &&
        r->capacity - (r->wpos - producer_reload_head(r)) < total)
        return -HERR_NO_ROOM;
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
    /* Before it fills: a quarter of the ring unread. The cached head is refreshed only when
     * a write runs out of room, so it may lag by most of the ring; look at the real one
     * before ringing on its account (one load, only in this case). */
    if (r->wpos - r->head_cache >= r->capacity / 4 &&
        r->wpos - producer_reload_head(r) >= r->capacity / 4)
        return RING_PUB_WAKE;
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
    return (size_t)(r->capacity - (r->wpos - producer_reload_head(r)));
}

void ring_count_drops(ring_t *r, uint64_t n)
{
    atomic_fetch_add_explicit(&r->hdr->drops, n, memory_order_relaxed);
}

void ring_heartbeat(ring_t *r)
{
    if (r->mode == RING_PRODUCER)
        atomic_store_explicit(&r->hdr->producer_alive_ns, ring_realtime_ns(), memory_order_relaxed);
    else if (r->mode == RING_CONSUMER)
        atomic_store_explicit(&r->hdr->consumer_alive_ns, ring_realtime_ns(), memory_order_relaxed);
}

/* --- consumer --- */
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
