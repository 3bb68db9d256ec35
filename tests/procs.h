/* procs.h - process-level test helpers: spawn herald binaries, wait for their sockets, stop
 * them by pid, and give each test a private runtime dir, shm prefix and free ports.
 *
 * Everything spawned or created through these helpers is recorded; procs_cleanup() (also
 * run at exit, so a failed assertion in a forked Check test still cleans up) kills the
 * recorded pids, removes the recorded dirs and unlinks /dev/shm/<prefix>* objects. */
#ifndef HERALD_TEST_PROCS_H
#define HERALD_TEST_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "skip.h"

/* A private runtime for one test. */
typedef struct {
    char dir[256];       /* temp dir (runtime.dir) */
    char shm_prefix[64]; /* unique runtime.shm_prefix */
    char config[320];    /* path of the config file written by procs_env_write_config */
} procs_env_t;

/* Create a temp dir named after tag and the pid, and a unique shm prefix. Returns 0 or -1. */
int procs_env_init(procs_env_t *env, const char *tag);

/* Write <dir>/herald.ini from the given INI text (appended after a [runtime] section with
 * dir and shm_prefix of env). Returns 0 or -1. */
int procs_env_write_config(procs_env_t *env, const char *ini_text);

/* Path of a built binary: $HERALD_BUILD_ROOT/rel (or rel when unset). */
const char *procs_build_path(const char *rel, char *out, size_t len);

/* Spawn path with argv (argv[0] included, NULL-terminated). stdout and stderr go to
 * log_path (appended) when not NULL. Returns the pid or -1. */
pid_t procs_spawn(const char *path, char *const argv[], const char *log_path);

/* Wait until a TCP connect to host:port (or a unix stream socket path) succeeds. */
int procs_wait_tcp(const char *host, uint16_t port, int timeout_ms);
int procs_wait_unix(const char *path, int timeout_ms);

/* GET path from host:port over HTTP/1.0. Returns the status code (body, NUL-terminated, in
 * body up to cap) or -1. */
int procs_http_get(const char *host, uint16_t port, const char *path, char *body, size_t cap);

/* POST body (content type ctype) to path; extra_header ("Name: value", or NULL) is added.
 * Returns the status code with the response body in resp, or -1. */
int procs_http_post(const char *host, uint16_t port, const char *path, const char *ctype,
                    const char *extra_header, const char *body, char *resp, size_t cap);

/* Send sig to pid (only pids spawned here). */
int procs_kill(pid_t pid, int sig);

/* Wait up to timeout_ms for pid to exit; returns its wait status, or -1 if it did not exit
 * (it is then killed with SIGKILL and reaped). */
int procs_reap(pid_t pid, int timeout_ms);

/* SIGTERM, wait up to timeout_ms, then SIGKILL; reaps. Returns the wait status. */
int procs_stop(pid_t pid, int timeout_ms);

/* A TCP port on 127.0.0.1, below the ephemeral range, such that ports [port, port+count)
 * are all free now (0 if none found). */
uint16_t procs_free_ports(unsigned count);

/* Output of a command run to completion. */
typedef struct {
    int rc; /* exit code, 128 + signal when killed, -1 when it could not start */
    char out[65536];
    char err[8192];
} procs_output_t;

/* Run argv (argv[0] is the path) to completion, capturing stdout and stderr; killed with
 * SIGKILL after timeout_s. Returns r->rc. */
int procs_run(const char *const *argv, procs_output_t *r, int timeout_s);

/* Unlink every /dev/shm object whose name starts with prefix. */
void procs_shm_cleanup(const char *prefix);

/* Remove a directory tree. */
void procs_rmtree(const char *dir);

/* Kill every recorded pid, remove recorded dirs (kept when HERALD_TEST_KEEP is set, for
 * their logs) and shm prefixes. Idempotent. */
void procs_cleanup(void);

/* Check runs each test in a forked child that ends with _exit when an assertion fails, so
 * neither atexit nor a checked teardown runs. Call procs_registry_begin() in main before
 * srunner_run_all: every pid, dir and shm prefix recorded from then on (in any forked test)
 * is also appended to a registry file, and procs_registry_end() after the run kills and
 * removes whatever a failed test left behind. */
void procs_registry_begin(void);
void procs_registry_end(void);

/* A process-level suite's main: run suite between procs_registry_begin/end (SIGPIPE
 * ignored, as peers of the tests close sockets). Returns the exit status. */
struct Suite;
int procs_run_suite(struct Suite *suite);

#endif
