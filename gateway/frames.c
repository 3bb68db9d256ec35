/* frames.c - control frames sent to clients (welcome, subscribed, pong, resumed, gap, error,
 * refreshed, acks), as a JSON text frame or a msgpack binary frame with the same fields. */
#include "frames.h"

#include <string.h>

#include "model.h"

/* A tiny field writer that targets either encoding, so each frame is described once. */
typedef struct {
    bool binary;
    jbuf_t *jb;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool first;
} fw_t;

static void fw_begin(fw_t *w, jbuf_t *jb, bool binary, uint32_t nfields)
{
    w->binary = binary;
    w->jb = jb;
    w->first = true;
    if (binary) {
        msgpack_sbuffer_init(&w->sb);
        msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
        msgpack_pack_map(&w->pk, nfields);
    } else {
        jbuf_reset(w->jb);
        jbuf_putc(w->jb, '{');
    }
}

static void fw_key(fw_t *w, const char *k)
{
    size_t n = strlen(k);
    if (w->binary) {
        msgpack_pack_str(&w->pk, n);
        msgpack_pack_str_body(&w->pk, k, n);
        return;
    }
    if (!w->first) jbuf_putc(w->jb, ',');
    w->first = false;
    json_put_str(w->jb, k, n);
    jbuf_putc(w->jb, ':');
}

static void fw_str(fw_t *w, const char *k, const char *v)
{
    fw_key(w, k);
    size_t n = strlen(v);
    if (w->binary) {
        msgpack_pack_str(&w->pk, n);
        msgpack_pack_str_body(&w->pk, v, n);
    } else {
        json_put_str(w->jb, v, n);
    }
}

static void fw_u64(fw_t *w, const char *k, uint64_t v)
{
    fw_key(w, k);
    if (w->binary)
        msgpack_pack_uint64(&w->pk, v);
    else
        jbuf_put_u64(w->jb, v);
}

static void fw_channels(fw_t *w, const char *k, uint32_t mask)
{
    fw_key(w, k);
    unsigned n = 0;
    for (unsigned c = 0; c < CH__COUNT; c++)
        n += (mask >> c) & 1u;
    if (w->binary)
        msgpack_pack_array(&w->pk, n);
    else
        jbuf_putc(w->jb, '[');
    bool first = true;
    for (unsigned c = 0; c < CH__COUNT; c++) {
        if (!(mask & (1u << c))) continue;
        const char *name = model_channel_name((channel_t)c);
        if (w->binary) {
            msgpack_pack_str(&w->pk, strlen(name));
            msgpack_pack_str_body(&w->pk, name, strlen(name));
        } else {
            if (!first) jbuf_putc(w->jb, ',');
            json_put_str(w->jb, name, strlen(name));
        }
        first = false;
    }
    if (!w->binary) jbuf_putc(w->jb, ']');
}

static gw_msg_t *fw_end(fw_t *w)
{
    gw_msg_t *m;
    if (w->binary) {
        m = gw_msg_new(w->sb.data, w->sb.size, true);
        msgpack_sbuffer_destroy(&w->sb);
    } else {
        jbuf_putc(w->jb, '}');
        m = gw_msg_new(w->jb->data, w->jb->len, false);
    }
    return m;
}

gw_msg_t *gw_frames_welcome(jbuf_t *jb, bool binary, const char *session_id, const char *user_id,
                            unsigned gateway)
{
    fw_t w;
    fw_begin(&w, jb, binary, 4);
    fw_str(&w, "type", "welcome");
    fw_str(&w, "session_id", session_id);
    fw_str(&w, "user_id", user_id);
    fw_u64(&w, "gateway", gateway);
    return fw_end(&w);
}

gw_msg_t *gw_frames_range(jbuf_t *jb, bool binary, const char *type, uint64_t from, uint64_t to)
{
    fw_t w;
    fw_begin(&w, jb, binary, 3);
    fw_str(&w, "type", type);
    fw_u64(&w, "from", from);
    fw_u64(&w, "to", to);
    return fw_end(&w);
}

gw_msg_t *gw_frames_subscribed(jbuf_t *jb, bool binary, uint32_t channels)
{
    fw_t w;
    fw_begin(&w, jb, binary, 2);
    fw_str(&w, "type", "subscribed");
    fw_channels(&w, "channels", channels);
    return fw_end(&w);
}

gw_msg_t *gw_frames_pong(jbuf_t *jb, bool binary)
{
    fw_t w;
    fw_begin(&w, jb, binary, 1);
    fw_str(&w, "type", "pong");
    return fw_end(&w);
}

gw_msg_t *gw_frames_error(jbuf_t *jb, bool binary, const char *code, const char *message)
{
    fw_t w;
    fw_begin(&w, jb, binary, 3);
    fw_str(&w, "type", "error");
    fw_str(&w, "code", code);
    fw_str(&w, "message", message);
    return fw_end(&w);
}

gw_msg_t *gw_frames_acks(jbuf_t *jb, bool binary, bool on)
{
    fw_t w;
    fw_begin(&w, jb, binary, 2);
    fw_str(&w, "type", "acks");
    fw_key(&w, "on");
    if (binary && on)
        msgpack_pack_true(&w.pk);
    else if (binary)
        msgpack_pack_false(&w.pk);
    else
        jbuf_puts(w.jb, on ? "true" : "false");
    return fw_end(&w);
}

gw_msg_t *gw_frames_refreshed(jbuf_t *jb, bool binary, uint64_t exp)
{
    fw_t w;
    fw_begin(&w, jb, binary, 2);
    fw_str(&w, "type", "refreshed");
    fw_u64(&w, "exp", exp);
    return fw_end(&w);
}
