/* clpeer.c - spawn and talk to tests/cluster/cl_peer through FIFOs. */
#include "clpeer.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "herald_time.h"
#include "procs.h"

static int clpeer_spawn(clpeer_t *p, const char *dir, const char *url, unsigned node,
                        unsigned parts, unsigned replicas, bool no_lease_check, bool production)
{
    memset(p, 0, sizeof *p);
    p->cmd_fd = p->reply_fd = -1;
    char cmd_path[320], reply_path[320], log_path[320], path[320];
    char a_node[16], a_parts[16], a_repl[16], a_nolease[4], a_prod[4];
    snprintf(cmd_path, sizeof cmd_path, "%s/peer%u.cmd", dir, node);
    snprintf(reply_path, sizeof reply_path, "%s/peer%u.reply", dir, node);
    snprintf(log_path, sizeof log_path, "%s/peer%u.log", dir, node);
    snprintf(a_node, sizeof a_node, "%u", node);
    snprintf(a_parts, sizeof a_parts, "%u", parts);
    snprintf(a_repl, sizeof a_repl, "%u", replicas);
    snprintf(a_nolease, sizeof a_nolease, "%d", no_lease_check ? 1 : 0);
    snprintf(a_prod, sizeof a_prod, "%d", production ? 1 : 0);
    unlink(cmd_path);
    unlink(reply_path);
    if (mkfifo(cmd_path, 0600) < 0 || mkfifo(reply_path, 0600) < 0) return -1;
    char *argv[] = {(char *)procs_build_path("tests/cluster/cl_peer", path, sizeof path),
                    (char *)url,
                    a_node,
                    a_parts,
                    a_repl,
                    a_nolease,
                    cmd_path,
                    reply_path,
                    a_prod,
                    NULL};
    p->pid = procs_spawn(argv[0], argv, log_path);
    if (p->pid < 0) return -1;
    /* Opening a FIFO blocks until the other end opens: the peer opens cmd, then reply. */
    p->cmd_fd = open(cmd_path, O_WRONLY | O_CLOEXEC);
    p->reply_fd = open(reply_path, O_RDONLY | O_CLOEXEC);
    if (p->cmd_fd < 0 || p->reply_fd < 0) return -1;
    char line[64];
    if (clpeer_read(p, line, sizeof line, 20000) < 0 || strcmp(line, "ready") != 0) return -1;
    return 0;
}

int clpeer_start(clpeer_t *p, const char *dir, const char *url, unsigned node, unsigned parts,
                 unsigned replicas, bool no_lease_check)
{
    return clpeer_spawn(p, dir, url, node, parts, replicas, no_lease_check, false);
}

int clpeer_start_production(clpeer_t *p, const char *dir, const char *url, unsigned node,
                            unsigned parts, unsigned replicas)
{
    return clpeer_spawn(p, dir, url, node, parts, replicas, false, true);
}

int clpeer_send(clpeer_t *p, const char *cmd)
{
    size_t len = strlen(cmd);
    char line[512];
    snprintf(line, sizeof line, "%s\n", cmd);
    return write(p->cmd_fd, line, len + 1) == (ssize_t)(len + 1) ? 0 : -1;
}

int clpeer_read(clpeer_t *p, char *reply, size_t cap, int timeout_ms)
{
    long end = (long)mono_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            snprintf(reply, cap, "%.*s", (int)n, p->buf);
            p->len -= n + 1;
            memmove(p->buf, nl + 1, p->len);
            return 0;
        }
        long left = end - (long)mono_ms();
        if (left <= 0 || p->len == sizeof p->buf) return -1;
        struct pollfd pfd = {p->reply_fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) continue;
        ssize_t r = read(p->reply_fd, p->buf + p->len, sizeof p->buf - p->len);
        if (r <= 0) return -1;
        p->len += (size_t)r;
    }
}

int clpeer_cmd(clpeer_t *p, const char *cmd, char *reply, size_t cap, int timeout_ms)
{
    if (clpeer_send(p, cmd) < 0) return -1;
    return clpeer_read(p, reply, cap, timeout_ms);
}

void clpeer_stop(clpeer_t *p)
{
    if (p->pid > 0) {
        char line[64];
        if (kill(p->pid, 0) == 0 && clpeer_cmd(p, "quit", line, sizeof line, 5000) == 0)
            procs_reap(p->pid, 5000);
        else
            procs_reap(p->pid, 0);
    }
    if (p->cmd_fd >= 0) close(p->cmd_fd);
    if (p->reply_fd >= 0) close(p->reply_fd);
    p->pid = 0;
    p->cmd_fd = p->reply_fd = -1;
}
