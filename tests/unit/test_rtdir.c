/* test_rtdir.c - the runtime directory (common/base/rtdir.c): created private whatever the
 * umask, someone else's or a shared one refused, links planted in it never followed, socket
 * modes set explicitly. Cases that need a second uid run it as nobody (65534) and SKIP
 * when not root. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_run.h"
#include "procs.h"
#include "rtdir.h"
#include "skip.h"

#define NOBODY 65534

static char base[128]; /* a private temp dir per test, removed by teardown */

static void setup(void)
{
    snprintf(base, sizeof base, "/tmp/herald-rtdir-%d-XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(base));
}

static void teardown(void)
{
    procs_rmtree(base);
}

static void path_of(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", base, rel);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Run fn(arg) as nobody in a child; returns its exit status (0 = fn returned 0). */
static int as_nobody(int (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
            setresuid(NOBODY, NOBODY, NOBODY) < 0)
            _exit(100);
        _exit(fn(arg) == 0 ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

START_TEST(rtdir_creates_the_dir_private_whatever_the_umask)
{
    char dir[200];
    path_of(dir, sizeof dir, "a/b/run");
    mode_t old = umask(0);
    rtdir_t d;
    herald_error_t err;
    int rc = rtdir_open(&d, dir, NULL, &err);
    umask(old);
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_uint_eq(mode_of(dir), 0700);
    rtdir_close(&d);
    /* opening it again accepts it as it is */
    ck_assert_int_eq(rtdir_open(&d, dir, "", &err), 0);
    rtdir_close(&d);
}
END_TEST

START_TEST(rtdir_refuses_a_dir_writable_by_group_or_others_naming_it)
{
    char dir[200];
    path_of(dir, sizeof dir, "shared");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(chmod(dir, 0777), 0);
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, dir));
    ck_assert_ptr_nonnull(strstr(err.message, "0777"));
    ck_assert_int_eq(d.fd, -1);
    ck_assert_int_eq(chmod(dir, 0770), 0);
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), -HERR_UNAUTHORIZED);
    ck_assert_uint_eq(mode_of(dir), 0770); /* refused, never changed */
    ck_assert_int_eq(chmod(dir, 0755), 0);
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), 0); /* readable by others is allowed */
    rtdir_close(&d);
}
END_TEST

START_TEST(rtdir_refuses_a_symlink_and_an_unsafe_parent)
{
    char dir[200], link[200], open_parent[200], under[300];
    path_of(dir, sizeof dir, "real");
    path_of(link, sizeof link, "link");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(symlink(dir, link), 0);
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, link, NULL, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "symbolic link"));

    path_of(open_parent, sizeof open_parent, "open");
    ck_assert_int_eq(mkdir(open_parent, 0700), 0);
    ck_assert_int_eq(chmod(open_parent, 0777), 0); /* others may rename what is inside */
    snprintf(under, sizeof under, "%s/run", open_parent);
    ck_assert_int_eq(rtdir_open(&d, under, NULL, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, open_parent));
    ck_assert_int_eq(chmod(open_parent, 01777), 0); /* sticky, as /tmp: fine */
    ck_assert_msg(rtdir_open(&d, under, NULL, &err) == 0, "%s", err.message);
    rtdir_close(&d);
}
END_TEST

static int plant_dir(const char *dir)
{
    /* what the attacker of finding 1 did: a world-writable dir with a link in it */
    char link[300];
    snprintf(link, sizeof link, "%s/status.json.tmp", dir);
    if (mkdir(dir, 0777) < 0 || chmod(dir, 0777) < 0) return -1;
    return symlink("/etc/passwd", link);
}

START_TEST(rtdir_refuses_a_dir_made_by_another_user)
{
    if (geteuid() != 0) TEST_SKIP("needs root to act as a second user");
    char dir[200];
    ck_assert_int_eq(chmod(base, 01777), 0); /* like /tmp */
    path_of(dir, sizeof dir, "planted");
    ck_assert_int_eq(as_nobody(plant_dir, dir), 0);
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, dir));
    ck_assert_ptr_nonnull(strstr(err.message, "uid 65534"));
}
END_TEST

START_TEST(rtdir_write_file_never_follows_a_planted_link)
{
    char dir[200], victim[200], tmp[300], name[300];
    path_of(dir, sizeof dir, "run");
    path_of(victim, sizeof victim, "victim");
    FILE *f = fopen(victim, "w");
    fputs("precious\n", f);
    fclose(f);
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), 0);
    snprintf(tmp, sizeof tmp, "%s/status.json.tmp", dir);
    snprintf(name, sizeof name, "%s/status.json", dir);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    ck_assert_int_eq(symlink(victim, name), 0);
    ck_assert_msg(rtdir_write_file(&d, "status.json", "{}\n", 3, &err) == 0, "%s", err.message);
    char got[64] = "";
    f = fopen(victim, "r");
    ck_assert_ptr_nonnull(fgets(got, sizeof got, f));
    fclose(f);
    ck_assert_str_eq(got, "precious\n");
    struct stat st;
    ck_assert_int_eq(lstat(name, &st), 0);
    ck_assert(S_ISREG(st.st_mode)); /* the link was replaced, not written through */
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(lstat(tmp, &st), -1);
    rtdir_close(&d);
}
END_TEST

START_TEST(rtdir_open_file_refuses_links_and_shared_files)
{
    char dir[200], path[300], victim[200];
    path_of(dir, sizeof dir, "run");
    path_of(victim, sizeof victim, "victim");
    close(open(victim, O_CREAT | O_WRONLY, 0600));
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), 0);
    snprintf(path, sizeof path, "%s/supervisor.lock", dir);
    ck_assert_int_eq(symlink(victim, path), 0);
    ck_assert_int_eq(rtdir_open_file(&d, "supervisor.lock", O_RDWR | O_CREAT, &err),
                     -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "symbolic link"));
    unlink(path);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(chmod(path, 0666), 0);
    ck_assert_int_eq(rtdir_open_file(&d, "supervisor.lock", O_RDWR | O_CREAT, &err),
                     -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, "0666"));
    ck_assert_int_eq(chmod(path, 0644), 0);
    int fd = rtdir_open_file(&d, "supervisor.lock", O_RDWR | O_CREAT, &err);
    ck_assert_msg(fd >= 0, "%s", err.message);
    ck_assert_uint_eq(mode_of(path), 0600); /* ours: made private */
    close(fd);
    rtdir_close(&d);
}
END_TEST

START_TEST(rtdir_sockets_get_their_mode_explicitly)
{
    char dir[200], sock[300];
    path_of(dir, sizeof dir, "run");
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, NULL, &err), 0);
    mode_t old = umask(0); /* bind alone would leave it 0777 */
    int fd = rtdir_listen(&d, "broker.sock", true, 8, &err);
    umask(old);
    ck_assert_msg(fd >= 0, "%s", err.message);
    snprintf(sock, sizeof sock, "%s/broker.sock", dir);
    ck_assert_uint_eq(mode_of(sock), 0600);
    close(fd);
    /* a stale socket of ours is replaced; anything else is refused */
    fd = rtdir_listen(&d, "broker.sock", true, 8, &err);
    ck_assert_msg(fd >= 0, "%s", err.message);
    close(fd);
    unlink(sock);
    close(open(sock, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(rtdir_listen(&d, "broker.sock", true, 8, &err), -HERR_UNAUTHORIZED);
    ck_assert_ptr_nonnull(strstr(err.message, sock));
    rtdir_close(&d);
}
END_TEST

START_TEST(rtdir_group_gives_the_group_the_socket_and_the_way_to_it)
{
    if (geteuid() != 0) TEST_SKIP("needs root to give files a group");
    char dir[200], sock[300], ctrl[300];
    path_of(dir, sizeof dir, "run");
    rtdir_t d;
    herald_error_t err;
    ck_assert_int_eq(rtdir_open(&d, dir, "nope-no-such-group", &err), -HERR_BAD_VALUE);
    ck_assert_str_eq(err.field, "runtime.group");
    ck_assert_msg(rtdir_open(&d, dir, "65534", &err) == 0, "%s", err.message);
    ck_assert_uint_eq(mode_of(dir), 0710);
    int a = rtdir_listen(&d, "broker.sock", true, 8, &err);
    int b = rtdir_listen(&d, "control.sock", false, 8, &err);
    ck_assert(a >= 0 && b >= 0);
    snprintf(sock, sizeof sock, "%s/broker.sock", dir);
    snprintf(ctrl, sizeof ctrl, "%s/control.sock", dir);
    struct stat st;
    ck_assert_int_eq(lstat(sock, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
    ck_assert_uint_eq(st.st_gid, 65534);
    ck_assert_uint_eq(mode_of(ctrl), 0600);
    close(a);
    close(b);
    rtdir_close(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rtdir");
    TCase *tc = tcase_create("rtdir");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rtdir_creates_the_dir_private_whatever_the_umask);
    tcase_add_test(tc, rtdir_refuses_a_dir_writable_by_group_or_others_naming_it);
    tcase_add_test(tc, rtdir_refuses_a_symlink_and_an_unsafe_parent);
    tcase_add_test(tc, rtdir_refuses_a_dir_made_by_another_user);
    tcase_add_test(tc, rtdir_write_file_never_follows_a_planted_link);
    tcase_add_test(tc, rtdir_open_file_refuses_links_and_shared_files);
    tcase_add_test(tc, rtdir_sockets_get_their_mode_explicitly);
    tcase_add_test(tc, rtdir_group_gives_the_group_the_socket_and_the_way_to_it);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
