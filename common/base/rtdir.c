/* rtdir.c - the runtime directory: created private, owner and mode checked, files opened
 * relative to it without following links, sockets given their mode explicitly. */
#include "rtdir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RT_FIELD "runtime.dir"

void rtdir_default(char *out, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(out, len, "/run/herald");
    else if (xdg && xdg[0] == '/')
        snprintf(out, len, "%s/herald", xdg);
    else
        snprintf(out, len, "/tmp/herald-%u", (unsigned)geteuid());
}

int rtdir_group(const char *group, gid_t *gid, herald_error_t *err)
{
    char *end;
    unsigned long n = strtoul(group, &end, 10);
    if (*group && !*end) {
        *gid = (gid_t)n;
        return 0;
    }
    char buf[4096];
    struct group gr, *found = NULL;
    if (getgrnam_r(group, &gr, buf, sizeof buf, &found) != 0 || !found)
        return herr_set(err, HERR_BAD_VALUE, "runtime.group", "runtime.group: no group named %.64s",
                        group);
    *gid = found->gr_gid;
    return 0;
}

/* "uid 65534 (nobody)" */
static const char *rt_who(uid_t uid, char *buf, size_t len)
{
    char pwbuf[1024];
    struct passwd pw, *found = NULL;
    if (getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &found) == 0 && found)
        snprintf(buf, len, "uid %u (%.32s)", (unsigned)uid, found->pw_name);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

/* A directory above the runtime dir: it must exist (made 0755 when missing), and neither be
 * writable by others without the sticky bit nor belong to another user than root or us,
 * since either could let someone else rename the runtime dir away and put theirs there. */
static int rt_check_parent(const char *dir, const char *parent, herald_error_t *err)
{
    struct stat st;
    if (stat(parent, &st) < 0 &&
        (errno != ENOENT || (mkdir(parent, 0755) < 0 && errno != EEXIST) || stat(parent, &st) < 0))
        return herr_set(err, HERR_IO, RT_FIELD, "runtime dir %s: cannot create or read %s: %s", dir,
                        parent, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return herr_set(err, HERR_BAD_VALUE, RT_FIELD, "runtime dir %s: %s is not a directory", dir,
                        parent);
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        return herr_set(err, HERR_UNAUTHORIZED, RT_FIELD,
                        "runtime dir %s: refused, its parent %s is writable by others (mode %04o) "
                        "without the sticky bit",
                        dir, parent, (unsigned)(st.st_mode & 07777));
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        char who[64];
        return herr_set(err, HERR_UNAUTHORIZED, RT_FIELD,
                        "runtime dir %s: refused, its parent %s belongs to %s, not to root or us",
                        dir, parent, rt_who(st.st_uid, who, sizeof who));
    }
    return 0;
}

/* Check every directory above path, shortest first. */
static int rt_check_parents(const char *path, herald_error_t *err)
{
    char p[sizeof((rtdir_t *)0)->path];
    snprintf(p, sizeof p, "%s", path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        int rc = rt_check_parent(path, p, err);
        *s = '/';
        if (rc < 0) return rc;
    }
    if (p[0] != '/') return rt_check_parent(path, ".", err);
    return 0;
}

int rtdir_open(rtdir_t *d, const char *path, const char *group, herald_error_t *err)
{
    memset(d, 0, sizeof *d);
    d->fd = -1;
    if (!path || !*path || strlen(path) >= sizeof d->path)
        return herr_set(err, HERR_BAD_VALUE, RT_FIELD,
                        "runtime.dir must be a path of 1 to %zu bytes", sizeof d->path - 1);
    snprintf(d->path, sizeof d->path, "%s", path);
    if (group && *group) {
        int rc = rtdir_group(group, &d->gid, err);
        if (rc < 0) return rc;
        d->group = true;
    }
    int rc = rt_check_parents(path, err);
    if (rc < 0) return rc;
    mode_t want = d->group ? 0710 : 0700;
    bool created = mkdir(path, want) == 0;
    if (!created && errno != EEXIST)
        return herr_set(err, HERR_IO, RT_FIELD, "runtime dir %s: cannot create it: %s", path,
                        strerror(errno));
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return herr_set(err, HERR_UNAUTHORIZED, RT_FIELD,
                        "runtime dir %s: refused, it is a symbolic link", path);
    d->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d->fd < 0)
        return herr_set(err, HERR_IO, RT_FIELD, "runtime dir %s: cannot open it: %s", path,
                        strerror(errno));
    if (fstat(d->fd, &st) < 0) {
        rc = herr_set(err, HERR_IO, RT_FIELD, "runtime dir %s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_uid != geteuid()) {
        char who[64], me[64];
        rc = herr_set(err, HERR_UNAUTHORIZED, RT_FIELD,
                      "runtime dir %s: refused, it belongs to %s, not to %s that herald runs as "
                      "(remove it or set runtime.dir)",
                      path, rt_who(st.st_uid, who, sizeof who), rt_who(geteuid(), me, sizeof me));
        goto fail;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        rc = herr_set(err, HERR_UNAUTHORIZED, RT_FIELD,
                      "runtime dir %s: refused, it is writable by group or others (mode %04o); "
                      "make it private (chmod 700) or remove it",
                      path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    /* Ours: give it the mode asked for whatever the umask, and the group its access. */
    if (d->group && st.st_gid != d->gid && fchown(d->fd, (uid_t)-1, d->gid) < 0) {
        rc = herr_set(err, HERR_IO, "runtime.group", "runtime dir %s: cannot give it group %u: %s",
                      path, (unsigned)d->gid, strerror(errno));
        goto fail;
    }
    if ((created || d->group) && fchmod(d->fd, created ? want : (st.st_mode & 0755) | 0010) < 0) {
        rc = herr_set(err, HERR_IO, RT_FIELD, "runtime dir %s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    close(d->fd);
    d->fd = -1;
    return rc;
}

void rtdir_close(rtdir_t *d)
{
    if (d->fd >= 0) close(d->fd);
    d->fd = -1;
}

/* Mode and group of a file we create: private, or readable by the group. */
static int rt_own(const rtdir_t *d, int fd, const char *name, herald_error_t *err)
{
    if (fchmod(fd, d->group ? 0640 : 0600) < 0 || (d->group && fchown(fd, (uid_t)-1, d->gid) < 0))
        return herr_set(err, HERR_IO, name, "%s/%s: chmod/chown: %s", d->path, name,
                        strerror(errno));
    return 0;
}

int rtdir_open_file(const rtdir_t *d, const char *name, int flags, herald_error_t *err)
{
    int fd = openat(d->fd, name, flags | O_NOFOLLOW | O_CLOEXEC, d->group ? 0640 : 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            return herr_set(err, HERR_UNAUTHORIZED, name,
                            "%s/%s: refused, it is a symbolic link (not followed)", d->path, name);
        return herr_set(err, HERR_IO, name, "%s/%s: %s", d->path, name, strerror(errno));
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = herr_set(err, HERR_IO, name, "%s/%s: %s", d->path, name, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = herr_set(err, HERR_UNAUTHORIZED, name, "%s/%s: refused, not a regular file", d->path,
                      name);
    else if (st.st_uid != geteuid())
        rc = herr_set(err, HERR_UNAUTHORIZED, name,
                      "%s/%s: refused, it belongs to uid %u, not to us", d->path, name,
                      (unsigned)st.st_uid);
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        rc = herr_set(err, HERR_UNAUTHORIZED, name,
                      "%s/%s: refused, it is writable by group or others (mode %04o)", d->path,
                      name, (unsigned)(st.st_mode & 07777));
    else
        rc = rt_own(d, fd, name, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int rtdir_write_file(const rtdir_t *d, const char *name, const void *data, size_t len,
                     herald_error_t *err)
{
    char tmp[128];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", name) >= sizeof tmp)
        return herr_set(err, HERR_BAD_VALUE, name, "file name %s too long", name);
    if (unlinkat(d->fd, tmp, 0) < 0 && errno != ENOENT)
        return herr_set(err, HERR_IO, tmp, "%s/%s: cannot remove the stale one: %s", d->path, tmp,
                        strerror(errno));
    int fd = openat(d->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return herr_set(err, HERR_IO, tmp, "%s/%s: %s", d->path, tmp, strerror(errno));
    int rc = rt_own(d, fd, tmp, err);
    const char *p = data;
    while (rc == 0 && len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = herr_set(err, HERR_IO, tmp, "%s/%s: write: %s", d->path, tmp,
                          w < 0 ? strerror(errno) : "no progress");
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) < 0 && rc == 0)
        rc = herr_set(err, HERR_IO, tmp, "%s/%s: close: %s", d->path, tmp, strerror(errno));
    if (rc == 0 && renameat(d->fd, tmp, d->fd, name) < 0)
        rc = herr_set(err, HERR_IO, name, "rename %s/%s to %s: %s", d->path, tmp, name,
                      strerror(errno));
    if (rc < 0) unlinkat(d->fd, tmp, 0);
    return rc;
}

int rtdir_listen(const rtdir_t *d, const char *name, bool group_access, int backlog,
                 herald_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", d->path, name) >=
        sizeof sa.sun_path)
        return herr_set(err, HERR_BAD_VALUE, RT_FIELD, "socket path %s/%s is too long", d->path,
                        name);
    struct stat st;
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
            return herr_set(err, HERR_UNAUTHORIZED, name,
                            "%s: refused, it exists and is not a socket of ours (uid %u, mode "
                            "%06o); remove it",
                            sa.sun_path, (unsigned)st.st_uid, (unsigned)st.st_mode);
        if (unlinkat(d->fd, name, 0) < 0 && errno != ENOENT)
            return herr_set(err, HERR_IO, name, "%s: cannot remove the stale socket: %s",
                            sa.sun_path, strerror(errno));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return herr_set(err, HERR_IO, name, "socket: %s", strerror(errno));
    bool group = group_access && d->group;
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        rc = herr_set(err, HERR_IO, name, "bind %s: %s", sa.sun_path, strerror(errno));
    /* explicitly, not from the umask: bind gave it 0777 & ~umask */
    else if (fchmodat(d->fd, name, group ? 0660 : 0600, 0) < 0 ||
             (group && fchownat(d->fd, name, (uid_t)-1, d->gid, AT_SYMLINK_NOFOLLOW) < 0))
        rc = herr_set(err, HERR_IO, name, "%s: chmod/chown: %s", sa.sun_path, strerror(errno));
    else if (listen(fd, backlog) < 0)
        rc = herr_set(err, HERR_IO, name, "listen %s: %s", sa.sun_path, strerror(errno));
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int rtdir_check_private(int fd, const char *what, herald_error_t *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return herr_set(err, HERR_IO, what, "%s: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return herr_set(err, HERR_UNAUTHORIZED, what, "%s: refused, not a regular file", what);
    if (st.st_uid != geteuid()) {
        char who[64], me[64];
        return herr_set(err, HERR_UNAUTHORIZED, what,
                        "%s: refused, it belongs to %s, not to %s that herald runs as; remove it",
                        what, rt_who(st.st_uid, who, sizeof who), rt_who(geteuid(), me, sizeof me));
    }
    if (st.st_mode & 077)
        return herr_set(err, HERR_UNAUTHORIZED, what,
                        "%s: refused, its mode %04o lets group or others in (herald creates it "
                        "0600); remove it",
                        what, (unsigned)(st.st_mode & 07777));
    return 0;
}

int rtdir_unlink(const rtdir_t *d, const char *name)
{
    if (unlinkat(d->fd, name, 0) < 0 && errno != ENOENT) return -errno;
    return 0;
}
