/* ctl_rings.c - heraldctl rings and ring ID --peek: read-only views of the broker->gateway
 * rings (opened RING_INSPECT, so nothing the broker or a gateway sees ever changes). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "codec.h"
#include "ctl.h"
#include "herald_time.h"
#include "json.h"
#include "proto.h"
#include "ring.h"

/* A heartbeat older than this means "stale" even when the pid still exists. */
#define CTL_ALIVE_STALE_NS (5ull * 1000000000ull)

/* "none" (no pid recorded), "dead" (no such process), "stale" (process exists but its
 * heartbeat is old) or "alive". */
static const char *ctl_liveness(pid_t pid, uint64_t alive_ns, uint64_t now_ns)
{
    if (pid <= 0) return "none";
    if (kill(pid, 0) < 0 && errno == ESRCH) return "dead";
    if (alive_ns + CTL_ALIVE_STALE_NS < now_ns) return "stale";
    return "alive";
}

/* Seconds since a heartbeat, -1 when there was none. */
static double ctl_age_s(uint64_t alive_ns, uint64_t now_ns)
{
    if (alive_ns == 0) return -1;
    return alive_ns > now_ns ? 0 : (double)(now_ns - alive_ns) / 1e9;
}

/* Parse "<prefix>.gw<ID>.ring"; returns the id or -1. */
static long ctl_ring_id(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0 || strncmp(name + pl, ".gw", 3) != 0) return -1;
    const char *p = name + pl + 3;
    char *end;
    if (*p < '0' || *p > '9') return -1;
    long id = strtol(p, &end, 10);
    if (strcmp(end, ".ring") != 0 || id > 65535) return -1;
    return id;
}

static void ctl_ring_json(jbuf_t *b, const ring_stats_t *s, uint64_t now)
{
    jbuf_puts(b, "{\"gateway\":");
    jbuf_put_u64(b, s->gateway_id);
    jbuf_puts(b, ",\"capacity\":");
    jbuf_put_u64(b, s->capacity);
    jbuf_puts(b, ",\"used_bytes\":");
    jbuf_put_u64(b, s->used_bytes);
    jbuf_puts(b, ",\"pending_records\":");
    jbuf_put_u64(b, s->pending_records);
    jbuf_puts(b, ",\"records_written\":");
    jbuf_put_u64(b, s->records_written);
    jbuf_puts(b, ",\"records_read\":");
    jbuf_put_u64(b, s->records_read);
    jbuf_puts(b, ",\"write_pos\":");
    jbuf_put_u64(b, s->tail);
    jbuf_puts(b, ",\"read_pos\":");
    jbuf_put_u64(b, s->head);
    jbuf_puts(b, ",\"lag_bytes\":");
    jbuf_put_u64(b, s->tail - s->head);
    jbuf_puts(b, ",\"drops\":");
    jbuf_put_u64(b, s->drops);
    jbuf_puts(b, ",\"corrupt\":");
    jbuf_put_u64(b, s->corrupt);
    jbuf_puts(b, ",\"wakeups\":");
    jbuf_put_u64(b, s->wakeups);
    jbuf_puts(b, ",\"producer_pid\":");
    jbuf_put_i64(b, s->producer_pid);
    jbuf_puts(b, ",\"producer\":\"");
    jbuf_puts(b, ctl_liveness(s->producer_pid, s->producer_alive_ns, now));
    jbuf_puts(b, "\",\"consumer_pid\":");
    jbuf_put_i64(b, s->consumer_pid);
    jbuf_puts(b, ",\"consumer\":\"");
    jbuf_puts(b, ctl_liveness(s->consumer_pid, s->consumer_alive_ns, now));
    jbuf_puts(b, "\",\"consumer_sleeping\":");
    jbuf_puts(b, s->sleeping ? "true" : "false");
    jbuf_puts(b, "}");
}

static void ctl_ring_row(const ring_stats_t *s, uint64_t now)
{
    printf("%-3llu %10llu %10llu %8llu %12llu %12llu %8llu %7llu %8d %-5s %6.1fs %8d %-5s %6.1fs "
           "%9.1f%%\n",
           (unsigned long long)s->gateway_id, (unsigned long long)s->capacity,
           (unsigned long long)s->used_bytes, (unsigned long long)s->pending_records,
           (unsigned long long)s->records_written, (unsigned long long)s->records_read,
           (unsigned long long)s->drops, (unsigned long long)s->corrupt, (int)s->producer_pid,
           ctl_liveness(s->producer_pid, s->producer_alive_ns, now),
           ctl_age_s(s->producer_alive_ns, now), (int)s->consumer_pid,
           ctl_liveness(s->consumer_pid, s->consumer_alive_ns, now),
           ctl_age_s(s->consumer_alive_ns, now),
           s->capacity ? 100.0 * (double)s->used_bytes / (double)s->capacity : 0.0);
}

static int ctl_cmp_ids(const void *a, const void *b)
{
    long ia = *(const long *)a, ib = *(const long *)b;
    return (ia > ib) - (ia < ib);
}

int ctl_cmd_rings(ctl_t *ctl)
{
    long ids[1024];
    size_t n = 0;
    int rc = 0;

    if (ctl_check_args(ctl, NULL, NULL, 0, 0)) return 1;
    DIR *d = opendir("/dev/shm");
    if (!d) return ctl_fail("/dev/shm: %s", strerror(errno));
    for (struct dirent *e; (e = readdir(d)) && n < sizeof ids / sizeof ids[0];) {
        long id = ctl_ring_id(e->d_name, ctl->cfg.shm_prefix);
        if (id >= 0) ids[n++] = id;
    }
    closedir(d);
    qsort(ids, n, sizeof ids[0], ctl_cmp_ids);

    jbuf_t b;
    jbuf_init(&b, 0);
    jbuf_putc(&b, '[');
    if (!ctl->json && n > 0)
        printf("%-3s %10s %10s %8s %12s %12s %8s %7s %8s %-5s %7s %8s %-5s %7s %10s\n", "gw",
               "capacity", "used", "pending", "written", "read", "drops", "corrupt", "producer",
               "state", "beat", "consumer", "state", "beat", "lag");
    uint64_t now = now_ns();
    for (size_t i = 0; i < n; i++) {
        char name[128];
        ring_t *r;
        ring_stats_t s;
        herald_error_t err = {0};
        ring_name(name, sizeof name, ctl->cfg.shm_prefix, (unsigned)ids[i]);
        if (ring_open(&r, name, RING_INSPECT, 0, (unsigned)ids[i], &err) < 0) {
            ctl_fail("ring %s: %s", name, err.message);
            rc = 1;
            continue;
        }
        ring_stats(r, &s);
        ring_close(r);
        if (ctl->json) {
            if (b.len > 1) jbuf_putc(&b, ',');
            ctl_ring_json(&b, &s, now);
        } else {
            ctl_ring_row(&s, now);
        }
    }
    jbuf_puts(&b, "]\n");
    if (ctl->json)
        fwrite(b.data, 1, b.len, stdout);
    else if (n == 0)
        printf("(no rings /dev/shm/%s.gw*.ring)\n", ctl->cfg.shm_prefix);
    jbuf_free(&b);
    return rc;
}

/* What ring_peek's visitor needs: the output and a scratch copy of each record. */
typedef struct {
    jbuf_t out;
    uint8_t *copy;
    bool json;                   /* one JSON array, not lines */
    size_t index;                /* records visited so far */
    const size_t *first_pending; /* --last: index of the first unread record, else NULL */
} ctl_peek_t;

/* Render a canonical notification at data[0..len) as "notification":{...} or "error". */
static void ctl_peek_notif(jbuf_t *b, const uint8_t *data, size_t len)
{
    msgpack_unpacked scratch;
    notif_t n;
    herald_error_t err = {0};
    msgpack_unpacked_init(&scratch);
    if (codec_decode(data, len, &scratch, &n, &err) < 0) {
        jbuf_puts(b, ",\"error\":");
        json_put_str(b, err.message, strlen(err.message));
    } else {
        jbuf_puts(b, ",\"notification\":");
        json_render_notif(b, &n);
    }
    msgpack_unpacked_destroy(&scratch);
}

static void ctl_peek_range(jbuf_t *b, const uint8_t *data, uint32_t len)
{
    rec_range_t r;
    if (len < sizeof r) {
        jbuf_puts(b, ",\"error\":\"record shorter than its header\"");
        return;
    }
    memcpy(&r, data, sizeof r);
    jbuf_puts(b, ",\"session\":");
    jbuf_put_u64(b, r.session);
    jbuf_puts(b, ",\"from\":");
    jbuf_put_u64(b, r.from);
    jbuf_puts(b, ",\"to\":");
    jbuf_put_u64(b, r.to);
    jbuf_puts(b, ",\"user_id\":");
    json_put_str(b, (const char *)data + sizeof r, len - sizeof r);
}

/* ring_peek visitor: one JSON line per record. The record is copied out of the shared
 * mapping first so that a concurrent overwrite can only produce a decode error. */
static int ctl_peek_one(uint32_t type, const uint8_t *shared, uint32_t len, void *ctx)
{
    ctl_peek_t *pk = ctx;
    jbuf_t *b = &pk->out;
    const uint8_t *data = pk->copy;
    static const char *const names[] = {"notify", "session_ready", "replay",   "replay_end",
                                        "gap",    "clock",         "redeliver"};

    memcpy(pk->copy, shared, len);
    if (pk->json && pk->index) jbuf_putc(b, ',');
    jbuf_puts(b, "{\"record\":\"");
    jbuf_puts(b,
              type >= REC_NOTIFY && type <= REC_REDELIVER ? names[type - REC_NOTIFY] : "unknown");
    jbuf_puts(b, "\",\"type\":");
    jbuf_put_u64(b, type);
    jbuf_puts(b, ",\"length\":");
    jbuf_put_u64(b, len);
    if (type == REC_NOTIFY) {
        ctl_peek_notif(b, data, len);
    } else if (type == REC_SESSION_READY && len >= sizeof(rec_session_ready_t)) {
        rec_session_ready_t s;
        memcpy(&s, data, sizeof s);
        jbuf_puts(b, ",\"session\":");
        jbuf_put_u64(b, s.session);
        jbuf_puts(b, ",\"last_seq\":");
        jbuf_put_u64(b, s.last_seq);
        jbuf_puts(b, ",\"bcast_last_seq\":");
        jbuf_put_u64(b, s.bcast_last_seq);
    } else if ((type == REC_REPLAY || type == REC_REDELIVER) && len >= sizeof(rec_replay_t)) {
        rec_replay_t rp;
        memcpy(&rp, data, sizeof rp);
        jbuf_puts(b, ",\"session\":");
        jbuf_put_u64(b, rp.session);
        ctl_peek_notif(b, data + sizeof rp, len - sizeof rp);
    } else if (type == REC_REPLAY_END || type == REC_GAP) {
        ctl_peek_range(b, data, len);
    } else if (type == REC_CLOCK && len >= sizeof(rec_clock_t)) {
        rec_clock_t ck;
        memcpy(&ck, data, sizeof ck);
        jbuf_puts(b, ",\"mono_ns\":");
        jbuf_put_u64(b, ck.mono_ns);
    } else if (type >= REC_NOTIFY && type <= REC_REDELIVER) {
        jbuf_puts(b, ",\"error\":\"record shorter than its header\"");
    }
    if (pk->first_pending)
        jbuf_puts(b, pk->index >= *pk->first_pending ? ",\"pending\":true" : ",\"pending\":false");
    jbuf_puts(b, pk->json ? "}" : "}\n");
    pk->index++;
    return 0;
}

/* The ring's header in one line, for people (--json leaves it to `heraldctl rings`). */
static void ctl_ring_header_line(const char *name, ring_t *r)
{
    ring_stats_t s;
    ring_stats(r, &s);
    uint64_t now = now_ns();
    printf("ring %llu (/dev/shm/%s): capacity %llu, used %llu bytes, %llu pending, written %llu, "
           "read %llu, drops %llu, producer %s, consumer %s\n",
           (unsigned long long)s.gateway_id, name, (unsigned long long)s.capacity,
           (unsigned long long)s.used_bytes, (unsigned long long)s.pending_records,
           (unsigned long long)s.records_written, (unsigned long long)s.records_read,
           (unsigned long long)s.drops, ctl_liveness(s.producer_pid, s.producer_alive_ns, now),
           ctl_liveness(s.consumer_pid, s.consumer_alive_ns, now));
}

int ctl_cmd_ring(ctl_t *ctl)
{
    static const char *const names[] = {"peek", "last", NULL};
    const char *pos[1], *peek, *last;
    uint64_t id, max = 10;
    char name[128];
    ring_t *r;
    herald_error_t err = {0};

    if (ctl_check_args(ctl, names, pos, 1, 1)) return 1;
    if (ctl_parse_u64("ring ID", pos[0], &id)) return 1;
    peek = ctl_opt(ctl, "peek");
    last = ctl_opt(ctl, "last");
    if (peek && last) return ctl_fail("ring: give --peek N or --last N, not both");
    if (peek && ctl_parse_u64("--peek", peek, &max)) return 1;
    if (last && ctl_parse_u64("--last", last, &max)) return 1;
    ring_name(name, sizeof name, ctl->cfg.shm_prefix, (unsigned)id);
    if (ring_open(&r, name, RING_INSPECT, 0, (unsigned)id, &err) < 0)
        return ctl_fail("ring /dev/shm/%s: %s", name, err.message);
    size_t first_pending = 0;
    ctl_peek_t pk = {.copy = malloc(ring_max_record(r) + 1),
                     .json = ctl->json,
                     .first_pending = last ? &first_pending : NULL};
    if (!pk.copy) {
        ring_close(r);
        return ctl_fail("out of memory");
    }
    jbuf_init(&pk.out, 0);
    if (!ctl->json) ctl_ring_header_line(name, r);
    long got = last ? ring_peek_last(r, ctl_peek_one, &pk, (size_t)max, &first_pending)
                    : ring_peek(r, ctl_peek_one, &pk, (size_t)max);
    ring_stats_t s;
    ring_stats(r, &s);
    ring_close(r);
    if (ctl->json) putchar('[');
    if (pk.out.len) fwrite(pk.out.data, 1, pk.out.len, stdout);
    if (ctl->json) {
        puts("]");
    } else {
        if (got == 0 && !last)
            printf("(nothing pending: the gateway has read all %llu records written; --last N "
                   "shows the most recent ones)\n",
                   (unsigned long long)s.records_written);
        else if (got == 0)
            printf("(no records written since the ring last wrapped)\n");
    }
    jbuf_free(&pk.out);
    free(pk.copy);
    if (got < 0) return ctl_fail("ring /dev/shm/%s: corrupt record", name);
    return 0;
}
