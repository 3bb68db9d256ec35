/* doorbell_futex.c - a ring's doorbell word as a shared futex: the producer's wake and a
 * blocking wait, with no io_uring (so the broker and the tools link no liburing). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"

static long futex_call(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

void doorbell_wake(_Atomic uint32_t *word)
{
    futex_call(word, FUTEX_WAKE, INT_MAX, NULL);
}

int doorbell_wait(_Atomic uint32_t *word, uint32_t expected, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    if (futex_call(word, FUTEX_WAIT, expected, timeout_ms < 0 ? NULL : &ts) == 0) return 0;
    if (errno == EAGAIN || errno == EINTR) return 0;
    return -errno;
}
