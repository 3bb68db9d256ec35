/* loop.h - the broker's event loop: epoll readiness, timers, signals and end-of-pass work.
 *
 * One thread. A pass waits for readiness (or the nearest timer), runs the callbacks of every
 * ready descriptor, then the due timers, then the end-of-pass hooks. The hooks are where work
 * that arrived together is done once: the broker's drain round (one journal append, one
 * doorbell per gateway) runs after every ready producer has been read.
 *
 * Idle strategy (runtime.idle): "sleep" blocks in epoll_wait as soon as a pass found nothing
 * to do; "backoff:S,Y" first polls without blocking for S µs, then yields the CPU between
 * polls for Y µs more, then blocks (Aeron's BackoffIdleStrategy, for hosts with spare cores).
 */
#ifndef HERALD_BK_LOOP_H
#define HERALD_BK_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct loop loop_t;

enum { LOOP_READ = 1u << 0, LOOP_WRITE = 1u << 1 };

/* A watched descriptor, embedded in its owner. fn runs with the ready LOOP_* bits (an error
 * or hang-up reads as LOOP_READ, so the owner's read sees it). */
typedef struct loop_io {
    int fd;
    uint32_t events; /* LOOP_* bits currently asked for */
    void (*fn)(loop_t *l, struct loop_io *io, uint32_t ready);
    void *ctx;
} loop_io_t;

/* A one-shot timer, embedded in its owner. */
typedef struct loop_timer {
    uint64_t at_ns; /* CLOCK_MONOTONIC */
    void (*fn)(loop_t *l, struct loop_timer *t);
    void *ctx;
    int slot; /* index in the heap, -1 when not armed */
} loop_timer_t;

typedef void (*loop_hook_fn)(loop_t *l, void *ctx);

/* A loop with its own epoll and signalfd (SIGTERM, SIGINT, SIGHUP blocked and read there).
 * NULL on failure (err filled). */
loop_t *loop_new(herald_error_t *err);
void loop_free(loop_t *l);

/* Idle strategy: spin_us = yield_us = 0 is "sleep". */
void loop_set_idle(loop_t *l, uint32_t spin_us, uint32_t yield_us);

/* Start watching io->fd for events (LOOP_* bits, may be 0). 0 or -HERR_IO. */
int loop_io_add(loop_t *l, loop_io_t *io, uint32_t events);
/* Change the events of a watched descriptor (no system call when unchanged). */
void loop_io_set(loop_t *l, loop_io_t *io, uint32_t events);
/* Stop watching io (before closing its fd). Events of io already collected in this pass are
 * not delivered after this. */
void loop_io_del(loop_t *l, loop_io_t *io);

/* Arm t to run at at_ns (re-arming moves it); cancel is a no-op when not armed. */
void loop_timer_at(loop_t *l, loop_timer_t *t, uint64_t at_ns);
void loop_timer_cancel(loop_t *l, loop_timer_t *t);
static inline void loop_timer_init(loop_timer_t *t, void (*fn)(loop_t *, loop_timer_t *), void *ctx)
{
    t->fn = fn;
    t->ctx = ctx;
    t->slot = -1;
    t->at_ns = 0;
}

/* Run fn(l, ctx) at the end of every pass (in the order added). At most 8 hooks. */
void loop_on_pass_end(loop_t *l, loop_hook_fn fn, void *ctx);
/* Ask for another pass without blocking (work is left for the end-of-pass hooks). */
void loop_again(loop_t *l);

/* Called with the signal number for each SIGTERM/SIGINT/SIGHUP read from the signalfd. */
void loop_on_signal(loop_t *l, void (*fn)(loop_t *l, int sig, void *ctx), void *ctx);

/* The monotonic time at the start of the current pass (cheap: no clock read). */
uint64_t loop_now(const loop_t *l);

/* Run passes until loop_stop. Returns 0, or -1 if epoll failed. */
int loop_run(loop_t *l);
/* One pass that does not block (tests and fuzzing drive the loop with it). Returns the
 * events it handled, or -1. */
int loop_run_once(loop_t *l);
void loop_stop(loop_t *l);

/* Passes and wake-ups so far (a pass that blocked and was woken counts as a wake-up). */
uint64_t loop_passes(const loop_t *l);
uint64_t loop_wakeups(const loop_t *l);

#endif
