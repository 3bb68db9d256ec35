/* clustered_off.c - clustered.h in a broker built without libnats: cluster.nats is refused at
 * start, so b->cl stays NULL and the pipeline never calls the rest (which does nothing). */
#include "clustered.h"
#include "items.h"
#include "pipeline.h"

int bk_cluster_init(broker_t *b, herald_error_t *err)
{
    if (!b->cfg.cluster_nats[0]) return 0;
    return herr_set(err, HERR_BAD_VALUE, "cluster.nats",
                    "cluster.nats is set but this herald-broker was built without cluster mode "
                    "(install libnats-dev and rebuild)");
}

int bk_cluster_start(broker_t *b, herald_error_t *err)
{
    (void)b;
    (void)err;
    return 0;
}

void bk_cluster_close(broker_t *b)
{
    (void)b;
}

bk_cl_where_t bk_cluster_where(broker_t *b, const char *user, size_t len, bool forwarded,
                               unsigned *part)
{
    (void)b;
    (void)user;
    (void)len;
    (void)forwarded;
    *part = 0;
    return BK_CL_LOCAL;
}

void bk_cluster_forward_add(broker_t *b, bk_req_t *req, unsigned part, uint32_t idx,
                            const uint8_t *rec, size_t len)
{
    (void)b;
    (void)req;
    (void)part;
    (void)idx;
    (void)rec;
    (void)len;
}

void bk_cluster_forward_flush(broker_t *b, bk_req_t *req)
{
    (void)b;
    (void)req;
}

void bk_cluster_round(broker_t *b, bk_item_t *const *items, size_t n)
{
    (void)b;
    (void)items;
    (void)n;
}

void bk_cluster_req_done(broker_t *b, bk_req_t *req)
{
    (void)b;
    bk_req_free(req);
}

void bk_cluster_pos_restore(broker_t *b, uint32_t p, uint64_t seq)
{
    (void)b;
    (void)p;
    (void)seq;
}

unsigned bk_cluster_pos_count(const broker_t *b)
{
    (void)b;
    return 0;
}

uint64_t bk_cluster_pos(const broker_t *b, unsigned p)
{
    (void)b;
    (void)p;
    return 0;
}

void bk_cluster_json(broker_t *b, jbuf_t *o)
{
    (void)b;
    jbuf_puts(o, "{\"enabled\":false}");
}

void bk_cluster_stats_json(broker_t *b, jbuf_t *o)
{
    (void)b;
    (void)o;
}

void bk_cluster_metrics(broker_t *b, jbuf_t *o)
{
    (void)b;
    (void)o;
}
