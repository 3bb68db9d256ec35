/* ring_inspect.c - reading a ring without owning either end (heraldctl ring): a consistent
 * snapshot of the header, and peeks at records that never move the consumer. */
#include <stdlib.h>
#include <string.h>

#include "ring_int.h"

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
