/* procs.c - spawn/stop test processes by pid, wait for sockets, private runtime dirs. */
#include "procs.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "check_run.h"
#include "herald_time.h"

extern char **environ;

#define PROCS_MAX 64

static pid_t procs_pids[PROCS_MAX];
static char procs_dirs[8][256];
static char procs_prefixes[8][64];
static unsigned procs_n_dirs, procs_n_prefixes;
static bool procs_atexit_set;
static pid_t procs_owner; /* the process that recorded them (not a spawned child) */

static void procs_record_init(void)
{
    if (procs_atexit_set && procs_owner == getpid()) return;
    if (!procs_atexit_set) atexit(procs_cleanup);
    procs_atexit_set = true;
    if (procs_owner != getpid()) {
        /* a forked test starts with its own records */
        memset(procs_pids, 0, sizeof procs_pids);
        procs_n_dirs = procs_n_prefixes = 0;
        procs_owner = getpid();
    }
}

#define PROCS_REGISTRY_ENV "HERALD_PROCS_REGISTRY"

static void procs_registry_add(const char *kind, const char *value)
{
    const char *path = getenv(PROCS_REGISTRY_ENV);
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s %s\n", kind, value);
    fclose(f);
}

void procs_registry_begin(void)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/herald-procs.%d.reg", (int)getpid());
    unlink(path);
    setenv(PROCS_REGISTRY_ENV, path, 1);
}

void procs_registry_end(void)
{
    const char *path = getenv(PROCS_REGISTRY_ENV);
    if (!path) return;
    FILE *f = fopen(path, "r");
    char line[400];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "pid ", 4)) {
            pid_t pid = (pid_t)atoi(line + 4);
            if (pid > 1 && kill(pid, 0) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0); /* not our child: reaped by init, this just fails */
            }
        } else if (!strncmp(line, "shm ", 4)) {
            procs_shm_cleanup(line + 4);
        } else if (!strncmp(line, "dir ", 4) && !getenv("HERALD_TEST_KEEP")) {
            procs_rmtree(line + 4);
        }
    }
    if (f) fclose(f);
    unlink(path);
    unsetenv(PROCS_REGISTRY_ENV);
}

int procs_env_init(procs_env_t *env, const char *tag)
{
    static unsigned seq;
    procs_record_init();
    memset(env, 0, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/herald-%s-%d-XXXXXX", tag, (int)getpid());
    if (!mkdtemp(env->dir)) return -1;
    snprintf(env->shm_prefix, sizeof env->shm_prefix, "ht%d.%u.%lx", (int)getpid(), seq++,
             (unsigned long)(mono_ms() & 0xffffff));
    procs_registry_add("dir", env->dir);
    procs_registry_add("shm", env->shm_prefix);
    if (procs_n_dirs < 8) snprintf(procs_dirs[procs_n_dirs++], 256, "%s", env->dir);
    if (procs_n_prefixes < 8)
        snprintf(procs_prefixes[procs_n_prefixes++], 64, "%s", env->shm_prefix);
    snprintf(env->config, sizeof env->config, "%s/herald.ini", env->dir);
    return 0;
}

int procs_env_write_config(procs_env_t *env, const char *ini_text)
{
    FILE *f = fopen(env->config, "w");
    if (!f) return -1;
    fprintf(f, "[runtime]\ndir = %s\nshm_prefix = %s\n\n%s\n", env->dir, env->shm_prefix,
            ini_text ? ini_text : "");
    return fclose(f) == 0 ? 0 : -1;
}

const char *procs_build_path(const char *rel, char *out, size_t len)
{
    const char *root = getenv("HERALD_BUILD_ROOT");
    if (root && *root)
        snprintf(out, len, "%s/%s", root, rel);
    else
        snprintf(out, len, "%s", rel);
    return out;
}

pid_t procs_spawn(const char *path, char *const argv[], const char *log_path)
{
    procs_record_init();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log_path) {
        posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    for (unsigned i = 0; i < PROCS_MAX; i++) {
        if (!procs_pids[i]) {
            procs_pids[i] = pid;
            break;
        }
    }
    char num[24];
    snprintf(num, sizeof num, "%d", (int)pid);
    procs_registry_add("pid", num);
    return pid;
}

static int procs_try_connect(int family, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc = connect(fd, sa, len);
    close(fd);
    return rc;
}

int procs_wait_tcp(const char *host, uint16_t port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    do {
        if (procs_try_connect(AF_INET, (struct sockaddr *)&sa, sizeof sa) == 0) return 0;
        usleep(10000);
    } while (mono_ms() < end);
    return -1;
}

int procs_wait_unix(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    do {
        if (procs_try_connect(AF_UNIX, (struct sockaddr *)&sa, sizeof sa) == 0) return 0;
        usleep(10000);
    } while (mono_ms() < end);
    return -1;
}

static int procs_http(const char *host, uint16_t port, const char *req, size_t req_len, char *body,
                      size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static char resp[65536];
    size_t got = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof resp - 1) break;
    }
    close(fd);
    resp[got] = '\0';
    int status;
    if (sscanf(resp, "HTTP/%*s %d", &status) != 1) return -1;
    const char *b = strstr(resp, "\r\n\r\n");
    if (body && cap) snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

int procs_http_get(const char *host, uint16_t port, const char *path, char *body, size_t cap)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    return procs_http(host, port, req, (size_t)n, body, cap);
}

int procs_http_post(const char *host, uint16_t port, const char *path, const char *ctype,
                    const char *extra_header, const char *body, char *resp, size_t cap)
{
    size_t blen = strlen(body), hlen = 1024 + (extra_header ? strlen(extra_header) : 0);
    char *req = malloc(hlen + blen);
    if (!req) return -1;
    int n = snprintf(req, hlen,
                     "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     path, host, ctype, blen, extra_header ? extra_header : "",
                     extra_header ? "\r\n" : "");
    memcpy(req + n, body, blen);
    int status = procs_http(host, port, req, (size_t)n + blen, resp, cap);
    free(req);
    return status;
}

static bool procs_known(pid_t pid)
{
    for (unsigned i = 0; i < PROCS_MAX; i++)
        if (procs_pids[i] == pid) return true;
    return false;
}

static void procs_forget(pid_t pid)
{
    for (unsigned i = 0; i < PROCS_MAX; i++)
        if (procs_pids[i] == pid) procs_pids[i] = 0;
}

int procs_kill(pid_t pid, int sig)
{
    if (pid <= 0 || !procs_known(pid)) return -1;
    return kill(pid, sig);
}

int procs_reap(pid_t pid, int timeout_ms)
{
    if (pid <= 0 || !procs_known(pid)) return -1;
    uint64_t end = mono_ms() + (uint64_t)timeout_ms;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            procs_forget(pid);
            return status;
        }
        if (r < 0 && errno != EINTR) {
            procs_forget(pid);
            return -1;
        }
        usleep(5000);
    } while (mono_ms() < end);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    procs_forget(pid);
    return -1;
}

int procs_stop(pid_t pid, int timeout_ms)
{
    if (procs_kill(pid, SIGTERM) < 0) return -1;
    return procs_reap(pid, timeout_ms);
}

static bool procs_port_free(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

uint16_t procs_free_ports(unsigned count)
{
    /* Below the ephemeral range (32768+): a port in it could be picked as some connect's
     * source port meanwhile, and a client could even connect to itself. */
    static unsigned next;
    if (!next) next = 20000 + (unsigned)(getpid() * 37 % 10000);
    for (int attempt = 0; attempt < 200; attempt++) {
        unsigned base = next;
        next += count + 1;
        if (next + count > 32000) next = 20000;
        bool ok = true;
        for (unsigned i = 0; i < count && ok; i++)
            ok = procs_port_free((uint16_t)(base + i));
        if (ok) return (uint16_t)base;
    }
    return 0;
}

int procs_run(const char *const *argv, procs_output_t *r, int timeout_s)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0) return -1;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    struct pollfd p[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    uint64_t end = mono_ms() + (uint64_t)timeout_s * 1000u;
    while (rc == 0 && (p[0].fd >= 0 || p[1].fd >= 0) && mono_ms() < end) {
        if (poll(p, 2, 200) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents) continue;
            char *buf = i ? r->err : r->out;
            size_t *n = i ? &ne : &no, cap = (i ? sizeof r->err : sizeof r->out) - 1;
            ssize_t k = read(p[i].fd, buf + *n, cap - *n);
            if (k <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
            } else {
                *n += (size_t)k;
            }
        }
    }
    r->out[no] = r->err[ne] = '\0';
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0) close(p[i].fd);
    if (rc != 0) return r->rc = -1;
    kill(pid, SIGKILL); /* bounded: no-op when it already exited */
    int st;
    waitpid(pid, &st, 0);
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r->rc;
}

void procs_shm_cleanup(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    if (!d) return;
    size_t n = strlen(prefix);
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (n && !strncmp(e->d_name, prefix, n)) {
            snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

static int procs_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void procs_rmtree(const char *dir)
{
    if (dir && dir[0] == '/' && strlen(dir) > 5) nftw(dir, procs_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void procs_cleanup(void)
{
    if (procs_owner != getpid()) return; /* a spawned child's copy of the records */
    for (unsigned i = 0; i < PROCS_MAX; i++) {
        if (!procs_pids[i]) continue;
        kill(procs_pids[i], SIGKILL);
        waitpid(procs_pids[i], NULL, 0);
        procs_pids[i] = 0;
    }
    for (unsigned i = 0; i < procs_n_prefixes; i++)
        procs_shm_cleanup(procs_prefixes[i]);
    if (!getenv("HERALD_TEST_KEEP")) /* keep logs for a post-mortem when asked */
        for (unsigned i = 0; i < procs_n_dirs; i++)
            procs_rmtree(procs_dirs[i]);
    procs_n_prefixes = procs_n_dirs = 0;
}

int procs_run_suite(struct Suite *suite)
{
    signal(SIGPIPE, SIG_IGN);
    procs_registry_begin();
    int rc = check_run_suite(suite);
    procs_registry_end();
    return rc;
}
