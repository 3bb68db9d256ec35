/* jsum.c - the journal checksum: four independent CRC32C lanes over 32-byte blocks (a single
 * serial chain waits one crc32 latency per 8 bytes), merged with a multiply at the end. */
#include <string.h>

#include "jsum.h"

#define JS_P1 0x9e3779b185ebca87ull
#define JS_P2 0xc2b2ae3d27d4eb4full

typedef uint32_t (*js_step_fn)(uint32_t crc, uint64_t w);
typedef uint64_t (*js_sum_fn)(uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *p,
                              size_t n);

/* Words are read from the data with memcpy: the sums are defined on little-endian words. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "jsum reads little-endian words");

static uint32_t js_table[256];

/* CRC32C (Castagnoli, reflected 0x82f63b78) of 8 little-endian bytes, without the
 * pre/post inversion: what the SSE4.2 crc32 instruction computes. */
static uint32_t js_step_sw(uint32_t crc, uint64_t w)
{
    uint64_t x = crc ^ w;
    for (int i = 0; i < 8; i++)
        x = js_table[x & 0xff] ^ (x >> 8);
    return (uint32_t)x;
}

/* The lane loop, inlined into each variant below so that its step inlines too. */
static inline __attribute__((always_inline)) uint64_t
js_lanes(js_step_fn step, uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *p, size_t n)
{
    uint32_t a = step((uint32_t)epoch, head), b = step((uint32_t)(epoch >> 32), word);
    uint32_t c = ~(uint32_t)epoch, d = (uint32_t)n;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        a = step(a, w[0]);
        b = step(b, w[1]);
        c = step(c, w[2]);
        d = step(d, w[3]);
    }
    if (i < n) { /* the last partial block, zero-padded (n is in d's seed) */
        uint64_t w[4] = {0, 0, 0, 0};
        size_t k = 0;
        for (; i + 8 <= n; i += 8)
            memcpy(&w[k++], p + i, 8);
        if (i < n && n >= 8) {
            /* the r < 8 last bytes: the 8 bytes ending at n, shifted down (little-endian) */
            uint64_t x;
            memcpy(&x, p + n - 8, 8);
            w[k] = x >> 8 * (8 - (n - i));
        } else {
            for (size_t s = 0; i < n; i++, s += 8) /* bytes, not a memcpy call */
                w[k] |= (uint64_t)p[i] << s;
        }
        a = step(a, w[0]);
        b = step(b, w[1]);
        c = step(c, w[2]);
        d = step(d, w[3]);
    }
    uint64_t h = ((uint64_t)a | (uint64_t)b << 32) * JS_P1;
    h ^= ((uint64_t)c | (uint64_t)d << 32) * JS_P2;
    h ^= h >> 29;
    h *= JS_P1;
    return h ^ h >> 32;
}

static uint64_t js_sum_sw(uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *p, size_t n)
{
    return js_lanes(js_step_sw, epoch, head, word, p, n);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static inline uint32_t js_step_hw(uint32_t crc, uint64_t w)
{
    return (uint32_t)__builtin_ia32_crc32di(crc, w);
}

__attribute__((target("sse4.2"))) static uint64_t
js_sum_hw(uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *p, size_t n)
{
    return js_lanes(js_step_hw, epoch, head, word, p, n);
}
#endif

static js_sum_fn js_impl; /* set once by js_init, before the first record */

static void js_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        js_table[i] = c;
    }
    js_impl = js_sum_sw;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) js_impl = js_sum_hw;
#endif
}

bool jsum_use_hw(bool want)
{
    if (!js_impl) js_init();
    js_impl = js_sum_sw;
#if defined(__x86_64__)
    if (want && __builtin_cpu_supports("sse4.2")) js_impl = js_sum_hw;
#endif
    return js_impl != js_sum_sw;
}

uint32_t jsum(uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *data, size_t dlen)
{
    if (__builtin_expect(!js_impl, 0)) js_init();
    return (uint32_t)js_impl(epoch, head, word, data, dlen);
}

uint64_t jsum64(uint64_t seed, uint64_t head, uint64_t word, const uint8_t *data, size_t dlen)
{
    if (__builtin_expect(!js_impl, 0)) js_init();
    return js_impl(seed, head, word, data, dlen);
}
