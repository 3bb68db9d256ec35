/* core.c - the broker's event-loop core: wires the calls that go up (bk_hooks_t) from the
 * modules below to the ones above them. main.c calls it at start; tests that run modules
 * in-process call it too. */
#include "api.h"
#include "broker.h"
#include "clustered.h"
#include "control.h"
#include "core.h"
#include "http.h"
#include "journal.h"
#include "native.h"
#include "presence.h"
#include "route.h"

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
