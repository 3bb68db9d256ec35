/* ctl_status.c - heraldctl status: the supervisor's processes, checked against the kernel,
 * with the age of each one's heartbeat (heartbeat.h) read from shared memory. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "heartbeat.h"
#include "herald_time.h"
#include "sup_status.h"

static bool ctl_pid_alive(json_int_t pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* "3d04h", "2h05m", "4m07s", "12s". */
static void ctl_fmt_uptime(char *out, size_t len, long long s)
{
    if (s >= 86400)
        snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, len, "%llds", s);
}

/* Milliseconds since pid's latest heartbeat under name, or -1 when it has none (not started
 * yet, gone, or the object belongs to an earlier process). */
static long long ctl_heartbeat_age_ms(const ctl_t *ctl, const char *name, json_int_t pid)
{
    hb_snapshot_t hb;
    if (pid <= 0 || hb_read(ctl->cfg.shm_prefix, name, &hb, NULL) < 0 || hb.pid != (pid_t)pid)
        return -1;
    uint64_t now = mono_ns();
    return now > hb.beat_ns ? (long long)((now - hb.beat_ns) / 1000000u) : 0;
}

int ctl_cmd_status(ctl_t *ctl)
{
    char path[300];
    json_error_t jerr;

    if (ctl_check_args(ctl, NULL, NULL, 0, 0)) return 1;
    snprintf(path, sizeof path, "%s/%s", ctl->cfg.runtime_dir, SUP_STATUS_FILE);
    json_t *st = json_load_file(path, 0, &jerr);
    if (!st)
        return ctl_fail("no supervisor status in %s (%s): is herald-supervisor running?", path,
                        jerr.text);
    json_int_t sup_pid = json_integer_value(json_object_get(st, "supervisor_pid"));
    bool sup_up = ctl_pid_alive(sup_pid);
    json_t *procs = json_object_get(st, "processes");
    long long now = (long long)time(NULL);

    json_object_set_new(st, "supervisor_up", json_boolean(sup_up));
    if (!ctl->json)
        printf("supervisor pid %lld %s\n%-10s %8s %-5s %-9s %8s %5s %9s %6s  %s\n",
               (long long)sup_pid, sup_up ? "up" : "DOWN (stale status file)", "name", "pid", "up",
               "state", "restarts", "hangs", "uptime", "beat", "last exit");
    size_t i;
    json_t *p;
    json_array_foreach(procs, i, p)
    {
        json_int_t pid = json_integer_value(json_object_get(p, "pid"));
        json_int_t started = json_integer_value(json_object_get(p, "started_at"));
        const char *name = json_string_value(json_object_get(p, "name")) ?: "?";
        bool up = sup_up && ctl_pid_alive(pid);
        long long uptime = up && started > 0 ? now - (long long)started : 0;
        long long beat = up ? ctl_heartbeat_age_ms(ctl, name, pid) : -1;
        json_object_set_new(p, "up", json_boolean(up));
        json_object_set_new(p, "uptime_s", json_integer(uptime));
        json_object_set_new(p, "heartbeat_age_ms", beat >= 0 ? json_integer(beat) : json_null());
        if (!ctl->json) {
            char ut[32] = "-", bt[32] = "-";
            const char *le = json_string_value(json_object_get(p, "last_exit"));
            if (up) ctl_fmt_uptime(ut, sizeof ut, uptime);
            if (beat >= 0) snprintf(bt, sizeof bt, "%lld.%llds", beat / 1000, beat % 1000 / 100);
            printf("%-10s %8lld %-5s %-9s %8lld %5lld %9s %6s  %s\n", name, (long long)pid,
                   up ? "up" : "down", json_string_value(json_object_get(p, "state")) ?: "?",
                   (long long)json_integer_value(json_object_get(p, "restarts")),
                   (long long)json_integer_value(json_object_get(p, "hangs")), ut, bt,
                   le && *le ? le : "-");
        }
    }
    if (ctl->json) {
        char *s = json_dumps(st, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    }
    json_decref(st);
    if (!sup_up) return ctl_fail("supervisor pid %lld is not running", (long long)sup_pid);
    return 0;
}
