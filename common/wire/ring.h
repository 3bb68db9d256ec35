/* ring.h - the broker -> gateway single-producer single-consumer ring in POSIX shared memory.
 *
 * Object: /dev/shm/<prefix>.gw<ID>.ring, created by the producer (broker). Layout (all
 * integers little-endian host order, this machine only):
 *
 *   offset  size  field                 written by
 *   ---- line 0: identity (immutable once `ready` is set) ----
 *   0       8     magic  RING_MAGIC      creator
 *   8       4     version RING_VERSION   creator
 *   12      4     header_bytes (4096)    creator
 *   16      8     capacity (data bytes, power of two)   creator
 *   24      4     max_record (capacity / 8)             creator
 *   28      4     gateway_id                            creator
 *   32      8     created_ns                            creator
 *   40      4     ready (1 when the header is valid; release-stored last)   creator
 *   ---- line 128: producer ----
 *   128     8     tail: bytes ever written (published with release)          producer
 *   136     8     head_cache: producer's last seen head (producer-private)   producer
 *   144     8     records_written                                            producer
 *   152     8     drops (records the producer refused: ring full, counted by the broker) producer
 *   160     4     producer_pid                                               producer
 *   168     8     producer_alive_ns (CLOCK_REALTIME, refreshed ~1/s)         producer
 *   ---- line 256: consumer ----
 *   256     8     head: bytes ever consumed (published with release)         consumer
 *   264     8     tail_cache: consumer's last seen tail (consumer-private)   consumer
 *   272     8     records_read                                               consumer
 *   280     8     corrupt: records the consumer rejected as corrupt          consumer
 *   288     4     consumer_pid                                               consumer
 *   296     8     consumer_alive_ns                                          consumer
 *   ---- line 384: doorbell ----
 *   384     4     sleeping: 1 = consumer is about to wait on `doorbell`       consumer sets, producer clears
 *   388     4     doorbell: futex word, incremented by the producer on wake   producer
 *   392     8     wakeups: doorbell rings                                     producer
 *   400     8     wake_by_ns: CLOCK_MONOTONIC time by which the sleeping consumer wakes on
 *                 its own (its timer); 0 = no promise, ring for every record  consumer
 *   4096    capacity   data
 *
 * Records: 8-byte aligned, header {uint32 length (payload bytes), uint32 type} then the
 * payload, padded to 8. A record never wraps: when it does not fit before the end of the
 * data region, the producer writes a RING_REC_PAD record covering the rest and starts at
 * offset 0. Positions are ever-growing 64-bit byte counters; offset = pos & (capacity-1).
 *
 * Ordering: the producer writes records with plain stores and then publishes `tail` with a
 * release store; the consumer loads `tail` with acquire before reading records (pairs).
 * The consumer publishes `head` with release after it has finished reading; the producer
 * loads `head` with acquire before reusing space (pairs). The sleep handshake is a Dekker
 * pattern: the consumer stores sleeping=1, then a seq_cst fence, then re-reads tail; the
 * producer stores tail, then a seq_cst fence, then reads sleeping. At least one of them
 * sees the other's store, so a wake-up is never lost.
 *
 * Deadlines (ring_publish_due): a consumer that will wake by itself at wake_by_ns need not
 * be woken for records that may wait until then (the gateway's P1..P3 batches: due at their
 * flush deadline). The producer rings only for a round holding a record due before
 * wake_by_ns, or when the ring is a quarter full. The consumer stores wake_by_ns, then a
 * seq_cst fence, then loads tail; the producer stores tail, fence, loads wake_by_ns (the same
 * Dekker pairing): a consumer that moves wake_by_ns sees every record the producer decided
 * not to ring for under the old value.
 */
#ifndef HERALD_RING_H
#define HERALD_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define RING_MAGIC        0x474e4952444c5248ull /* "HRLDRING" */
#define RING_VERSION      1u
#define RING_HEADER_BYTES 4096u
#define RING_REC_HDR      8u
#define RING_MIN_CAPACITY 4096u

/* Record types. 0 is reserved (never valid), so a zeroed region reads as corrupt. */
enum {
    RING_REC_PAD = 1,  /* filler up to the end of the data region */
    RING_REC_USER = 16 /* first type available to users of the ring (see proto.h) */
};

typedef struct ring_header {
    /* identity */
    uint64_t magic;
    uint32_t version;
    uint32_t header_bytes;
    uint64_t capacity;
    uint32_t max_record;
    uint32_t gateway_id;
    uint64_t created_ns;
    _Atomic uint32_t ready;
    uint8_t pad0[128 - 44];
    /* producer line */
    _Atomic uint64_t tail;
    uint64_t head_cache;
    _Atomic uint64_t records_written;
    _Atomic uint64_t drops;
    _Atomic uint32_t producer_pid;
    uint32_t pad1;
    _Atomic uint64_t producer_alive_ns;
    uint8_t pad2[128 - 48];
    /* consumer line */
    _Atomic uint64_t head;
    uint64_t tail_cache;
    _Atomic uint64_t records_read;
    _Atomic uint64_t corrupt;
    _Atomic uint32_t consumer_pid;
    uint32_t pad3;
    _Atomic uint64_t consumer_alive_ns;
    uint8_t pad4[128 - 48];
    /* doorbell line */
    _Atomic uint32_t sleeping;
    _Atomic uint32_t doorbell;
    _Atomic uint64_t wakeups;
    _Atomic uint64_t wake_by_ns;
} ring_header_t;

typedef enum {
    RING_PRODUCER, /* create if absent (or re-attach to a valid one), read-write */
    RING_CONSUMER, /* attach to an existing valid ring, read-write */
    RING_INSPECT,  /* attach read-only (PROT_READ); never writes a byte */
} ring_mode_t;

typedef struct ring ring_t;

/* Snapshot of a ring's header for tools (values may be mutually slightly stale). */
typedef struct {
    uint64_t capacity, max_record, gateway_id, created_ns;
    uint64_t tail, head, used_bytes;
    uint64_t records_written, records_read, pending_records, drops, corrupt, wakeups;
    pid_t producer_pid, consumer_pid;
    uint64_t producer_alive_ns, consumer_alive_ns;
    uint64_t wake_by_ns;
    bool sleeping;
} ring_stats_t;

/* Name of gateway id's ring: "<prefix>.gw<id>.ring" (no leading slash) into out. */
void ring_name(char *out, size_t outlen, const char *prefix, unsigned gateway_id);

/* Open a ring by shm name (as from ring_name). capacity is used only when creating
 * (rounded up to a power of two, >= RING_MIN_CAPACITY). Fails with HERR_CORRUPT naming
 * the field when magic, version, header size or capacity do not match; HERR_NOT_FOUND
 * when a consumer/inspector finds no object; HERR_IO on system errors, among them "no
 * space" when /dev/shm cannot hold a new ring (its pages are all allocated at creation).
 * Sets the producer/consumer pid in the header for those roles. */
int ring_open(ring_t **out, const char *name, ring_mode_t mode, size_t capacity,
              unsigned gateway_id, herald_error_t *err);

/* Unmap and free; clears our pid in the header (not for INSPECT). Leaves the shm object. */
void ring_close(ring_t *r);

/* Remove the shm object by name (the broker's/tests' clean-up). */
int ring_unlink(const char *name);

ring_header_t *ring_header(ring_t *r);
size_t ring_max_record(const ring_t *r);

/* --- producer --- */

/* Write one record (type >= RING_REC_USER) without publishing it. Returns 0, or
 * -HERR_NO_ROOM when it does not fit now (the caller keeps it in its backlog; not counted
 * here), or -HERR_TOO_LARGE when len > max_record. */
int ring_write(ring_t *r, uint32_t type, const void *data, uint32_t len);

/* Write a record from two parts (header + body) without publishing. Same returns. */
int ring_write2(ring_t *r, uint32_t type, const void *a, uint32_t alen, const void *b,
                uint32_t blen);

/* Publish all written records (one release store). Returns true if the consumer had said
 * it is going to sleep; the caller must then call ring_wake (possibly after more writes). */
bool ring_publish(ring_t *r);

/* Publish like ring_publish, for a round whose most urgent record is due at due_ns
 * (CLOCK_MONOTONIC; 0 = at once). RING_PUB_WAKE: ring the doorbell (the consumer sleeps and
 * promised nothing, or due_ns is before its wake_by_ns, or the ring is a quarter full);
 * RING_PUB_WAITS: the consumer sleeps and will read the records by itself at its wake_by_ns;
 * RING_PUB_AWAKE: nothing was published, or the consumer is awake and will read them. */
typedef enum { RING_PUB_AWAKE, RING_PUB_WAKE, RING_PUB_WAITS } ring_pub_t;
ring_pub_t ring_publish_due(ring_t *r, uint64_t due_ns);
/* Ring the doorbell: clears `sleeping`, bumps the futex word, FUTEX_WAKE (shared). */
void ring_wake(ring_t *r);

/* Bytes free for the producer right now (re-reads head). */
size_t ring_free_bytes(ring_t *r);

/* Add n to the header's drop counter (the broker counts per-gateway drops here too). */
void ring_count_drops(ring_t *r, uint64_t n);

/* Refresh producer_alive_ns / consumer_alive_ns (per the role opened). */
void ring_heartbeat(ring_t *r);

/* --- consumer --- */

typedef int (*ring_handler_fn)(uint32_t type, const uint8_t *data, uint32_t len, void *ctx);

/* Read up to max records (skipping padding), calling fn for each; publishes head once at
 * the end (and after fn returns non-zero, which stops the batch after that record).
 * Returns records delivered (>= 0), or -HERR_CORRUPT when a record header is invalid
 * (length > max_record, type 0, crossing the end): the consumer then skips to the
 * current tail, counts `corrupt`, and the caller should log it and resynchronise. */
long ring_read_batch(ring_t *r, ring_handler_fn fn, void *ctx, size_t max);

/* Discard everything pending (head = tail). Used by a gateway starting from a clean state. */
void ring_skip_all(ring_t *r);

/* Announce the consumer is about to wait. Returns true if the ring is still empty after the
 * handshake (the caller may now wait on the doorbell word, see ring_doorbell_word), or
 * false if records arrived (sleeping was cleared again; read instead). */
bool ring_prepare_sleep(ring_t *r, uint32_t *doorbell_value);

/* The futex word consumers wait on (FUTEX_WAIT with the value from ring_prepare_sleep). */
_Atomic uint32_t *ring_doorbell_word(ring_t *r);

/* The consumer will wake by itself at wake_by_ns (0 = no promise): set before
 * ring_prepare_sleep, or while asleep when its timer moves. Returns true if records are
 * pending (they may not have been rung for: read them). */
bool ring_set_wake_by(ring_t *r, uint64_t wake_by_ns);
/* True when records are waiting to be read (one acquire load: for polling). */
bool ring_pending(ring_t *r);
/* Clear the consumer's sleeping flag after a wake-up. */
void ring_end_sleep(ring_t *r);

/* --- inspection (any mode, including RING_INSPECT) --- */

void ring_stats(ring_t *r, ring_stats_t *out);

/* Visit up to max pending records from head without consuming them (read-only). Records
 * the producer overwrites while we read are detected (head moved) and the visit stops.
 * Returns records visited, or -HERR_CORRUPT. */
long ring_peek(ring_t *r, ring_handler_fn fn, void *ctx, size_t max);

/* Visit the last (up to) max records written since the ring last wrapped, read or not,
 * oldest first, without consuming them (read-only). Only the current lap can be walked:
 * records never straddle the end of the data region, so its start is a record boundary,
 * while the older records behind it have no known boundary. *first_pending is set to the
 * index (in visiting order) of the first record the consumer has not read yet (= visited
 * when none is pending; SIZE_MAX while the visit has not reached it, so fn may compare its
 * own index against it). Stops where the producer overwrites what we read. Returns records
 * visited, or -HERR_CORRUPT. */
long ring_peek_last(ring_t *r, ring_handler_fn fn, void *ctx, size_t max, size_t *first_pending);

#endif
