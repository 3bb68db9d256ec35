/* json_in.c - JSON text to msgpack bytes in one pass, without building a tree.
 *
 * Accepts exactly what jansson 2.14's json_loadb(JSON_REJECT_DUPLICATES) accepted here before
 * (RFC 8259, an object or array at top level, no duplicate keys, no \u0000, no lone
 * surrogates, strict UTF-8, integers within int64, reals that do not overflow, values nested
 * at most 2048 deep) and writes the bytes msgpack-c's packer wrote for jansson's tree: the
 * smallest int / str / array / map forms, reals as float64. Errors name the line and column
 * jansson names (it reads tokens whole, checks UTF-8 first and a string's \u escapes after its
 * closing quote; json_lex.c follows that order). tests/fuzz/fuzz_json.c checks all three
 * claims against jansson. One deliberate difference: jansson 2.14 skips a single raw NUL byte
 * right after a number or literal (its unget of byte 0 is lost); raw NUL is refused here.
 *
 * Containers get a 1-byte fix header (fixarray/fixmap) when opened; one that closes with more
 * than 15 elements is noted and all such headers are widened in one right-to-left pass at the
 * end, so every output byte moves at most once whatever the nesting. */
#include "json_in.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

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
    if (jin_room(j, extra) < 0) return j->rc;
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
