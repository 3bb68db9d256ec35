/* config_text.c - loading INI text in the config suites (see config_text.h). */
#include "config_text.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int config_text_load(herald_config_t *cfg, const char *text, herald_error_t *err, char *path_out)
{
    int fd = memfd_create("herald-test-config", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (path_out) strcpy(path_out, path);
    memset(err, 0, sizeof *err);
    int rc = config_load(cfg, path, err);
    close(fd);
    return rc;
}

void config_text_deploy_ini(char *buf, size_t n)
{
    const char *root = getenv("HERALD_SOURCE_ROOT");
    ck_assert_msg(root != NULL, "HERALD_SOURCE_ROOT is not set (run through meson test)");
    snprintf(buf, n, "%s/deploy/herald.ini", root);
}
