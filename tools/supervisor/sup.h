/* sup.h - herald-supervisor internals: the supervised children and their life cycle. */
#ifndef HERALD_SUP_H
#define HERALD_SUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "heartbeat.h"
#include "rtdir.h"

#define SUP_BACKOFF_MIN_MS 100u
#define SUP_BACKOFF_MAX_MS 10000u
#define SUP_STABLE_MS      30000u /* uptime after which the backoff starts over */
#define SUP_READY_WAIT_MS  10000u /* bound on waiting for broker.sock to accept */
#define SUP_READY_POLL_MS  50u
#define SUP_STOP_GRACE_MS  5000u /* SIGTERM, then SIGKILL after this */
#define SUP_HANG_CHECK_MS  250u  /* heartbeats are read this often (supervisor.hang_s > 0) */

typedef enum { SUP_STARTING, SUP_UP, SUP_BACKOFF, SUP_STOPPING, SUP_STOPPED } sup_state_t;

typedef struct {
    char name[16]; /* "broker", "gateway0", ... */
    int gw_id;     /* -1 for the broker */
    pid_t pid;     /* 0 when not running */
    sup_state_t state;
    unsigned restarts; /* starts after the first */
    bool started_once;
    time_t started_at;      /* wall clock of the current/last start */
    uint64_t started_ms;    /* monotonic, for the stable-uptime rule */
    uint64_t backoff_ms;    /* delay before the next restart */
    uint64_t restart_at_ms; /* monotonic deadline while SUP_BACKOFF */
    uint64_t ready_by_ms;   /* broker: give up waiting for readiness at this time */
    char last_exit[48];     /* "exit 1", "signal 9 (Killed)", "hung", "" */
    unsigned hangs;         /* times it was killed for a silent heartbeat */
    bool hung;              /* SIGKILLed as hung; not yet reaped */
    uint64_t alive_ns;      /* CLOCK_MONOTONIC of its last sign of life: spawn, then beats */
} sup_child_t;

typedef struct {
    herald_config_t cfg;
    const char *config_path; /* resolved, passed to every child with -c */
    char **overrides;        /* "-o" values, passed through unchanged */
    int novr;
    char bin_broker[PATH_MAX];
    char bin_gateway[PATH_MAX];
    sup_child_t *kids; /* kids[0] = broker, kids[1 + i] = gateway i */
    size_t nkids;
    rtdir_t rt; /* runtime.dir, checked and open */
    int sigfd;
    int lockfd;
    bool gateways_started; /* after the broker was first ready */
    bool stopping;
    int stop_phase; /* 0: stopping gateways, 1: stopping the broker */
    uint64_t stop_deadline_ms;
    uint64_t hang_check_at_ms; /* next heartbeat check */
    hb_t notify;               /* systemd: READY=1 once everything started, WATCHDOG=1 */
    bool ready_notified;
} sup_t;

uint64_t sup_now_ms(void);

/* Locate herald-broker and herald-gateway: $HERALD_BIN_DIR, else next to this executable,
 * else the build tree's ../broker and ../gateway. Returns 0 or -1 (reported). */
int sup_find_binaries(sup_t *s);

/* Allocate the child table from the config. Returns 0 or -1. */
int sup_children_init(sup_t *s);

/* Start one child now (fork + exec). On failure it is scheduled for a retry. */
void sup_spawn(sup_t *s, sup_child_t *c);

/* Collect every exited child and schedule restarts (or mark it stopped while stopping). */
void sup_reap(sup_t *s);

/* Send sig to every running child (SIGHUP: reload), leaving their states alone. Returns
 * how many were signalled. */
size_t sup_forward_signal(sup_t *s, int sig);

/* SIGTERM the gateways; the broker follows once they are gone (see sup_step). */
void sup_begin_stop(sup_t *s);

/* Do whatever is due now (restarts, readiness, heartbeat checks, stop phases). Returns true
 * when everything has stopped and the supervisor should exit. */
bool sup_step(sup_t *s);

/* Milliseconds poll may sleep before sup_step has something due (-1 = until a signal). */
int sup_poll_timeout(const sup_t *s);

/* Write <runtime.dir>/status.json atomically (see sup_status.h, rtdir_write_file). */
void sup_write_status(const sup_t *s);

/* shm_unlink every /dev/shm/<prefix>.* object except the broker's journal
 * (<prefix>.broker.journal*): user sequences, history and the dedup window survive a
 * clean stop and start of the whole node, as they survive a broker restart. Delete the
 * journal by hand (or let a reboot clear /dev/shm) for a node that starts from nothing. */
void sup_shm_unlink_prefix(const char *prefix);

#endif
