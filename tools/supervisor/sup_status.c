/* sup_status.c - herald-supervisor's status file (format in sup_status.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "sup.h"
#include "sup_status.h"

static const char *const sup_state_names[] = {
    [SUP_STARTING] = "starting", [SUP_UP] = "up",           [SUP_BACKOFF] = "backoff",
    [SUP_STOPPING] = "stopping", [SUP_STOPPED] = "stopped",
};

void sup_write_status(const sup_t *s)
{
    json_t *procs = json_array();
    for (size_t i = 0; i < s->nkids; i++) {
        const sup_child_t *c = &s->kids[i];
        json_array_append_new(procs,
                              json_pack("{s:s,s:i,s:s,s:i,s:i,s:I,s:s}", "name", c->name, "pid",
                                        (int)c->pid, "state", sup_state_names[c->state], "restarts",
                                        (int)c->restarts, "hangs", (int)c->hangs, "started_at",
                                        (json_int_t)(c->started_once ? c->started_at : 0),
                                        "last_exit", c->last_exit));
    }
    json_t *st = json_pack("{s:i,s:I,s:o}", "supervisor_pid", (int)getpid(), "updated_at",
                           (json_int_t)time(NULL), "processes", procs);
    char *text = st ? json_dumps(st, JSON_INDENT(1)) : NULL;
    herald_error_t err = {0};
    if (!text)
        log_warn("could not encode %s/%s", s->cfg.runtime_dir, SUP_STATUS_FILE);
    else if (rtdir_write_file(&s->rt, SUP_STATUS_FILE, text, strlen(text), &err) < 0)
        log_warn("could not write the status file: %s", err.message);
    free(text);
    json_decref(st);
}
