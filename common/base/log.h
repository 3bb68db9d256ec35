/* log.h - one line per event: timestamp, level, process (and gateway id), message. */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

extern log_level_t log_threshold;

/* Name this process in every line ("broker", "gateway", ...); gw_id < 0 = none. */
void log_init(const char *process, int gw_id);

/* Parse "debug|info|warn|error"; returns -1 if unknown. */
int log_level_parse(const char *s);

/* Set the threshold; HERALD_LOG in the environment overrides the configured level. */
void log_set_level(log_level_t level);

/* Write one line (below the threshold: nothing). A line identical to the previous one (same
 * level and text) within log_repeat_window_s of the last one written is not written but
 * counted; the count is reported as " (repeated N times)" on the next different line's
 * behalf (the folded line again, then the new one) or on the first identical line after
 * the window. */
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_REPEAT_WINDOW_S 10
extern unsigned log_repeat_window_s; /* LOG_REPEAT_WINDOW_S; tests shorten it */

static inline bool log_enabled(log_level_t level)
{
    return level >= log_threshold;
}

/* Rate-limited logging for bad input: returns true at most `per_sec` times a second per
 * limiter; callers keep a counter of everything regardless. */
typedef struct {
    long window_s;
    unsigned used;
    unsigned long suppressed; /* refusals ever */
    unsigned long missed;     /* refusals since the last log_ratelimit_take */
} log_ratelimit_t;
bool log_ratelimit_ok(log_ratelimit_t *rl, unsigned per_sec);

/* Refusals since the last call (then 0): a line that is let through can say how many like
 * it were not written. */
unsigned long log_ratelimit_take(log_ratelimit_t *rl);

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__);                             \
    } while (0)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
