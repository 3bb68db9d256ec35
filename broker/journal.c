/* journal.c - the broker's restart state: an append-only record file in /dev/shm, compacted
 * into a snapshot (user seqs, live history, dedup window) when it grows past its bound. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "codec.h"

#define JR_MAGIC     "HRLDJRN1"
#define JR_HDR       16u /* magic + version + reserved */
#define JR_REC_HDR   12u /* u32 len, u16 type, u16 zero, u32 checksum */
#define JR_MIN_BOUND (256ull * 1024 * 1024)

enum { J_NOTIF = 1, J_HIST, J_USER, J_DEDUP };

typedef struct bk_journal {
    int fd;
    char path[320];
    uint8_t *buf; /* records appended this round */
    size_t len, cap;
    uint64_t size;   /* bytes in the file */
    uint64_t bound;  /* compact when size passes this */
    bool failing;    /* the last write failed: buf holds records not yet in the file */
    long fail_after; /* test fault injection: flushes left before one torn write (-1: off) */
} bk_journal_t;

/* Cheap 32-bit checksum over 8-byte words: enough to find a torn or corrupt tail. */
static uint32_t jr_sum(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static void jr_reserve(bk_journal_t *j, size_t n)
{
    if (j->len + n <= j->cap) return;
    size_t cap = j->cap ? j->cap : 1 << 20;
    while (cap < j->len + n)
        cap *= 2;
    uint8_t *p = realloc(j->buf, cap);
    if (!p) abort();
    j->buf = p;
    j->cap = cap;
}

static void jr_put(bk_journal_t *j, uint16_t type, uint64_t word, const void *data, size_t dlen)
{
    uint32_t len = (uint32_t)(8 + dlen);
    jr_reserve(j, JR_REC_HDR + len);
    uint8_t *p = j->buf + j->len;
    uint16_t zero = 0;
    memcpy(p, &len, 4);
    memcpy(p + 4, &type, 2);
    memcpy(p + 6, &zero, 2);
    memcpy(p + 12, &word, 8);
    memcpy(p + 20, data, dlen);
    uint32_t sum = jr_sum(p + 12, len);
    memcpy(p + 8, &sum, 4);
    j->len += JR_REC_HDR + len;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Apply one record to the broker state. Returns 0, or -1 if it does not decode. */
static int jr_apply(broker_t *b, uint16_t type, const uint8_t *p, uint32_t len,
                    msgpack_unpacked *scratch)
{
    uint64_t word;
    memcpy(&word, p, 8);
    const uint8_t *d = p + 8;
    uint32_t dlen = len - 8;
    if (type == J_USER || type == J_DEDUP) {
        if (dlen == 0 || dlen > HERALD_MAX_ID_LEN) return -1;
        char id[HERALD_MAX_ID_LEN + 1];
        memcpy(id, d, dlen);
        id[dlen] = '\0';
        if (type == J_DEDUP) {
            bk_dedup_insert(b, id, dlen, bk_dedup_hash(id, dlen), word, NULL);
            return 0;
        }
        bk_user_t *u = bk_user_get(b, id, dlen, true);
        if (word > u->last_seq) u->last_seq = word;
        return 0;
    }
    if (type != J_NOTIF && type != J_HIST) return -1;
    notif_t n;
    herald_error_t err;
    if (codec_decode(d, dlen, scratch, &n, &err) < 0 || n.seq == 0) return -1;
    bk_user_t *u = bk_user_get(b, n.user_id, strlen(n.user_id), true);
    if (n.seq > u->last_seq) u->last_seq = n.seq;
    if (type == J_NOTIF) {
        size_t idl = strlen(n.message_id);
        bk_dedup_insert(b, n.message_id, idl, bk_dedup_hash(n.message_id, idl), n.seq, NULL);
    }
    if (u->hist_tail && u->hist_tail->seq >= n.seq) return 0; /* already held */
    bk_item_t *it = malloc(sizeof *it + dlen);
    if (!it) abort();
    *it = (bk_item_t){.user = u, .seq = n.seq, .at_ns = word, .len = dlen, .prio = n.priority};
    memcpy(it->bytes, d, dlen);
    bk_history_append(b, u, it);
    return 0;
}

/* Rebuild state from the file; returns the length of its valid prefix. */
static uint64_t jr_load(broker_t *b, const uint8_t *p, uint64_t size)
{
    if (size < JR_HDR || memcmp(p, JR_MAGIC, 8)) return 0;
    msgpack_unpacked scratch;
    msgpack_unpacked_init(&scratch);
    uint64_t off = JR_HDR, records = 0;
    while (off + JR_REC_HDR <= size) {
        uint32_t len, sum;
        uint16_t type;
        memcpy(&len, p + off, 4);
        memcpy(&type, p + off + 4, 2);
        memcpy(&sum, p + off + 8, 4);
        if (len < 8 || len > HERALD_MAX_NOTIF_BYTES + 8 || off + JR_REC_HDR + len > size) break;
        const uint8_t *rec = p + off + JR_REC_HDR;
        if (jr_sum(rec, len) != sum || jr_apply(b, type, rec, len, &scratch) < 0) break;
        off += JR_REC_HDR + len;
        records++;
    }
    msgpack_unpacked_destroy(&scratch);
    log_info("journal: %llu records restored, %zu users", (unsigned long long)records, b->n_users);
    return off;
}

static int jr_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void jr_header(uint8_t out[JR_HDR])
{
    uint32_t version = 1, zero = 0;
    memcpy(out, JR_MAGIC, 8);
    memcpy(out + 8, &version, 4);
    memcpy(out + 12, &zero, 4);
}

int bk_journal_open(broker_t *b, herald_error_t *err)
{
    bk_journal_t *j = calloc(1, sizeof *j);
    if (!j) abort();
    snprintf(j->path, sizeof j->path, "/dev/shm/%s.broker.journal", b->cfg.shm_prefix);
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        int e = errno;
        herr_set(err, HERR_IO, "journal", "open %s: %s", j->path, strerror(e));
        free(j);
        return -HERR_IO;
    }
    struct stat st;
    fstat(j->fd, &st);
    uint64_t size = (uint64_t)st.st_size, valid = 0;
    if (size) {
        uint8_t *p = malloc(size);
        if (!p) abort();
        ssize_t got = pread(j->fd, p, size, 0);
        if (got == (ssize_t)size) valid = jr_load(b, p, size);
        free(p);
    }
    if (valid < size) {
        b->c.journal_corrupt++;
        log_warn("journal %s: %llu bytes of corrupt or torn tail truncated at offset %llu", j->path,
                 (unsigned long long)(size - valid), (unsigned long long)valid);
    }
    if (valid == 0) {
        uint8_t hdr[JR_HDR];
        jr_header(hdr);
        if (ftruncate(j->fd, 0) < 0 || pwrite(j->fd, hdr, JR_HDR, 0) != JR_HDR) goto io;
        valid = JR_HDR;
    } else if (valid < size && ftruncate(j->fd, (off_t)valid) < 0) {
        goto io;
    }
    if (lseek(j->fd, (off_t)valid, SEEK_SET) < 0) goto io;
    j->size = valid;
    j->bound = JR_MIN_BOUND > 4 * valid ? JR_MIN_BOUND : 4 * valid;
    /* Tests only: HERALD_TEST_JOURNAL_FAIL_AFTER=N makes the flush after N good ones write
     * half its bytes and fail with EIO, once (a full /dev/shm cannot be had on demand). */
    const char *fa = getenv("HERALD_TEST_JOURNAL_FAIL_AFTER");
    j->fail_after = fa && *fa ? strtol(fa, NULL, 10) : -1;
    b->jr = j;
    return 0;
io:;
    int e = errno;
    herr_set(err, HERR_IO, "journal", "write %s: %s", j->path, strerror(e));
    close(j->fd);
    free(j);
    return -HERR_IO;
}

void bk_journal_append(broker_t *b, const bk_item_t *it)
{
    jr_put(b->jr, J_NOTIF, it->at_ns, it->bytes, it->len);
}

typedef struct {
    bk_journal_t *j;
} jr_snap_ctx_t;

static void snap_dedup(const char *id, uint64_t seq, void *ctx)
{
    jr_snap_ctx_t *s = ctx;
    jr_put(s->j, J_DEDUP, seq, id, strlen(id));
}

/* Write the live state to <path>.tmp and rename it over the journal. */
static void jr_compact(broker_t *b)
{
    bk_journal_t *j = b->jr;
    char tmp[340];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) goto fail;
    uint64_t now = wall_ns();
    j->len = 0;
    jr_reserve(j, JR_HDR);
    jr_header(j->buf);
    j->len = JR_HDR;
    for (size_t h = 0; h < b->utab_size; h++) {
        for (bk_user_t *u = b->utab[h]; u; u = u->hnext) {
            if (!u->last_seq) continue;
            jr_put(j, J_USER, u->last_seq, u->id, strlen(u->id));
            bk_history_trim(b, u, now);
            for (bk_item_t *it = u->hist_head; it; it = it->next)
                jr_put(j, J_HIST, it->at_ns, it->bytes, it->len);
        }
    }
    jr_snap_ctx_t ctx = {j};
    bk_dedup_each(b, snap_dedup, &ctx);
    if (jr_write_all(fd, j->buf, j->len) < 0 || rename(tmp, j->path) < 0) {
        close(fd);
        unlink(tmp);
        goto fail;
    }
    close(j->fd);
    j->fd = fd;
    j->size = j->len;
    j->bound = JR_MIN_BOUND > 4 * j->size ? JR_MIN_BOUND : 4 * j->size;
    j->len = 0;
    b->c.journal_compactions++;
    log_info("journal compacted to %llu bytes", (unsigned long long)j->size);
    return;
fail:
    j->len = 0;
    j->bound *= 2; /* try again later rather than every round */
    b->c.journal_errors++;
    log_error("journal compaction of %s failed: %s", j->path, strerror(errno));
}

static int jr_write_round(bk_journal_t *j)
{
    if (j->fail_after >= 0 && j->fail_after-- == 0) {
        jr_write_all(j->fd, j->buf, j->len / 2); /* torn, as a full file system leaves it */
        errno = EIO;
        return -1;
    }
    return jr_write_all(j->fd, j->buf, j->len);
}

/* A failed write may leave a torn record; anything appended after it would be lost at the
 * next start (jr_load stops at the tear) and seqs would go backwards. So the file is cut
 * back to its last good size and the round's records stay in buf, ahead of any later ones:
 * the broker's state is always "file + buf", and buf is retried (by the next flush or
 * bk_journal_retry) until it is written. While it is not, nothing is acknowledged: the
 * failed round is answered io_error and bk_ingest_object refuses publishes (a producer's
 * retry of a failed item is answered by dedup once the journal works again). */
int bk_journal_flush(broker_t *b)
{
    bk_journal_t *j = b->jr;
    if (!j->len) return 0;
    if (jr_write_round(j) < 0) {
        int e = errno;
        b->c.journal_errors++;
        if (log_ratelimit_ok(&b->rl_journal, 1))
            log_error("journal write to %s failed: %s; refusing publishes until it works", j->path,
                      strerror(e));
        if (ftruncate(j->fd, (off_t)j->size) < 0 || lseek(j->fd, (off_t)j->size, SEEK_SET) < 0)
            log_error("journal %s: cannot cut back to %llu bytes: %s", j->path,
                      (unsigned long long)j->size, strerror(errno));
        j->failing = true;
        return -HERR_IO;
    }
    if (j->failing) log_info("journal %s: writes work again", j->path);
    j->failing = false;
    j->size += j->len;
    b->c.journal_bytes += j->len;
    j->len = 0;
    if (j->size > j->bound) jr_compact(b);
    return 0;
}

bool bk_journal_failing(const broker_t *b)
{
    return b->jr->failing;
}

void bk_journal_close(broker_t *b)
{
    if (!b->jr) return;
    close(b->jr->fd);
    free(b->jr->buf);
    free(b->jr);
    b->jr = NULL;
}
