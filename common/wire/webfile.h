/* webfile.h - static files of the web pages (protocol.md 13) for the gateway's and the broker's
 * HTTP
 * servers: a request path checked, mapped below a web directory and read whole, with its
 * content type. */
#ifndef HERALD_WEBFILE_H
#define HERALD_WEBFILE_H

#include "json.h"

/* Largest file served: the pages are a few small files. */
#define WEBFILE_MAX (1u << 20)

/* Read <dir>/<rel> into out (appended) and set *ctype. rel is a relative path of at most 200
 * bytes made of segments of [A-Za-z0-9._-] separated by single '/', no segment starting with
 * '.' (so no "..", no hidden files) and no trailing '/'; anything else is refused before the
 * file system is touched. The file must be a regular file (a symlink as the last component
 * is refused; directories inside dir are the operator's).
 * Returns the HTTP status: 200, 400 (path refused), 404 (no such regular file), 413 (over
 * WEBFILE_MAX) or 500 (read error). out is unchanged unless 200. */
int webfile_read(const char *dir, const char *rel, jbuf_t *out, const char **ctype);

/* Content type of a file name by its extension (application/octet-stream when unknown). */
const char *webfile_type(const char *name);

#endif
