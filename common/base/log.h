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

void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool log_enabled(log_level_t level)
{
    return level >= log_threshold;
}

/* Rate-limited logging for bad input: returns true at most `per_sec` times a second per
 * limiter; callers keep a counter of everything regardless. */
typedef struct {
    long window_s;
    unsigned used;
    unsigned long suppressed;
} log_ratelimit_t;
bool log_ratelimit_ok(log_ratelimit_t *rl, unsigned per_sec);

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__);                             \
    } while (0)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
