/* json_oracle.h - the reference for json_to_msgpack: jansson 2.14 plus msgpack-c's packer,
 * as herald parsed HTTP bodies before json_in.c. Tests and the differential fuzzer only. */
#ifndef HERALD_JSON_ORACLE_H
#define HERALD_JSON_ORACLE_H

#include "json.h"

/* Same contract as json_to_msgpack (json.h), by json_loadb(JSON_REJECT_DUPLICATES) and
 * msgpack_pack_*; except that text holding a raw NUL byte is always refused (jansson 2.14
 * skips one NUL right after a number or literal; that is its bug, not JSON). */
int oracle_json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, herald_error_t *err);

#endif
