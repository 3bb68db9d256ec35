/* test_heartbeat.c - the liveness heartbeat (common/wire/heartbeat.c): the shared-memory
 * object's creation rules (protocol.md 12), what readers see, and the systemd notifications sent to
 * a real unix datagram socket. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_run.h"
#include "heartbeat.h"
#include "herald_time.h"

static char prefix[64];

static void setup(void)
{
    static unsigned n;
    snprintf(prefix, sizeof prefix, "hbtest%d.%u", (int)getpid(), n++);
}

static void teardown(void)
{
    static const char *const names[] = {"broker", "gateway0", "gateway1"};
    char path[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/%s.hb.%s", prefix, names[i]);
        shm_unlink(path);
    }
}

/* Create /dev/shm/<prefix>.hb.<name> ourselves with this mode and size. */
static void make_object(const char *name, mode_t mode, off_t size)
{
    char path[160];
    snprintf(path, sizeof path, "/%s.hb.%s", prefix, name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    if (size) ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
}

static hb_header_t *map_object(const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "/%s.hb.%s", prefix, name);
    int fd = shm_open(path, O_RDWR, 0);
    ck_assert_int_ge(fd, 0);
    void *p = mmap(NULL, HB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

START_TEST(heartbeat_open_creates_a_private_object_readers_see_our_pid_and_beats)
{
    hb_t h;
    hb_snapshot_t snap;
    herald_error_t err;
    struct stat st;
    char path[160];
    uint64_t before = mono_ns();
    ck_assert_int_eq(hb_open(&h, prefix, "broker", &err), 0);
    snprintf(path, sizeof path, "/dev/shm/%s.hb.broker", prefix);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_uint_eq(st.st_uid, geteuid());
    ck_assert_int_eq(st.st_size, HB_BYTES);

    ck_assert_int_eq(hb_read(prefix, "broker", &snap, &err), 0);
    ck_assert_int_eq(snap.pid, getpid());
    ck_assert_uint_ge(snap.started_ns, before);
    ck_assert_uint_eq(snap.beat_ns, snap.started_ns); /* opening is the first beat */
    hb_beat(&h, snap.started_ns + 12345);
    ck_assert_int_eq(hb_read(prefix, "broker", &snap, &err), 0);
    ck_assert_uint_eq(snap.beat_ns - snap.started_ns, 12345);
    ck_assert_str_eq(h.hdr->name, "broker");
    ck_assert_uint_eq(h.hdr->magic, HB_MAGIC);
    hb_close(&h);
}
END_TEST

START_TEST(heartbeat_close_removes_the_object)
{
    hb_t h;
    hb_snapshot_t snap;
    herald_error_t err;
    ck_assert_int_eq(hb_open(&h, prefix, "gateway0", &err), 0);
    hb_close(&h);
    ck_assert_ptr_null(h.hdr);
    ck_assert_int_eq(hb_read(prefix, "gateway0", &snap, &err), -HERR_NOT_FOUND);
    ck_assert_int_eq(err.code, HERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.message, "gateway0"));
    hb_close(&h);   /* again: a no-op */
    hb_beat(&h, 1); /* on a closed handle: a no-op */
}
END_TEST

START_TEST(heartbeat_refuses_an_object_others_may_open_and_leaves_it_unchanged)
{
    hb_t h;
    herald_error_t err;
    struct stat st;
    char path[160];
    make_object("broker", 0644, 100);
    ck_assert_int_eq(hb_open(&h, prefix, "broker", &err), -HERR_IO);
    ck_assert_ptr_nonnull(strstr(err.message, "hb.broker"));
    ck_assert_ptr_nonnull(strstr(err.message, "644"));
    ck_assert_ptr_null(h.hdr);
    snprintf(path, sizeof path, "/dev/shm/%s.hb.broker", prefix);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(st.st_size, 100);
    hb_beat(&h, 1); /* the failed handle is closed: beating it does nothing */
}
END_TEST

START_TEST(heartbeat_takes_over_our_own_stale_object_of_a_dead_process)
{
    hb_t h;
    hb_snapshot_t snap;
    herald_error_t err;
    /* what a SIGKILLed predecessor leaves: its pid and an old beat */
    ck_assert_int_eq(hb_open(&h, prefix, "gateway1", &err), 0);
    munmap(h.hdr, HB_BYTES);
    hb_header_t *old = map_object("gateway1");
    atomic_store(&old->pid, 999999);
    atomic_store(&old->beat_ns, 7);
    ck_assert_int_eq(hb_read(prefix, "gateway1", &snap, &err), 0);
    ck_assert_int_eq(snap.pid, 999999);

    ck_assert_int_eq(hb_open(&h, prefix, "gateway1", &err), 0);
    ck_assert_int_eq(hb_read(prefix, "gateway1", &snap, &err), 0);
    ck_assert_int_eq(snap.pid, getpid());
    ck_assert_uint_gt(snap.beat_ns, 7);
    munmap(old, HB_BYTES);
    hb_close(&h);

    /* one that was created but never sized (a crash in between) is taken over too */
    make_object("gateway1", 0600, 0);
    ck_assert_int_eq(hb_read(prefix, "gateway1", &snap, &err), -HERR_CORRUPT);
    ck_assert_int_eq(hb_open(&h, prefix, "gateway1", &err), 0);
    ck_assert_int_eq(hb_read(prefix, "gateway1", &snap, &err), 0);
    ck_assert_int_eq(snap.pid, getpid());
    hb_close(&h);
}
END_TEST

START_TEST(heartbeat_reader_rejects_what_is_not_a_heartbeat)
{
    hb_snapshot_t snap;
    herald_error_t err;
    make_object("broker", 0600, HB_BYTES); /* zeros: no magic */
    ck_assert_int_eq(hb_read(prefix, "broker", &snap, &err), -HERR_CORRUPT);
    ck_assert_ptr_nonnull(strstr(err.message, "magic"));
    ck_assert_int_eq(snap.pid, 0);
}
END_TEST

START_TEST(heartbeat_name_longer_than_its_field_is_refused)
{
    hb_t h;
    herald_error_t err;
    ck_assert_int_eq(hb_open(&h, prefix, "gateway-with-a-long-name", &err), -HERR_BAD_VALUE);
    ck_assert_ptr_null(h.hdr);
}
END_TEST

/* A unix datagram socket standing in for systemd's notify socket. */
static int notify_socket(char *path, size_t len)
{
    snprintf(path, len, "/tmp/hbtest-notify-%d", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    return fd;
}

/* The next datagram within ms, or "" when none came. */
static const char *notify_next(int fd, int ms)
{
    static char buf[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, ms) == 1) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
    return buf;
}

START_TEST(notify_sends_ready_and_watchdog_pings_at_half_the_systemd_interval)
{
    char path[108];
    hb_t h = {0};
    int fd = notify_socket(path, sizeof path);
    setenv("WATCHDOG_USEC", "400000", 1);
    unsetenv("WATCHDOG_PID");
    hb_notify_init(&h, 1000);
    ck_assert_uint_eq(h.wd_period_ns, 200000000);
    hb_notify_ready(&h);
    ck_assert_str_eq(notify_next(fd, 2000), "READY=1");
    hb_beat(&h, 1000); /* the first pass pings at once */
    ck_assert_str_eq(notify_next(fd, 2000), "WATCHDOG=1");
    hb_beat(&h, 1000 + 199999999); /* not due yet */
    ck_assert_str_eq(notify_next(fd, 50), "");
    hb_beat(&h, 1000 + 200000000);
    ck_assert_str_eq(notify_next(fd, 2000), "WATCHDOG=1");

    /* a long WatchdogSec still gets a ping every second */
    setenv("WATCHDOG_USEC", "30000000", 1);
    hb_notify_init(&h, 0);
    ck_assert_uint_eq(h.wd_period_ns, 1000000000);

    /* WATCHDOG_PID names another process: no watchdog for us */
    setenv("WATCHDOG_PID", "1", 1);
    hb_notify_init(&h, 0);
    ck_assert_uint_eq(h.wd_period_ns, 0);
    hb_beat(&h, 5000000000ull);
    ck_assert_str_eq(notify_next(fd, 50), "");

    /* without NOTIFY_SOCKET nothing is sent at all */
    unsetenv("WATCHDOG_PID");
    unsetenv("NOTIFY_SOCKET");
    hb_notify_init(&h, 0);
    ck_assert_uint_eq(h.wd_period_ns, 0);
    hb_notify_ready(&h);
    ck_assert_str_eq(notify_next(fd, 50), "");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("heartbeat");
    TCase *tc = tcase_create("heartbeat");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, heartbeat_open_creates_a_private_object_readers_see_our_pid_and_beats);
    tcase_add_test(tc, heartbeat_close_removes_the_object);
    tcase_add_test(tc, heartbeat_refuses_an_object_others_may_open_and_leaves_it_unchanged);
    tcase_add_test(tc, heartbeat_takes_over_our_own_stale_object_of_a_dead_process);
    tcase_add_test(tc, heartbeat_reader_rejects_what_is_not_a_heartbeat);
    tcase_add_test(tc, heartbeat_name_longer_than_its_field_is_refused);
    tcase_add_test(tc, notify_sends_ready_and_watchdog_pings_at_half_the_systemd_interval);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
