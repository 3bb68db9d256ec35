/* fifo.h - a session's output queue: a power-of-two circular array of frame references with
 * absolute positions (so conflation can find and take out a frame it indexed) and holes (the
 * slots of frames taken out, skipped when they reach the front). */
#ifndef HERALD_GW_FIFO_H
#define HERALD_GW_FIFO_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* FIFO of frame references (power-of-two circular array). Slots are numbered by absolute
 * position (base is the position of items[head]); a slot whose frame conflation took out
 * holds NULL (a hole) until it reaches the front. */
typedef struct {
    gw_msg_t **items;
    uint32_t head, count, cap;
    uint32_t holes; /* NULL slots among count */
    uint64_t base;
} gw_fifo_t;

/* Append m (the caller's reference moves into the queue); returns m's absolute position. */
static inline uint64_t gw_fifo_push(gw_fifo_t *f, gw_msg_t *m)
{
    if (f->count == f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 8;
        gw_msg_t **n = malloc(ncap * sizeof *n);
        if (!n) abort();
        for (uint32_t i = 0; i < f->count; i++)
            n[i] = f->items[(f->head + i) & (f->cap - 1)];
        free(f->items);
        f->items = n;
        f->head = 0;
        f->cap = ncap;
    }
    f->items[(f->head + f->count) & (f->cap - 1)] = m;
    f->count++;
    return f->base + f->count - 1;
}

/* Remove the front slot (a frame or a hole) without freeing anything. */
static inline void gw_fifo_pop(gw_fifo_t *f)
{
    if (!f->items[f->head]) f->holes--;
    f->head = (f->head + 1) & (f->cap - 1);
    f->count--;
    f->base++;
}

/* The first frame, dropping the holes before it; NULL when empty. */
static inline gw_msg_t *gw_fifo_front(gw_fifo_t *f)
{
    while (f->count && !f->items[f->head])
        gw_fifo_pop(f);
    return f->count ? f->items[f->head] : NULL;
}

/* Frames queued (holes not counted). */
static inline uint32_t gw_fifo_frames(const gw_fifo_t *f)
{
    return f->count - f->holes;
}

/* The slot at absolute position pos, or NULL when pos is no longer (or not yet) queued. */
static inline gw_msg_t **gw_fifo_slot(gw_fifo_t *f, uint64_t pos)
{
    if (pos < f->base || pos - f->base >= f->count) return NULL;
    return &f->items[(f->head + (uint32_t)(pos - f->base)) & (f->cap - 1)];
}

/* Take the frame at *slot out of the queue, leaving a hole; returns it (the queue's
 * reference goes to the caller). */
static inline gw_msg_t *gw_fifo_take(gw_fifo_t *f, gw_msg_t **slot)
{
    gw_msg_t *m = *slot;
    *slot = NULL;
    f->holes++;
    return m;
}

/* Drop every frame reference and the slots: f is empty and may be reused. */
static inline void gw_fifo_free(gw_fifo_t *f)
{
    gw_msg_t *m;
    while ((m = gw_fifo_front(f))) {
        gw_msg_unref(m);
        gw_fifo_pop(f);
    }
    free(f->items);
    memset(f, 0, sizeof *f);
}

#endif
