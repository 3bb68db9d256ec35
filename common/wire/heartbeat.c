/* heartbeat.c - the liveness word in shared memory (layout in heartbeat.h) and the systemd
 * notifications (sd_notify). */
#include "heartbeat.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "herald_time.h"
#include "log.h"

/* The object is a file format: every offset in heartbeat.h's table is fixed here. */
_Static_assert(offsetof(hb_header_t, magic) == 0, "magic");
_Static_assert(offsetof(hb_header_t, version) == 8, "version");
_Static_assert(offsetof(hb_header_t, header_bytes) == 12, "header_bytes");
_Static_assert(offsetof(hb_header_t, pid) == 16, "pid");
_Static_assert(offsetof(hb_header_t, started_ns) == 24, "started_ns");
_Static_assert(offsetof(hb_header_t, beat_ns) == 32, "beat_ns");
_Static_assert(offsetof(hb_header_t, name) == 40, "name");
_Static_assert(sizeof(hb_header_t) == HB_BYTES, "the whole object");
/* Two processes share these atomics: an atomic emulated with a lock would be per-process. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define HB_NS_PER_S      1000000000ull
#define HB_WD_MAX_PERIOD HB_NS_PER_S /* ping at least this often when a watchdog is set */

void hb_shm_name(char *out, size_t len, const char *prefix, const char *name)
{
    snprintf(out, len, "%s.hb.%s", prefix, name);
}

/* Map name read-write: create it (0600, O_EXCL), or reuse it when it is a regular object of
 * our uid that nobody else may open (protocol.md 12). */
static int hb_map_owner(hb_t *h, herald_error_t *err)
{
    char path[sizeof h->shm_name + 1];
    snprintf(path, sizeof path, "/%s", h->shm_name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return herr_set(err, HERR_IO, h->shm_name, "heartbeat /dev/shm/%s: %s", h->shm_name,
                        strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = herr_set(err, HERR_IO, h->shm_name, "heartbeat /dev/shm/%s: fstat: %s", h->shm_name,
                      strerror(errno));
        goto out;
    }
    if (!created && (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))) {
        rc = herr_set(err, HERR_IO, h->shm_name,
                      "heartbeat /dev/shm/%s exists with owner uid %u and mode %03o: refusing "
                      "an object that is not ours or not private (0600); remove it if stale",
                      h->shm_name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    /* never shrink: a reader may have it mapped */
    if (st.st_size < (off_t)HB_BYTES && ftruncate(fd, HB_BYTES) < 0) {
        rc = herr_set(err, HERR_IO, h->shm_name, "heartbeat /dev/shm/%s: ftruncate: %s",
                      h->shm_name, strerror(errno));
        goto out;
    }
    void *map = mmap(NULL, HB_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = herr_set(err, HERR_IO, h->shm_name, "heartbeat /dev/shm/%s: mmap: %s", h->shm_name,
                      strerror(errno));
        goto out;
    }
    h->hdr = map;
out:
    close(fd);
    if (rc < 0 && created) shm_unlink(path);
    return rc;
}

int hb_open(hb_t *h, const char *prefix, const char *name, herald_error_t *err)
{
    memset(h, 0, sizeof *h);
    if (strlen(name) > HB_NAME_MAX)
        return herr_set(err, HERR_BAD_VALUE, "name", "heartbeat name %s is longer than %u bytes",
                        name, HB_NAME_MAX);
    hb_shm_name(h->shm_name, sizeof h->shm_name, prefix, name);
    if (strlen(prefix) + strlen(".hb.") + strlen(name) >= sizeof h->shm_name)
        return herr_set(err, HERR_BAD_VALUE, "name", "heartbeat name %s.hb.%s is too long", prefix,
                        name);
    int rc = hb_map_owner(h, err);
    if (rc < 0) return rc;

    hb_header_t *hd = h->hdr;
    uint64_t now = mono_ns();
    /* pid 0 first: a reader takes nothing below for the previous owner's */
    atomic_store_explicit(&hd->pid, 0, memory_order_release);
    if (hd->magic != HB_MAGIC || hd->version != HB_VERSION || hd->header_bytes != HB_BYTES ||
        strncmp(hd->name, name, sizeof hd->name) != 0) {
        hd->magic = HB_MAGIC;
        hd->version = HB_VERSION;
        hd->header_bytes = HB_BYTES;
        hd->pad0 = 0;
        hd->pad1 = 0;
        memset(hd->name, 0, sizeof hd->name);
        memcpy(hd->name, name, strlen(name));
    }
    atomic_store_explicit(&hd->started_ns, now, memory_order_relaxed);
    atomic_store_explicit(&hd->beat_ns, now, memory_order_relaxed);
    /* release: publishes everything above; pairs with hb_read's acquire of pid */
    atomic_store_explicit(&hd->pid, (uint32_t)getpid(), memory_order_release);
    hb_notify_init(h, now);
    return 0;
}

void hb_notify_init(hb_t *h, uint64_t now_ns)
{
    uint64_t usec = 0;
    h->wd_period_ns = 0;
    if (!getenv("NOTIFY_SOCKET") || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    /* systemd asks for a ping within WATCHDOG_USEC; half of it leaves room for one late pass */
    h->wd_period_ns = usec * 1000 / 2;
    if (h->wd_period_ns > HB_WD_MAX_PERIOD) h->wd_period_ns = HB_WD_MAX_PERIOD;
    if (h->wd_period_ns == 0) h->wd_period_ns = 1;
    h->wd_next_ns = now_ns;
    log_info("systemd watchdog: %llu ms, pinged every %llu ms from the event loop",
             (unsigned long long)(usec / 1000), (unsigned long long)(h->wd_period_ns / 1000000));
}

void hb_notify_ready(const hb_t *h)
{
    (void)h;
    if (!getenv("NOTIFY_SOCKET")) return;
    int rc = sd_notify(0, "READY=1");
    if (rc < 0)
        log_warn("sd_notify READY=1 to %s: %s", getenv("NOTIFY_SOCKET"), strerror(-rc));
    else
        log_info("told systemd READY=1");
}

void hb_notify_watchdog(hb_t *h, uint64_t now_ns)
{
    h->wd_next_ns = now_ns + h->wd_period_ns;
    int rc = sd_notify(0, "WATCHDOG=1");
    /* one line when pinging starts failing and one when it works again, not one a second */
    if ((rc < 0) != h->wd_failing) {
        if (rc < 0)
            log_warn("sd_notify WATCHDOG=1: %s (systemd may stop this service)", strerror(-rc));
        else
            log_info("sd_notify WATCHDOG=1 works again");
    }
    h->wd_failing = rc < 0;
}

void hb_close(hb_t *h)
{
    if (!h->hdr) return;
    atomic_store_explicit(&h->hdr->pid, 0, memory_order_release);
    munmap(h->hdr, HB_BYTES);
    h->hdr = NULL;
    char path[sizeof h->shm_name + 1];
    snprintf(path, sizeof path, "/%s", h->shm_name);
    if (shm_unlink(path) < 0 && errno != ENOENT)
        log_warn("could not remove heartbeat /dev/shm/%s: %s", h->shm_name, strerror(errno));
}

int hb_read(const char *prefix, const char *name, hb_snapshot_t *out, herald_error_t *err)
{
    char shm[128], path[130];
    memset(out, 0, sizeof *out);
    hb_shm_name(shm, sizeof shm, prefix, name);
    snprintf(path, sizeof path, "/%s", shm);
    int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return herr_set(err, errno == ENOENT ? HERR_NOT_FOUND : HERR_IO, shm,
                        "heartbeat /dev/shm/%s: %s", shm, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = herr_set(err, HERR_IO, shm, "heartbeat /dev/shm/%s: fstat: %s", shm, strerror(errno));
    } else if (st.st_uid != geteuid()) {
        rc = herr_set(err, HERR_IO, shm, "heartbeat /dev/shm/%s is owned by uid %u, not us", shm,
                      (unsigned)st.st_uid);
    } else if (st.st_size < (off_t)HB_BYTES) {
        rc = herr_set(err, HERR_CORRUPT, shm, "heartbeat /dev/shm/%s: %lld bytes, not %u", shm,
                      (long long)st.st_size, HB_BYTES);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    hb_header_t *hd = mmap(NULL, HB_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (hd == MAP_FAILED)
        return herr_set(err, HERR_IO, shm, "heartbeat /dev/shm/%s: mmap: %s", shm, strerror(errno));
    /* acquire: pairs with hb_open's release of pid, so what follows is at least its open */
    uint32_t pid = atomic_load_explicit(&hd->pid, memory_order_acquire);
    if (hd->magic != HB_MAGIC || hd->version != HB_VERSION || hd->header_bytes != HB_BYTES) {
        rc = herr_set(err, HERR_CORRUPT, shm, "heartbeat /dev/shm/%s: bad magic or version", shm);
    } else {
        out->pid = (pid_t)pid;
        out->started_ns = atomic_load_explicit(&hd->started_ns, memory_order_relaxed);
        /* acquire: pairs with hb_beat's release */
        out->beat_ns = atomic_load_explicit(&hd->beat_ns, memory_order_acquire);
    }
    munmap(hd, HB_BYTES);
    return rc;
}
