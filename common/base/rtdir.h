/* rtdir.h - the runtime directory (runtime.dir, protocol.md 12): created private, checked before
 * use, and the files and sockets in it made without following anything another local user
 * could have planted there.
 *
 * A directory is accepted when it is owned by our effective uid and is writable by neither
 * its group nor others, and no directory above it is writable by others without the sticky
 * bit or owned by another user than root or us (such a parent would let its owner swap the
 * directory). Everything else is refused with an error naming the directory and what is
 * wrong; herald never changes an object it does not own. */
#ifndef HERALD_RTDIR_H
#define HERALD_RTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

typedef struct {
    int fd;         /* the directory, O_DIRECTORY; -1 when closed */
    char path[256]; /* as configured, for socket paths and messages */
    bool group;     /* runtime.group is set: sockets 0660 and files 0640 with gid */
    gid_t gid;      /* runtime.group's gid when group */
} rtdir_t;

/* The default runtime.dir: /run/herald for root, else $XDG_RUNTIME_DIR/herald, else
 * /tmp/herald-<uid> (private, and checked like any other). */
void rtdir_default(char *out, size_t len);

/* Resolve a group name or number to a gid. Returns 0, or HERR_BAD_VALUE naming
 * runtime.group. */
int rtdir_group(const char *group, gid_t *gid, herald_error_t *err);

/* Create path if missing (its missing parents 0755, itself 0700, or 0710 with group set:
 * the group may reach the sockets, not list or change the directory), then check it as
 * described above and open it. group is runtime.group ("" or NULL = none); with a group an
 * owned private directory also gets that group and g+x. Returns 0, or a negative HERR_*:
 * HERR_UNAUTHORIZED for a directory that fails the checks, HERR_IO for system errors,
 * HERR_BAD_VALUE for an unknown group or a bad path; err names the directory. */
int rtdir_open(rtdir_t *d, const char *path, const char *group, herald_error_t *err);

void rtdir_close(rtdir_t *d);

/* Open the file name in the directory with openat and O_NOFOLLOW (a symbolic link is
 * refused), creating it with mode when flags has O_CREAT; an existing file must be a
 * regular file owned by us and not writable by group or others. For files that are
 * legitimately opened again (a lock file). Returns the fd, or a negative HERR_*. */
int rtdir_open_file(const rtdir_t *d, const char *name, int flags, herald_error_t *err);

/* Replace the file name by data atomically: a new "<name>.tmp" created O_EXCL|O_NOFOLLOW
 * (a stale one is removed first), written, then renamed over name (rename replaces a link,
 * never follows it). Mode 0600, or 0640 with the group. Returns 0, or a negative HERR_*. */
int rtdir_write_file(const rtdir_t *d, const char *name, const void *data, size_t len,
                     herald_error_t *err);

/* A listening unix stream socket (non-blocking, close-on-exec) at <dir>/name: a stale
 * socket of ours is removed first (anything else there is refused); after bind the mode is
 * set explicitly, whatever the umask: 0600, or 0660 with the group when group_access.
 * Returns the fd, or a negative HERR_*. */
int rtdir_listen(const rtdir_t *d, const char *name, bool group_access, int backlog,
                 herald_error_t *err);

/* An object herald made outside the runtime dir (a /dev/shm ring or journal file) found
 * already there: reused only when it is a regular file owned by our uid with no group or
 * other permission bits. Returns 0, or HERR_UNAUTHORIZED naming `what` (its path) and
 * saying what is wrong, or HERR_IO. */
int rtdir_check_private(int fd, const char *what, herald_error_t *err);

/* Remove name from the directory (no error when absent). Returns 0 or -errno. */
int rtdir_unlink(const rtdir_t *d, const char *name);

#endif
