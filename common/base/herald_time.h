/* herald_time.h - clock helpers: wall-clock and monotonic nanoseconds. */
#ifndef HERALD_TIME_H
#define HERALD_TIME_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since the epoch (CLOCK_REALTIME): timestamps that leave the process. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds on CLOCK_MONOTONIC: intervals, timeouts, rate windows. */
static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Milliseconds on CLOCK_MONOTONIC: test and tool deadlines. */
static inline uint64_t mono_ms(void)
{
    return mono_ns() / 1000000u;
}

/* Seconds on CLOCK_MONOTONIC, as a double: deadlines in loops that report rates. */
static inline double mono_s(void)
{
    return (double)mono_ns() / 1e9;
}

#endif
