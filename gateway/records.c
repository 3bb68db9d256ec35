/* records.c - the ring record stream (proto.h): session readiness, live notifications fanned
 * out to the user's sessions, per-user seq gap detection with held records and session-0
 * replay, and session-addressed replays for resume. */
#include "records.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "conflate.h"
#include "control.h"
#include "deliver.h"
#include "frames.h"
#include "log.h"
#include "proto.h"

/* One decoded notification with its frames rendered lazily, once for all sessions. */
typedef struct {
    const uint8_t *bytes;
    uint32_t len;
    bool live;        /* a live (or gap-filled) notification, not a resume replay */
    bool conflatable; /* delivery.conflate type, P1..P3, not a broadcast */
    uint64_t ckey;    /* its conflation key once a conflating session needed it (0 = not yet) */
    notif_t n;
    gw_msg_t *json, *bin;
} note_t;

static gw_msg_t *note_msg(note_t *nt, gw_msg_t *m)
{
    m->notification = true;
    m->live = nt->live;
    m->prio = nt->n.priority;
    m->ts_ns = nt->n.timestamp;
    m->seq = nt->n.seq;
    m->type = (uint8_t)model_type_index(nt->n.type);
    m->conflatable = nt->conflatable;
    m->ckey = nt->ckey;
    return m;
}

static gw_msg_t *note_frame(gw_t *g, note_t *nt, bool binary)
{
    if (binary) {
        if (!nt->bin) nt->bin = note_msg(nt, gw_msg_new(nt->bytes, nt->len, true));
        return nt->bin;
    }
    if (!nt->json) {
        jbuf_reset(&g->jb);
        json_render_notif(&g->jb, &nt->n);
        nt->json = note_msg(nt, gw_msg_new(g->jb.data, g->jb.len, false));
    }
    return nt->json;
}

static int note_decode(gw_t *g, note_t *nt, const uint8_t *bytes, uint32_t len)
{
    herald_error_t err;
    memset(nt, 0, sizeof *nt);
    nt->bytes = bytes;
    nt->len = len;
    if (codec_decode(bytes, len, &g->unp, &nt->n, &err) < 0) {
        g->c.bad_records++;
        log_warn("ring record rejected: %s: %s", herr_code(err.code), err.message);
        return -1;
    }
    nt->conflatable = nt->n.priority != 0 && !model_is_broadcast(&nt->n) &&
                      (g->masks.conflate >> model_type_index(nt->n.type) & 1u);
    return 0;
}

/* The note's conflation key, computed once and given to its frames. */
static void note_key(note_t *nt)
{
    if (nt->ckey) return;
    nt->ckey = gw_conflate_key(nt->n.user_id, strlen(nt->n.user_id), model_type_index(nt->n.type),
                               &nt->n.payload);
    if (nt->json) nt->json->ckey = nt->ckey;
    if (nt->bin) nt->bin->ckey = nt->ckey;
}

static void note_done(note_t *nt)
{
    gw_msg_unref(nt->json);
    gw_msg_unref(nt->bin);
}

static bool session_wants(const gw_session_t *s, const note_t *nt)
{
    if (s->state != SESS_LIVE || s->close_code) return false;
    return !s->filtered || (s->channels & (1u << nt->n.type->channel));
}

static void note_to_session(gw_t *g, gw_session_t *s, note_t *nt)
{
    if (!session_wants(s, nt)) return;
    gw_msg_t *m = note_frame(g, nt, s->binary);
    if (nt->conflatable && s->pending_bytes > g->conflate_bytes) {
        note_key(nt);
        gw_deliver_conflating(g, s, m);
        return;
    }
    gw_deliver(g, s, m, nt->n.priority);
}

/* Deliver an in-order notification of user u (or of the broadcast sequence) to every
 * session that was live when it was sequenced. */
static void note_fan_out(gw_t *g, gw_user_t *u, note_t *nt)
{
    uint64_t seq = nt->n.seq;
    if (u == gw_users_bcast(g->users)) {
        for (gw_session_t *s = gw_users_all(g->users); s; s = s->anext)
            if (seq >= s->bcast_live_from) note_to_session(g, s, nt);
        return;
    }
    for (gw_session_t *s = u->sessions; s; s = s->unext)
        if (seq >= s->live_from) note_to_session(g, s, nt);
}

static void user_gap_message(gw_t *g, gw_user_t *u, uint64_t from, uint64_t to)
{
    g->c.gap_msgs++;
    log_warn("user %s: seqs %llu..%llu no longer in history", u->id, (unsigned long long)from,
             (unsigned long long)to);
    bool bcast = u == gw_users_bcast(g->users);
    for (gw_session_t *s = bcast ? gw_users_all(g->users) : u->sessions; s;
         s = bcast ? s->anext : s->unext) {
        if (s->state != SESS_LIVE) continue;
        gw_msg_t *m = gw_frames_range(&g->jb, s->binary, "gap", from, to);
        gw_deliver(g, s, m, 0);
        gw_msg_unref(m);
    }
}

static void user_start_fill(gw_t *g, gw_user_t *u)
{
    bool anyone =
        u == gw_users_bcast(g->users) ? gw_users_all(g->users) != NULL : u->sessions != NULL;
    if (!anyone) {
        u->last = u->want_to; /* nobody to fill for */
        return;
    }
    /* With the broker link down the request is re-sent by the resync on reconnect. */
    u->filling = true;
    u->fill_to = u->want_to;
    g->c.gaps_detected++;
    g->c.replays_requested++;
    log_info("user %s: seq gap %llu..%llu, asking for replay", u->id,
             (unsigned long long)(u->last + 1), (unsigned long long)u->fill_to);
    gw_control_send_replay(g, 0, u->id, u->last + 1, u->fill_to);
}

static void user_hold(gw_user_t *u, const uint8_t *bytes, uint32_t len, uint64_t seq)
{
    if (u->n_held == u->cap_held) {
        u->cap_held = u->cap_held ? u->cap_held * 2 : 16;
        u->held = realloc(u->held, u->cap_held * sizeof *u->held);
        if (!u->held) abort();
    }
    gw_held_t *h = &u->held[u->n_held++];
    h->bytes = malloc(len);
    if (!h->bytes) abort();
    memcpy(h->bytes, bytes, len);
    h->len = len;
    h->seq = seq;
}

static void user_live(gw_t *g, gw_user_t *u, note_t *nt);

static void user_finish_fill(gw_t *g, gw_user_t *u)
{
    u->filling = false;
    gw_held_t *held = u->held;
    size_t n = u->n_held;
    u->held = NULL;
    u->n_held = u->cap_held = 0;
    for (size_t i = 0; i < n; i++) {
        note_t nt;
        if (note_decode(g, &nt, held[i].bytes, held[i].len) == 0) {
            user_live(g, u, &nt);
            note_done(&nt);
        }
        free(held[i].bytes);
    }
    free(held);
    if (!u->filling && u->last < u->want_to) user_start_fill(g, u);
}

static void user_live(gw_t *g, gw_user_t *u, note_t *nt)
{
    uint64_t seq = nt->n.seq;
    if (!u->known || seq <= u->last) return; /* before the user's READY, or delivered */
    if (seq > u->want_to) u->want_to = seq;
    if (u->filling) {
        user_hold(u, nt->bytes, nt->len, seq);
        return;
    }
    if (seq == u->last + 1) {
        u->last = seq;
        note_fan_out(g, u, nt);
        return;
    }
    u->want_to = seq - 1;
    user_start_fill(g, u);
    u->want_to = seq;
    if (u->filling)
        user_hold(u, nt->bytes, nt->len, seq);
    else
        note_fan_out(g, u, nt);
    if (!u->filling) u->last = seq;
}

static gw_user_t *user_of(gw_t *g, const char *id, size_t len)
{
    if (len == 1 && id[0] == '*') return gw_users_bcast(g->users);
    return gw_users_find(g->users, id, len);
}

static int on_notify(gw_t *g, const uint8_t *data, uint32_t len)
{
    note_t nt;
    if (note_decode(g, &nt, data, len) < 0) return 0;
    nt.live = true;
    gw_user_t *u = user_of(g, nt.n.user_id, strlen(nt.n.user_id));
    if (u) user_live(g, u, &nt);
    note_done(&nt);
    return 0;
}

static void on_user_fill(gw_t *g, gw_user_t *u, note_t *nt)
{
    uint64_t seq = nt->n.seq;
    if (!u->filling) {
        /* Unasked fill: the broker's answer to our resync after its restart. It is in
         * order like the live stream. */
        user_live(g, u, nt);
        return;
    }
    if (seq <= u->last) return;
    if (seq > u->last + 1) user_gap_message(g, u, u->last + 1, seq - 1);
    u->last = seq;
    note_fan_out(g, u, nt);
    if (u->last >= u->fill_to) user_finish_fill(g, u);
}

static void on_session_replay(gw_t *g, gw_session_t *s, note_t *nt)
{
    uint64_t seq = nt->n.seq;
    if (!s->user || strcmp(nt->n.user_id, s->user->id)) return;
    if (!s->replay_hi || seq < s->replay_next || seq > s->replay_hi) return;
    s->replay_next = seq + 1;
    note_to_session(g, s, nt);
}

static int on_replay(gw_t *g, const uint8_t *data, uint32_t len)
{
    rec_replay_t h;
    note_t nt;
    if (len < sizeof h) goto bad;
    memcpy(&h, data, sizeof h);
    if (note_decode(g, &nt, data + sizeof h, len - (uint32_t)sizeof h) < 0) return 0;
    if (h.session == 0) { /* a gap fill: live notifications, late */
        nt.live = true;
        gw_user_t *u = user_of(g, nt.n.user_id, strlen(nt.n.user_id));
        if (u) on_user_fill(g, u, &nt);
    } else {
        gw_session_t *s = gw_users_session(g->users, h.session);
        if (s) on_session_replay(g, s, &nt);
    }
    note_done(&nt);
    return 0;
bad:
    g->c.bad_records++;
    return 0;
}

/* The frame of a re-sent notification: its own frame with "redelivery":true added. NULL if
 * the record is not the canonical map (fixmap of at most 14 fields) it must be. */
static gw_msg_t *redelivery_frame(gw_t *g, note_t *nt, bool binary)
{
    gw_msg_t *m;
    if (binary) {
        static const uint8_t tail[] = {0xaa, 'r', 'e', 'd', 'e', 'l',
                                       'i',  'v', 'e', 'r', 'y', 0xc3};
        if ((nt->bytes[0] & 0xf0) != 0x80 || (nt->bytes[0] & 0x0f) == 0x0f) return NULL;
        uint8_t *buf = malloc(nt->len + sizeof tail);
        if (!buf) abort();
        memcpy(buf, nt->bytes, nt->len);
        buf[0]++; /* one more field */
        memcpy(buf + nt->len, tail, sizeof tail);
        m = gw_msg_new(buf, nt->len + sizeof tail, true);
        free(buf);
    } else {
        jbuf_reset(&g->jb);
        json_render_notif(&g->jb, &nt->n);
        g->jb.len--; /* its closing brace */
        jbuf_puts(&g->jb, ",\"redelivery\":true}");
        m = gw_msg_new(g->jb.data, g->jb.len, false);
    }
    note_msg(nt, m);
    m->live = false; /* sent again: its latency is not the delivery's */
    m->conflatable = false;
    return m;
}

/* REC_REDELIVER (acknowledged delivery, protocol.md 14): re-send to the user's opted-in sessions
 * (header session 0: every one; else that one), whatever their live start. */
static int on_redeliver(gw_t *g, const uint8_t *data, uint32_t len)
{
    rec_replay_t h;
    note_t nt;
    if (len < sizeof h) {
        g->c.bad_records++;
        return 0;
    }
    memcpy(&h, data, sizeof h);
    if (note_decode(g, &nt, data + sizeof h, len - (uint32_t)sizeof h) < 0) return 0;
    gw_user_t *u =
        model_is_broadcast(&nt.n) ? NULL : user_of(g, nt.n.user_id, strlen(nt.n.user_id));
    gw_msg_t *frames[2] = {NULL, NULL};
    for (gw_session_t *s = u && u->n_acks ? u->sessions : NULL; s; s = s->unext) {
        if (!s->acks || (h.session && s->id != h.session) || !session_wants(s, &nt)) continue;
        gw_msg_t **m = &frames[s->binary];
        if (!*m && !(*m = redelivery_frame(g, &nt, s->binary))) {
            g->c.bad_records++;
            break;
        }
        gw_deliver(g, s, *m, nt.n.priority);
        g->c.redeliveries++;
    }
    gw_msg_unref(frames[0]);
    gw_msg_unref(frames[1]);
    note_done(&nt);
    return 0;
}

static int on_range(gw_t *g, uint32_t type, const uint8_t *data, uint32_t len)
{
    rec_range_t r;
    if (len < sizeof r) {
        g->c.bad_records++;
        return 0;
    }
    memcpy(&r, data, sizeof r);
    const char *uid = (const char *)data + sizeof r;
    size_t ulen = len - sizeof r;
    if (r.session == 0) {
        gw_user_t *u = user_of(g, uid, ulen);
        if (!u || !u->known) return 0;
        if (type == REC_GAP) {
            uint64_t from = r.from > u->last + 1 ? r.from : u->last + 1;
            if (r.to >= from) user_gap_message(g, u, from, r.to);
            if (r.to > u->last) u->last = r.to;
            if (u->last > u->want_to) u->want_to = u->last;
            if (u->filling && u->last >= u->fill_to) user_finish_fill(g, u);
        } else if (u->filling && r.to >= u->fill_to) { /* not the end of an older fill */
            if (u->last < u->fill_to) {
                user_gap_message(g, u, u->last + 1, u->fill_to);
                u->last = u->fill_to;
            }
            user_finish_fill(g, u);
        }
        return 0;
    }
    gw_session_t *s = gw_users_session(g->users, r.session);
    if (!s || s->state != SESS_LIVE) return 0;
    if (type == REC_GAP) {
        gw_msg_t *m = gw_frames_range(&g->jb, s->binary, "gap", r.from, r.to);
        gw_deliver(g, s, m, 0);
        gw_msg_unref(m);
        return 0;
    }
    gw_records_replay_end(g, s, r.to);
    return 0;
}

void gw_records_replay_end(gw_t *g, gw_session_t *s, uint64_t to)
{
    if (s->resume_pending) {
        /* Replayed frames may sit in the batch queues: flush them ahead of `resumed`. */
        gw_deliver_flush(g, s);
        gw_msg_t *m = gw_frames_range(&g->jb, s->binary, "resumed", s->replay_lo, to);
        gw_deliver(g, s, m, 0);
        gw_msg_unref(m);
        s->resume_pending = false;
    }
    s->replay_hi = 0;
}

static void seq_position(gw_user_t *u, uint64_t last)
{
    if (!u->known) {
        u->known = true;
        u->last = last;
    }
    if (last > u->want_to) u->want_to = last;
}

static int on_ready(gw_t *g, const uint8_t *data, uint32_t len)
{
    rec_session_ready_t r;
    if (len < sizeof r) {
        g->c.bad_records++;
        return 0;
    }
    memcpy(&r, data, sizeof r);
    gw_session_t *s = gw_users_session(g->users, r.session);
    if (!s) return 0;
    gw_user_t *u = s->user;
    seq_position(u, r.last_seq);
    gw_user_t *bc = gw_users_bcast(g->users);
    seq_position(bc, r.bcast_last_seq);
    if (s->state == SESS_LIVE) {
        /* A second ready (the open was re-sent after a reconnect while the first was in
         * flight): the session went live from the older one, so fetch what lies between. */
        if (!u->filling && u->last < u->want_to) user_start_fill(g, u);
        if (!bc->filling && bc->last < bc->want_to) user_start_fill(g, bc);
        return 0;
    }
    s->state = SESS_LIVE;
    s->live_from = r.last_seq + 1;
    s->bcast_live_from = r.bcast_last_seq + 1;
    if (s->since) {
        s->replay_lo = s->since + 1;
        s->replay_hi = r.last_seq;
        s->replay_next = s->replay_lo;
        s->have_from = s->since + 1 <= s->live_from ? s->since + 1 : s->live_from;
        s->resume_pending = true;
    } else {
        s->have_from = s->live_from;
    }
    gw_msg_t *m = gw_frames_welcome(&g->jb, s->binary, s->id_str, u->id, g->id);
    gw_deliver(g, s, m, 0);
    gw_msg_unref(m);
    if (!u->filling && u->last < u->want_to) user_start_fill(g, u);
    if (!bc->filling && bc->last < bc->want_to) user_start_fill(g, bc);
    return 0;
}

int gw_records_on_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    gw_t *g = ctx;
    g->c.ring_records++;
    switch (type) {
    case REC_NOTIFY:
        return on_notify(g, data, len);
    case REC_SESSION_READY:
        return on_ready(g, data, len);
    case REC_REPLAY:
        return on_replay(g, data, len);
    case REC_REPLAY_END:
    case REC_GAP:
        return on_range(g, type, data, len);
    case REC_REDELIVER:
        return on_redeliver(g, data, len);
    case REC_CLOCK:
        if (len >= sizeof(rec_clock_t)) {
            rec_clock_t ck;
            memcpy(&ck, data, sizeof ck);
            gw_deliver_set_clock(g, ck.mono_ns);
        }
        return 0;
    default:
        g->c.bad_records++;
        log_warn("ring record of unknown type %u (%u bytes) skipped", type, len);
        return 0;
    }
}

void gw_records_resync(gw_t *g)
{
    for (gw_session_t *s = gw_users_all(g->users); s && gw_control_up(g); s = s->anext) {
        if (s->state == SESS_WAIT_READY) {
            gw_control_send_open(g, s);
        } else if (s->replay_hi || s->resume_pending) {
            /* A resume whose replay (or its end) may have been lost with the old link. */
            uint64_t from = s->replay_next > s->replay_lo ? s->replay_next : s->replay_lo;
            if (from > s->replay_hi)
                gw_records_replay_end(g, s, s->replay_hi); /* all of it was delivered */
            else
                gw_control_send_replay(g, s->id, s->user->id, from, s->replay_hi);
        }
    }
}
