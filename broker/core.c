/* core.c - the broker's event-loop core: wires the calls that go up (bk_hooks_t) from the
 * modules below to the ones above them. main.c calls it at start; tests that run modules
 * in-process call it too. */
#include "acks.h"
#include "api.h"
#include "broker.h"
#include "clustered.h"
#include "control.h"
#include "core.h"
#include "dedup.h"
#include "http.h"
#include "items.h"
#include "journal.h"
#include "native.h"
#include "pipeline.h"
#include "presence.h"
#include "revoke.h"
#include "route.h"
#include "users.h"

void bk_core_hooks(broker_t *b)
{
    b->hooks = (bk_hooks_t){
        .http_request = bk_api_handle,
        .ctrl_frame = bk_control_frame,
        .ctrl_closed = bk_control_closed,
        .native_done = bk_native_mark_dirty,
        .http_done = bk_http_req_done,
        .fwd_done = bk_cluster_req_done,
        .cl_where = bk_cluster_where,
        .cl_forward_add = bk_cluster_forward_add,
        .cl_forward_flush = bk_cluster_forward_flush,
        .cl_round = bk_cluster_round,
        .cl_pos_restore = bk_cluster_pos_restore,
        .cl_pos_count = bk_cluster_pos_count,
        .cl_pos = bk_cluster_pos,
        .user_online = bk_presence_online,
        .user_offline = bk_presence_offline,
        .gateway_users = bk_route_gateway_users,
        .floor_raised = bk_journal_floor,
    };
}

int bk_core_open(broker_t *b, herald_error_t *err)
{
    b->loop = loop_new(err);
    if (!b->loop) return -1;
    loop_set_idle(b->loop, b->cfg.idle_spin_us, b->cfg.idle_yield_us);
    jbuf_init(&b->api_out, 0);
    bk_core_hooks(b);
    bk_pipeline_init(b);
    bk_route_init(b);
    if (bk_users_init(b) < 0 || bk_dedup_init(b, b->cfg.dedup_window) < 0 || bk_acks_init(b) < 0 ||
        bk_presence_init(b) < 0)
        return herr_set(err, HERR_INTERNAL, "broker", "out of memory at start-up");
    b->mem_fixed += bk_dedup_bytes(b);
    if (b->mem_fixed >= b->cfg.max_memory / 2)
        return herr_set(err, HERR_OVER_CAPACITY, "broker.max_memory",
                        "broker.max_memory %llu bytes: the dedup window (broker.dedup_window %u) "
                        "and fixed tables take %llu of it already; raise it or lower the window",
                        (unsigned long long)b->cfg.max_memory, b->cfg.dedup_window,
                        (unsigned long long)b->mem_fixed);
    if (bk_cluster_init(b, err) < 0 || bk_journal_open(b, err) < 0) return -1;
    return 0;
}

void bk_core_close(broker_t *b)
{
    bk_journal_flush(b);
    bk_journal_close(b);
    bk_route_free(b);
    bk_acks_free(b);
    bk_presence_free(b);
    bk_users_free(b);
    bk_pipeline_free(b);
    bk_items_release();
    bk_dedup_free(b);
    bk_revoke_free(b);
    jbuf_free(&b->api_out);
    loop_free(b->loop);
}
