/* clustered.h - the broker in cluster mode (protocol.md 11, docs/cluster.md): the cluster layer
 * (broker/cluster/) on the broker's loop. Partitions this node owns are sequenced here and
 * each drain round is acknowledged only once JetStream stored it on a quorum; publishes of
 * other partitions are forwarded to their owners; every partition's stream is consumed into
 * the local histories and rings, so a session on any node gets every notification.
 *
 * Nothing here runs when cluster.nats is unset: b->cl stays NULL and every hook in the
 * pipeline is skipped. A build without libnats (clustered_off.c) refuses cluster.nats at
 * start. */
#ifndef HERALD_BK_CLUSTERED_H
#define HERALD_BK_CLUSTERED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

/* With cluster.nats set: the cluster state journal positions are restored into, before
 * bk_journal_open. 0, or -HERR_* with err filled (a build without libnats). */
int bk_cluster_init(broker_t *b, herald_error_t *err);
/* After the journal is loaded: connect (cl_open), watch the cluster layer's descriptor on
 * the loop and start consuming every partition from its journaled position (or the last
 * history_age_s). 0, or -HERR_* with err naming what failed. */
int bk_cluster_start(broker_t *b, herald_error_t *err);
/* At shutdown, after the listeners are closed: answer forwarded publishes, hand the
 * partitions over (cl_close), refuse what is still in flight, free everything. */
void bk_cluster_close(broker_t *b);

/* --- ingest (pipeline.c) --- */
/* Where a publish of user[0..len) goes; *part gets its partition. A publish another node
 * forwarded here (forwarded) is never forwarded again: not owned is unavailable. */
bk_cl_where_t bk_cluster_where(broker_t *b, const char *user, size_t len, bool forwarded,
                               unsigned *part);
/* Add slot idx of req, its canonical record rec[0..len), to the forward to part's owner. */
void bk_cluster_forward_add(broker_t *b, bk_req_t *req, unsigned part, uint32_t idx,
                            const uint8_t *rec, size_t len);
/* Send what bk_cluster_forward_add collected for req (one request per partition, or more
 * for a large batch); each answer fills its slots and completes one pending count. */
void bk_cluster_forward_flush(broker_t *b, bk_req_t *req);

/* --- drain (pipeline.c) --- */
/* A drain round's sequenced items (their users' cl_seq advanced), handed to JetStream by
 * partition; bk_round_done answers them when each partition's round is acknowledged or not. */
void bk_cluster_round(broker_t *b, bk_item_t *const *items, size_t n);
/* A forwarded publish (req->fwd) has every answer: send the response frame to its node. */
void bk_cluster_req_done(broker_t *b, bk_req_t *req);

/* --- journal (journal.c) --- */
/* A journaled consumer position: partition p delivered up to stream seq. */
void bk_cluster_pos_restore(broker_t *b, uint32_t p, uint64_t seq);
/* Positions for a snapshot: partitions (0 without cluster mode) and each one's position. */
unsigned bk_cluster_pos_count(const broker_t *b);
uint64_t bk_cluster_pos(const broker_t *b, unsigned p);

/* --- status (api.c, stats.c) --- */
/* GET /api/cluster: nodes, partitions, owners, leases, consumer lag, counters. */
void bk_cluster_json(broker_t *b, jbuf_t *o);
/* ,"cluster":{...} for /api/stats (nothing without cluster mode). */
void bk_cluster_stats_json(broker_t *b, jbuf_t *o);
/* herald_cluster_* lines for /metrics (nothing without cluster mode). */
void bk_cluster_metrics(broker_t *b, jbuf_t *o);

#endif
