/* sup_status.h - the supervisor's status file, written by herald-supervisor, read by
 * heraldctl status.
 *
 * <runtime.dir>/status.json, replaced atomically (temp file + rename) on every change:
 *   {"supervisor_pid":N, "updated_at":T,
 *    "processes":[{"name":"broker"|"gateway0"..., "pid":N (0 = none), "state":S,
 *                  "restarts":N, "hangs":N, "started_at":T (0 = never), "last_exit":"..." }]}
 * T are Unix seconds. S is "starting" (broker not yet accepting), "up", "backoff" (waiting
 * to be restarted), "stopping" or "stopped". last_exit is "" until a process has exited,
 * then "exit CODE", "signal N (NAME)", or "hung" when the supervisor killed it (SIGKILL)
 * for a heartbeat silent for supervisor.hang_s; hangs counts those kills. The heartbeats
 * themselves are /dev/shm/<shm_prefix>.hb.<name> (heartbeat.h), read by heraldctl status. */
#ifndef HERALD_SUP_STATUS_H
#define HERALD_SUP_STATUS_H

#define SUP_STATUS_FILE "status.json"
#define SUP_LOCK_FILE   "supervisor.lock"
#define SUP_PID_FILE    "supervisor.pid"

#endif
