/* webui.h - what the broker serves for the web (protocol.md 13), apart from its HTTP server: the
 * operations page (/ui, /ui/...), the supervisor's status with what the page needs to find
 * the gateways (/api/status), and development tokens (/api/dev/token). The HTTP server calls
 * bk_webui_get for each GET it does not answer itself and writes back what it returns. */
#ifndef HERALD_BK_WEBUI_H
#define HERALD_BK_WEBUI_H

#include <stdbool.h>

#include "json.h"

struct broker;

/* Answer GET path (no query; query = the raw query string after '?', percent-encoded, or
 * NULL). Returns 0 when the path is not the web UI's (out and *content_type untouched),
 * else the HTTP status with the body appended to out and *content_type set:
 *   /ui, /ui/            200 ui/index.html from runtime.web_dir
 *   /ui/<file>           200 the file; 400 a refused path (webfile.h); 404 none
 *   /api/status          200 {"supervisor":<status.json>|null,"gateways":[{"id","stats"}],
 *                        "queue_capacity":[..],"dev":bool,"broker_pid":N,"now_ms":N}
 *   /api/dev/token?user=U[&ttl=S]
 *                        200 {"token","user","exp","gateway","url"} when auth.allow_dev_secret
 *                        is true; 403 when it is false; 400 a missing or bad user or ttl.
 * Errors are {"error":code,"message":...}; each refusal is counted and logged. */
int bk_webui_get(struct broker *b, const char *path, const char *query, jbuf_t *out,
                 const char **content_type);

/* Whether the response to `path` carries Access-Control-Allow-Origin: * so that the demo
 * page (served by a gateway, another origin) can read it: in development mode
 * (auth.allow_dev_secret) only, for /api/dev/token and /api/publish. */
bool bk_webui_cors(const struct broker *b, const char *path);

/* The web UI's counters as a JSON member: ,"web":{...} (appended to /api/stats). */
void bk_webui_stats_json(jbuf_t *out);

#endif
