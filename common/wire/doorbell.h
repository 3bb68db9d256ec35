/* doorbell.h - a ring consumer sleeps on the ring's futex word via io_uring; the producer wakes it.
 *
 * The word is `doorbell` in the ring header (ring.h); the producer bumps it and calls
 * doorbell_wake (a shared, not private, FUTEX_WAKE: the waiter is another process).
 *
 * The consumer waits without blocking its thread, through the io_uring it already runs.
 * doorbell_open picks one of two mechanisms by probing, once:
 *   DOORBELL_URING_FUTEX  IORING_OP_FUTEX_WAIT (Linux >= 6.7): the wait itself is an SQE
 *                         and completes when the word is woken or no longer holds the
 *                         expected value. Chosen when a probe (a wait for a value a
 *                         scratch word does not hold, on a scratch io_uring) completes
 *                         with -EAGAIN; kernels without the opcode answer -EINVAL.
 *   DOORBELL_THREAD       otherwise: a helper thread blocks in futex(FUTEX_WAIT) and writes
 *                         an eventfd; the SQE is a read of that eventfd.
 * The environment variable HERALD_DOORBELL=thread forces the fallback (tests use it).
 * Either way one armed wait costs one SQE and one CQE, and nothing runs while the ring is
 * idle (the fallback thread sleeps in the kernel).
 *
 * Use (consumer):
 *   ring_read_batch() returned 0  ->  doorbell_arm(d, TAG)
 *        1: wait SQE submitted; when a CQE with TAG arrives call doorbell_complete(d, res)
 *           and read the ring again
 *        0: records arrived meanwhile; read the ring again
 */
#ifndef HERALD_DOORBELL_H
#define HERALD_DOORBELL_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"

typedef enum {
    DOORBELL_URING_FUTEX, /* IORING_OP_FUTEX_WAIT on the ring word */
    DOORBELL_THREAD,      /* helper thread in FUTEX_WAIT + eventfd read SQE */
} doorbell_kind_t;

typedef struct doorbell {
    doorbell_kind_t kind;
    struct io_uring *uring; /* the caller's; we only add SQEs to it */
    ring_t *ring;
    _Atomic uint32_t *word; /* ring_doorbell_word(ring) */
    bool armed;             /* a wait SQE is in flight (cleared by doorbell_complete) */
    uint64_t user_data;     /* tag of the armed SQE */
    /* DOORBELL_THREAD only */
    int efd;
    uint64_t efd_buf; /* target of the eventfd read SQE */
    pthread_t thread;
    bool thread_started;
    _Atomic uint32_t ctl;  /* bumped by arm/close; the thread sleeps on it (private futex) */
    _Atomic uint32_t want; /* doorbell value the thread waits to change */
    _Atomic uint32_t stop; /* set by doorbell_close */
    _Atomic uint32_t done; /* set by the thread as it exits */
} doorbell_t;

/* Wake every waiter on a shared futex word (the producer side, used by ring_wake). */
void doorbell_wake(_Atomic uint32_t *word);

/* Block the calling thread until *word != expected or a wake-up, at most timeout_ms
 * (< 0: no limit). Returns 0 on wake/changed value, -ETIMEDOUT, or -errno. For consumers
 * without an io_uring (tools, benchmarks) and for the fallback thread. */
int doorbell_wait(_Atomic uint32_t *word, uint32_t expected, int timeout_ms);

/* Probe the mechanism and prepare d for ring r's consumer on the caller's io_uring.
 * Returns 0 or -errno (eventfd/thread creation failed). */
int doorbell_open(doorbell_t *d, struct io_uring *uring, ring_t *r);

/* If the ring is still empty after the sleep handshake (ring_prepare_sleep), submit the
 * wait SQE tagged user_data and return 1; return 0 when records arrived (read instead),
 * 1 without a new SQE when already armed, or -errno when no SQE could be submitted. Calls
 * io_uring_submit, which also submits whatever else the caller has queued. */
int doorbell_arm(doorbell_t *d, uint64_t user_data);

/* The CQE tagged by doorbell_arm arrived with result res: ends the sleep (ring_end_sleep).
 * Returns 0 (woken, value changed, or spurious: read the ring) or res when it is an error
 * that will repeat (e.g. -EINVAL). */
int doorbell_complete(doorbell_t *d, int res);

/* Stop the helper thread (if any), close the eventfd and cancel an armed wait (its CQE,
 * -ECANCELED, may still reach the caller's ring). */
void doorbell_close(doorbell_t *d);

/* "uring-futex" or "thread": for logs and stats. */
const char *doorbell_kind_name(doorbell_kind_t kind);

#endif
