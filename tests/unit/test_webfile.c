/* test_webfile.c - static web files: only plain relative paths inside the web directory are
 * read, whole, with the content type of their extension. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "webfile.h"

static char dir[64], outside[96];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/herald-webfile-%d", (int)getpid());
    char p[160];
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/web", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/web/ui", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/web/ui/index.html", dir);
    write_file(p, "<!doctype html>ops");
    snprintf(p, sizeof p, "%s/web/.secret", dir);
    write_file(p, "hidden");
    snprintf(outside, sizeof outside, "%s/secret.ini", dir);
    write_file(outside, "secret = s3cret");
    snprintf(p, sizeof p, "%s/web/link.html", dir);
    ck_assert_int_eq(symlink(outside, p), 0);
    strcat(dir, "/web");
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/herald-webfile-%d", (int)getpid());
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(webfile_reads_a_file_with_its_content_type)
{
    jbuf_t b;
    jbuf_init(&b, 0);
    const char *ctype = NULL;
    ck_assert_int_eq(webfile_read(dir, "ui/index.html", &b, &ctype), 200);
    ck_assert_uint_eq(b.len, strlen("<!doctype html>ops"));
    ck_assert_int_eq(memcmp(b.data, "<!doctype html>ops", b.len), 0);
    ck_assert_str_eq(ctype, "text/html; charset=utf-8");
    ck_assert_str_eq(webfile_type("a/b.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(webfile_type("x.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(webfile_type("x.bin"), "application/octet-stream");
    jbuf_free(&b);
}
END_TEST

START_TEST(webfile_refuses_paths_that_could_leave_the_directory)
{
    static const char *const bad[] = {
        "../secret.ini",
        "ui/../../secret.ini",
        "..",
        ".",
        "/etc/passwd",
        "ui//index.html",
        "ui/",
        ".secret",
        "ui/.index.html",
        "ui/index.html\n",
        "ui/a b.html",
        "ui/%2e%2e",
        "ui\\index.html",
        "",
        "ui/./index.html",
    };
    jbuf_t b;
    jbuf_init(&b, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *ctype = NULL;
        ck_assert_msg(webfile_read(dir, bad[i], &b, &ctype) == 400, "%s accepted", bad[i]);
        ck_assert_uint_eq(b.len, 0);
    }
    char longp[260];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    const char *ctype = NULL;
    ck_assert_int_eq(webfile_read(dir, longp, &b, &ctype), 400);
    jbuf_free(&b);
}
END_TEST

START_TEST(webfile_serves_only_regular_files_never_a_symlink_or_a_directory)
{
    jbuf_t b;
    jbuf_init(&b, 0);
    const char *ctype = NULL;
    ck_assert_int_eq(webfile_read(dir, "link.html", &b, &ctype), 404);
    ck_assert_int_eq(webfile_read(dir, "ui", &b, &ctype), 404);
    ck_assert_int_eq(webfile_read(dir, "missing.html", &b, &ctype), 404);
    ck_assert_int_eq(webfile_read(dir, "ui/index.html/x", &b, &ctype), 404);
    ck_assert_uint_eq(b.len, 0);
    jbuf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webfile");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, webfile_reads_a_file_with_its_content_type);
    tcase_add_test(tc, webfile_refuses_paths_that_could_leave_the_directory);
    tcase_add_test(tc, webfile_serves_only_regular_files_never_a_symlink_or_a_directory);
    suite_add_tcase(s, tc);
    return check_run_suite(s);
}
