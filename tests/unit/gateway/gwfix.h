/* gwfix.h - test helpers for the gateway's modules: a gateway state made by the modules' own
 * init functions (no lws context, no io_uring, no broker: the control link stays down), its
 * sessions, ring records of notifications, and the frames queued for a session. */
#ifndef HERALD_GWFIX_H
#define HERALD_GWFIX_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "deliver.h"
#include "gw.h"
#include "json.h"
#include "loop.h"
#include "records.h"
#include "users.h"

/* g's config is the defaults; every module's state is made by gw_loop_init. */
static inline void gwfix_init(gw_t *g)
{
    memset(g, 0, sizeof *g);
    config_defaults(&g->cfg);
    g->conflate_bytes = config_conflate_bytes(&g->cfg);
    jbuf_init(&g->jb, LWS_PRE);
    msgpack_unpacked_init(&g->unp);
    gw_loop_init(g, 0);
}

static inline gw_session_t *gwfix_session(gw_t *g, const char *user, bool binary)
{
    gw_session_t *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->binary = binary;
    gw_users_add(g->users, s, user);
    snprintf(s->id_str, sizeof s->id_str, "0-%llx", (unsigned long long)s->id);
    return s;
}

static inline void gwfix_session_free(gw_t *g, gw_session_t *s)
{
    gw_deliver_drop(g, s);
    gw_users_remove(g->users, s);
    free(s);
}

static inline void gwfix_fini(gw_t *g)
{
    while (gw_users_all(g->users))
        gwfix_session_free(g, gw_users_all(g->users));
    gw_loop_fini(g);
    msgpack_unpacked_destroy(&g->unp);
    jbuf_free(&g->jb);
}

/* The canonical ring record (codec_encode) of a producer notification given as JSON text,
 * with seq. Returns its length in out. */
static inline size_t gwfix_notif(uint8_t *out, size_t cap, const char *json, uint64_t seq)
{
    msgpack_sbuffer sb, enc;
    msgpack_unpacked u;
    notif_t n;
    herald_error_t err = {0};
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&enc);
    msgpack_unpacked_init(&u);
    ck_assert_msg(json_to_msgpack(json, strlen(json), &sb, &err) == 0, "%s", err.message);
    ck_assert_int_eq(
        codec_unpack((const uint8_t *)sb.data, sb.size, HERALD_MAX_NOTIF_BYTES, &u, &err), 0);
    memset(&n, 0, sizeof n);
    ck_assert_msg(codec_notif_from_object(&u.data, &n, &err) == 0, "%s", err.message);
    n.seq = seq;
    long len = codec_encode(&n, &enc, NULL);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_le((size_t)len, cap);
    memcpy(out, enc.data, (size_t)len);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&enc);
    msgpack_sbuffer_destroy(&sb);
    return (size_t)len;
}

/* Frame i (0 first) of s's ready queue followed by its held queue, holes skipped; NULL
 * past the end. */
static inline gw_msg_t *gwfix_queued(gw_session_t *s, unsigned i)
{
    for (gw_fifo_t *f = &s->ready; f; f = f == &s->ready ? &s->held : NULL)
        for (uint64_t pos = f->base; pos < f->base + f->count; pos++) {
            gw_msg_t *m = *gw_fifo_slot(f, pos);
            if (m && i-- == 0) return m;
        }
    return NULL;
}

/* The frames queued for s (ready, then held). */
static inline unsigned gwfix_n_queued(gw_session_t *s)
{
    return gw_fifo_frames(&s->ready) + gw_fifo_frames(&s->held);
}

/* Do frame m's bytes (JSON text, or msgpack) contain needle? */
static inline bool gwfix_has(gw_msg_t *m, const char *needle)
{
    return memmem(gw_msg_data(m), m->len, needle, strlen(needle)) != NULL;
}

#endif
