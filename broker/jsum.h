/* jsum.h - the journal's record checksum: CRC32C in four interleaved lanes, merged to 32 bits
 * (SSE4.2 crc32 instruction when the CPU has it, the same function from a table otherwise). */
#ifndef HERALD_BROKER_JSUM_H
#define HERALD_BROKER_JSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checksum of one record: seeded by the epoch (a record of another epoch never checks out),
 * over the record's first header word, its payload word and its data. Identical results
 * with or without SSE4.2. */
uint32_t jsum(uint64_t epoch, uint64_t head, uint64_t word, const uint8_t *data, size_t dlen);

/* The same function before its fold to 32 bits: a 64-bit digest of (seed, head, word,
 * data), used for dedup fingerprints. A file format like jsum (fingerprints are kept in
 * the journal): never change it. */
uint64_t jsum64(uint64_t seed, uint64_t head, uint64_t word, const uint8_t *data, size_t dlen);

/* Use the hardware crc32 instruction if available (true) or the table (false); returns
 * whether hardware is in use. jsum uses hardware when available without being told. */
bool jsum_use_hw(bool want);

#endif
