/* log.c - one line per event on stderr, written with a single write(2) so lines from
 * several processes sharing the terminal or pipe never interleave (lines < PIPE_BUF). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "herald_time.h"

/* Longest line written; longer messages are cut and end in "...". Below PIPE_BUF (4096)
 * so that a write to a pipe is atomic. */
#define LOG_LINE_MAX 2048

log_level_t log_threshold = LOG_INFO;

/* "broker", "gateway[1]" ...: set once by log_init before any other thread exists. */
static char log_process[48] = "herald";

static const char *const log_level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_level_parse(const char *s)
{
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    if (!s) return -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(s, lower[i]) == 0) return i;
    return -1;
}

/* HERALD_LOG's level, or -1 when unset or not a level name. */
static int log_env_level(void)
{
    return log_level_parse(getenv("HERALD_LOG"));
}

void log_init(const char *process, int gw_id)
{
    if (gw_id >= 0)
        snprintf(log_process, sizeof log_process, "%s[%d]", process, gw_id);
    else
        snprintf(log_process, sizeof log_process, "%s", process);
    const char *env = getenv("HERALD_LOG");
    int lvl = log_env_level();
    if (lvl >= 0)
        log_threshold = (log_level_t)lvl;
    else if (env && *env)
        log_warn("HERALD_LOG=%.32s is not debug|info|warn|error; ignored", env);
}

void log_set_level(log_level_t level)
{
    int lvl = log_env_level();
    log_threshold = lvl >= 0 ? (log_level_t)lvl : level;
}

/* Replace control characters (a newline in a peer-supplied string would forge a line). */
static void log_sanitize(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t') s[i] = '?';
}

void log_write(log_level_t level, const char *fmt, ...)
{
    if (level < log_threshold) return;
    int saved_errno = errno;
    char line[LOG_LINE_MAX];

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    unsigned lvl = (unsigned)level < 4 ? (unsigned)level : LOG_ERROR;
    int head = snprintf(line, sizeof line,
                        "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        ts.tv_nsec / 1000000, log_level_names[lvl], log_process);
    size_t len = (size_t)head;

    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + len, sizeof line - len - 1, fmt, ap);
    va_end(ap);
    if (body < 0) body = 0;
    if ((size_t)body >= sizeof line - len - 1) {
        len = sizeof line - 1;
        memcpy(line + len - 3, "...", 3);
    } else {
        len += (size_t)body;
    }
    log_sanitize(line + head, len - (size_t)head);
    line[len++] = '\n';

    size_t off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* nowhere left to report it */
        off += (size_t)w;
    }
    errno = saved_errno;
}

/* Windows are whole CLOCK_MONOTONIC seconds; `suppressed` counts every refusal ever made
 * by this limiter, so callers can report it alongside their own counters. */
bool log_ratelimit_ok(log_ratelimit_t *rl, unsigned per_sec)
{
    long now_s = (long)(mono_ns() / 1000000000ull);
    if (now_s != rl->window_s) {
        rl->window_s = now_s;
        rl->used = 0;
    }
    if (rl->used < per_sec) {
        rl->used++;
        return true;
    }
    rl->suppressed++;
    return false;
}
