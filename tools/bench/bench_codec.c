/* bench_codec.c - `herald-bench codec`: ns per notification of the broker's ingest codec,
 * the object path (codec_unpack, codec_notif_from_object, model_validate_payload,
 * codec_encode) against the scan path the broker uses (codec_check, codec_notif_scan,
 * codec_encode_to), on herald-bench's notification shape, in this process.
 *
 * Each chunk runs 10 frames of BATCH notifications through each path in turn; the thread's
 * CPU time per chunk is taken, and the minimum and mean are printed (the minimum is the
 * figure to compare on a shared machine). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "codec.h"

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

static void bc_usage(FILE *out)
{
    fprintf(out, "usage: herald-bench codec [--batch B] [--chunks C] [--no-ids]\n"
                 "  ns per notification, object path vs scan path (defaults 100, 2000; every\n"
                 "  notification has a message_id unless --no-ids)\n");
}

int bench_codec_main(int argc, char **argv)
{
    uint32_t batch = 100, chunks = 2000;
    bool with_id = true;
    static const struct option longopts[] = {
        {"batch", required_argument, 0, 'b'},
        {"chunks", required_argument, 0, 'c'},
        {"no-ids", no_argument, 0, 'i'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "b:c:ih", longopts, NULL)) != -1) {
        if (opt == 'b') {
            batch = (uint32_t)strtoul(optarg, NULL, 10);
        } else if (opt == 'c') {
            chunks = (uint32_t)strtoul(optarg, NULL, 10);
        } else if (opt == 'i') {
            with_id = false;
        } else {
            bc_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (batch == 0 || batch > 100000 || chunks == 0) {
        fprintf(stderr, "herald-bench codec: bad option value\n");
        return 2;
    }
    msgpack_sbuffer body;
    msgpack_packer pk;
    msgpack_sbuffer_init(&body);
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, batch);
    size_t id_off;
    for (uint32_t i = 0; i < batch; i++)
        bench_pack_notif(&pk, &body, i % 1000, 100, with_id ? &id_off : NULL);
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
    if (check == 1) printf("(checksum %u)\n", check); /* keeps the work observable */
    return 0;
}
