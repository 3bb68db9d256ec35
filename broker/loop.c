/* loop.c - the broker's event loop (loop.h): epoll, a timer heap, signalfd, end-of-pass hooks,
 * and the idle strategy. */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "herald_time.h"

#define LOOP_BATCH     256
#define LOOP_MAX_HOOKS 8
#define LOOP_MAX_WAIT  (1000 * 1000000ull) /* never block longer than 1 s (timers re-read) */

struct loop {
    int epfd;
    loop_io_t sig;
    void (*sig_fn)(loop_t *l, int sig, void *ctx);
    void *sig_ctx;
    struct epoll_event ev[LOOP_BATCH];
    int ev_n, ev_i; /* the batch being delivered, and the next entry */
    loop_timer_t **heap;
    int heap_n, heap_cap;
    struct {
        loop_hook_fn fn;
        void *ctx;
    } hooks[LOOP_MAX_HOOKS];
    int n_hooks;
    bool again, stop;
    uint32_t spin_us, yield_us;
    uint64_t now;
    uint64_t passes, wakeups;
};

static uint32_t loop_to_epoll(uint32_t ev)
{
    return (ev & LOOP_READ ? EPOLLIN | EPOLLRDHUP : 0u) | (ev & LOOP_WRITE ? EPOLLOUT : 0u);
}

int loop_io_add(loop_t *l, loop_io_t *io, uint32_t events)
{
    struct epoll_event e = {.events = loop_to_epoll(events), .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &e) < 0) return -HERR_IO;
    io->events = events;
    return 0;
}

void loop_io_set(loop_t *l, loop_io_t *io, uint32_t events)
{
    if (io->events == events) return;
    struct epoll_event e = {.events = loop_to_epoll(events), .data.ptr = io};
    epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &e); /* cannot fail for a watched fd */
    io->events = events;
}

void loop_io_del(loop_t *l, loop_io_t *io)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    /* The owner may free io now: forget its entries in the batch being delivered. */
    for (int i = l->ev_i; i < l->ev_n; i++)
        if (l->ev[i].data.ptr == io) l->ev[i].data.ptr = NULL;
}

/* --- timers: a binary min-heap on at_ns --- */

static void heap_set(loop_t *l, int i, loop_timer_t *t)
{
    l->heap[i] = t;
    t->slot = i;
}

static void heap_up(loop_t *l, int i)
{
    loop_timer_t *t = l->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (l->heap[p]->at_ns <= t->at_ns) break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(loop_t *l, int i)
{
    loop_timer_t *t = l->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= l->heap_n) break;
        if (c + 1 < l->heap_n && l->heap[c + 1]->at_ns < l->heap[c]->at_ns) c++;
        if (l->heap[c]->at_ns >= t->at_ns) break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_cancel(loop_t *l, loop_timer_t *t)
{
    if (t->slot < 0) return;
    int i = t->slot;
    t->slot = -1;
    loop_timer_t *last = l->heap[--l->heap_n];
    if (i == l->heap_n) return;
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, last->slot);
}

void loop_timer_at(loop_t *l, loop_timer_t *t, uint64_t at_ns)
{
    loop_timer_cancel(l, t);
    if (l->heap_n == l->heap_cap) {
        int cap = l->heap_cap ? 2 * l->heap_cap : 16;
        loop_timer_t **h = realloc(l->heap, (size_t)cap * sizeof *h);
        if (!h) abort();
        l->heap = h;
        l->heap_cap = cap;
    }
    t->at_ns = at_ns;
    heap_set(l, l->heap_n++, t);
    heap_up(l, t->slot);
}

static void loop_run_timers(loop_t *l)
{
    while (l->heap_n && l->heap[0]->at_ns <= l->now) {
        loop_timer_t *t = l->heap[0];
        loop_timer_cancel(l, t);
        t->fn(l, t);
    }
}

/* --- signals --- */

static void loop_on_sigfd(loop_t *l, loop_io_t *io, uint32_t ready)
{
    (void)ready;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof si) == (ssize_t)sizeof si)
        if (l->sig_fn) l->sig_fn(l, (int)si.ssi_signo, l->sig_ctx);
}

void loop_on_signal(loop_t *l, void (*fn)(loop_t *l, int sig, void *ctx), void *ctx)
{
    l->sig_fn = fn;
    l->sig_ctx = ctx;
}

loop_t *loop_new(herald_error_t *err)
{
    loop_t *l = calloc(1, sizeof *l);
    if (!l) abort();
    l->sig.fd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        herr_set(err, HERR_IO, "epoll", "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    l->sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    l->sig.fn = loop_on_sigfd;
    if (l->sig.fd < 0 || loop_io_add(l, &l->sig, LOOP_READ) < 0) {
        herr_set(err, HERR_IO, "signalfd", "signalfd: %s", strerror(errno));
        goto fail;
    }
    l->now = mono_ns();
    return l;
fail:
    loop_free(l);
    return NULL;
}

void loop_free(loop_t *l)
{
    if (!l) return;
    if (l->sig.fd >= 0) close(l->sig.fd);
    if (l->epfd >= 0) close(l->epfd);
    free(l->heap);
    free(l);
}

void loop_set_idle(loop_t *l, uint32_t spin_us, uint32_t yield_us)
{
    l->spin_us = spin_us;
    l->yield_us = yield_us;
}

void loop_on_pass_end(loop_t *l, loop_hook_fn fn, void *ctx)
{
    if (l->n_hooks == LOOP_MAX_HOOKS) abort(); /* a programming error, found at start-up */
    l->hooks[l->n_hooks].fn = fn;
    l->hooks[l->n_hooks].ctx = ctx;
    l->n_hooks++;
}

void loop_again(loop_t *l)
{
    l->again = true;
}

uint64_t loop_now(const loop_t *l)
{
    return l->now;
}

void loop_stop(loop_t *l)
{
    l->stop = true;
}

uint64_t loop_passes(const loop_t *l)
{
    return l->passes;
}

uint64_t loop_wakeups(const loop_t *l)
{
    return l->wakeups;
}

/* Milliseconds epoll_wait may block: until the nearest timer (rounded up), at most 1 s. */
static int loop_wait_ms(const loop_t *l)
{
    uint64_t wait = LOOP_MAX_WAIT;
    if (l->heap_n) {
        uint64_t at = l->heap[0]->at_ns;
        wait = at <= l->now ? 0 : at - l->now < wait ? at - l->now : wait;
    }
    return (int)((wait + 999999) / 1000000);
}

/* Collect ready events: without blocking while work is pending; else per the idle
 * strategy (poll for spin_us, then poll and yield for yield_us, then block). */
static int loop_wait(loop_t *l)
{
    if (l->again) {
        l->again = false;
        return epoll_wait(l->epfd, l->ev, LOOP_BATCH, 0);
    }
    int timeout = loop_wait_ms(l);
    if (timeout > 0 && (l->spin_us || l->yield_us)) {
        uint64_t t0 = mono_ns(), spin_end = t0 + l->spin_us * 1000ull;
        uint64_t end = spin_end + l->yield_us * 1000ull;
        if (l->heap_n && l->heap[0]->at_ns < end) end = l->heap[0]->at_ns;
        for (uint64_t t = t0; t < end; t = mono_ns()) {
            int n = epoll_wait(l->epfd, l->ev, LOOP_BATCH, 0);
            if (n != 0) return n;
            if (t >= spin_end) sched_yield();
        }
        l->now = mono_ns();
        timeout = loop_wait_ms(l);
    }
    int n = epoll_wait(l->epfd, l->ev, LOOP_BATCH, timeout);
    if (timeout != 0) l->wakeups++;
    return n;
}

/* Deliver n collected events, then the due timers and the end-of-pass hooks. */
static void loop_pass(loop_t *l, int n)
{
    l->passes++;
    l->now = mono_ns();
    l->ev_n = n;
    for (l->ev_i = 0; l->ev_i < l->ev_n;) {
        struct epoll_event *e = &l->ev[l->ev_i++];
        loop_io_t *io = e->data.ptr;
        if (!io) continue; /* deleted earlier in this pass */
        uint32_t ready = 0;
        if (e->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ready |= LOOP_READ;
        if (e->events & EPOLLOUT) ready |= LOOP_WRITE;
        io->fn(l, io, ready);
    }
    l->ev_n = l->ev_i = 0;
    loop_run_timers(l);
    for (int i = 0; i < l->n_hooks; i++)
        l->hooks[i].fn(l, l->hooks[i].ctx);
}

int loop_run(loop_t *l)
{
    while (!l->stop) {
        int n = loop_wait(l);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        loop_pass(l, n);
    }
    return 0;
}

int loop_run_once(loop_t *l)
{
    l->again = false;
    int n = epoll_wait(l->epfd, l->ev, LOOP_BATCH, 0);
    if (n < 0) return errno == EINTR ? 0 : -1;
    loop_pass(l, n);
    return n;
}
