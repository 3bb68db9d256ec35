/* bench_sys.c - start and stop a private broker + gateways for benchmarks. */
#include "bench_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t sys_spawn(const char *bin, char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -1 : pid;
}

void bench_proc_usage(pid_t pid, double *cpu_s, double *rss_mib)
{
    char path[64], buf[4096];
    *cpu_s = *rss_mib = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(buf, sizeof buf, f)) {
            char *p = strrchr(buf, ')');
            unsigned long ut = 0, st = 0;
            if (p &&
                sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f) return;
    while (fgets(buf, sizeof buf, f)) {
        unsigned long kb;
        if (sscanf(buf, "VmRSS: %lu kB", &kb) == 1) *rss_mib = (double)kb / 1024.0;
    }
    fclose(f);
}

static uint16_t sys_free_port(unsigned span)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        uint16_t base = (uint16_t)(20000 + (unsigned)(rand() % 30000));
        bool ok = true;
        for (unsigned i = 0; i < span && ok; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(base + i)};
            sa.sin_addr.s_addr = htonl(0x7f000001);
            ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(fd);
        }
        if (ok) return base;
    }
    return 0;
}

int bench_sys_start(bench_sys_t *sys, const char *bin_dir, unsigned gateways, const char *secret)
{
    if (!gateways || gateways > BENCH_SYS_MAX_GW) return -1;
    sys->gateways = gateways;
    snprintf(sys->dir, sizeof sys->dir, "/tmp/herald-bench-sys.%d", (int)getpid());
    snprintf(sys->prefix, sizeof sys->prefix, "hbsys%d", (int)getpid());
    snprintf(sys->config, sizeof sys->config, "%s/herald.ini", sys->dir);
    if (mkdir(sys->dir, 0700) < 0 && errno != EEXIST) return -1;
    sys->http = sys_free_port(1);
    sys->ws = sys_free_port(sys->gateways);
    FILE *f = fopen(sys->config, "w");
    if (!f) return -1;
    fprintf(f,
            "[runtime]\ndir = %s\nshm_prefix = %s\n[broker]\nhttp = 127.0.0.1:%u\n"
            "[gateway]\ncount = %u\nlisten = 127.0.0.1:%u\n[auth]\nsecret = %s\n"
            "[log]\nlevel = warn\n",
            sys->dir, sys->prefix, sys->http, sys->gateways, sys->ws, secret);
    fclose(f);
    char bin[PATH_MAX + 32], log[256], idbuf[16];
    snprintf(bin, sizeof bin, "%s/broker/herald-broker", bin_dir);
    snprintf(log, sizeof log, "%s/broker.log", sys->dir);
    char *bargv[] = {bin, (char *)"-c", sys->config, NULL};
    sys->broker = sys_spawn(bin, bargv, log);
    if (sys->broker < 0) return -1;
    char sock[256];
    snprintf(sock, sizeof sock, "%s/broker.sock", sys->dir);
    for (int i = 0; i < 500 && access(sock, F_OK); i++)
        usleep(10000);
    snprintf(bin, sizeof bin, "%s/gateway/herald-gateway", bin_dir);
    for (unsigned g = 0; g < sys->gateways; g++) {
        snprintf(idbuf, sizeof idbuf, "%u", g);
        snprintf(log, sizeof log, "%s/gateway%u.log", sys->dir, g);
        char *gargv[] = {bin, (char *)"--id", idbuf, (char *)"-c", sys->config, NULL};
        sys->gw[g] = sys_spawn(bin, gargv, log);
        if (sys->gw[g] < 0) return -1;
    }
    usleep(500000); /* listeners up; sessions retry below anyway */
    return 0;
}

void bench_sys_stop(bench_sys_t *sys)
{
    pid_t all[BENCH_SYS_MAX_GW + 1];
    unsigned n = 0;
    for (unsigned g = 0; g < sys->gateways; g++)
        if (sys->gw[g] > 0) all[n++] = sys->gw[g];
    if (sys->broker > 0) all[n++] = sys->broker;
    for (unsigned i = 0; i < n; i++)
        kill(all[i], SIGTERM);
    for (unsigned i = 0; i < n; i++)
        waitpid(all[i], NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s /dev/shm/%s.*", sys->dir, sys->prefix);
    if (system(cmd) != 0) fprintf(stderr, "herald-bench: clean-up of %s failed\n", sys->dir);
}
