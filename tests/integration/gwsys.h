/* gwsys.h - the real system for gateway tests: a private herald-broker and N herald-gateway
 * processes (tests/procs.h), WebSocket clients on them (tests/wsclient.h), and publishing
 * through libherald (herald.h) or the broker's HTTP API. Helpers assert with Check. */
#ifndef HERALD_TEST_GWSYS_H
#define HERALD_TEST_GWSYS_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "herald.h"
#include "procs.h"
#include "tls.h"
#include "wsclient.h"

#define GWS_SECRET  "gateway-system-test-secret"
#define GWS_WAIT    20000 /* bound on waits for expected events; generous for loaded ASan runs */
#define GWS_MAX_GW  2
#define GWS_MAX_OPT 8

typedef struct {
    procs_env_t env;
    unsigned n_gw;
    pid_t broker, gw[GWS_MAX_GW];
    uint16_t http, ws; /* broker HTTP port; gateway i listens on ws + i */
    char bin_broker[512], bin_gw[512];
    char sock[320];                    /* broker.sock, libherald's address */
    const char *opts[GWS_MAX_OPT + 1]; /* -o overrides given to every process */
    char ca[400]; /* the gateways' certificate when an override sets gateway.tls_cert: their
                   * ports speak TLS only, and clients verify against it */
    herald_client_t *producer;
} gws_t;

/* Start the broker and n_gw gateways (each healthy: broker link up, ring attached).
 * overrides: "section.key=value" strings (NULL-terminated, may be NULL), passed as -o. */
void gws_start(gws_t *s, unsigned n_gw, const char *const *overrides);
/* Only the runtime dir, ports and config (for a test that brings its own broker side). */
void gws_init(gws_t *s, unsigned n_gw, const char *const *overrides);
/* Rewrite the config file: the one gws_init writes with auth.secret = secret, then extra
 * (INI text, may be NULL; lines before any [section] belong to [auth]). */
void gws_write_config(gws_t *s, const char *secret, const char *extra);
/* Stop everything started (SIGTERM, then SIGKILL) and clean the runtime up. */
void gws_stop(gws_t *s);

/* (Re)start the broker and wait for its HTTP port; (re)start gateway id and wait until its
 * /healthz answers 200. */
void gws_spawn_broker(gws_t *s);
void gws_spawn_gateway(gws_t *s, unsigned id);
/* Start gateway id and wait only for its WebSocket port (not for the broker link). */
void gws_launch_gateway(gws_t *s, unsigned id);
/* kill -9 a process started here and reap it. */
void gws_kill9(gws_t *s, pid_t *pid);

/* Publish through libherald (the native socket); returns the assigned seq. prio < 0 leaves
 * the type's default; pad > 0 adds a payload string of that many bytes. */
uint64_t gws_publish(gws_t *s, const char *user, const char *type, int prio, size_t pad);
/* Publish a JSON notification object, or an array of n of them (one batch frame), through
 * libherald; every one must be accepted. seqs (may be NULL) gets the n assigned seqs.
 * Returns the first seq. */
uint64_t gws_publish_json(gws_t *s, const char *json, size_t n, uint64_t *seqs);
/* Publish through POST /api/publish; returns the assigned seq. */
uint64_t gws_publish_http(gws_t *s, const char *user, const char *type, int prio);

/* A JWT for user signed with GWS_SECRET, valid for an hour. */
void gws_token(const char *user, char *out, size_t cap);

/* Connect user to gateway gw (query appended to /ws, subprotocol or NULL) and read the
 * welcome. */
wsc_t *gws_client(gws_t *s, unsigned gw, const char *user, const char *query, const char *proto);

/* A counter from gateway gw's /stats. */
uint64_t gws_stat(gws_t *s, unsigned gw, const char *key);
/* GET path from gateway gw (over TLS when the gateways use it). Returns the status or -1. */
int gws_gw_get(gws_t *s, unsigned gw, const char *path, char *body, size_t cap);
/* ws[s]://127.0.0.1:<port of gw>/ws<query> into out. */
void gws_url(gws_t *s, unsigned gw, const char *query, char *out, size_t cap);
/* Connect with token to gateway gw; returns the handshake status (101, 401, 503 ...). */
int gws_connect(gws_t *s, unsigned gw, const char *token, const char *query, wsc_t **out);

/* Message expectations on a JSON session. */
json_t *gws_json(wsc_t *c, int timeout_ms); /* next message as JSON, NULL on timeout/close */
void gws_expect_seq(wsc_t *c, uint64_t seq);
void gws_expect_type(wsc_t *c, const char *type, json_t **out);
void gws_expect_silence(wsc_t *c, int ms);
/* Wait for the close: drains messages, then asserts the close code. */
void gws_expect_close(wsc_t *c, int code);
const char *gws_jstr(json_t *j, const char *k);
uint64_t gws_jint(json_t *j, const char *k);

/* Run a process-level suite with the procs registry (cleans up after failed forked
 * tests); returns the exit status for main. */
int gws_run(Suite *suite);

#endif
