/* test_security.c - protocol.md 12 against real processes: another local user (nobody, 65534)
 * plants a runtime dir, rings and journal files where herald would use them. The
 * attacker's side runs as nobody in a forked child, which needs root: without it those
 * cases are reported as SKIP. (Peers and listeners: test_security_peers.c.) */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bk_harness.h"
#include "gwsys.h"
#include "ring.h"
#include "sec_util.h"

static bkh_t H;

static void cleanup(void)
{
    bkh_cleanup(&H);
}

/* --- finding 1: the runtime dir --- */

static char planted[300], victim[300];

static int plant_runtime_dir(void *arg)
{
    (void)arg;
    char link[400];
    if (mkdir(planted, 0777) < 0 || chmod(planted, 0777) < 0) return 1;
    snprintf(link, sizeof link, "%s/status.json.tmp", planted);
    if (symlink(victim, link) < 0) return 2;
    snprintf(link, sizeof link, "%s/supervisor.pid", planted);
    return symlink(victim, link) < 0 ? 3 : 0;
}

START_TEST(runtime_dir_planted_by_another_user_is_refused_and_nothing_written_through_it)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    /* the victim: a file of root's that nobody may write */
    snprintf(victim, sizeof victim, "%s/victim", H.env.dir);
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    /* the test's dir stands for /tmp (sticky, writable by all); it is removed at the end */
    ck_assert_int_eq(chmod(H.env.dir, 01777), 0);
    snprintf(planted, sizeof planted, "%s/planted", H.env.dir);
    ck_assert_int_eq(sec_as_nobody(plant_runtime_dir, NULL), 0);

    char sup[512], cfgdir[400], log[400];
    procs_build_path("tools/supervisor/herald-supervisor", sup, sizeof sup);
    snprintf(cfgdir, sizeof cfgdir, "runtime.dir=%s", planted);
    snprintf(log, sizeof log, "%s/sup.log", H.env.dir);
    char *argv[] = {sup, (char *)"-c", H.env.config, (char *)"-o", cfgdir, NULL};
    pid_t pid = procs_spawn(sup, argv, log);
    int st = procs_reap(pid, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "supervisor status %d", st);
    ck_assert_msg(sec_file_contains(log, planted) && sec_file_contains(log, "uid 65534"),
                  "the refusal does not name the dir and its owner");
    /* the broker on its own refuses it too */
    const char *over[] = {cfgdir, NULL};
    st = sec_broker_exit_status(&H, over);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, "refused"));

    ck_assert(sec_file_contains(victim, "precious\n"));
    struct stat vs;
    ck_assert_int_eq(stat(victim, &vs), 0);
    ck_assert_int_eq(vs.st_size, 9);
    char sock[400];
    snprintf(sock, sizeof sock, "%s/broker.sock", planted);
    ck_assert_int_eq(access(sock, F_OK), -1); /* nothing of ours went in there */
}
END_TEST

START_TEST(sockets_and_files_in_the_runtime_dir_are_private)
{
    bkh_init(&H, NULL);
    ck_assert_int_eq(bkh_start(&H), 0);
    struct stat st;
    ck_assert_int_eq(stat(H.sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(H.ctrl, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(H.env.dir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 022, 0);
}
END_TEST

/* --- finding 2: planted shm objects --- */

static char shm_name[200];

static int plant_shm(void *arg)
{
    (void)arg;
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0666);
    if (fd < 0) return 1;
    int rc = fchmod(fd, 0666) < 0 ? 2 : 0; /* whatever the umask */
    close(fd);
    return rc;
}

static void shm_stat(const char *name, struct stat *st)
{
    char path[260];
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    ck_assert_int_eq(stat(path, st), 0);
}

START_TEST(ring_planted_by_another_user_is_refused_naming_it_and_left_alone)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    char name[160];
    ring_name(name, sizeof name, H.env.shm_prefix, 0);
    snprintf(shm_name, sizeof shm_name, "/%s", name);
    ck_assert_int_eq(sec_as_nobody(plant_shm, NULL), 0);
    ck_assert_int_eq(bkh_start(&H), 0);
    bkh_gw_t g = {0};
    ck_assert_int_ne(bkh_gw_attach(&g, &H, 0), 0); /* hello refused */
    bkh_gw_free(&g);
    ck_assert(sec_file_contains(H.logpath, name));
    ck_assert(sec_file_contains(H.logpath, "refused"));
    struct stat st;
    shm_stat(name, &st);
    ck_assert_uint_eq(st.st_uid, NOBODY); /* not taken over, */
    ck_assert_int_eq(st.st_size, 0);      /* not initialised as ours */
    /* a consumer (a gateway) refuses it as well; inspection may read it */
    ring_t *r = NULL;
    herald_error_t err;
    ck_assert_int_eq(ring_open(&r, name, RING_CONSUMER, 0, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, name));
    ck_assert_ptr_nonnull(strstr(err.message, "uid 65534"));
    /* gateway 1's ring, not planted, works */
    ck_assert_int_eq(bkh_gw_attach(&g, &H, 1), 0);
    bkh_gw_free(&g);
}
END_TEST

START_TEST(ring_of_ours_that_others_can_open_is_refused_but_inspected_read_only)
{
    bkh_init(&H, NULL);
    char name[160], path[260];
    ring_name(name, sizeof name, H.env.shm_prefix, 0);
    ring_t *r = NULL;
    herald_error_t err;
    ck_assert_int_eq(ring_open(&r, name, RING_PRODUCER, 4096, 0, &err), 0);
    ring_close(r);
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(chmod(path, 0644), 0);
    ck_assert_int_eq(ring_open(&r, name, RING_PRODUCER, 4096, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "0644"));
    ck_assert_int_eq(ring_open(&r, name, RING_CONSUMER, 0, 0, &err), -HERR_UNAUTHORIZED);
    ck_assert_msg(ring_open(&r, name, RING_INSPECT, 0, 0, &err) == 0, "%s", err.message);
    ring_close(r);
}
END_TEST

START_TEST(journal_planted_by_another_user_stops_the_broker_naming_it)
{
    NEED_ROOT();
    bkh_init(&H, NULL);
    snprintf(shm_name, sizeof shm_name, "/%s.broker.journal", H.env.shm_prefix);
    ck_assert_int_eq(sec_as_nobody(plant_shm, NULL), 0);
    int st = sec_broker_exit_status(&H, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, shm_name + 1));
    ck_assert(sec_file_contains(H.logpath, "uid 65534"));
    struct stat s;
    shm_stat(shm_name + 1, &s);
    ck_assert_uint_eq(s.st_uid, NOBODY);
    ck_assert_int_eq(s.st_size, 0);
    /* a symbolic link in its place is not followed either */
    char path[260], victim_path[300];
    snprintf(path, sizeof path, "/dev/shm%s", shm_name);
    unlink(path);
    snprintf(victim_path, sizeof victim_path, "%s/victim", H.env.dir);
    close(open(victim_path, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(symlink(victim_path, path), 0);
    st = sec_broker_exit_status(&H, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "broker status %d", st);
    ck_assert(sec_file_contains(H.logpath, "symbolic link"));
    ck_assert_int_eq(stat(victim_path, &s), 0);
    ck_assert_int_eq(s.st_size, 0);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("security");
    TCase *t = tcase_create("security");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, NULL, cleanup);
    tcase_add_test(t,
                   runtime_dir_planted_by_another_user_is_refused_and_nothing_written_through_it);
    tcase_add_test(t, sockets_and_files_in_the_runtime_dir_are_private);
    tcase_add_test(t, ring_planted_by_another_user_is_refused_naming_it_and_left_alone);
    tcase_add_test(t, ring_of_ours_that_others_can_open_is_refused_but_inspected_read_only);
    tcase_add_test(t, journal_planted_by_another_user_stops_the_broker_naming_it);
    suite_add_tcase(s, t);
    return procs_run_suite(s);
}
