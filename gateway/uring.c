/* uring.c - the gateway's io_uring instance: adopted into lws as a raw file so lws's poll
 * wakes us on completions; SQEs; the single timeout (nearest of the flush deadlines, the 1 s
 * tick and the broker reconnect, chosen by loop.c) and the no-op that yields to lws. */
#include "uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"

#define GW_URING_ENTRIES 256

struct gw_uring {
    struct io_uring ring;
    struct lws *wsi; /* the adopted duplicate of ring's fd */
    bool timer_armed;
    uint64_t timer_at_ns;
    struct __kernel_timespec timer_ts, timer_upd_ts; /* read by the kernel at submit */
    bool nop_pending;
};

int gw_uring_init(gw_t *g)
{
    struct gw_uring *u = calloc(1, sizeof *u);
    if (!u) abort();
    int rc = io_uring_queue_init(GW_URING_ENTRIES, &u->ring, 0);
    if (rc < 0) {
        log_error("io_uring_queue_init: %s", strerror(-rc));
        free(u);
        return -1;
    }
    /* lws owns (and closes) the descriptor it adopts: give it a duplicate. */
    lws_sock_file_fd_type fd;
    fd.filefd = dup(u->ring.ring_fd);
    if (fd.filefd < 0) {
        log_error("dup io_uring fd: %s", strerror(errno));
        goto fail;
    }
    g->uring = u; /* the adoption already calls the protocol */
    u->wsi = lws_adopt_descriptor_vhost(g->vh, LWS_ADOPT_RAW_FILE_DESC, fd, "gw-uring", NULL);
    if (!u->wsi) {
        log_error("lws refused to adopt the io_uring fd");
        g->uring = NULL;
        goto fail;
    }
    return 0;
fail:
    io_uring_queue_exit(&u->ring);
    free(u);
    return -1;
}

void gw_uring_fini(gw_t *g)
{
    if (!g->uring) return;
    io_uring_queue_exit(&g->uring->ring);
    free(g->uring);
    g->uring = NULL;
}

void gw_uring_on_close(gw_t *g, struct lws *wsi)
{
    if (g && g->uring && wsi == g->uring->wsi) g->uring->wsi = NULL;
}

struct io_uring *gw_uring_ring(gw_t *g)
{
    return &g->uring->ring;
}

struct io_uring_sqe *gw_uring_sqe(gw_t *g)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g->uring->ring);
    if (!sqe) {
        io_uring_submit(&g->uring->ring);
        sqe = io_uring_get_sqe(&g->uring->ring);
    }
    return sqe; /* cannot be NULL right after a submit of a ring we alone fill */
}

void gw_uring_submit(gw_t *g)
{
    io_uring_submit(&g->uring->ring);
}

void gw_uring_arm_timer(gw_t *g, uint64_t at_ns)
{
    struct gw_uring *u = g->uring;
    struct io_uring_sqe *sqe;
    /* Keep a pending timeout that is due at most a slack before the nearest deadline;
     * move it otherwise (later too: deadlines flushed early would make it a wasted wake). */
    if (u->timer_armed && at_ns >= u->timer_at_ns && at_ns - u->timer_at_ns <= GW_FLUSH_SLACK_NS)
        return;
    if (!u->timer_armed) {
        u->timer_ts.tv_sec = (long long)(at_ns / GW_NS_PER_S);
        u->timer_ts.tv_nsec = (long long)(at_ns % GW_NS_PER_S);
        sqe = gw_uring_sqe(g);
        io_uring_prep_timeout(sqe, &u->timer_ts, 0, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, gw_ud(UD_TIMER, 0));
        u->timer_armed = true;
    } else {
        /* Move the one pending timeout instead of adding a second one. */
        u->timer_upd_ts.tv_sec = (long long)(at_ns / GW_NS_PER_S);
        u->timer_upd_ts.tv_nsec = (long long)(at_ns % GW_NS_PER_S);
        sqe = gw_uring_sqe(g);
        io_uring_prep_timeout_update(sqe, &u->timer_upd_ts, gw_ud(UD_TIMER, 0), IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(sqe, gw_ud(UD_TIMER_UPD, 0));
        /* no completion when it worked: it would only wake the loop for nothing */
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    u->timer_at_ns = at_ns;
}

void gw_uring_queue_nop(gw_t *g)
{
    if (g->uring->nop_pending) return;
    struct io_uring_sqe *sqe = gw_uring_sqe(g);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, gw_ud(UD_NOP, 0));
    g->uring->nop_pending = true;
}

unsigned gw_uring_reap(gw_t *g, void (*fn)(gw_t *g, uint64_t ud, int res))
{
    struct gw_uring *u = g->uring;
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        if ((ud & 0xff) == UD_TIMER) u->timer_armed = false;
        if ((ud & 0xff) == UD_NOP) u->nop_pending = false;
        fn(g, ud, cqe->res);
        n++;
    }
    if (n) io_uring_cq_advance(&u->ring, n);
    return n;
}
