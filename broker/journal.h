/* journal.h - the journal: what makes a round durable, replayed at start, compacted when full. */
#ifndef HERALD_BK_JOURNAL_H
#define HERALD_BK_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "err.h"

int bk_journal_open(broker_t *b, herald_error_t *err);
void bk_journal_append(broker_t *b, const bk_item_t *it);
/* Cluster mode: a delivered notification (history and seq, no dedup entry on replay), and
 * the stream position partition p's consumer reached (after its records). */
void bk_journal_append_hist(broker_t *b, const bk_item_t *it);
void bk_journal_clpos(broker_t *b, uint32_t p, uint64_t stream_seq);
/* Make what this round appended durable (when the file cannot grow for it, a compaction into
 * the other file may take it instead). Returns 0, or -HERR_IO: the round is not in the
 * journal (bk_journal_discard it; bk_journal_failing from then on). */
int bk_journal_flush(broker_t *b);
/* Compact when the file passed its bound: after the round is in the histories and the dedup
 * window (round_publish), so that the snapshot holds it. */
void bk_journal_compact_due(broker_t *b);
/* Once a second: keep the current file allocated and mapped ahead of the append rate. */
void bk_journal_tick(broker_t *b);
/* True from a failed flush until bk_journal_probe finds the file can grow again. */
bool bk_journal_failing(const broker_t *b);
/* Drop the records appended since the last good flush (the failed round). */
void bk_journal_discard(broker_t *b);
/* While failing: try to grow the file; 0 once it works again, else -HERR_IO. */
int bk_journal_probe(broker_t *b);
void bk_journal_close(broker_t *b);
/* Record that floor slot was raised to seq (a user was forgotten); in the file by the next
 * flush. */
void bk_journal_floor(broker_t *b, uint32_t slot, uint64_t seq);

#endif
