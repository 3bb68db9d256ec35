/* json_in.c - JSON text to msgpack bytes in one pass, without building a tree.
 *
 * Accepts exactly what jansson 2.14's json_loadb(JSON_REJECT_DUPLICATES) accepted here before
 * (RFC 8259, an object or array at top level, no duplicate keys, no \u0000, no lone
 * surrogates, strict UTF-8, integers within int64, reals that do not overflow, values nested
 * at most 2048 deep) and writes the bytes msgpack-c's packer wrote for jansson's tree: the
 * smallest int / str / array / map forms, reals as float64. tests/fuzz/fuzz_json.c checks both
 * claims against jansson. One deliberate difference: jansson 2.14 skips a single raw NUL byte
 * right after a number or literal (its unget of byte 0 is lost); raw NUL is refused here.
 *
 * Containers get a 1-byte fix header (fixarray/fixmap) when opened; one that closes with more
 * than 15 elements is noted and all such headers are widened in one right-to-left pass at the
 * end, so every output byte moves at most once whatever the nesting. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JIN_MAX_DEPTH   2048 /* jansson's JSON_PARSER_MAX_DEPTH; deeper values are refused */
#define JIN_LINEAR_KEYS 16   /* objects with more keys find duplicates through a hash set */

/* A key of an open object: its bytes in the output. */
typedef struct {
    size_t off, len;
} jin_key_t;

typedef struct {
    size_t hdr;     /* output offset of the container's 1-byte header */
    size_t kbase;   /* objects: index of the first key in jin_t.keys */
    uint32_t count; /* elements, or key/value pairs */
    bool obj;
    uint64_t *set; /* objects past JIN_LINEAR_KEYS keys: hashed keys, see jin_key_add */
    size_t setcap; /* slots in set, a power of two */
} jin_frame_t;

/* A container whose header must be widened (more than 15 elements). */
typedef struct {
    size_t hdr;
    uint32_t count;
    bool obj;
} jin_fix_t;

typedef struct {
    const uint8_t *base, *end;
    msgpack_sbuffer *out;
    herald_error_t *err;
    int rc;          /* the error returned, once refused */
    uint64_t seed;   /* key hash seed, 0 until a large object needs it */
    jin_frame_t *st; /* open containers, innermost last */
    size_t nst, capst;
    jin_key_t *keys; /* keys of the open objects, in order */
    size_t nkeys, capkeys;
    jin_fix_t *fix;
    size_t nfix, capfix;
    jin_frame_t st0[32];
    jin_key_t keys0[64];
} jin_t;

/* --- errors ------------------------------------------------------------------------------ */

/* End of the token starting at p, for error context: a string through its closing quote, a
 * run of number or word characters, else one (UTF-8) character. */
static bool jin_wordch(uint8_t c)
{
    return (uint8_t)(c - '0') < 10 || (uint8_t)((c | 0x20) - 'a') < 26 || c == '-' || c == '+' ||
           c == '.';
}

static const uint8_t *jin_token_end(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = p + 1;
    if (*p == '"') {
        while (q < end && *q != '"' && *q >= 0x20)
            q += *q == '\\' && q + 1 < end ? 2 : 1;
        return q < end && *q == '"' ? q + 1 : q;
    }
    if (jin_wordch(*p)) {
        while (q < end && jin_wordch(*q))
            q++;
        return q;
    }
    while (q < end && (*q & 0xc0) == 0x80)
        q++;
    return q;
}

/* Refuse the input: line and column are those of the last byte before `upto` (jansson's
 * convention: columns count characters, a newline ends a line); `near` is the offending
 * token (quoted in the message if short and printable), or end for "near end of file". */
static int jin_fail(jin_t *j, size_t upto, const uint8_t *near, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int jin_fail(jin_t *j, size_t upto, const uint8_t *near, const char *fmt, ...)
{
    int line = 1, col = 0;
    for (size_t i = 0; i < upto; i++) {
        if (j->base[i] == '\n') {
            line++;
            col = 0;
        } else if ((j->base[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    char reason[96], ctx[40] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (near == j->end) {
        snprintf(ctx, sizeof ctx, " near end of file");
    } else if (near) {
        const uint8_t *e = jin_token_end(near, j->end);
        bool printable = e - near <= 20;
        for (const uint8_t *q = near; q < e && printable; q++)
            printable = *q >= 0x20 && *q < 0x7f;
        if (printable) snprintf(ctx, sizeof ctx, " near '%.*s'", (int)(e - near), near);
    }
    j->rc = herr_set(j->err, HERR_MALFORMED, "", "invalid JSON at line %d, column %d: %s%s", line,
                     col, reason, ctx);
    return j->rc;
}

/* An unexpected token at p: the error names it and points at its end, as jansson does. */
static int jin_fail_token(jin_t *j, const uint8_t *p, const char *what)
{
    size_t upto = (size_t)((p < j->end ? jin_token_end(p, j->end) : p) - j->base);
    return jin_fail(j, upto, p, "%s", what);
}

static int jin_oom(jin_t *j)
{
    j->rc = herr_set(j->err, HERR_INTERNAL, "", "out of memory converting JSON");
    return j->rc;
}

/* --- output ------------------------------------------------------------------------------ */

static int jin_grow_out(jin_t *j, size_t n)
{
    msgpack_sbuffer *o = j->out;
    size_t cap = o->alloc ? o->alloc : 4096;
    while (cap - o->size < n) {
        if (cap > SIZE_MAX / 2) return jin_oom(j);
        cap *= 2;
    }
    char *d = realloc(o->data, cap);
    if (!d) return jin_oom(j);
    o->data = d;
    o->alloc = cap;
    return 0;
}

/* Make room for n more output bytes. */
static inline int jin_room(jin_t *j, size_t n)
{
    return j->out->alloc - j->out->size >= n ? 0 : jin_grow_out(j, n);
}

static inline void jin_be16(uint8_t *w, uint32_t v)
{
    w[0] = (uint8_t)(v >> 8);
    w[1] = (uint8_t)v;
}

static inline void jin_be32(uint8_t *w, uint32_t v)
{
    jin_be16(w, v >> 16);
    jin_be16(w + 2, v);
}

static inline void jin_be64(uint8_t *w, uint64_t v)
{
    jin_be32(w, (uint32_t)(v >> 32));
    jin_be32(w + 4, (uint32_t)v);
}

static inline size_t jin_str_hdr_len(size_t n)
{
    return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/* msgpack str header for n bytes at w (jin_str_hdr_len(n) bytes). */
static inline void jin_str_hdr(uint8_t *w, size_t n)
{
    if (n < 32) {
        w[0] = (uint8_t)(0xa0 | n);
    } else if (n < 256) {
        w[0] = 0xd9;
        w[1] = (uint8_t)n;
    } else if (n < 65536) {
        w[0] = 0xda;
        jin_be16(w + 1, (uint32_t)n);
    } else {
        w[0] = 0xdb;
        jin_be32(w + 1, (uint32_t)n);
    }
}

/* An integer as msgpack_pack_int64 packs it: non-negative values in the unsigned forms. */
static inline size_t jin_put_int(uint8_t *w, bool neg, uint64_t mag)
{
    if (!neg || mag == 0) {
        if (mag < 128) {
            w[0] = (uint8_t)mag;
            return 1;
        }
        if (mag < 256) {
            w[0] = 0xcc;
            w[1] = (uint8_t)mag;
            return 2;
        }
        if (mag < 65536) {
            w[0] = 0xcd;
            jin_be16(w + 1, (uint32_t)mag);
            return 3;
        }
        if (mag < (1ull << 32)) {
            w[0] = 0xce;
            jin_be32(w + 1, (uint32_t)mag);
            return 5;
        }
        w[0] = 0xcf;
        jin_be64(w + 1, mag);
        return 9;
    }
    uint64_t v = -mag; /* two's complement of the int64 value */
    if (mag <= 32) {
        w[0] = (uint8_t)v;
        return 1;
    }
    if (mag <= 128) {
        w[0] = 0xd0;
        w[1] = (uint8_t)v;
        return 2;
    }
    if (mag <= 32768) {
        w[0] = 0xd1;
        jin_be16(w + 1, (uint32_t)v);
        return 3;
    }
    if (mag <= (1ull << 31)) {
        w[0] = 0xd2;
        jin_be32(w + 1, (uint32_t)v);
        return 5;
    }
    w[0] = 0xd3;
    jin_be64(w + 1, v);
    return 9;
}

static int jin_fix_cmp(const void *a, const void *b)
{
    size_t x = ((const jin_fix_t *)a)->hdr, y = ((const jin_fix_t *)b)->hdr;
    return (x > y) - (x < y);
}

/* Widen the headers of containers with more than 15 elements (array16/32, map16/32), moving
 * every byte at most once: right to left, each gap opened where its header is. */
static int jin_widen(jin_t *j)
{
    size_t extra = 0;
    for (size_t i = 0; i < j->nfix; i++)
        extra += j->fix[i].count < 65536 ? 2 : 4;
    if (jin_room(j, extra) < 0) return -1;
    /* Fixes were recorded as containers closed (inner before outer); order them by offset. */
    qsort(j->fix, j->nfix, sizeof *j->fix, jin_fix_cmp);
    uint8_t *d = (uint8_t *)j->out->data;
    size_t tail = j->out->size, shift = extra;
    for (size_t i = j->nfix; i-- > 0;) {
        const jin_fix_t *f = &j->fix[i];
        memmove(d + f->hdr + 1 + shift, d + f->hdr + 1, tail - f->hdr - 1);
        bool wide = f->count >= 65536;
        shift -= wide ? 4 : 2;
        uint8_t *w = d + f->hdr + shift;
        if (wide) {
            w[0] = f->obj ? 0xdf : 0xdd;
            jin_be32(w + 1, f->count);
        } else {
            w[0] = f->obj ? 0xde : 0xdc;
            jin_be16(w + 1, f->count);
        }
        tail = f->hdr;
    }
    j->out->size += extra;
    return 0;
}

/* Grow an array, which may start in inline storage inl (or be NULL), to hold one more element. */
static int jin_grow(jin_t *j, void **arr, size_t *cap, size_t elem, const void *inl)
{
    bool moving = inl && *arr == inl;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *a = moving ? malloc(ncap * elem) : realloc(*arr, ncap * elem);
    if (!a) return jin_oom(j);
    if (moving) memcpy(a, inl, *cap * elem);
    *arr = a;
    *cap = ncap;
    return 0;
}

/* --- duplicate keys ---------------------------------------------------------------------- */

/* A seeded hash, so a producer cannot choose keys that collide (the seed is the kernel's
 * per-process AT_RANDOM bytes). */
static uint64_t jin_hash(const uint8_t *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull), w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

/* Put key index i (relative to the object's first key) into f's set; 1 if an equal key is
 * there already. Slots hold (hash << 32 | i + 1), 0 = empty. */
static int jin_set_put(jin_t *j, jin_frame_t *f, uint32_t i)
{
    const uint8_t *d = (const uint8_t *)j->out->data;
    const jin_key_t *k = &j->keys[f->kbase + i];
    uint32_t h = (uint32_t)(jin_hash(d + k->off, k->len, j->seed) >> 32);
    size_t mask = f->setcap - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint64_t e = f->set[s];
        if (!e) {
            f->set[s] = (uint64_t)h << 32 | (i + 1);
            return 0;
        }
        const jin_key_t *o = &j->keys[f->kbase + (uint32_t)e - 1];
        if ((uint32_t)(e >> 32) == h && o->len == k->len && !memcmp(d + o->off, d + k->off, k->len))
            return 1;
    }
}

/* (Re)build f's set at twice the keys it must hold, from the object's keys before index n. */
static int jin_set_build(jin_t *j, jin_frame_t *f, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * (n + 1))
        cap *= 2;
    uint64_t *set = calloc(cap, sizeof *set);
    if (!set) return jin_oom(j);
    free(f->set);
    f->set = set;
    f->setcap = cap;
    if (!j->seed) {
        const uint8_t *r = (const uint8_t *)getauxval(AT_RANDOM);
        if (r) memcpy(&j->seed, r, sizeof j->seed);
        j->seed |= 1;
    }
    for (size_t i = 0; i < n; i++)
        jin_set_put(j, f, (uint32_t)i);
    return 0;
}

/* Record the key just written (n bytes at output offset off) for the innermost object:
 * 0, 1 if the object has that key already, or < 0 out of memory. Small objects compare with
 * each earlier key, larger ones use a hash set, so any object costs O(keys). */
static int jin_key_add(jin_t *j, size_t off, size_t n)
{
    jin_frame_t *f = &j->st[j->nst - 1];
    size_t nk = j->nkeys - f->kbase;
    if (j->nkeys == j->capkeys &&
        jin_grow(j, (void **)&j->keys, &j->capkeys, sizeof *j->keys, j->keys0) < 0)
        return -1;
    j->keys[j->nkeys] = (jin_key_t){off, n};
    if (nk < JIN_LINEAR_KEYS) {
        const uint8_t *d = (const uint8_t *)j->out->data;
        for (size_t i = f->kbase; i < j->nkeys; i++)
            if (j->keys[i].len == n && !memcmp(d + j->keys[i].off, d + off, n)) return 1;
    } else {
        if (2 * (nk + 1) > f->setcap && jin_set_build(j, f, nk) < 0) return -1;
        if (jin_set_put(j, f, (uint32_t)nk)) return 1;
    }
    j->nkeys++;
    return 0;
}

/* --- strings ----------------------------------------------------------------------------- */

static inline bool jin_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Length of the valid UTF-8 sequence at p (non-ASCII lead byte), 0 if invalid: no overlong
 * forms, surrogates or code points above U+10FFFF, as jansson checks. */
static inline size_t jin_utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t avail = (size_t)(end - p);
    if (c < 0xc2) return 0;
    if (c < 0xe0) return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c < 0xf0) {
        if (avail < 3 || (p[2] & 0xc0) != 0x80) return 0;
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c < 0xf5) {
        if (avail < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) return 0;
        uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

static inline bool jin_is_hex(uint8_t c)
{
    return (uint8_t)(c - '0') < 10 || (uint8_t)((c | 0x20) - 'a') < 6;
}

/* The code unit of the \u escape at p ("\u" known), or -1 after refusing its digits. */
static int32_t jin_u4(jin_t *j, const uint8_t *p)
{
    int32_t v = 0;
    for (int i = 2; i < 6; i++) {
        size_t at = (size_t)(p + i - j->base);
        if (p + i == j->end) return jin_fail(j, at, NULL, "premature end of input"), -1;
        if (!jin_is_hex(p[i])) return jin_fail(j, at + 1, NULL, "invalid escape"), -1;
        uint8_t c = p[i];
        v = v << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Check the \u escape at p: not \u0000, surrogates only as a high-low pair. Returns the byte
 * after it (after both halves of a pair), or NULL after refusing. */
static const uint8_t *jin_scan_u(jin_t *j, const uint8_t *p)
{
    size_t at = (size_t)(p - j->base);
    int32_t v = jin_u4(j, p);
    if (v < 0) return NULL;
    if (v == 0) return jin_fail(j, at + 6, NULL, "\\u0000 is not allowed"), NULL;
    if (v >= 0xdc00 && v <= 0xdfff)
        return jin_fail(j, at + 6, NULL, "invalid Unicode '\\u%04X'", (unsigned)v), NULL;
    if (v < 0xd800 || v > 0xdbff) return p + 6;
    if (j->end - p < 8 || p[6] != '\\' || p[7] != 'u')
        return jin_fail(j, at + 6, NULL, "invalid Unicode '\\u%04X'", (unsigned)v), NULL;
    int32_t lo = jin_u4(j, p + 6);
    if (lo < 0) return NULL;
    if (lo < 0xdc00 || lo > 0xdfff)
        return jin_fail(j, at + 12, NULL, "invalid Unicode '\\u%04X\\u%04X'", (unsigned)v,
                        (unsigned)lo),
               NULL;
    return p + 12;
}

/* Scan the string body from p (after the opening quote) to its closing quote, checking every
 * byte; *esc is set if it holds escapes. Returns the closing quote, or NULL after refusing. */
static const uint8_t *jin_scan_str(jin_t *j, const uint8_t *p, bool *esc)
{
    const uint8_t *end = j->end;
    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time: '"', '\\', and (signed) < 0x20, i.e. controls and non-ASCII */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(hit, _mm_cmplt_epi8(v, space)));
            if (m) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && jin_plain(*p))
            p++;
        if (p == end)
            return jin_fail(j, (size_t)(end - j->base), end, "premature end of input"), NULL;
        uint8_t c = *p;
        size_t at = (size_t)(p - j->base);
        if (c == '"') return p;
        if (c == '\\') {
            *esc = true;
            if (end - p < 2) return jin_fail(j, at + 1, end, "premature end of input"), NULL;
            if (p[1] == 'u') {
                p = jin_scan_u(j, p);
                if (!p) return NULL;
            } else if (strchr("\"\\/bfnrt", p[1]) && p[1]) {
                p += 2;
            } else {
                return jin_fail(j, at + 2, NULL, "invalid escape"), NULL;
            }
        } else if (c < 0x20) {
            /* jansson points at the character before it */
            if (c == '\n') return jin_fail(j, at, NULL, "unexpected newline"), NULL;
            return jin_fail(j, at, NULL, "control character 0x%x", c), NULL;
        } else if (c >= 0x80) {
            size_t n = jin_utf8_len(p, end);
            if (!n) return jin_fail(j, at, NULL, "unable to decode byte 0x%x", c), NULL;
            p += n;
        }
    }
}

static inline uint32_t jin_hex4(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 4 | (uint32_t)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    return v;
}

/* Decode the checked string body s..e (escapes included) into w; returns the bytes written
 * (never more than e - s). */
static size_t jin_unescape(uint8_t *w, const uint8_t *s, const uint8_t *e)
{
    uint8_t *w0 = w;
    for (;;) {
        const uint8_t *bs = memchr(s, '\\', (size_t)(e - s));
        size_t run = (size_t)((bs ? bs : e) - s);
        memcpy(w, s, run);
        w += run;
        if (!bs) return (size_t)(w - w0);
        uint8_t c = bs[1];
        s = bs + 2;
        if (c != 'u') {
            *w++ = c == 'b'   ? '\b'
                   : c == 'f' ? '\f'
                   : c == 'n' ? '\n'
                   : c == 'r' ? '\r'
                   : c == 't' ? '\t'
                              : c;
            continue;
        }
        uint32_t cp = jin_hex4(s);
        s += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (jin_hex4(s + 2) - 0xdc00);
            s += 6;
        }
        if (cp < 0x80) {
            *w++ = (uint8_t)cp;
        } else if (cp < 0x800) {
            *w++ = (uint8_t)(0xc0 | cp >> 6);
            *w++ = (uint8_t)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *w++ = (uint8_t)(0xe0 | cp >> 12);
            *w++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (uint8_t)(0x80 | (cp & 0x3f));
        } else {
            *w++ = (uint8_t)(0xf0 | cp >> 18);
            *w++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
            *w++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
            *w++ = (uint8_t)(0x80 | (cp & 0x3f));
        }
    }
}

/* The string at p (its opening quote) as a msgpack str; *body and *n get the output offset
 * and length of its bytes. Returns the byte after the closing quote, or NULL. */
static const uint8_t *jin_string(jin_t *j, const uint8_t *p, size_t *body, size_t *n)
{
    bool esc = false;
    const uint8_t *s = p + 1, *q = jin_scan_str(j, s, &esc);
    if (!q) return NULL;
    size_t raw = (size_t)(q - s), h = jin_str_hdr_len(raw);
    if (jin_room(j, h + raw) < 0) return NULL;
    uint8_t *w = (uint8_t *)j->out->data + j->out->size;
    size_t len = raw;
    if (esc) {
        len = jin_unescape(w + h, s, q);
        size_t h2 = jin_str_hdr_len(len);
        if (h2 != h) memmove(w + h2, w + h, len);
        h = h2;
    } else {
        memcpy(w + h, s, raw);
    }
    jin_str_hdr(w, len);
    *body = j->out->size + h;
    *n = len;
    j->out->size += h + len;
    return q + 1;
}

/* --- numbers ----------------------------------------------------------------------------- */

static const double jin_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline bool jin_digit(const uint8_t *p, const uint8_t *end)
{
    return p < end && (uint8_t)(*p - '0') < 10;
}

/* A real's value as strtod gives it (what jansson stores), from its token start..end. */
static int jin_strtod(jin_t *j, const uint8_t *start, const uint8_t *end, double *v)
{
    char small[64], *buf = small;
    size_t n = (size_t)(end - start);
    if (n >= sizeof small && !(buf = malloc(n + 1))) return jin_oom(j);
    memcpy(buf, start, n);
    buf[n] = '\0';
    errno = 0;
    *v = strtod(buf, NULL); /* the C locale: nothing in herald calls setlocale */
    bool overflow = (*v == HUGE_VAL || *v == -HUGE_VAL) && errno == ERANGE;
    if (buf != small) free(buf);
    if (overflow) return jin_fail(j, (size_t)(end - j->base), start, "real number overflow");
    return 0;
}

/* The number at p ('-' or a digit) as a msgpack int (integer syntax, must fit int64) or
 * float64 (with a fraction or exponent). Returns the byte after it, or NULL. */
static const uint8_t *jin_number(jin_t *j, const uint8_t *p)
{
    const uint8_t *start = p, *end = j->end;
    bool neg = *p == '-';
    uint64_t m = 0; /* the first 19 significant digits */
    int sig = 0;    /* significant digits seen */
    long dexp = 0;  /* value = m * 10^dexp while sig <= 19 */
    p += neg;
    if (!jin_digit(p, end)) return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
    if (*p == '0') {
        if (jin_digit(++p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
    } else {
        for (; jin_digit(p, end); p++, sig++)
            if (sig < 19) m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p == end || (*p != '.' && (*p | 0x20) != 'e')) {
        bool big = sig > 19 || m > (uint64_t)INT64_MAX + neg;
        if (big)
            return jin_fail(j, (size_t)(p - j->base), start,
                            neg ? "too big negative integer" : "too big integer"),
                   NULL;
        if (jin_room(j, 9) < 0) return NULL;
        j->out->size += jin_put_int((uint8_t *)j->out->data + j->out->size, neg, m);
        return p;
    }
    if (*p == '.') {
        if (!jin_digit(++p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
        for (; jin_digit(p, end); p++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                dexp--;
            }
            sig += m != 0;
        }
    }
    long e = 0;
    if (p < end && (*p | 0x20) == 'e') {
        bool eneg = ++p < end && *p == '-';
        p += p < end && (*p == '-' || *p == '+');
        if (!jin_digit(p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
        for (; jin_digit(p, end); p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        e = eneg ? -e : e;
    }
    double v = 0;
    e += dexp;
    if (sig <= 19 && m <= (1ull << 53) && e >= -22 && e <= 22) {
        /* both operands exact, so one IEEE operation rounds correctly (Clinger's fast path) */
        v = e < 0 ? (double)m / jin_pow10[-e] : (double)m * jin_pow10[e];
        v = neg ? -v : v;
    } else if (jin_strtod(j, start, p, &v) < 0) {
        return NULL;
    }
    if (jin_room(j, 9) < 0) return NULL;
    uint8_t *w = (uint8_t *)j->out->data + j->out->size;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    w[0] = 0xcb;
    jin_be64(w + 1, bits);
    j->out->size += 9;
    return p;
}

/* --- structure --------------------------------------------------------------------------- */

static inline const uint8_t *jin_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* A literal (true, false, null) at p, not followed by more letters. */
static inline bool jin_word(const uint8_t *p, const uint8_t *end, const char *w, size_t n)
{
    return (size_t)(end - p) >= n && !memcmp(p, w, n) &&
           (p + n == end || (uint8_t)((p[n] | 0x20) - 'a') >= 26);
}

/* Open an array or object at output offset size with a fixarray/fixmap placeholder. */
static int jin_open(jin_t *j, bool obj)
{
    if (j->nst == j->capst && jin_grow(j, (void **)&j->st, &j->capst, sizeof *j->st, j->st0) < 0)
        return -1;
    if (jin_room(j, 1) < 0) return -1;
    j->st[j->nst++] = (jin_frame_t){.hdr = j->out->size, .kbase = j->nkeys, .obj = obj};
    j->out->data[j->out->size++] = (char)(obj ? 0x80 : 0x90);
    return 0;
}

/* Close the innermost container: its header, or a note to widen it. */
static int jin_close(jin_t *j)
{
    jin_frame_t *f = &j->st[--j->nst];
    if (f->obj) {
        j->nkeys = f->kbase;
        free(f->set);
    }
    if (f->count < 16) {
        j->out->data[f->hdr] = (char)((f->obj ? 0x80 : 0x90) | f->count);
        return 0;
    }
    if (j->nfix == j->capfix && jin_grow(j, (void **)&j->fix, &j->capfix, sizeof *j->fix, NULL) < 0)
        return -1;
    j->fix[j->nfix++] = (jin_fix_t){f->hdr, f->count, f->obj};
    return 0;
}

/* The whole text: an object or array, then only whitespace. */
static int jin_parse(jin_t *j)
{
    const uint8_t *p = jin_ws(j->base, j->end), *end = j->end;
    const uint8_t *k;
    jin_frame_t *top;
    size_t off, n;
    if (p == end || (*p != '[' && *p != '{')) return jin_fail_token(j, p, "'[' or '{' expected");
value:
    if (j->nst >= JIN_MAX_DEPTH) return jin_fail_token(j, p, "maximum parsing depth reached");
    if (p == end) return jin_fail_token(j, p, "unexpected token");
    switch (*p) {
    case '{':
    case '[': {
        bool obj = *p == '{';
        if (jin_open(j, obj) < 0) return j->rc;
        p = jin_ws(p + 1, end);
        if (p < end && *p == (obj ? '}' : ']')) {
            p++;
            goto close;
        }
        if (obj) goto key;
        goto value;
    }
    case '"':
        p = jin_string(j, p, &off, &n);
        break;
    case 't':
    case 'f':
    case 'n': {
        bool t = jin_word(p, end, "true", 4), f = jin_word(p, end, "false", 5);
        if (!t && !f && !jin_word(p, end, "null", 4)) return jin_fail_token(j, p, "invalid token");
        if (jin_room(j, 1) < 0) return j->rc;
        j->out->data[j->out->size++] = (char)(t ? 0xc3 : f ? 0xc2 : 0xc0);
        p += f ? 5 : 4;
        break;
    }
    case ']':
    case '}':
    case ',':
    case ':':
        return jin_fail_token(j, p, "unexpected token");
    default:
        if (*p != '-' && (uint8_t)(*p - '0') >= 10) return jin_fail_token(j, p, "invalid token");
        p = jin_number(j, p);
        break;
    }
    if (!p) return j->rc;
next: /* after a value inside the innermost container */
    top = &j->st[j->nst - 1];
    if (++top->count == UINT32_MAX) return jin_fail_token(j, p, "too many elements");
    p = jin_ws(p, end);
    if (p < end && *p == ',') {
        p = jin_ws(p + 1, end);
        if (!top->obj) goto value;
        goto key;
    }
    if (p < end && *p == (top->obj ? '}' : ']')) {
        p++;
        goto close;
    }
    return jin_fail_token(j, p, top->obj ? "'}' expected" : "']' expected");
key:
    if (p == end || *p != '"') return jin_fail_token(j, p, "string or '}' expected");
    k = p;
    if (!(p = jin_string(j, p, &off, &n))) return j->rc;
    int dup = jin_key_add(j, off, n);
    if (dup < 0) return j->rc;
    if (dup) return jin_fail(j, (size_t)(p - j->base), k, "duplicate object key");
    p = jin_ws(p, end);
    if (p == end || *p != ':') return jin_fail_token(j, p, "':' expected");
    p = jin_ws(p + 1, end);
    goto value;
close:
    if (jin_close(j) < 0) return j->rc;
    if (j->nst) goto next;
    p = jin_ws(p, end);
    if (p != end) return jin_fail_token(j, p, "end of file expected");
    return 0;
}

/* TOO_LARGE applies to a single object (one notification): its msgpack form over
 * HERALD_MAX_NOTIF_BYTES is refused here, so HTTP can answer 413 at once. Items of an array
 * are each checked when encoded (codec_encode), so one big item refuses only its slot. */
int json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, herald_error_t *err)
{
    jin_t j;
    j.base = (const uint8_t *)text;
    j.end = j.base + len;
    j.out = out;
    j.err = err;
    j.rc = 0;
    j.seed = 0;
    j.st = j.st0;
    j.capst = sizeof j.st0 / sizeof j.st0[0];
    j.keys = j.keys0;
    j.capkeys = sizeof j.keys0 / sizeof j.keys0[0];
    j.nst = j.nkeys = j.nfix = j.capfix = 0;
    j.fix = NULL;
    size_t start = out->size;
    int rc = jin_room(&j, len + 16);
    if (rc == 0) rc = jin_parse(&j);
    if (rc == 0 && j.nfix) rc = jin_widen(&j);
    while (j.nst) /* open containers of a refused text */
        if (j.st[--j.nst].obj) free(j.st[j.nst].set);
    if (j.st != j.st0) free(j.st);
    if (j.keys != j.keys0) free(j.keys);
    free(j.fix);
    if (rc < 0) {
        out->size = start;
        return rc;
    }
    const uint8_t *first = jin_ws(j.base, j.end);
    if (*first == '{' && out->size - start > HERALD_MAX_NOTIF_BYTES) {
        size_t size = out->size - start;
        out->size = start;
        return herr_set(err, HERR_TOO_LARGE, "", "notification is %zu bytes, limit %d", size,
                        HERALD_MAX_NOTIF_BYTES);
    }
    return 0;
}
