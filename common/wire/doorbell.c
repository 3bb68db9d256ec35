/* doorbell.c - the consumer's io_uring wait on a ring's doorbell (FUTEX_WAIT op, or a thread
 * and an eventfd); the futex word itself is doorbell_futex.c. */
#include "doorbell.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* liburing 2.3 and Debian 12's uapi headers predate the futex opcodes (Linux 6.7): the
 * opcode number follows IORING_OP_WAITID in the kernel's enum io_uring_op, and the SQE
 * layout is the one io_uring/futex.c reads: fd = futex2 flags, addr = word,
 * addr2 (same field as off) = expected value, addr3 = bitset mask, futex_flags (the
 * rw_flags slot) = 0, len = 0. */
#define DOORBELL_OP_FUTEX_WAIT   51
#define DOORBELL_FUTEX2_SIZE_U32 0x02u /* futex2 flags: 32-bit word, shared (no FUTEX2_PRIVATE) */
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#endif

static void sqe_futex_wait(struct io_uring_sqe *sqe, _Atomic uint32_t *word, uint32_t expected)
{
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = DOORBELL_OP_FUTEX_WAIT;
    sqe->fd = (int)DOORBELL_FUTEX2_SIZE_U32;
    sqe->addr = (uint64_t)(uintptr_t)word;
    sqe->off = expected;
    sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
}

/* Submit a futex wait for a value the word does not hold on a scratch io_uring: a kernel
 * that knows the opcode and our SQE layout answers -EAGAIN at once; older kernels answer
 * -EINVAL (unknown opcode). */
static bool probe_uring_futex(void)
{
    struct io_uring probe;
    if (io_uring_queue_init(2, &probe, 0) < 0) return false;
    _Atomic uint32_t word = 0;
    bool ok = false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&probe);
    struct io_uring_cqe *cqe;
    if (sqe) {
        sqe_futex_wait(sqe, &word, 1);
        if (io_uring_submit(&probe) == 1 && io_uring_wait_cqe(&probe, &cqe) == 0) {
            ok = cqe->res == -EAGAIN;
            io_uring_cqe_seen(&probe, cqe);
        }
    }
    io_uring_queue_exit(&probe);
    return ok;
}

/* The fallback's helper thread: waits for an arm request (ctl changes), then blocks on
 * the ring word until it moves off the requested value, then writes the eventfd. */
static void *doorbell_thread(void *arg)
{
    doorbell_t *d = arg;
    uint32_t seen = 0;
    for (;;) {
        /* pairs with the release increment of ctl in doorbell_arm / doorbell_close */
        uint32_t c = atomic_load_explicit(&d->ctl, memory_order_acquire);
        if (atomic_load_explicit(&d->stop, memory_order_relaxed)) break;
        if (c == seen) {
            syscall(SYS_futex, (uint32_t *)&d->ctl, FUTEX_WAIT_PRIVATE, c, NULL, NULL, 0);
            continue;
        }
        seen = c;
        uint32_t want = atomic_load_explicit(&d->want, memory_order_relaxed);
        /* pairs with the producer's release increment of the doorbell (ring_wake) */
        while (atomic_load_explicit(d->word, memory_order_acquire) == want &&
               !atomic_load_explicit(&d->stop, memory_order_relaxed))
            doorbell_wait(d->word, want, -1);
        uint64_t one = 1;
        if (write(d->efd, &one, sizeof one) < 0) break;
    }
    /* pairs with the acquire load in doorbell_close's join loop */
    atomic_store_explicit(&d->done, 1, memory_order_release);
    return NULL;
}

const char *doorbell_kind_name(doorbell_kind_t kind)
{
    return kind == DOORBELL_URING_FUTEX ? "uring-futex" : "thread";
}

int doorbell_open(doorbell_t *d, struct io_uring *uring, ring_t *r)
{
    memset(d, 0, sizeof *d);
    d->uring = uring;
    d->ring = r;
    d->word = ring_doorbell_word(r);
    d->efd = -1;
    const char *force = getenv("HERALD_DOORBELL");
    bool want_thread = force && strcmp(force, "thread") == 0;
    if (!want_thread && probe_uring_futex()) {
        d->kind = DOORBELL_URING_FUTEX;
        return 0;
    }
    d->kind = DOORBELL_THREAD;
    d->efd = eventfd(0, EFD_CLOEXEC);
    if (d->efd < 0) return -errno;
    int rc = pthread_create(&d->thread, NULL, doorbell_thread, d);
    if (rc != 0) {
        close(d->efd);
        d->efd = -1;
        return -rc;
    }
    d->thread_started = true;
    return 0;
}

int doorbell_arm(doorbell_t *d, uint64_t user_data)
{
    if (d->armed) return 1;
    uint32_t value;
    if (!ring_prepare_sleep(d->ring, &value)) return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(d->uring);
    if (!sqe) {
        io_uring_submit(d->uring);
        sqe = io_uring_get_sqe(d->uring);
    }
    if (!sqe) {
        ring_end_sleep(d->ring);
        return -EBUSY;
    }
    if (d->kind == DOORBELL_URING_FUTEX) {
        sqe_futex_wait(sqe, d->word, value);
    } else {
        io_uring_prep_read(sqe, d->efd, &d->efd_buf, sizeof d->efd_buf, 0);
        atomic_store_explicit(&d->want, value, memory_order_relaxed);
        /* pairs with the acquire load of ctl in doorbell_thread: it then sees `want` */
        atomic_fetch_add_explicit(&d->ctl, 1, memory_order_release);
        syscall(SYS_futex, (uint32_t *)&d->ctl, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    io_uring_sqe_set_data64(sqe, user_data);
    int rc = io_uring_submit(d->uring);
    if (rc < 0) {
        ring_end_sleep(d->ring);
        return rc;
    }
    d->armed = true;
    d->user_data = user_data;
    return 1;
}

int doorbell_complete(doorbell_t *d, int res)
{
    d->armed = false;
    ring_end_sleep(d->ring);
    if (res >= 0 || res == -EAGAIN || res == -EINTR || res == -ECANCELED) return 0;
    return res;
}

void doorbell_close(doorbell_t *d)
{
    if (d->armed) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(d->uring);
        if (sqe) {
            io_uring_prep_cancel64(sqe, d->user_data, 0);
            io_uring_sqe_set_data64(sqe, d->user_data);
            io_uring_submit(d->uring);
        }
        d->armed = false;
    }
    if (d->thread_started) {
        atomic_store_explicit(&d->stop, 1, memory_order_relaxed);
        /* The thread may be between its stop check and its futex wait: keep waking both
         * words until it reports it is done. */
        struct timespec ms = {0, 1000000};
        /* pairs with the thread's release store of done as it exits */
        while (!atomic_load_explicit(&d->done, memory_order_acquire)) {
            /* pairs with the thread's acquire load of ctl: it wakes and sees stop */
            atomic_fetch_add_explicit(&d->ctl, 1, memory_order_release);
            syscall(SYS_futex, (uint32_t *)&d->ctl, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            doorbell_wake(d->word);
            nanosleep(&ms, NULL);
        }
        pthread_join(d->thread, NULL);
        d->thread_started = false;
    }
    if (d->efd >= 0) close(d->efd);
    d->efd = -1;
}
