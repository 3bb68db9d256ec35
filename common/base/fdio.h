/* fdio.h - whole writes to a blocking descriptor, for tools and tests. */
#ifndef HERALD_FDIO_H
#define HERALD_FDIO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

/* Write all n bytes of p to fd, retrying short writes and EINTR. 0, or -1 with errno set. */
static inline int fd_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

#endif
