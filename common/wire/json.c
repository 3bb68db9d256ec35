/* json.c - the JSON writer for client frames (JSON input is json_in.c).
 *
 * It is on the gateway's hot path (one frame per notification per session) and writes
 * straight into a buffer with LWS_PRE headroom. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(jbuf_t *b, size_t headroom)
{
    b->base = NULL;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->head = headroom;
}

void jbuf_free(jbuf_t *b)
{
    free(b->base);
    jbuf_init(b, b->head);
}

void jbuf_reserve(jbuf_t *b, size_t n)
{
    if (b->cap - b->len >= n) return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->base, b->head + cap);
    if (!p) abort();
    b->base = p;
    b->data = p + b->head;
    b->cap = cap;
}

void jbuf_put(jbuf_t *b, const void *p, size_t n)
{
    if (n == 0) return;
    jbuf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void jbuf_putc(jbuf_t *b, char c)
{
    jbuf_reserve(b, 1);
    b->data[b->len++] = c;
}

void jbuf_puts(jbuf_t *b, const char *s)
{
    jbuf_put(b, s, strlen(s));
}

void jbuf_put_u64(jbuf_t *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jbuf_put(b, tmp + i, sizeof tmp - i);
}

void jbuf_put_kv_u64(jbuf_t *b, const char *key, uint64_t v, bool comma)
{
    if (comma) jbuf_putc(b, ',');
    jbuf_putc(b, '"');
    jbuf_puts(b, key);
    jbuf_puts(b, "\":");
    jbuf_put_u64(b, v);
}

void jbuf_put_i64(jbuf_t *b, int64_t v)
{
    if (v < 0) {
        jbuf_putc(b, '-');
        jbuf_put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        jbuf_put_u64(b, (uint64_t)v);
    }
}

/* 0: copy as is; 1: escape; 2: start of a multi-byte sequence (validate). */
static const uint8_t str_class[256] = {
    [0x00 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 2,
};

/* Length of the valid UTF-8 sequence at p (2..4), or 0 and in *skip the length of the
 * maximal invalid subpart to replace by one U+FFFD (Unicode's "substitution of maximal
 * subparts": overlong forms, surrogates, > U+10FFFF, stray continuation bytes and truncated
 * sequences are all invalid). */
static size_t utf8_valid(const uint8_t *p, const uint8_t *end, size_t *skip)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* > U+10FFFF */
    } else {
        *skip = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need && p + i < end; i++) {
        uint8_t d = p[i];
        if (i == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xbf)) break;
    }
    if (i > need) return need + 1;
    *skip = i;
    return 0;
}

void json_put_str(jbuf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s, *end = p + n, *run = p;
    jbuf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    while (p < end) {
        uint8_t c = *p;
        if (str_class[c] == 0) {
            p++;
            continue;
        }
        jbuf_put(b, run, (size_t)(p - run));
        if (c < 0x80) {
            char esc[6] = {'\\', 0};
            size_t k = 2;
            switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
            }
            jbuf_put(b, esc, k);
            p++;
        } else {
            size_t skip = 0, ok = utf8_valid(p, end, &skip);
            if (ok) {
                jbuf_put(b, p, ok);
                p += ok;
            } else {
                jbuf_put(b, "\xef\xbf\xbd", 3);
                p += skip;
            }
        }
        run = p;
    }
    jbuf_put(b, run, (size_t)(p - run));
    jbuf_putc(b, '"');
}

/* Write v so that it reads back as the same double, briefly, and with a '.' or exponent so
 * a float stays a float when the JSON is read again. Fast path for the common case (prices,
 * volumes): v is the double nearest to M / 10^k for an integer M < 2^53 and k <= 8; then M
 * with k decimals is exact (M and 10^k are exact doubles and IEEE division rounds
 * correctly, as strtod does). Otherwise the shorter of %.15g and %.17g that round-trips. */
static void put_double(jbuf_t *b, double v)
{
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    static const uint64_t u10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    if (!isfinite(v)) {
        jbuf_put(b, "null", 4);
        return;
    }
    double a = fabs(v);
    for (int k = 0; k < 9; k++) {
        double m = a * p10[k];
        if (m >= 9007199254740992.0) break; /* 2^53 */
        if (m != floor(m) || m / p10[k] != a) continue;
        uint64_t M = (uint64_t)m;
        if (signbit(v)) jbuf_putc(b, '-');
        jbuf_put_u64(b, M / u10[k]);
        char frac[10] = {'.', '0'};
        size_t n = k ? (size_t)k + 1 : 2;
        for (uint64_t f = M % u10[k], i = (uint64_t)k; i > 0; i--, f /= 10)
            frac[i] = (char)('0' + f % 10);
        jbuf_put(b, frac, n);
        return;
    }
    char tmp[40];
    int k = snprintf(tmp, sizeof tmp - 2, "%.15g", v);
    if (strtod(tmp, NULL) != v) k = snprintf(tmp, sizeof tmp - 2, "%.17g", v);
    if (!strpbrk(tmp, ".e")) {
        memcpy(tmp + k, ".0", 2);
        k += 2;
    }
    jbuf_put(b, tmp, (size_t)k);
}

static void put_value(jbuf_t *b, const msgpack_object *o, bool in_key);

/* A map key as a JSON string. Scalars become the string of their JSON text (which needs no
 * escaping). An array or map key becomes the string of its JSON text too, but inside such a
 * text, array and map keys are written as "[...]" / "{...}": escaping a key within a key
 * within a key ... doubles the backslashes at every level, so a small input nested 30 deep
 * would otherwise render to gigabytes. */
static void put_key(jbuf_t *b, const msgpack_object *k, bool in_key)
{
    switch (k->type) {
    case MSGPACK_OBJECT_STR:
        json_put_str(b, k->via.str.ptr, k->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN:
        json_put_str(b, k->via.bin.ptr, k->via.bin.size);
        return;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
        if (in_key) {
            jbuf_puts(b, k->type == MSGPACK_OBJECT_ARRAY ? "\"[...]\"" : "\"{...}\"");
            return;
        }
        jbuf_t tmp;
        jbuf_init(&tmp, 0);
        put_value(&tmp, k, true);
        json_put_str(b, tmp.data, tmp.len);
        jbuf_free(&tmp);
        return;
    }
    default:
        jbuf_putc(b, '"');
        put_value(b, k, in_key);
        jbuf_putc(b, '"');
    }
}

void json_put_msgpack(jbuf_t *b, const msgpack_object *o)
{
    put_value(b, o, false);
}

static void put_value(jbuf_t *b, const msgpack_object *o, bool in_key)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        jbuf_put(b, "null", 4);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        if (o->via.boolean)
            jbuf_put(b, "true", 4);
        else
            jbuf_put(b, "false", 5);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        jbuf_put_u64(b, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        jbuf_put_i64(b, o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        put_double(b, o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        json_put_str(b, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        json_put_str(b, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        jbuf_putc(b, '[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) jbuf_putc(b, ',');
            put_value(b, &o->via.array.ptr[i], in_key);
        }
        jbuf_putc(b, ']');
        break;
    case MSGPACK_OBJECT_MAP:
        jbuf_putc(b, '{');
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i) jbuf_putc(b, ',');
            put_key(b, &o->via.map.ptr[i].key, in_key);
            jbuf_putc(b, ':');
            put_value(b, &o->via.map.ptr[i].val, in_key);
        }
        jbuf_putc(b, '}');
        break;
    default:
        jbuf_put(b, "null", 4);
        break; /* ext */
    }
}

#define LIT(s) s, sizeof s - 1

void json_render_notif(jbuf_t *b, const notif_t *n)
{
    jbuf_put(b, LIT("{\"type\":\"notification\",\"seq\":"));
    jbuf_put_u64(b, n->seq);
    jbuf_put(b, LIT(",\"message_id\":"));
    json_put_str(b, n->message_id, strlen(n->message_id));
    /* Type and channel names are fixed ASCII identifiers: no escaping needed. */
    jbuf_put(b, LIT(",\"message_type\":\""));
    jbuf_puts(b, n->type->name);
    jbuf_put(b, LIT("\",\"channel\":\""));
    jbuf_puts(b, model_channel_name(n->type->channel));
    jbuf_put(b, LIT("\",\"user_id\":"));
    json_put_str(b, n->user_id, strlen(n->user_id));
    jbuf_put(b, LIT(",\"priority\":"));
    jbuf_put_u64(b, n->priority);
    jbuf_put(b, LIT(",\"timestamp\":"));
    jbuf_put_u64(b, n->timestamp);
    jbuf_put(b, LIT(",\"source\":"));
    json_put_str(b, n->source, strlen(n->source));
    jbuf_put(b, LIT(",\"payload\":"));
    if (n->payload.type == MSGPACK_OBJECT_MAP)
        json_put_msgpack(b, &n->payload);
    else
        jbuf_put(b, "{}", 2);
    jbuf_putc(b, '}');
}
