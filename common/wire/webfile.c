/* webfile.c - static files of the web pages: path checks, content types, whole-file reads. */
#include "webfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEBFILE_PATH_MAX 200

static const struct {
    const char *ext, *type;
} webfile_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".ts", "text/plain; charset=utf-8"},
    {".md", "text/plain; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *webfile_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof webfile_types / sizeof webfile_types[0]; i++) {
        size_t e = strlen(webfile_types[i].ext);
        if (n > e && !strcmp(name + n - e, webfile_types[i].ext)) return webfile_types[i].type;
    }
    return "application/octet-stream";
}

/* Segments of [A-Za-z0-9._-], none empty, none starting with '.'. */
static bool webfile_path_ok(const char *rel)
{
    size_t n = strlen(rel);
    if (n == 0 || n > WEBFILE_PATH_MAX) return false;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = rel[i];
        if (c == '/') {
            if (seg_start) return false; /* leading '/', or "//" */
            seg_start = true;
            continue;
        }
        if (seg_start && c == '.') return false;
        seg_start = false;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return !seg_start; /* no trailing '/' */
}

int webfile_read(const char *dir, const char *rel, jbuf_t *out, const char **ctype)
{
    if (!webfile_path_ok(rel)) return 400;
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path) return 400;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 404 : 500;
    struct stat st;
    int status = 500;
    if (fstat(fd, &st) < 0) goto out;
    if (!S_ISREG(st.st_mode)) {
        status = 404;
        goto out;
    }
    if (st.st_size > WEBFILE_MAX) {
        status = 413;
        goto out;
    }
    size_t size = (size_t)st.st_size, got = 0, start = out->len;
    jbuf_reserve(out, size);
    while (got < size) {
        ssize_t r = read(fd, out->data + start + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) goto out; /* error, or the file shrank while read */
        got += (size_t)r;
    }
    out->len = start + size;
    *ctype = webfile_type(rel);
    status = 200;
out:
    close(fd);
    return status;
}
