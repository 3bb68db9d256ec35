/* sec_util.c - the security suites' tools (see sec_util.h). */
#include "sec_util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <check.h>

#include "frame.h"
#include "procs.h"

/* Run fn(arg) in a child that has become nobody (uid, gid 65534, no other groups; with
 * keep_group, gid 65534 stays among its groups too). Returns fn's result, 100 when the
 * privileges could not be dropped, 200 when the child died. */
int sec_as_nobody(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) < 0)
            _exit(100);
        _exit(fn(arg) & 0x7f);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

void xchg_add(xchg_t *x, const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bkh_msgpack(&sb, json);
    ck_assert_uint_le(x->out_len + FRAME_HDR + sb.size, sizeof x->out);
    frame_put_len(x->out + x->out_len, (uint32_t)sb.size);
    memcpy(x->out + x->out_len + FRAME_HDR, sb.data, sb.size);
    x->out_len += FRAME_HDR + sb.size;
    msgpack_sbuffer_destroy(&sb);
}

int xchg_run(void *arg)
{
    xchg_t *x = arg;
    int fd;
    if (x->path[0]) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", x->path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) x->connect_errno = errno;
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(x->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) x->connect_errno = errno;
    }
    if (x->connect_errno) {
        close(fd);
        return 0;
    }
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    signal(SIGPIPE, SIG_IGN);
    if (write(fd, x->out, x->out_len) < 0) { /* a refused peer may be gone already */
    }
    uint8_t buf[8192];
    size_t len = 0;
    for (;;) {
        const uint8_t *body;
        size_t blen;
        if (!x->in_len && frame_next(buf, len, sizeof buf, &body, &blen) > 0) {
            x->in_len = blen < sizeof x->in ? blen : sizeof x->in;
            memcpy(x->in, body, x->in_len);
        }
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            x->closed = true;
            if (!x->in_len && frame_next(buf, len, sizeof buf, &body, &blen) > 0) {
                x->in_len = blen < sizeof x->in ? blen : sizeof x->in;
                memcpy(x->in, body, x->in_len);
            }
            break;
        }
        if (r < 0) break; /* timeout: still open */
        len += (size_t)r;
        if (len == sizeof buf) break;
    }
    close(fd);
    return 0;
}

/* A shared page, so that a child running as nobody can hand its results back. */
xchg_t *xchg_new(void)
{
    xchg_t *x = mmap(NULL, sizeof *x, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(x, MAP_FAILED);
    memset(x, 0, sizeof *x);
    return x;
}

bool xchg_in_has(const xchg_t *x, const char *s)
{
    return x->in_len && memmem(x->in, x->in_len, s, strlen(s)) != NULL;
}

bool sec_file_contains(const char *path, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return strstr(text, needle) != NULL;
}

int sec_count_in_file(const char *path, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        count++;
    return count;
}

/* The broker alone with extra -o overrides; returns its exit status (it must stop). */
int sec_broker_exit_status(bkh_t *h, const char *const *extra)
{
    char exe[512], *argv[24];
    int n = 0;
    procs_build_path("broker/herald-broker", exe, sizeof exe);
    argv[n++] = exe;
    argv[n++] = (char *)"-c";
    argv[n++] = h->env.config;
    for (; extra && *extra && n < 20; extra++) {
        argv[n++] = (char *)"-o";
        argv[n++] = (char *)*extra;
    }
    argv[n] = NULL;
    pid_t pid = procs_spawn(exe, argv, h->logpath);
    ck_assert_int_gt(pid, 0);
    return procs_reap(pid, 10000);
}
