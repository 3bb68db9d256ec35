/* bench_parse.c - frame parsing for herald-bench: scan for known keys, else parse with jansson. */
#include "bench_parse.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define LIT(s) s, (sizeof(s) - 1)

/* Parse decimal digits at *p (< end) into v; advances *p. Returns 0, or -1 if no digit. */
static int scan_u64(const char **p, const char *end, uint64_t *v)
{
    const char *q = *p;
    uint64_t x = 0;
    if (q >= end || *q < '0' || *q > '9') return -1;
    while (q < end && *q >= '0' && *q <= '9')
        x = x * 10 + (uint64_t)(*q++ - '0');
    *v = x;
    *p = q;
    return 0;
}

/* Consume the literal lit at *p. */
static int expect(const char **p, const char *end, const char *lit, size_t len)
{
    if ((size_t)(end - *p) < len || memcmp(*p, lit, len) != 0) return -1;
    *p += len;
    return 0;
}

/* Consume a string body up to and including its closing quote; a string with an escape is
 * left to the full parser. Sets *s, *n to the body. */
static int take_str(const char **p, const char *end, const char **s, size_t *n)
{
    const char *q = memchr(*p, '"', (size_t)(end - *p));
    if (!q || memchr(*p, '\\', (size_t)(q - *p))) return -1;
    *s = *p;
    *n = (size_t)(q - *p);
    *p = q + 1;
    return 0;
}

/* The gateway writes a notification's fields in one order (json_render_notif): walk them
 * in that order; anything unexpected goes to the full parser. */
static int fast_notification(const char *s, size_t len, bmsg_t *m)
{
    static const char prefix[] = "{\"type\":\"notification\",\"seq\":";
    const char *p = s + sizeof prefix - 1, *end = s + len, *str;
    size_t n;
    uint64_t prio, ts;
    if (scan_u64(&p, end, &m->seq) < 0 || expect(&p, end, LIT(",\"message_id\":\"")) < 0 ||
        take_str(&p, end, &str, &n) < 0 || expect(&p, end, LIT(",\"message_type\":\"")) < 0 ||
        take_str(&p, end, &str, &n) < 0)
        return -1;
    if (n >= sizeof m->message_type) n = 0;
    memcpy(m->message_type, str, n);
    m->message_type[n] = '\0';
    if (expect(&p, end, LIT(",\"channel\":\"")) < 0 || take_str(&p, end, &str, &n) < 0 ||
        expect(&p, end, LIT(",\"user_id\":\"")) < 0 || take_str(&p, end, &str, &n) < 0 ||
        n > HERALD_MAX_ID_LEN)
        return -1;
    memcpy(m->user_id, str, n);
    m->user_id[n] = '\0';
    if (expect(&p, end, LIT(",\"priority\":")) < 0 || scan_u64(&p, end, &prio) < 0 ||
        prio >= HERALD_PRIORITIES || expect(&p, end, LIT(",\"timestamp\":")) < 0 ||
        scan_u64(&p, end, &ts) < 0 || expect(&p, end, LIT(",\"source\":\"")) < 0 ||
        take_str(&p, end, &str, &n) < 0 ||
        expect(&p, end, LIT(",\"payload\":{\"bench_t0\":")) < 0 ||
        scan_u64(&p, end, &m->bench_t0) < 0 || expect(&p, end, LIT(",\"bench_i\":")) < 0 ||
        scan_u64(&p, end, &m->bench_i) < 0)
        return -1;
    m->priority = (unsigned)prio;
    m->kind = BMSG_NOTIFICATION;
    return 0;
}

bmsg_kind_t bparse_frame(const char *s, size_t len, bmsg_t *m)
{
    static const char notif[] = "{\"type\":\"notification\",\"seq\":";
    static const char welcome[] = "{\"type\":\"welcome\"";
    if (len > sizeof notif - 1 && memcmp(s, notif, sizeof notif - 1) == 0 &&
        fast_notification(s, len, m) == 0)
        return m->kind;
    if (len > sizeof welcome - 1 && memcmp(s, welcome, sizeof welcome - 1) == 0)
        return m->kind = BMSG_WELCOME;
    return bparse_frame_slow(s, len, m);
}

/* Read a non-negative integer member; -1 if absent or not an integer >= 0. */
static int get_u64(json_t *obj, const char *key, uint64_t *v)
{
    json_t *j = json_object_get(obj, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
    *v = (uint64_t)json_integer_value(j);
    return 0;
}

static bmsg_kind_t slow_notification(json_t *root, bmsg_t *m)
{
    json_t *user = json_object_get(root, "user_id");
    json_t *payload = json_object_get(root, "payload");
    uint64_t prio;
    if (!json_is_string(user) || json_string_length(user) > HERALD_MAX_ID_LEN ||
        !json_is_object(payload) || get_u64(root, "seq", &m->seq) < 0 ||
        get_u64(root, "priority", &prio) < 0 || prio >= HERALD_PRIORITIES ||
        get_u64(payload, "bench_t0", &m->bench_t0) < 0 ||
        get_u64(payload, "bench_i", &m->bench_i) < 0)
        return BMSG_MALFORMED;
    memcpy(m->user_id, json_string_value(user), json_string_length(user) + 1);
    m->priority = (unsigned)prio;
    json_t *mt = json_object_get(root, "message_type");
    const char *t = json_is_string(mt) && json_string_length(mt) < sizeof m->message_type
                        ? json_string_value(mt)
                        : "";
    snprintf(m->message_type, sizeof m->message_type, "%s", t);
    return BMSG_NOTIFICATION;
}

bmsg_kind_t bparse_frame_slow(const char *s, size_t len, bmsg_t *m)
{
    json_error_t jerr;
    json_t *root = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *type = json_object_get(root, "type");
    m->type[0] = '\0';
    if (!json_is_object(root) || !json_is_string(type)) {
        m->kind = BMSG_MALFORMED;
    } else if (strcmp(json_string_value(type), "notification") == 0) {
        m->kind = slow_notification(root, m);
    } else if (strcmp(json_string_value(type), "welcome") == 0) {
        m->kind = BMSG_WELCOME;
    } else {
        m->kind = BMSG_OTHER;
        snprintf(m->type, sizeof m->type, "%s", json_string_value(type));
    }
    json_decref(root);
    return m->kind;
}
