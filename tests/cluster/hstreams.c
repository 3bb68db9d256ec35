/* hstreams.c - the cluster's partition streams read back from the NATS servers and checked
 * against what a load was acknowledged (hstreams.h). */
#include "hstreams.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_wire.h"

void hstreams_collect(uint64_t seq, const char *subject, const void *data, int len,
                      const char *msg_id, void *ctx)
{
    (void)seq;
    (void)msg_id;
    srecs_t *s = ctx;
    size_t sl = strlen(subject);
    if (sl < 2 || strcmp(subject + sl - 2, ".r") != 0) return; /* ownership markers */
    long n = cl_wire_parse_round(data, (size_t)len, NULL, 0);
    if (n < 0) {
        s->bad = true;
        return;
    }
    cl_rec_t *recs = calloc((size_t)n + 1, sizeof *recs);
    cl_wire_parse_round(data, (size_t)len, recs, (size_t)n);
    for (long i = 0; i < n; i++) {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 1024;
            s->v = realloc(s->v, s->cap * sizeof *s->v);
        }
        srec_t *r = &s->v[s->n++];
        snprintf(r->user, sizeof r->user, "%.*s", recs[i].user_len, recs[i].user);
        snprintf(r->id, sizeof r->id, "%.*s", recs[i].id_len, recs[i].message_id);
        r->seq = recs[i].seq;
    }
    free(recs);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const srec_t *)a)->id, ((const srec_t *)b)->id);
}

void hstreams_verify(natsfix_t *nf, unsigned parts, const hload_t *l)
{
    size_t stored = 0;
    for (unsigned p = 0; p <= parts; p++) {
        char name[32];
        snprintf(name, sizeof name, "HERALD_P%u", p);
        srecs_t s = {0};
        ck_assert_int_ge(natsfix_read_stream(nf, name, hstreams_collect, &s), 0);
        ck_assert(!s.bad);
        /* per user, in stream order: 1, 2, 3 ... */
        for (size_t i = 0; i < s.n; i++) {
            uint64_t before = 0;
            for (size_t k = i; k-- > 0;)
                if (!strcmp(s.v[k].user, s.v[i].user)) {
                    before = s.v[k].seq;
                    break;
                }
            ck_assert_msg(s.v[i].seq == before + 1, "%s: seq %llu after %llu in %s", s.v[i].user,
                          (unsigned long long)s.v[i].seq, (unsigned long long)before, name);
        }
        if (s.n) qsort(s.v, s.n, sizeof *s.v, by_id);
        for (size_t i = 1; i < s.n; i++)
            ck_assert_msg(strcmp(s.v[i - 1].id, s.v[i].id), "%s stored twice", s.v[i].id);
        for (size_t i = 0; i < l->n_items; i++) {
            const hl_item_t *it = &l->items[i];
            if (it->part != p) continue;
            ck_assert_msg(it->acked, "%s never acknowledged", it->id);
            srec_t key = {0};
            snprintf(key.id, sizeof key.id, "%s", it->id);
            srec_t *r = s.n ? bsearch(&key, s.v, s.n, sizeof *s.v, by_id) : NULL;
            ck_assert_msg(r, "acknowledged %s (seq %llu) is not in %s", it->id,
                          (unsigned long long)it->seq, name);
            ck_assert_msg(r->seq == it->seq && !strcmp(r->user, it->user),
                          "%s acknowledged with seq %llu, stored with %llu", it->id,
                          (unsigned long long)it->seq, (unsigned long long)r->seq);
            stored++;
        }
        free(s.v);
    }
    ck_assert_uint_eq(stored, l->n_items);
}
