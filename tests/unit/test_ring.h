/* test_ring.h - helpers shared by the ring suite's files (test_ring.c, test_ring_damage.c,
 * test_ring_proc.c). */
#ifndef HERALD_TEST_RING_H
#define HERALD_TEST_RING_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

extern const char *peer_path; /* the ring_peer executable (argv[1]) */

/* Unique shm name for this test run: "<herald-test-<pid>>.<tag>.ring". */
void ring_test_name(char *out, size_t n, const char *tag);

/* ring_open that fails the test with the error message. */
ring_t *open_ok(const char *name, ring_mode_t mode, size_t cap);

/* Handler counting records into *(long *)ctx. */
int count_record(uint32_t type, const uint8_t *data, uint32_t len, void *ctx);

/* Corrupt records and headers, missing rings, failed creation (test_ring_damage.c). */
void ring_add_damage_tests(TCase *tc);

/* Doorbell and multi-process tests (test_ring_proc.c). */
void ring_add_process_tests(TCase *tc);

#endif
