/* json_lex.c - json_to_msgpack's tokens: strings (escapes, UTF-8 checks) and numbers written
 * as msgpack, and its error messages with line and column. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "json_in.h"

/* --- errors ------------------------------------------------------------------------------ */

static inline bool jin_isdigit(const uint8_t *p, const uint8_t *end)
{
    return p < end && (uint8_t)(*p - '0') < 10;
}

static inline bool jin_isalpha(const uint8_t *p, const uint8_t *end)
{
    return p < end && (uint8_t)((*p | 0x20) - 'a') < 26;
}

/* End of the number token at p as jansson's lexer reads it: the longest prefix that is a
 * number or could still become one ("-", "1.", "1e+" end there; "01" ends after "0"). */
static const uint8_t *jin_number_end(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = p + (*p == '-');
    if (!jin_isdigit(q, end)) return q;
    if (*q == '0') {
        if (jin_isdigit(++q, end)) return q;
    } else {
        while (jin_isdigit(q, end))
            q++;
    }
    if (q < end && *q == '.' && !jin_isdigit(++q, end)) return q;
    while (jin_isdigit(q, end))
        q++;
    if (q == end || (*q | 0x20) != 'e') return q;
    q += 1 + (q + 1 < end && (q[1] == '+' || q[1] == '-'));
    while (jin_isdigit(q, end))
        q++;
    return q;
}

/* End of the token at p (< end) as jansson reads it, for the error's column and context: a
 * string through its closing quote, a number, a run of letters, else one (UTF-8) character. */
static const uint8_t *jin_token_end(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = p + 1;
    if (*p == '"') {
        while (q < end && *q != '"' && *q >= 0x20)
            q += *q == '\\' && q + 1 < end ? 2 : 1;
        return q < end && *q == '"' ? q + 1 : q;
    }
    if (*p == '-' || jin_isdigit(p, end)) return jin_number_end(p, end);
    if (jin_isalpha(p, end)) {
        while (jin_isalpha(q, end))
            q++;
        return q;
    }
    while (q < end && (*q & 0xc0) == 0x80)
        q++;
    return q;
}

int jin_fail(jin_t *j, size_t upto, const uint8_t *near, const char *fmt, ...)
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

int jin_oom(jin_t *j)
{
    j->rc = herr_set(j->err, HERR_INTERNAL, "", "out of memory converting JSON");
    return j->rc;
}

/* --- output ------------------------------------------------------------------------------ */

int jin_grow_out(jin_t *j, size_t n)
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

/* Refuse the byte at p, which is not what an escape needs; jansson checks UTF-8 first. */
static int jin_fail_esc(jin_t *j, const uint8_t *p)
{
    size_t at = (size_t)(p - j->base);
    if (*p >= 0x80 && !jin_utf8_len(p, j->end))
        return jin_fail(j, at, NULL, "unable to decode byte 0x%x", *p);
    return jin_fail(j, at + 1, NULL, "invalid escape");
}

/* The value of four checked hex digits at p. */
static inline uint32_t jin_hex4(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 4 | (uint32_t)(p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    return v;
}

/* Check the four hex digits of the \u escape at p ("\u" known); NULL after refusing. */
static const uint8_t *jin_scan_u(jin_t *j, const uint8_t *p)
{
    for (int i = 2; i < 6; i++) {
        size_t at = (size_t)(p + i - j->base);
        if (p + i == j->end) return jin_fail(j, at, NULL, "premature end of input"), NULL;
        if (!jin_is_hex(p[i])) return jin_fail_esc(j, p + i), NULL;
    }
    return p + 6;
}

/* The \u escapes of the scanned string body s..q (q: its closing quote) must pair surrogates
 * high-low and not be \u0000. Checked once the string is scanned, and refused at its closing
 * quote, in jansson's order (any bad surrogate before \u0000). */
static bool jin_check_u(jin_t *j, const uint8_t *s, const uint8_t *q)
{
    size_t at = (size_t)(q + 1 - j->base);
    bool nul = false;
    while ((s = memchr(s, '\\', (size_t)(q - s)))) {
        if (s[1] != 'u') {
            s += 2;
            continue;
        }
        uint32_t v = jin_hex4(s + 2);
        s += 6;
        nul |= v == 0;
        if (v >= 0xdc00 && v <= 0xdfff)
            return jin_fail(j, at, NULL, "invalid Unicode '\\u%04X'", (unsigned)v), false;
        if (v < 0xd800 || v > 0xdbff) continue;
        if (s == q || s[0] != '\\' || s[1] != 'u')
            return jin_fail(j, at, NULL, "invalid Unicode '\\u%04X'", (unsigned)v), false;
        uint32_t lo = jin_hex4(s + 2);
        s += 6;
        if (lo < 0xdc00 || lo > 0xdfff)
            return jin_fail(j, at, NULL, "invalid Unicode '\\u%04X\\u%04X'", (unsigned)v,
                            (unsigned)lo),
                   false;
    }
    if (nul) return jin_fail(j, at, NULL, "\\u0000 is not allowed"), false;
    return true;
}

/* Scan the string body from p (after the opening quote) to its closing quote, checking every
 * byte; *esc is set if it holds escapes. Returns the closing quote, or NULL after refusing. */
static const uint8_t *jin_scan_str(jin_t *j, const uint8_t *p, bool *esc)
{
    const uint8_t *end = j->end, *body = p;
    bool u = false; /* holds \u escapes */
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
        if (c == '"') return !u || jin_check_u(j, body, p) ? p : NULL;
        if (c == '\\') {
            *esc = true;
            if (end - p < 2) return jin_fail(j, at + 1, end, "premature end of input"), NULL;
            if (p[1] == 'u') {
                u = true;
                p = jin_scan_u(j, p);
                if (!p) return NULL;
            } else if (strchr("\"\\/bfnrt", p[1]) && p[1]) {
                p += 2;
            } else {
                return jin_fail_esc(j, p + 1), NULL;
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

int jin_fail_token(jin_t *j, const uint8_t *p, const char *what)
{
    bool esc;
    /* jansson reads the whole token first: a string's own error comes before this one */
    if (p < j->end && *p == '"' && !jin_scan_str(j, p + 1, &esc)) return j->rc;
    /* and checks UTF-8 as it reads, also outside strings */
    if (p < j->end && *p >= 0x80 && !jin_utf8_len(p, j->end))
        return jin_fail(j, (size_t)(p - j->base), NULL, "unable to decode byte 0x%x", *p);
    size_t upto = (size_t)((p < j->end ? jin_token_end(p, j->end) : p) - j->base);
    return jin_fail(j, upto, p, "%s", what);
}

const uint8_t *jin_string(jin_t *j, const uint8_t *p, size_t *body, size_t *n)
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

const uint8_t *jin_number(jin_t *j, const uint8_t *p)
{
    const uint8_t *start = p, *end = j->end;
    bool neg = *p == '-';
    uint64_t m = 0; /* the first 19 significant digits */
    int sig = 0;    /* significant digits seen */
    long dexp = 0;  /* value = m * 10^dexp while sig <= 19 */
    p += neg;
    if (!jin_isdigit(p, end))
        return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
    if (*p == '0') {
        if (jin_isdigit(++p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
    } else {
        for (; jin_isdigit(p, end); p++, sig++)
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
        if (!jin_isdigit(++p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
        for (; jin_isdigit(p, end); p++) {
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
        if (!jin_isdigit(p, end))
            return jin_fail(j, (size_t)(p - j->base), start, "invalid token"), NULL;
        for (; jin_isdigit(p, end); p++)
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
