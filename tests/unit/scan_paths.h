/* scan_paths.h - run one notification's bytes through the codec's two ingest paths (the
 * scan path the broker uses, and codec_unpack + codec_notif_from_object + codec_encode) and
 * assert they agree; shared by test_codec_scan.c and test_codec_frame.c. Include it after
 * notif_fixture.h, whose helpers take parameters named sb and u. */
#ifndef HERALD_TEST_SCAN_PATHS_H
#define HERALD_TEST_SCAN_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "codec.h"
#include "err.h"

#define BIG_LIMIT (1u << 20) /* the input limit the paths are run with */

extern msgpack_sbuffer sb;            /* test input, built by each case */
extern msgpack_unpacked u;            /* the object path's unpacked input */
extern uint8_t out[CODEC_ENCODE_CAP]; /* the scan path's encoded output */

/* Checked fixture: set up and free sb, u and both_paths' encoder buffer. */
void scan_paths_setup(void);
void scan_paths_teardown(void);

/* Assert two results are the same: rc, and when it is an error, code, field and message. */
void same_error(int ra, const herald_error_t *ea, int rb, const herald_error_t *eb);

/* Run p[0..len) through both paths, assert the same outcome (error, fields, encoded bytes)
 * and return the rc; *err gets the error. */
int both_paths(const uint8_t *p, size_t len, herald_error_t *err);

/* both_paths on the msgpack form of JSON text (left in sb). */
int both_json(const char *json, herald_error_t *err);

/* both_paths on sb. */
int both_sb(herald_error_t *err);

#endif
