/* ctl.h - what heraldctl's subcommands share: parsed options, the config, output helpers. */
#ifndef HERALD_CTL_H
#define HERALD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CTL_MAX_ARGS 32

/* The command line once the global options (-c, --json, -o) are taken out. */
typedef struct {
    herald_config_t cfg;
    bool json;                      /* --json: machine output */
    const char *args[CTL_MAX_ARGS]; /* the subcommand's own arguments, in order */
    int nargs;
} ctl_t;

/* Print "heraldctl: <reason>" (one line) on stderr and return 1 (the exit code). */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Option lookup over ctl->args. The value of "--name V" or "--name=V"; NULL when absent.
 * ctl_check_args fails (returns 1 after printing) on any argument that is neither a known
 * option (names: NULL-terminated, each taking a value) nor, while positionals remain
 * allowed, a positional; positional[] receives up to max_pos of them. */
const char *ctl_opt(const ctl_t *ctl, const char *name);
int ctl_check_args(const ctl_t *ctl, const char *const *names, const char **positional, int max_pos,
                   int min_pos);

/* Parse a decimal unsigned value of an option; returns 0 or prints and returns 1. */
int ctl_parse_u64(const char *opt, const char *s, uint64_t *out);

/* GET host:port/path (https when tls, verified against --ca) with broker.api_key and parse
 * the JSON body. Returns the value (caller json_decrefs) or NULL with a reason in why. */
struct json_t;
struct json_t *ctl_get_json(const ctl_t *ctl, const host_port_t *hp, uint16_t port, bool tls,
                            const char *path, char *why, size_t whylen);

/* Subcommands: each returns the process exit code (0 ok, 1 failure reported). */
int ctl_cmd_rings(ctl_t *ctl);
int ctl_cmd_ring(ctl_t *ctl);
int ctl_cmd_stats(ctl_t *ctl);
int ctl_cmd_publish(ctl_t *ctl);
int ctl_cmd_token(ctl_t *ctl);
int ctl_cmd_shard(ctl_t *ctl);
int ctl_cmd_tail(ctl_t *ctl);
int ctl_cmd_status(ctl_t *ctl);
int ctl_cmd_cluster(ctl_t *ctl);

#endif
