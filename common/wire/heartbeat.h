/* heartbeat.h - a process's liveness, published two ways: a word in shared memory that its
 * event loop refreshes (read by herald-supervisor and heraldctl without asking the process),
 * and systemd's notification protocol (READY=1, WATCHDOG=1) when NOTIFY_SOCKET is set.
 *
 * Object: /dev/shm/<prefix>.hb.<name>, one per process, <name> as the supervisor calls it
 * ("broker", "gateway0", ...). Created by that process (0600, O_EXCL; an existing object is
 * reused only when it is ours and private), never written by anyone else. Layout (host
 * order, this machine only):
 *
 *   offset  size  field                                                   written by
 *   0       8     magic  HB_MAGIC ("HRLDBEAT")                             owner, at open
 *   8       4     version HB_VERSION                                      owner, at open
 *   12      4     header_bytes (HB_BYTES)                                 owner, at open
 *   16      4     pid: the owner; 0 while (re)opening and after a clean close   owner
 *   20      4     (zero)
 *   24      8     started_ns: CLOCK_MONOTONIC when the owner opened it    owner, at open
 *   32      8     beat_ns: CLOCK_MONOTONIC of the owner's latest loop pass    owner's loop
 *   40      16    name, NUL-padded                                        owner, at open
 *   56      8     (zero)
 *
 * Ordering: the owner stores pid = 0, writes the identity and beat_ns = now, then stores pid
 * with release. Its loop stores beat_ns with release on every pass. A reader loads pid with
 * acquire and then beat_ns: when pid is the process it expects, beat_ns is that process's
 * (a previous owner of the name is dead before the next one opens it: the supervisor starts
 * a child only after reaping the last one). CLOCK_MONOTONIC is one clock for every process
 * of the machine, so a reader's now minus beat_ns is the silence.
 *
 * Only the event loop may beat: a helper thread would keep beating while the loop is stuck. */
#ifndef HERALD_HEARTBEAT_H
#define HERALD_HEARTBEAT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define HB_MAGIC    0x54414542444c5248ull /* "HRLDBEAT" */
#define HB_VERSION  1u
#define HB_BYTES    64u
#define HB_NAME_MAX 15u

typedef struct hb_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_bytes;
    _Atomic uint32_t pid;
    uint32_t pad0;
    _Atomic uint64_t started_ns;
    _Atomic uint64_t beat_ns;
    char name[HB_NAME_MAX + 1];
    uint64_t pad1;
} hb_header_t;

/* The owner's handle. Zero-initialised = closed (hb_beat does nothing with the shm part). */
typedef struct {
    hb_header_t *hdr;      /* mapped read-write; NULL when closed */
    char shm_name[128];    /* "<prefix>.hb.<name>", for the unlink at close */
    uint64_t wd_period_ns; /* systemd watchdog: WATCHDOG=1 this often (0 = no watchdog) */
    uint64_t wd_next_ns;   /* next WATCHDOG=1 due at this CLOCK_MONOTONIC time */
    bool wd_failing;       /* the last WATCHDOG=1 failed (logged once) */
} hb_t;

/* What a reader sees. */
typedef struct {
    pid_t pid;           /* 0 = not open (starting or closed cleanly) */
    uint64_t started_ns; /* CLOCK_MONOTONIC */
    uint64_t beat_ns;    /* CLOCK_MONOTONIC of the latest beat */
} hb_snapshot_t;

/* "<prefix>.hb.<name>" (no leading slash) into out. */
void hb_shm_name(char *out, size_t len, const char *prefix, const char *name);

/* Create (or take over our own stale) heartbeat object for this process and beat once; also
 * reads systemd's watchdog interval (hb_notify_init). name is at most HB_NAME_MAX bytes.
 * Returns 0, or -HERR_IO (system error, or an object that is not ours or not private:
 * refused, never changed) / -HERR_BAD_VALUE (name too long), err naming the object. */
int hb_open(hb_t *h, const char *prefix, const char *name, herald_error_t *err);

/* Only the systemd half, for a process without a heartbeat object (herald-supervisor): read
 * $WATCHDOG_USEC (honouring $WATCHDOG_PID) so hb_beat sends WATCHDOG=1 every half of it
 * (at most every second). No-op without NOTIFY_SOCKET. */
void hb_notify_init(hb_t *h, uint64_t now_ns);

/* Tell systemd the process is serving (READY=1). No-op without NOTIFY_SOCKET. */
void hb_notify_ready(const hb_t *h);

/* Send WATCHDOG=1 now and schedule the next one (hb_beat calls it when due). */
void hb_notify_watchdog(hb_t *h, uint64_t now_ns);

/* One pass of the event loop: publish now_ns (CLOCK_MONOTONIC, e.g. mono_ns()), and ping the
 * systemd watchdog when due. Cheap enough for every pass: one release store and a compare. */
static inline void hb_beat(hb_t *h, uint64_t now_ns)
{
    /* release: pairs with the reader's acquire of pid then beat_ns (see the header) */
    if (h->hdr) atomic_store_explicit(&h->hdr->beat_ns, now_ns, memory_order_release);
    if (h->wd_period_ns && now_ns >= h->wd_next_ns) hb_notify_watchdog(h, now_ns);
}

/* Clean exit: pid = 0, unmap and unlink the object. Safe on a closed handle. */
void hb_close(hb_t *h);

/* Read the heartbeat of name read-only. Returns 0, -HERR_NOT_FOUND (no object yet),
 * -HERR_CORRUPT (wrong magic, version or size: not opened yet, or not a heartbeat) or
 * -HERR_IO (system error, or an object not owned by our uid: not trusted). */
int hb_read(const char *prefix, const char *name, hb_snapshot_t *out, herald_error_t *err);

#endif
