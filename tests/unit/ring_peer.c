/* ring_peer.c - producer or consumer process for the ring tests; reports key=value on stdout.
 *
 *   ring_peer produce NAME --count N [--first S] [--min L] [--max L] [--batch B]
 *                          [--pingpong] [--timeout SEC]
 *   ring_peer consume NAME --count N [--wait spin|doorbell] [--spin K] [--batch B]
 *                          [--delay-us U] [--timeout SEC]
 *
 * The consumer stops at the record with seq count-1 (whatever seq it starts at, so a
 * restarted consumer finishes the stream), checks order and checksum of every record, and
 * reports what it saw. Exit status 0 = ran to the end, 2 = timed out, 1 = error.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "doorbell.h"
#include "herald_time.h"
#include "ring.h"
#include "ring_testrec.h"

typedef struct {
    const char *name;
    uint64_t count, first;
    uint32_t min, max, batch, spin, delay_us;
    int timeout_s;
    bool pingpong, doorbell;
} peer_opts_t;

typedef struct {
    uint64_t last_seq; /* of the stream */
    uint64_t received, first, last, bad_order, bad_sum;
    bool started, done;
} consume_state_t;

static int peer_produce(ring_t *r, const peer_opts_t *o)
{
    uint8_t *buf = malloc(o->max);
    uint64_t seq = o->first, end = o->first + o->count, enospc = 0, wakes = 0;
    double deadline = mono_s() + o->timeout_s;
    ring_header_t *h = ring_header(r);
    int status = 0;
    while (seq < end) {
        if (mono_s() > deadline) {
            status = 2;
            break;
        }
        uint32_t k = 0;
        for (; k < o->batch && seq < end; k++, seq++) {
            uint32_t len = testrec_len(seq, o->min, o->max);
            testrec_fill(buf, seq, len);
            int rc = ring_write(r, RING_REC_USER, buf, len);
            if (rc == -HERR_NO_ROOM) break;
            if (rc < 0) {
                fprintf(stderr, "ring_write: %s\n", herr_code((herr_t)-rc));
                status = 1;
                goto out;
            }
        }
        if (ring_publish(r)) {
            ring_wake(r);
            wakes++;
        }
        if (k == 0) {
            enospc++;
            sched_yield();
        }
        if (o->pingpong) /* wait until the consumer took it, so it goes back to sleep */
            while (atomic_load_explicit(&h->head, memory_order_acquire) !=
                       atomic_load_explicit(&h->tail, memory_order_relaxed) &&
                   mono_s() < deadline)
                sched_yield();
    }
out:
    printf("sent=%llu enospc=%llu wakes=%llu\n", (unsigned long long)(seq - o->first),
           (unsigned long long)enospc, (unsigned long long)wakes);
    free(buf);
    return status;
}

static int on_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx)
{
    consume_state_t *st = ctx;
    uint64_t seq;
    if (type != RING_REC_USER || testrec_check(data, len, &seq) < 0) {
        st->bad_sum++;
        return 0;
    }
    if (!st->started) {
        st->started = true;
        st->first = seq;
    } else if (seq != st->last + 1) {
        st->bad_order++;
    }
    st->last = seq;
    st->received++;
    if (seq == st->last_seq) {
        st->done = true;
        return 1;
    }
    return 0;
}

static int peer_consume(ring_t *r, const peer_opts_t *o)
{
    consume_state_t st = {.last_seq = o->count - 1};
    struct io_uring uring;
    doorbell_t bell;
    uint64_t sleeps = 0, timeouts = 0, corrupt = 0;
    double deadline = mono_s() + o->timeout_s;
    int status = 0;
    if (o->doorbell) {
        int rc = io_uring_queue_init(8, &uring, 0);
        if (rc == 0) rc = doorbell_open(&bell, &uring, r);
        if (rc < 0) {
            fprintf(stderr, "doorbell: %s\n", strerror(-rc));
            return 1;
        }
    }
    uint32_t idle = 0;
    while (!st.done) {
        long n = ring_read_batch(r, on_record, &st, o->batch);
        if (n < 0) corrupt++;
        if (n != 0) {
            idle = 0;
            if (o->delay_us) usleep(o->delay_us);
            continue;
        }
        if (mono_s() > deadline) {
            status = 2;
            break;
        }
        if (!o->doorbell || ++idle <= o->spin) {
            sched_yield();
            continue;
        }
        int rc = doorbell_arm(&bell, 7);
        if (rc == 0) continue;
        if (rc < 0) {
            fprintf(stderr, "doorbell_arm: %s\n", strerror(-rc));
            status = 1;
            break;
        }
        sleeps++;
        struct io_uring_cqe *cqe;
        struct __kernel_timespec ts = {5, 0};
        rc = io_uring_wait_cqe_timeout(&uring, &cqe, &ts);
        if (rc == -ETIME) {
            timeouts++;
            continue;
        }
        if (rc < 0) continue; /* EINTR: look at the ring again */
        rc = doorbell_complete(&bell, cqe->res);
        io_uring_cqe_seen(&uring, cqe);
        if (rc < 0) {
            fprintf(stderr, "doorbell wait: %s\n", strerror(-rc));
            status = 1;
            break;
        }
    }
    printf("received=%llu first=%llu last=%llu bad_order=%llu bad_sum=%llu corrupt=%llu "
           "sleeps=%llu timeouts=%llu mech=%s\n",
           (unsigned long long)st.received, (unsigned long long)st.first,
           (unsigned long long)st.last, (unsigned long long)st.bad_order,
           (unsigned long long)st.bad_sum, (unsigned long long)corrupt, (unsigned long long)sleeps,
           (unsigned long long)timeouts, o->doorbell ? doorbell_kind_name(bell.kind) : "spin");
    if (o->doorbell) {
        doorbell_close(&bell);
        io_uring_queue_exit(&uring);
    }
    return status;
}

int main(int argc, char **argv)
{
    /* die with the test that started us, even when it fails without cleaning up */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (argc < 3) {
        fprintf(stderr, "usage: ring_peer produce|consume NAME [options]\n");
        return 1;
    }
    peer_opts_t o = {.name = argv[2],
                     .count = 1000,
                     .min = TESTREC_HDR,
                     .max = 256,
                     .batch = 64,
                     .timeout_s = 60};
    static const struct option opts[] = {
        {"count", 1, 0, 'n'},    {"first", 1, 0, 'f'},    {"min", 1, 0, 'l'},  {"max", 1, 0, 'm'},
        {"batch", 1, 0, 'b'},    {"pingpong", 0, 0, 'p'}, {"wait", 1, 0, 'w'}, {"spin", 1, 0, 's'},
        {"delay-us", 1, 0, 'd'}, {"timeout", 1, 0, 't'},  {0, 0, 0, 0}};
    int c;
    optind = 3;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'f':
            o.first = strtoull(optarg, NULL, 10);
            break;
        case 'l':
            o.min = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'm':
            o.max = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'b':
            o.batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            o.pingpong = true;
            break;
        case 'w':
            o.doorbell = strcmp(optarg, "doorbell") == 0;
            break;
        case 's':
            o.spin = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            o.delay_us = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            o.timeout_s = atoi(optarg);
            break;
        default:
            return 1;
        }
    }
    if (o.min < TESTREC_HDR || o.max < o.min || o.count == 0 || o.batch == 0) {
        fprintf(stderr, "ring_peer: bad options\n");
        return 1;
    }
    bool produce = strcmp(argv[1], "produce") == 0;
    herald_error_t err;
    ring_t *r;
    if (ring_open(&r, o.name, produce ? RING_PRODUCER : RING_CONSUMER, 0, 0, &err) < 0) {
        fprintf(stderr, "ring_open %s: %s\n", o.name, err.message);
        return 1;
    }
    int status = produce ? peer_produce(r, &o) : peer_consume(r, &o);
    fflush(stdout);
    ring_close(r);
    return status;
}
