/* webui.c - the broker's web side (protocol.md 13): the operations page's files, /api/status and
 * development tokens. Contracts in webui.h. */
#include "webui.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "herald_time.h"
#include "jwt.h"
#include "shard.h"
#include "webfile.h"

#define DEV_TTL_DEFAULT_S 3600
#define DEV_TTL_MAX_S     86400
#define STATUS_FILE_MAX   (64u * 1024)

/* Counted here rather than in broker_t: nothing else reads them. One broker per process. */
static struct {
    uint64_t files, refused_paths, dev_tokens, dev_refused;
    log_ratelimit_t rl;
} webui;

static int webui_error(jbuf_t *out, const char **ctype, int status, herr_t code, const char *msg)
{
    jbuf_puts(out, "{\"error\":");
    json_put_str(out, herr_code(code), strlen(herr_code(code)));
    jbuf_puts(out, ",\"message\":");
    json_put_str(out, msg, strlen(msg));
    jbuf_putc(out, '}');
    *ctype = "application/json";
    return status;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Value of `name` in a percent-encoded query string, decoded ('+' is a blank) into out.
 * Returns its length, or -1 when absent, badly encoded or longer than cap - 1. */
static int query_arg(const char *query, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
            size_t n = 0;
            for (const char *v = p + nlen + 1; v < end; v++) {
                char c = *v;
                if (c == '%') {
                    if (end - v < 3) return -1;
                    int hi = hexval(v[1]), lo = hexval(v[2]);
                    if (hi < 0 || lo < 0) return -1;
                    c = (char)(hi * 16 + lo);
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (n + 1 >= cap) return -1;
                out[n++] = c;
            }
            out[n] = '\0';
            return (int)n;
        }
        p = amp ? amp + 1 : NULL;
    }
    return -1;
}

static int dev_token(broker_t *b, const char *query, jbuf_t *out, const char **ctype)
{
    if (!b->cfg.auth_allow_dev_secret) {
        webui.dev_refused++;
        if (log_ratelimit_ok(&webui.rl, 5))
            log_warn("GET /api/dev/token refused: auth.allow_dev_secret is false");
        return webui_error(out, ctype, 403, HERR_UNAUTHORIZED,
                           "development tokens are off (auth.allow_dev_secret = false)");
    }
    char user[HERALD_MAX_ID_LEN + 1], ttl_s[16];
    int ulen = query_arg(query, "user", user, sizeof user);
    if (ulen <= 0 || memchr(user, '\0', (size_t)ulen) || !strcmp(user, HERALD_BROADCAST_USER)) {
        webui.dev_refused++;
        return webui_error(out, ctype, 400, HERR_BAD_VALUE,
                           "query parameter user is required: 1 to 64 bytes, not \"*\"");
    }
    uint64_t ttl = DEV_TTL_DEFAULT_S;
    if (query_arg(query, "ttl", ttl_s, sizeof ttl_s) >= 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(ttl_s, &end, 10);
        if (errno || end == ttl_s || *end || ttl_s[0] == '-' || v < 1 || v > DEV_TTL_MAX_S) {
            webui.dev_refused++;
            return webui_error(out, ctype, 400, HERR_BAD_VALUE, "ttl must be 1 to 86400 seconds");
        }
        ttl = v;
    }
    char token[1024];
    uint64_t now = (uint64_t)time(NULL);
    if (jwt_mint(b->cfg.auth_secret, user, now, ttl, token, sizeof token) < 0)
        return webui_error(out, ctype, 500, HERR_INTERNAL, "token does not fit");
    webui.dev_tokens++;
    if (log_ratelimit_ok(&webui.rl, 5))
        log_warn("development mode: minted a client token for user %s (ttl %llu s)", user,
                 (unsigned long long)ttl);
    unsigned count = b->cfg.gateway_count ? b->cfg.gateway_count : 1;
    unsigned gw = shard_gateway(user, (size_t)ulen, count);
    jbuf_puts(out, "{\"token\":");
    json_put_str(out, token, strlen(token));
    jbuf_puts(out, ",\"user\":");
    json_put_str(out, user, (size_t)ulen);
    jbuf_puts(out, ",\"exp\":");
    jbuf_put_u64(out, now + ttl);
    jbuf_puts(out, ",\"gateway\":");
    jbuf_put_u64(out, gw);
    char url[320];
    shard_url(&b->cfg, gw, url, sizeof url); /* wss:// when the gateways serve TLS */
    jbuf_puts(out, ",\"url\":");
    json_put_str(out, url, strlen(url));
    jbuf_putc(out, '}');
    *ctype = "application/json";
    return 200;
}

/* The supervisor's status.json as it is (it writes it atomically), when it looks like an
 * object; else null (no supervisor: the broker was started by hand or by systemd). */
static void put_supervisor_status(broker_t *b, jbuf_t *out)
{
    char path[400];
    snprintf(path, sizeof path, "%s/status.json", b->cfg.runtime_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 2 ||
        st.st_size > STATUS_FILE_MAX) {
        if (fd >= 0) close(fd);
        jbuf_puts(out, "null");
        return;
    }
    size_t start = out->len, size = (size_t)st.st_size, got = 0;
    jbuf_reserve(out, size);
    while (got < size) {
        ssize_t r = read(fd, out->data + start + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != size || out->data[start] != '{') {
        jbuf_puts(out, "null");
        return;
    }
    out->len = start + size;
}

static int status_json(broker_t *b, jbuf_t *out, const char **ctype)
{
    const host_port_t *gl = &b->cfg.gateway_listen;
    jbuf_puts(out, "{\"supervisor\":");
    put_supervisor_status(b, out);
    jbuf_puts(out, ",\"gateways\":[");
    for (unsigned i = 0; i < b->cfg.gateway_count; i++) {
        if (i) jbuf_putc(out, ',');
        jbuf_puts(out, "{\"id\":");
        jbuf_put_u64(out, i);
        jbuf_puts(out,
                  b->cfg.gateway_tls_cert[0] ? ",\"stats\":\"https://" : ",\"stats\":\"http://");
        if (strchr(gl->host, ':')) jbuf_putc(out, '[');
        jbuf_puts(out, gl->host);
        jbuf_puts(out, strchr(gl->host, ':') ? "]:" : ":");
        jbuf_put_u64(out, (uint64_t)gl->port + i);
        jbuf_puts(out, "/stats\"}");
    }
    jbuf_puts(out, "],\"queue_capacity\":[");
    for (int p = 0; p < HERALD_PRIORITIES; p++) {
        if (p) jbuf_putc(out, ',');
        jbuf_put_u64(out, b->cfg.queue_capacity[p]);
    }
    jbuf_puts(out, b->cfg.auth_allow_dev_secret ? "],\"dev\":true" : "],\"dev\":false");
    jbuf_puts(out, ",\"broker_pid\":");
    jbuf_put_u64(out, (uint64_t)getpid());
    jbuf_puts(out, ",\"now_ms\":");
    jbuf_put_u64(out, now_ns() / 1000000);
    jbuf_putc(out, '}');
    *ctype = "application/json";
    return 200;
}

static int ui_file(broker_t *b, const char *rel, jbuf_t *out, const char **ctype)
{
    size_t start = out->len;
    int status = webfile_read(config_web_dir(&b->cfg), rel, out, ctype);
    if (status == 200) {
        webui.files++;
        return 200;
    }
    out->len = start;
    if (status == 400) {
        webui.refused_paths++;
        if (log_ratelimit_ok(&webui.rl, 5)) log_warn("refused HTTP path /%.100s", rel);
        return webui_error(out, ctype, 400, HERR_BAD_VALUE, "path refused");
    }
    if (status != 404) log_warn("web file %s/%s: HTTP %d", config_web_dir(&b->cfg), rel, status);
    return webui_error(out, ctype, status, status == 404 ? HERR_NOT_FOUND : HERR_IO,
                       status == 404 ? "no such file" : "cannot read the file");
}

int bk_webui_get(broker_t *b, const char *path, const char *query, jbuf_t *out,
                 const char **content_type)
{
    if (!strcmp(path, "/ui") || !strcmp(path, "/ui/"))
        return ui_file(b, "ui/index.html", out, content_type);
    if (!strncmp(path, "/ui/", 4)) {
        char rel[256];
        if (snprintf(rel, sizeof rel, "ui/%s", path + 4) >= (int)sizeof rel)
            return ui_file(b, "", out, content_type); /* refused: too long */
        return ui_file(b, rel, out, content_type);
    }
    if (!strcmp(path, "/api/status")) return status_json(b, out, content_type);
    if (!strcmp(path, "/api/dev/token")) return dev_token(b, query, out, content_type);
    return 0;
}

bool bk_webui_cors(const broker_t *b, const char *path)
{
    return b->cfg.auth_allow_dev_secret &&
           (!strcmp(path, "/api/dev/token") || !strcmp(path, "/api/publish"));
}

void bk_webui_stats_json(jbuf_t *out)
{
    jbuf_puts(out, ",\"web\":{\"files\":");
    jbuf_put_u64(out, webui.files);
    jbuf_puts(out, ",\"refused_paths\":");
    jbuf_put_u64(out, webui.refused_paths);
    jbuf_puts(out, ",\"dev_tokens\":");
    jbuf_put_u64(out, webui.dev_tokens);
    jbuf_puts(out, ",\"dev_refused\":");
    jbuf_put_u64(out, webui.dev_refused);
    jbuf_putc(out, '}');
}
