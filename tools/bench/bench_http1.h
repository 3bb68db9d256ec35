/* bench_http1.h - herald-bench's HTTP/1.1 publisher: one notification per request, as most
 * producers integrate, over C keep-alive connections with up to P requests pipelined on each,
 * at full speed or paced to a rate. One thread, epoll; used by `broker --mode http1` and
 * `e2e --ingress http`. */
#ifndef HERALD_BENCH_HTTP1_H
#define HERALD_BENCH_HTTP1_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint16_t port;       /* broker.http on 127.0.0.1 */
    const char *api_key; /* NULL = none */
    unsigned conns;      /* keep-alive connections */
    unsigned pipeline;   /* requests in flight per connection */
    uint64_t count;      /* requests to send */
    double rate;         /* requests/s; 0 = as fast as answered */
    double timeout_s;    /* give up after this long */
    /* JSON body of request i into buf (cap bytes); returns its length. */
    size_t (*body)(void *ctx, uint64_t i, char *buf, size_t cap);
    /* The response to request i: status and body. */
    void (*answer)(void *ctx, uint64_t i, int status, const char *body, size_t len);
    void *ctx;
    volatile sig_atomic_t *stop; /* may be NULL */
} bh1_opts_t;

typedef struct {
    uint64_t sent, answered;
    uint64_t t_start, t_end; /* monotonic ns: first send, last answer */
    char error[200];         /* "" unless the run stopped early */
} bh1_result_t;

/* Run the publisher. Returns 0, or -1 with res->error set. */
int bh1_run(const bh1_opts_t *o, bh1_result_t *res);

#endif
