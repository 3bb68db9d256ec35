/* producer.c - publish one notification to herald with the installed libherald.
 *
 *   cc producer.c $(pkg-config --cflags --libs herald msgpack) -o producer
 *   ./producer /run/herald/broker.sock u1        # or tcp:HOST:PORT [API_KEY]
 *
 * A notification is a msgpack map (docs/protocol.md 2); libherald frames it, sends it and
 * reads the broker's answer: the seq the user's sessions will see it under, or why not. */
#include <herald/herald.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

static void put_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BROKER_ADDRESS USER [API_KEY]\n", argv[0]);
        return 2;
    }
    herald_error_t err;
    herald_connect_opts_t opts = {.api_key = argc > 3 ? argv[3] : NULL};
    herald_client_t *c = herald_connect_opts(argv[1], &opts, &err);
    if (!c) {
        fprintf(stderr, "connect %s: %s\n", argv[1], err.message);
        return 1;
    }
    /* {"message_type":"risk_alert","user_id":U,"source":"example","payload":{...}} */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    put_str(&pk, "message_type"), put_str(&pk, "risk_alert");
    put_str(&pk, "user_id"), put_str(&pk, argv[2]);
    put_str(&pk, "source"), put_str(&pk, "example");
    put_str(&pk, "payload");
    msgpack_pack_map(&pk, 6);
    put_str(&pk, "user_id"), put_str(&pk, argv[2]);
    put_str(&pk, "alert_type"), put_str(&pk, "margin");
    put_str(&pk, "severity"), put_str(&pk, "high");
    put_str(&pk, "message"), put_str(&pk, "margin ratio 92%");
    put_str(&pk, "risk_ratio"), msgpack_pack_double(&pk, 0.92);
    put_str(&pk, "suggestion"), put_str(&pk, "add margin");

    herald_result_t r;
    int rc = herald_publish(c, (const uint8_t *)sb.data, sb.size, &r, &err);
    msgpack_sbuffer_destroy(&sb);
    herald_close(c);
    if (rc < 0) {
        fprintf(stderr, "publish: %s\n", err.message);
        return 1;
    }
    if (!r.ok) {
        fprintf(stderr, "refused: %s: %s\n", r.error, r.message);
        return 1;
    }
    printf("published for %s: seq %llu%s\n", argv[2], (unsigned long long)r.seq,
           r.duplicate ? " (a duplicate)" : "");
    return 0;
}
