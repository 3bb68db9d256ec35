/* bench_codec.c - ad-hoc micro benchmark of the broker's ingest codec: ns per notification
 * for the object path (codec_unpack, codec_notif_from_object, model_validate_payload,
 * codec_encode) and the scan path (codec_check, codec_notif_scan, codec_encode_to), on
 * herald-bench's notification shape. Not a test: run it by hand on a release build.
 *
 * Usage: bench-codec [BATCH [CHUNKS [WITH_ID]]]   (defaults 100 2000 0)
 * Each chunk runs 10 frames of BATCH notifications through each path in turn; the thread's
 * CPU time per chunk is taken, and the minimum and mean are printed (the minimum is the
 * figure to compare on a shared machine). WITH_ID=1 gives every notification a message_id,
 * so the broker's id generation is left out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* tools/bench_broker.c's pack_notif, with an optional message_id. */
static void pack_notif(msgpack_packer *pk, uint32_t u, bool with_id)
{
    char user[32], id[48], pad[100];
    snprintf(user, sizeof user, "user%u", u);
    memset(pad, 'x', sizeof pad);
    msgpack_pack_map(pk, with_id ? 6 : 5);
    if (with_id) {
        snprintf(id, sizeof id, "6f1c2b1e-0d5c-4f7a-9a53-%012u", u);
        pack_s(pk, "message_id"), pack_s(pk, id);
    }
    pack_s(pk, "message_type"), pack_s(pk, "system_notice");
    pack_s(pk, "user_id"), pack_s(pk, user);
    pack_s(pk, "priority"), msgpack_pack_uint32(pk, 1);
    pack_s(pk, "source"), pack_s(pk, "bench");
    pack_s(pk, "payload");
    msgpack_pack_map(pk, 3);
    pack_s(pk, "title"), pack_s(pk, "bench");
    pack_s(pk, "level"), pack_s(pk, "info");
    pack_s(pk, "content");
    msgpack_pack_str_with_body(pk, pad, sizeof pad);
}

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static msgpack_unpacked unpacked;
static msgpack_sbuffer enc;
static uint8_t scratch[CODEC_ENCODE_CAP], item[1024];

/* One frame through the object path, as broker/pipeline.c does it. Returns a checksum. */
static unsigned frame_object(const uint8_t *body, size_t len)
{
    herald_error_t err;
    unsigned sum = 0;
    if (codec_unpack(body, len, 1u << 24, &unpacked, &err) < 0) abort();
    const msgpack_object *o = &unpacked.data;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        notif_t n;
        if (codec_notif_from_object(&o->via.array.ptr[i], &n, &err) < 0 ||
            model_validate_payload(n.type, &n.payload, &err) < 0)
            abort();
        n.timestamp = 1;
        n.seq = 0;
        enc.size = 0;
        long l = codec_encode(&n, &enc, NULL);
        if (l < 0 || (size_t)l > sizeof item) abort();
        memcpy(item, enc.data, (size_t)l);
        sum += item[l - 1];
    }
    return sum;
}

/* The same frame through the scan path. */
static unsigned frame_scan(const uint8_t *body, size_t len)
{
    herald_error_t err;
    unsigned sum = 0;
    uint32_t count;
    if (codec_check(body, len, 1u << 24, &err) < 0) abort();
    size_t off = codec_array_open(body, len, &count);
    for (uint32_t i = 0; i < count; i++) {
        notif_t n;
        long used = codec_notif_scan(body + off, len - off, &n, &err);
        if (used < 0) abort();
        off += (size_t)used;
        n.timestamp = 1;
        n.seq = 0;
        long l = codec_encode_to(&n, scratch, sizeof scratch);
        if (l < 0 || (size_t)l > sizeof item) abort();
        memcpy(item, scratch, (size_t)l);
        sum += item[l - 1];
    }
    return sum;
}

int main(int argc, char **argv)
{
    uint32_t batch = argc > 1 ? (uint32_t)atoi(argv[1]) : 100;
    uint32_t chunks = argc > 2 ? (uint32_t)atoi(argv[2]) : 2000;
    bool with_id = argc > 3 && atoi(argv[3]) != 0;
    if (batch == 0 || chunks == 0) {
        fprintf(stderr, "usage: bench-codec [BATCH [CHUNKS [WITH_ID]]]\n");
        return 2;
    }
    msgpack_sbuffer body;
    msgpack_packer pk;
    msgpack_sbuffer_init(&body);
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, batch);
    for (uint32_t i = 0; i < batch; i++)
        pack_notif(&pk, i % 1000, with_id);
    msgpack_unpacked_init(&unpacked);
    msgpack_sbuffer_init(&enc);

    const uint8_t *b = (const uint8_t *)body.data;
    double min[2] = {1e18, 1e18}, sum[2] = {0, 0}, per = 10.0 * batch;
    unsigned check = 0;
    for (uint32_t c = 0; c < chunks; c++) {
        for (int path = 0; path < 2; path++) {
            double t0 = cpu_ns();
            for (int f = 0; f < 10; f++)
                check += path ? frame_scan(b, body.size) : frame_object(b, body.size);
            double ns = (cpu_ns() - t0) / per;
            min[path] = ns < min[path] ? ns : min[path];
            sum[path] += ns;
        }
    }
    printf("%u notifications per frame, %zu bytes each, %s message_id\n", batch, body.size / batch,
           with_id ? "with" : "without");
    printf("object path: min %.1f mean %.1f ns/notification\n", min[0], sum[0] / chunks);
    printf("scan path:   min %.1f mean %.1f ns/notification\n", min[1], sum[1] / chunks);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&enc);
    msgpack_unpacked_destroy(&unpacked);
    return check == 1 ? 3 : 0; /* keeps the work observable */
}
