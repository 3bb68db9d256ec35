/* bk_harness.h - broker-specific test helpers on top of tests/procs.h (which spawns, waits,
 * kills, picks ports and cleans up): a private herald-broker, a raw keep-alive HTTP/1.1
 * client, and a test gateway that attaches to a ring through the control socket. */
#ifndef HERALD_BK_HARNESS_H
#define HERALD_BK_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <msgpack.h>

#include "herald.h"
#include "procs.h"
#include "ring.h"

#define BKH_MAX_OVERRIDES 16

/* One broker under test: private runtime dir, shm prefix and HTTP port. */
typedef struct {
    procs_env_t env; /* runtime dir, shm prefix, config path */
    char sock[100];  /* unix socket paths fit sun_path */
    char ctrl[100];
    char logpath[320];
    uint16_t http_port;
    pid_t pid;
    int n_over;
    char over[BKH_MAX_OVERRIDES][128];
    unsigned shm_mb; /* >0: run in a private mount namespace with a tmpfs of this many MiB
                      * over /dev/shm (root and unshare(1) needed: see bkh_private_shm_ok) */
} bkh_t;

/* Create the runtime dir and config; overrides are "section.key=value" (NULL-terminated). */
void bkh_init(bkh_t *h, const char *const *overrides);
/* Whether bkh_t.shm_mb can work here (root, /usr/bin/unshare, mounts allowed). */
bool bkh_private_shm_ok(void);
/* Start the broker and wait until its sockets answer. Returns 0 or -1. */
int bkh_start(bkh_t *h);
/* Wait up to timeout_ms for the broker to exit by itself and reap it: the signal that ended
 * it, 0 for a normal exit, -1 if it did not end in time. */
int bkh_wait_exit(bkh_t *h, int timeout_ms);
/* Send sig and reap the broker. */
void bkh_stop(bkh_t *h, int sig);
/* Kill the broker, unlink our shm objects, remove the runtime dir (procs_cleanup).
 * Idempotent. */
void bkh_cleanup(bkh_t *h);

/* --- HTTP --- */
typedef struct {
    int status;
    char headers[2048];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} bkh_http_resp_t;

/* A keep-alive capable raw connection to the broker's HTTP port. */
int bkh_http_connect(bkh_t *h);
/* One request on fd (extra_headers: "" or lines ending in \r\n). Returns status or -1. */
int bkh_http(int fd, const char *method, const char *path, const char *extra_headers,
             const char *body, size_t body_len, bkh_http_resp_t *resp);
/* The two halves of bkh_http, to have requests on several connections in flight at once. */
int bkh_http_send(int fd, const char *method, const char *path, const char *extra_headers,
                  const char *body, size_t body_len);
int bkh_http_recv(int fd, bkh_http_resp_t *resp);
void bkh_http_free(bkh_http_resp_t *resp);
/* The number after "key": in a /api/stats body; fails the test when key is missing. */
uint64_t bkh_stat_of(const char *body, const char *key);
/* GET /api/stats on a connection of its own: the number at key (as bkh_stat_of). */
uint64_t bkh_stat(bkh_t *h, const char *key);

/* --- producer payloads --- */
/* JSON text -> msgpack bytes in sb (replacing). */
void bkh_msgpack(msgpack_sbuffer *sb, const char *json);
/* A valid system_notice for user with priority and message id ("" = none) as JSON text. */
void bkh_notice_json(char *out, size_t cap, const char *user, int prio, const char *id);
/* Publish JSON text (as msgpack) with libherald; fails the test when the call fails. Returns
 * the broker's answer (accepted or refused). */
herald_result_t bkh_publish_json(herald_client_t *c, const char *json);

/* --- test gateway --- */
typedef struct {
    uint32_t type;
    uint64_t seq, session, from, to, last_seq;
    int prio;
    char user[72];
    char message_id[72];
} bkh_rec_t;

typedef struct {
    int fd;
    unsigned id;
    ring_t *ring;
    bkh_rec_t *recs; /* everything read so far, but REC_CLOCK records */
    size_t n, cap;
    size_t clocks; /* REC_CLOCK records read */
} bkh_gw_t;

/* hello over control.sock, wait for hello_ok, attach to the ring as consumer. */
int bkh_gw_attach(bkh_gw_t *g, bkh_t *h, unsigned id);
/* Close the control connection (the broker must mark the gateway down); keeps the ring. */
void bkh_gw_disconnect(bkh_gw_t *g);
void bkh_gw_free(bkh_gw_t *g);
int bkh_gw_open(bkh_gw_t *g, uint64_t session, const char *user, uint64_t since);
int bkh_gw_close(bkh_gw_t *g, uint64_t session, const char *user);
int bkh_gw_replay(bkh_gw_t *g, uint64_t session, const char *user, uint64_t from, uint64_t to);
int bkh_gw_resync(bkh_gw_t *g, const char *user, uint64_t sessions, uint64_t after);
/* Read ring records until at least `want` in total were collected or timeout_ms passed.
 * Returns the total collected. */
size_t bkh_gw_collect(bkh_gw_t *g, size_t want, int timeout_ms);
/* Wait for a record of type (after index from); returns its index or -1. */
long bkh_gw_wait_type(bkh_gw_t *g, size_t from, uint32_t type, int timeout_ms);

#endif
