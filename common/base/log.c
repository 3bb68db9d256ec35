/* log.c - one line per event on stderr, written with a single write(2) so lines from
 * several processes sharing the terminal or pipe never interleave (lines < PIPE_BUF). */
#include "log.h"

#include <errno.h>
#include <pthread.h>
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

/* Write one line: head (time, level, process), body, and " (repeated N times)" when
 * repeated; a single write(2). */
static void log_emit(log_level_t level, const char *body, size_t blen, unsigned long repeated)
{
    char line[LOG_LINE_MAX + 48];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    unsigned lvl = (unsigned)level < 4 ? (unsigned)level : LOG_ERROR;
    size_t len = (size_t)snprintf(line, sizeof line,
                                  "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                  ts.tv_nsec / 1000000, log_level_names[lvl], log_process);
    if (blen > LOG_LINE_MAX - 1 - len) blen = LOG_LINE_MAX - 1 - len;
    memcpy(line + len, body, blen);
    len += blen;
    if (repeated)
        len += (size_t)snprintf(line + len, sizeof line - len, " (repeated %lu time%s)", repeated,
                                repeated == 1 ? "" : "s");
    line[len++] = '\n';

    size_t off = 0;
    while (off < len) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* nowhere left to report it */
        off += (size_t)w;
    }
}

unsigned log_repeat_window_s = LOG_REPEAT_WINDOW_S;

/* The last line written, to fold identical lines that follow it into one count (a flood
 * of the same complaint costs one line per window, not one per event). Lines may come
 * from several threads. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    log_level_t level;
    size_t len;
    unsigned long repeats; /* identical lines not written since the last one that was */
    uint64_t since_ns;     /* when that one was written */
    char body[LOG_LINE_MAX];
} log_last;

void log_write(log_level_t level, const char *fmt, ...)
{
    if (level < log_threshold) return;
    int saved_errno = errno;
    char body[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body - 48, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof body - 48) { /* cut: leave room for the head within LOG_LINE_MAX */
        len = sizeof body - 160;
        memcpy(body + len - 3, "...", 3);
    }
    log_sanitize(body, len);

    uint64_t now = mono_ns();
    pthread_mutex_lock(&log_mu);
    bool same = level == log_last.level && len == log_last.len && !memcmp(body, log_last.body, len);
    if (same && now - log_last.since_ns < (uint64_t)log_repeat_window_s * 1000000000ull) {
        log_last.repeats++;
    } else {
        if (same) { /* the window is over: this one, with the count of those folded into it */
            log_emit(level, body, len, log_last.repeats ? log_last.repeats + 1 : 0);
        } else {
            if (log_last.repeats)
                log_emit(log_last.level, log_last.body, log_last.len, log_last.repeats);
            log_emit(level, body, len, 0);
            log_last.level = level;
            log_last.len = len;
            memcpy(log_last.body, body, len);
        }
        log_last.repeats = 0;
        log_last.since_ns = now;
    }
    pthread_mutex_unlock(&log_mu);
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
    rl->missed++;
    return false;
}

unsigned long log_ratelimit_take(log_ratelimit_t *rl)
{
    unsigned long n = rl->missed;
    rl->missed = 0;
    return n;
}
