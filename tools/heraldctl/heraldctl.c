/* heraldctl.c - the operator's CLI (protocol.md 7): global options, config, subcommand dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "log.h"

#define CTL_MAX_OVERRIDES 64

static const char ctl_usage[] =
    "usage: heraldctl [-c CONFIG] [--json] [-o section.key=value]... COMMAND [ARGS]\n"
    "  status                          supervised processes: pid, up/down, restarts, uptime\n"
    "  stats [--ca FILE]               broker and gateway counters (https to TLS listeners,\n"
    "                                  verified against --ca, else the system's CAs)\n"
    "  rings                           every ring's header (read-only)\n"
    "  ring ID [--peek N | --last N]   header, then up to N pending records decoded, or the\n"
    "                                  N most recent ones still in the ring (read-only)\n"
    "  publish --user U --type T [--priority P] [--id ID] [--source S] [--payload JSON]\n"
    "  token --user U [--ttl SECONDS] [--aud A] [--iss I] [--nbf T]\n"
    "                                  mint a client JWT (exp = now + ttl, default 3600;\n"
    "                                  aud/iss default to auth.audience/auth.issuer)\n"
    "  shard USER                      the user's gateway and its URL\n"
    "  cluster [--ca FILE]             cluster mode: live nodes, partitions, owners, leases,\n"
    "                                  stream positions and consumer lag, counters\n"
    "  tail --user U [--channels a,b] [--since S] [--count N] [--timeout S] [--ca FILE]\n"
    "                                  (wss:// with gateway.tls_cert: the gateway's certificate\n"
    "                                  is verified against --ca, else the system's CAs)\n"
    "Global options may come before or after the command's own arguments.\n";

typedef struct {
    const char *name;
    int (*run)(ctl_t *ctl);
} ctl_command_t;

static const ctl_command_t ctl_commands[] = {
    {"status", ctl_cmd_status}, {"stats", ctl_cmd_stats},     {"rings", ctl_cmd_rings},
    {"ring", ctl_cmd_ring},     {"publish", ctl_cmd_publish}, {"token", ctl_cmd_token},
    {"shard", ctl_cmd_shard},   {"tail", ctl_cmd_tail},       {"cluster", ctl_cmd_cluster},
};

int ctl_fail(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "heraldctl: %s\n", line);
    return 1;
}

/* Is args[i] the option `name` ("--name" then a value, or "--name=V")? Sets *val. */
static bool ctl_arg_is(const ctl_t *ctl, int i, const char *name, const char **val, int *used)
{
    const char *a = ctl->args[i];
    size_t n = strlen(name);
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0) return false;
    if (a[2 + n] == '=') {
        *val = a + 3 + n;
        *used = 1;
        return true;
    }
    if (a[2 + n] != '\0') return false;
    *val = i + 1 < ctl->nargs ? ctl->args[i + 1] : NULL;
    *used = 2;
    return true;
}

const char *ctl_opt(const ctl_t *ctl, const char *name)
{
    const char *val = NULL;
    int used;
    for (int i = 0; i < ctl->nargs; i++)
        if (ctl_arg_is(ctl, i, name, &val, &used)) return val;
    return NULL;
}

int ctl_check_args(const ctl_t *ctl, const char *const *names, const char **positional, int max_pos,
                   int min_pos)
{
    int npos = 0;
    for (int i = 0; i < ctl->nargs;) {
        const char *val = NULL;
        int used = 0;
        for (const char *const *n = names; n && *n && !used; n++)
            ctl_arg_is(ctl, i, *n, &val, &used);
        if (used) {
            if (!val) return ctl_fail("option %s needs a value", ctl->args[i]);
            i += used;
            continue;
        }
        if (ctl->args[i][0] == '-' && ctl->args[i][1] != '\0')
            return ctl_fail("unknown option %s", ctl->args[i]);
        if (npos >= max_pos) return ctl_fail("unexpected argument %s", ctl->args[i]);
        positional[npos++] = ctl->args[i++];
    }
    if (npos < min_pos) return ctl_fail("missing argument (see heraldctl --help)");
    return 0;
}

int ctl_parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-') return ctl_fail("%s: expected a non-negative integer", opt);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return ctl_fail("%s: expected a non-negative integer, got %.40s", opt, s);
    *out = v;
    return 0;
}

/* Load the config file, then apply the overrides. A missing auth.secret is only an error
 * once the overrides could not provide one. */
static int ctl_load_config(ctl_t *ctl, const char *path, char **ovr, int novr)
{
    herald_error_t err = {0};
    config_defaults(&ctl->cfg);
    const char *file = config_default_path(path);
    int rc = config_load(&ctl->cfg, file, &err);
    bool no_secret = rc == -HERR_MISSING_FIELD && strcmp(err.field, "auth.secret") == 0;
    if (rc < 0 && !no_secret)
        return strstr(err.message, file) ? ctl_fail("config: %s", err.message)
                                         : ctl_fail("config %s: %s", file, err.message);
    for (int i = 0; i < novr; i++) {
        char *eq = strchr(ovr[i], '=');
        if (!eq) return ctl_fail("-o %s: expected section.key=value", ovr[i]);
        *eq = '\0';
        rc = config_set(&ctl->cfg, ovr[i], eq + 1, &err);
        *eq = '=';
        if (rc < 0) return ctl_fail("-o %s: %s", ovr[i], err.message);
    }
    if (ctl->cfg.auth_secret[0] == '\0')
        return ctl_fail("config %s: auth.secret is required", file);
    return 0;
}

int main(int argc, char **argv)
{
    static ctl_t ctl;
    const char *config_path = NULL, *command = NULL;
    char *ovr[CTL_MAX_OVERRIDES];
    int novr = 0;

    log_init("heraldctl", -1);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(ctl_usage, stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            ctl.json = true;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) return ctl_fail("%s needs a value", a);
            if (a[1] == 'o') {
                if (novr >= CTL_MAX_OVERRIDES) return ctl_fail("too many -o overrides");
                ovr[novr++] = argv[++i];
            } else {
                config_path = argv[++i];
            }
        } else if (!command) {
            command = a;
        } else {
            if (ctl.nargs >= CTL_MAX_ARGS) return ctl_fail("too many arguments");
            ctl.args[ctl.nargs++] = a;
        }
    }
    if (!command) return ctl_fail("no command given (see heraldctl --help)");
    const ctl_command_t *cmd = NULL;
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++)
        if (strcmp(ctl_commands[i].name, command) == 0) cmd = &ctl_commands[i];
    if (!cmd) return ctl_fail("unknown command %s (see heraldctl --help)", command);
    if (ctl_load_config(&ctl, config_path, ovr, novr)) return 1;
    log_set_level(ctl.cfg.log_level > LOG_WARN ? (log_level_t)ctl.cfg.log_level : LOG_WARN);
    return cmd->run(&ctl);
}
