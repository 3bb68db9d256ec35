/* cl_peer.c - a cluster node in its own process for the tests that stop or kill one: runs a
 * clnode and answers one line per command read from a FIFO (see clpeer.h). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clnode.h"

static clnode_t node;

typedef struct {
    unsigned p;
} own_ctx_t;

static bool owns_p(void *arg)
{
    own_ctx_t *o = arg;
    return node.owns[o->p] && cl_owns(node.cl, o->p);
}

static bool owns_all(void *arg)
{
    (void)arg;
    for (unsigned p = 0; p < cl_partitions(node.cl); p++)
        if (!node.owns[p] || !cl_owns(node.cl, p)) return false;
    return true;
}

static const char *status_name(int st)
{
    static const char *const names[] = {"ok", "unavailable", "fenced", "unknown"};
    return st >= 0 && st <= 3 ? names[st] : "timeout";
}

/* Execute one command line; the answer goes to reply. Returns false on quit. */
static bool run(char *line, FILE *reply)
{
    clnode_t *nodes[] = {&node};
    char cmd[32] = "", a[80] = "", b[80] = "";
    long x = 0;
    sscanf(line, "%31s %79s %79s", cmd, a, b);
    x = strtol(a, NULL, 10);
    if (strcmp(cmd, "wait_own") == 0) {
        own_ctx_t o = {(unsigned)x};
        fprintf(reply, "%s\n", clnode_wait(nodes, 1, atoi(b), owns_p, &o) ? "ok" : "timeout");
    } else if (strcmp(cmd, "wait_all") == 0) {
        fprintf(reply, "%s\n", clnode_wait(nodes, 1, (int)x, owns_all, NULL) ? "ok" : "timeout");
    } else if (strcmp(cmd, "append") == 0) { /* append USER COUNT */
        cln_round_t *r = clnode_append(&node, a, (size_t)atoi(b), "peer");
        int st = clnode_round_wait(nodes, 1, r, 20000);
        if (st == CL_OK)
            fprintf(reply, "ok %llu %llu\n", (unsigned long long)r->recs[0].seq,
                    (unsigned long long)r->recs[r->n - 1].seq);
        else
            fprintf(reply, "fail %s\n", status_name(st));
        free(r);
    } else if (strcmp(cmd, "owns") == 0) {
        fprintf(reply, "%d\n", node.owns[x] && cl_owns(node.cl, (unsigned)x));
    } else if (strcmp(cmd, "pause") == 0) {
        cl_test_pause(node.cl, x != 0);
        fprintf(reply, "ok\n");
    } else if (strcmp(cmd, "silent") == 0) { /* hold forwarded publishes unanswered */
        node.forward_silent = x != 0;
        fprintf(reply, "ok\n");
    } else if (strcmp(cmd, "forwarded") == 0) { /* forwarded publishes received */
        fprintf(reply, "%u\n", node.forwarded_in);
    } else if (strcmp(cmd, "seq") == 0) {
        fprintf(reply, "%llu\n", (unsigned long long)clnode_user_seq(&node, a));
    } else if (strcmp(cmd, "quit") == 0) {
        fprintf(reply, "ok\n");
        return false;
    } else {
        fprintf(reply, "error unknown command %s\n", cmd);
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: cl_peer URL NODE PARTS REPLICAS NOLEASECHECK CMD_FIFO REPLY_FIFO "
                        "[PRODUCTION_TIMINGS]\n");
        return 2;
    }
    cl_config_t cfg;
    clnode_config(&cfg, argv[1], (unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]),
                  (unsigned)atoi(argv[4]));
    cfg.test_no_lease_check = atoi(argv[5]) != 0;
    if (argc == 9 && atoi(argv[8])) clnode_production_timings(&cfg);
    int in = open(argv[6], O_RDONLY);
    FILE *reply = fopen(argv[7], "w");
    if (in < 0 || !reply || clnode_open(&node, &cfg) < 0) return 1;
    setvbuf(reply, NULL, _IOLBF, 0);
    fprintf(reply, "ready\n");
    char buf[4096];
    size_t len = 0;
    clnode_t *nodes[] = {&node};
    for (;;) {
        struct pollfd pfd[2] = {{in, POLLIN, 0}, {cl_fd(node.cl), POLLIN, 0}};
        poll(pfd, 2, 50);
        clnode_pump(nodes, 1, 0);
        if (!(pfd[0].revents & (POLLIN | POLLHUP))) continue;
        ssize_t r = read(in, buf + len, sizeof buf - 1 - len);
        if (r <= 0) break; /* the test went away */
        len += (size_t)r;
        buf[len] = '\0';
        char *nl;
        bool more = true;
        while (more && (nl = strchr(buf, '\n'))) {
            *nl = '\0';
            more = run(buf, reply);
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (!more) break;
    }
    clnode_close(&node);
    fclose(reply);
    close(in);
    return 0;
}
