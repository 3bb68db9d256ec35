/* clpeer.h - drive a cluster node in another process (tests/cluster/cl_peer.c) through two
 * FIFOs, so a test can SIGSTOP or kill -9 it. Spawned through tests/procs.h (cleaned up). */
#ifndef HERALD_TEST_CLPEER_H
#define HERALD_TEST_CLPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int cmd_fd, reply_fd;
    char buf[1024];
    size_t len;
} clpeer_t;

/* Start a peer node (dir: a private temp dir for its FIFOs and log). Waits for "ready". */
int clpeer_start(clpeer_t *p, const char *dir, const char *url, unsigned node, unsigned parts,
                 unsigned replicas, bool no_lease_check);
/* The same with the cluster layer's production timings (clnode_production_timings). */
int clpeer_start_production(clpeer_t *p, const char *dir, const char *url, unsigned node,
                            unsigned parts, unsigned replicas);

/* Send one command line and read its one-line answer into reply (timeout_ms). Returns 0, or
 * -1 on timeout or a dead peer. */
int clpeer_cmd(clpeer_t *p, const char *cmd, char *reply, size_t cap, int timeout_ms);

/* Send a command without waiting for its answer (for a peer about to be stopped). */
int clpeer_send(clpeer_t *p, const char *cmd);
/* Read the next answer line. */
int clpeer_read(clpeer_t *p, char *reply, size_t cap, int timeout_ms);

/* quit (or SIGKILL if it does not) and reap. */
void clpeer_stop(clpeer_t *p);

#endif
