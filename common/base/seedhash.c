/* seedhash.c - the per-process key of seedhash. */
#include "seedhash.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t seedhash_key[4];
bool seedhash_ready;

void seedhash_init(void)
{
    if (seedhash_ready) return;
    if (getrandom(seedhash_key, sizeof seedhash_key, 0) != (ssize_t)sizeof seedhash_key) {
        /* no entropy source at all (never seen on Linux >= 3.17): still differs per run */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^ (uint64_t)getpid();
        for (int i = 0; i < 4; i++) {
            x = seedhash_mum(x ^ 0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull + (uint64_t)i);
            seedhash_key[i] = x;
        }
    }
    seedhash_ready = true;
}
