/* bench_check.c - per-session delivery checks of herald-bench e2e. */
#include "bench_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald_time.h"

static size_t seen_bytes(const bench_run_t *r, unsigned user)
{
    return bench_user_msgs(r, user) / 8 + 1;
}

int bcheck_init(bcheck_t *c, const bench_run_t *r, unsigned user)
{
    memset(c, 0, sizeof *c);
    c->user = user;
    c->seen = calloc(seen_bytes(r, user), 1);
    return c->seen ? 0 : -1;
}

void bcheck_reset(bcheck_t *c, const bench_run_t *r)
{
    memset(c->seen, 0, seen_bytes(r, c->user));
    memset(c->last_seq, 0, sizeof c->last_seq);
}

void bcheck_free(bcheck_t *c)
{
    free(c->seen);
    c->seen = NULL;
}

static void on_notification(bench_run_t *r, bcheck_t *c, const bmsg_t *m, size_t len, uint64_t now)
{
    if (m->bench_i >= r->messages || bench_user_of(r, m->bench_i) != c->user ||
        strcmp(m->user_id, r->user_ids[c->user]) != 0) {
        r->foreign++;
        return;
    }
    uint64_t k = bench_rank_of(r, m->bench_i);
    uint8_t bit = (uint8_t)(1u << (k & 7));
    if (c->seen[k >> 3] & bit) {
        r->duplicates++;
        return;
    }
    c->seen[k >> 3] |= bit;
    r->received++;
    r->frame_bytes += len;
    r->t_last_rx = now;
    uint64_t tick = (now - r->t_origin) / BENCH_TICK_NS;
    if (tick < r->n_ticks) r->rx_per_tick[tick]++;
    if (m->seq <= c->last_seq[m->priority]) r->out_of_order++;
    c->last_seq[m->priority] = m->seq;
    hist_record(&r->lat[m->priority], now > m->bench_t0 ? now - m->bench_t0 : 0);
}

bmsg_kind_t bcheck_frame(bench_run_t *r, bcheck_t *c, const char *data, size_t len, bmsg_t *out)
{
    bmsg_t tmp, *m = out ? out : &tmp;
    switch (bparse_frame(data, len, m)) {
    case BMSG_NOTIFICATION:
        on_notification(r, c, m, len, mono_ns());
        break;
    case BMSG_WELCOME:
        break;
    case BMSG_OTHER:
        if (r->other_frames++ < 5)
            fprintf(stderr, "herald-bench: session of %s got a \"%s\" frame: %.*s\n",
                    r->user_ids[c->user], m->type, (int)(len > 200 ? 200 : len), data);
        break;
    case BMSG_MALFORMED:
        r->malformed++;
        break;
    }
    return m->kind;
}
