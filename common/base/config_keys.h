/* config_keys.h - the configuration keys (section, name, type, bounds) and the parsing
 * of one value into herald_config_t; private to config.c and config_keys.c. */
#ifndef HERALD_CONFIG_KEYS_H
#define HERALD_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A unix socket path is at most 107 bytes; leave room for "/control.sock" and friends. */
#define CONFIG_DIR_MAX 80
#define SIZE_K         1024ull
#define SIZE_M         (1024ull * 1024)
#define SIZE_G         (1024ull * 1024 * 1024)

typedef enum {
    KT_STRING,        /* any text up to size - 1 bytes, may be empty */
    KT_SECRET,        /* like KT_STRING, never echoed in messages, must not be empty */
    KT_DIR,           /* path up to CONFIG_DIR_MAX bytes; empty = rtdir_default */
    KT_NAME,          /* non-empty [A-Za-z0-9._-] (goes into /dev/shm names) */
    KT_HOST_PORT,     /* host:port */
    KT_HOST_PORT_OFF, /* host:port, or empty / "off" */
    KT_U32,           /* integer in [min, max] */
    KT_U32_LIST,      /* exactly `size` comma-separated integers in [min, max] */
    KT_SIZE,          /* bytes with optional K/M/G suffix, in [min, max] */
    KT_SIZE_POW2,     /* same, and a power of two */
    KT_LEVEL,         /* debug|info|warn|error */
    KT_IDLE,          /* sleep | backoff:<spin_us>,<yield_us> (two u32 fields) */
    KT_BOOL,          /* true|false|yes|no|on|off|1|0 */
    KT_URL_LIST,      /* [nats://|tls://][credentials@]host:port[,...], or empty / "off" */
    KT_PATH,          /* a file path up to size - 1 bytes, may be empty (= unset) */
    KT_SECRET_LIST,   /* comma-separated secrets, may be empty, never echoed */
    KT_NAME_LIST,     /* comma-separated names [a-z0-9_], may be empty (message_type lists) */
} key_type_t;

typedef struct {
    const char *section;
    const char *name;
    key_type_t type;
    size_t offset; /* of the field in herald_config_t */
    size_t size;   /* string buffer bytes, or list length */
    uint64_t min, max;
} config_key_t;

/* The number of entries of config_keys (checked against the table where it is defined). */
#define CONFIG_NKEYS 54

extern const config_key_t config_keys[CONFIG_NKEYS];

/* Is section one of the sections config files may have? */
bool config_section_known(const char *section);

/* The key section.name, or NULL when there is none. */
const config_key_t *config_key_find(const char *section, const char *name);

/* Parse value for key k into cfg. Returns 0, or -1 with expected filled with what the key
 * takes (a phrase for "expected ..."); cfg may then be partly written. */
int config_key_apply(herald_config_t *cfg, const config_key_t *k, const char *value, char *expected,
                     size_t elen);

#endif
