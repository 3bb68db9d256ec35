/* test_ring_damage.c - the ring suite's damaged and refused rings: corrupt records and
 * headers, a missing ring, and creation that cannot get its pages. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring.h"
#include "ring_testrec.h"
#include "skip.h"
#include "test_ring.h"

/* Write three records, damage the second's header with `how`, expect a clean resync. */
static void check_corrupt_record(int how)
{
    char name[128];
    ring_test_name(name, sizeof name, "badrec");
    ring_unlink(name);
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    uint8_t buf[64] = {0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 40), 0);
    ring_publish(p);
    uint32_t *rec = (uint32_t *)((uint8_t *)ring_header(p) + RING_HEADER_BYTES + 48);
    if (how == 0) rec[1] = 0;                      /* type 0 */
    if (how == 1) rec[0] = ring_max_record(p) + 1; /* longer than max_record */
    if (how == 2) rec[0] = 200;                    /* runs past tail */
    if (how == 3) rec[1] = RING_REC_PAD;           /* padding not at the end */
    long n = 0;
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, SIZE_MAX), -HERR_CORRUPT);
    ring_stats_t s;
    ring_stats(c, &s);
    ck_assert_uint_eq(s.corrupt, 1);
    ck_assert_uint_eq(s.head, s.tail);
    /* the stream goes on after the resync */
    ck_assert_int_eq(ring_write(p, RING_REC_USER, buf, 40), 0);
    ring_publish(p);
    n = 0;
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, SIZE_MAX), 1);
    ring_close(c);
    ring_close(p);
    ring_unlink(name);
}

START_TEST(ring_consumer_rejects_corrupt_record_and_resyncs)
{
    for (int how = 0; how < 4; how++)
        check_corrupt_record(how);
}
END_TEST

START_TEST(ring_consumer_rejects_tail_beyond_capacity)
{
    char name[128];
    ring_test_name(name, sizeof name, "badtail");
    ring_t *p = open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY);
    ring_t *c = open_ok(name, RING_CONSUMER, 0);
    atomic_store(&ring_header(p)->tail, 3 * RING_MIN_CAPACITY);
    long n = 0;
    ck_assert_int_eq(ring_peek(c, count_record, &n, 10), -HERR_CORRUPT);
    ck_assert_int_eq(ring_read_batch(c, count_record, &n, 10), -HERR_CORRUPT);
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(atomic_load(&ring_header(c)->head), 3 * RING_MIN_CAPACITY);
    ring_close(c);
    ring_close(p);
}
END_TEST

/* Create a valid ring, damage it with `damage`, and expect attach to name `field`. */
static void check_attach_fails(const char *tag, void (*damage)(int fd, ring_header_t *h),
                               const char *field)
{
    char name[128], path[160];
    ring_test_name(name, sizeof name, tag);
    ring_close(open_ok(name, RING_PRODUCER, RING_MIN_CAPACITY));
    snprintf(path, sizeof path, "/%s", name);
    int fd = shm_open(path, O_RDWR, 0);
    ck_assert_int_ge(fd, 0);
    ring_header_t *h = mmap(NULL, RING_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(h, MAP_FAILED);
    damage(fd, h);
    munmap(h, RING_HEADER_BYTES);
    close(fd);
    ring_mode_t modes[] = {RING_CONSUMER, RING_INSPECT, RING_PRODUCER};
    for (int i = 0; i < 3; i++) {
        herald_error_t err = {0};
        ring_t *r = NULL;
        int rc = ring_open(&r, name, modes[i], RING_MIN_CAPACITY, 0, &err);
        ck_assert_int_eq(rc, -HERR_CORRUPT);
        ck_assert_ptr_null(r);
        ck_assert_str_eq(err.field, field);
        ck_assert_ptr_nonnull(strstr(err.message, name));
    }
}

static void bad_magic(int fd, ring_header_t *h)
{
    (void)fd;
    h->magic ^= 1;
}

static void bad_version(int fd, ring_header_t *h)
{
    (void)fd;
    h->version = 99;
}

static void bad_header_bytes(int fd, ring_header_t *h)
{
    (void)fd;
    h->header_bytes = 512;
}

static void bad_capacity(int fd, ring_header_t *h)
{
    (void)fd;
    h->capacity = RING_MIN_CAPACITY + 8;
}

static void not_ready(int fd, ring_header_t *h)
{
    (void)fd;
    atomic_store(&h->ready, 0);
}

static void truncated_header(int fd, ring_header_t *h)
{
    (void)h;
    ck_assert_int_eq(ftruncate(fd, 100), 0);
}

static void truncated_data(int fd, ring_header_t *h)
{
    (void)h;
    ck_assert_int_eq(ftruncate(fd, RING_HEADER_BYTES + RING_MIN_CAPACITY / 2), 0);
}

START_TEST(ring_attach_rejects_corrupt_header_naming_the_field)
{
    check_attach_fails("magic", bad_magic, "magic");
    check_attach_fails("version", bad_version, "version");
    check_attach_fails("hbytes", bad_header_bytes, "header_bytes");
    check_attach_fails("cap", bad_capacity, "capacity");
    check_attach_fails("ready", not_ready, "ready");
    check_attach_fails("trunc", truncated_header, "size");
    check_attach_fails("truncdata", truncated_data, "size");
}
END_TEST

START_TEST(ring_attach_to_missing_ring_is_not_found)
{
    char name[128];
    ring_test_name(name, sizeof name, "missing");
    herald_error_t err;
    ring_t *r;
    ck_assert_int_eq(ring_open(&r, name, RING_CONSUMER, 0, 0, &err), -HERR_NOT_FOUND);
    ck_assert_int_eq(ring_open(&r, name, RING_INSPECT, 0, 0, &err), -HERR_NOT_FOUND);
    ck_assert_int_eq(ring_unlink(name), -ENOENT);
}
END_TEST

START_TEST(ring_creation_allocates_every_page)
{
    char name[128], path[160];
    ring_test_name(name, sizeof name, "alloc");
    ring_t *r = open_ok(name, RING_PRODUCER, 1 << 20);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_ge((long long)st.st_blocks * 512, (long long)st.st_size);
    ring_close(r);
}
END_TEST

/* In a child with its own mount namespace and a 1 MiB tmpfs over /dev/shm (root only: it
 * cannot fill the machine's /dev/shm); exits 77 when that cannot be set up. */
static int full_shm_child(const char *name)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") < 0)
        return 77;
    herald_error_t err;
    ring_t *r = NULL;
    int rc = ring_open(&r, name, RING_PRODUCER, 4 << 20, 0, &err);
    if (rc != -HERR_IO || !strstr(err.message, "no space") || !strstr(err.message, name)) {
        fprintf(stderr, "ring_open in a full /dev/shm: rc %d: %s\n", rc, err.message);
        return 1;
    }
    if (ring_open(&r, name, RING_CONSUMER, 0, 0, &err) != -HERR_NOT_FOUND) {
        fprintf(stderr, "the failed ring was left behind\n");
        return 1;
    }
    return 0;
}

START_TEST(ring_creation_in_a_full_dev_shm_fails_naming_the_ring)
{
    char name[128];
    ring_test_name(name, sizeof name, "full");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(full_shm_child(name));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) TEST_SKIP("no private mount of /dev/shm (needs root)");
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

void ring_add_damage_tests(TCase *tc)
{
    tcase_add_test(tc, ring_consumer_rejects_corrupt_record_and_resyncs);
    tcase_add_test(tc, ring_consumer_rejects_tail_beyond_capacity);
    tcase_add_test(tc, ring_attach_rejects_corrupt_header_naming_the_field);
    tcase_add_test(tc, ring_attach_to_missing_ring_is_not_found);
    tcase_add_test(tc, ring_creation_allocates_every_page);
    tcase_add_test(tc, ring_creation_in_a_full_dev_shm_fails_naming_the_ring);
}
