/* bench_report.c - herald-bench e2e result line and table. */
#include "bench_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const double PCTS[] = {50, 90, 99, 99.9};
static const char *const PCT_NAMES[] = {"p50", "p90", "p99", "p99_9"};
#define NPCT (sizeof PCTS / sizeof PCTS[0])

void bench_totals(const bench_run_t *r, unsigned dropped_sessions, double bench_cpu_s,
                  bench_totals_t *t)
{
    uint64_t end = r->t_last_rx > r->pub_t_end ? r->t_last_rx : r->pub_t_end;
    t->expected = atomic_load_explicit(&r->expected, memory_order_relaxed);
    t->lost = t->expected > r->received ? t->expected - r->received : 0;
    t->elapsed_s = end > r->pub_t_start ? (double)(end - r->pub_t_start) / 1e9 : 0;
    t->delivered_per_s = t->elapsed_s > 0 ? (double)r->received / t->elapsed_s : 0;
    t->bench_cpu_s = bench_cpu_s;
    t->peak_per_s = 0;
    const unsigned win = (unsigned)(1000000000ull / BENCH_TICK_NS);
    uint64_t sum = 0;
    for (unsigned i = 0; i < r->n_ticks; i++) {
        sum += r->rx_per_tick[i];
        if (i >= win) sum -= r->rx_per_tick[i - win];
        if ((double)sum > t->peak_per_s) t->peak_per_s = (double)sum;
    }
    t->rx_ceiling_per_s = r->rx_cpu_s > 0 ? (double)r->received / r->rx_cpu_s : 0;
    t->dropped_sessions = dropped_sessions;
    /* Steady state: the middle 80 % of the publishing time, whole ticks only, so neither the
     * ramp-up nor the flush-delay tail after the last publish counts. */
    t->steady_per_s = 0;
    if (r->pub_t_end > r->pub_t_start && r->pub_t_start >= r->t_origin) {
        uint64_t span = r->pub_t_end - r->pub_t_start;
        uint64_t a = (r->pub_t_start - r->t_origin + span / 10 + BENCH_TICK_NS - 1) / BENCH_TICK_NS;
        uint64_t b = (r->pub_t_start - r->t_origin + span - span / 10) / BENCH_TICK_NS;
        if (b > r->n_ticks) b = r->n_ticks;
        if (b >= a + 5) { /* at least half a second of whole ticks */
            uint64_t n = 0;
            for (uint64_t i = a; i < b; i++)
                n += r->rx_per_tick[i];
            t->steady_per_s = (double)n / ((double)(b - a) * BENCH_TICK_NS / 1e9);
        }
    }
}

void bench_totals_cpu(const bench_run_t *r, const bprocs_t *ps, bench_totals_t *t)
{
    t->herald_cpu_s = 0;
    for (unsigned i = 0; i < ps->n; i++)
        t->herald_cpu_s += ps->procs[i].cpu_s - ps->procs[i].cpu0_s;
    t->herald_cpu_us_per_delivery = r->received ? t->herald_cpu_s * 1e6 / (double)r->received : 0;
}

/* First to last refusal received, in seconds (0 without refusals). */
static double refused_span_s(const bench_run_t *r)
{
    return (double)(r->pub_t_refused[1] - r->pub_t_refused[0]) / 1e9;
}

static uint64_t refused_total(const bench_run_t *r)
{
    uint64_t n = 0;
    for (unsigned e = 0; e < HERR__COUNT; e++)
        n += r->pub_refused[e];
    return n;
}

static void json_latency(const bench_run_t *r)
{
    printf("\"latency_us\":{");
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        const hist_t *h = &r->lat[p];
        printf("%s\"P%u\":{\"count\":%" PRIu64, p ? "," : "", p, h->count);
        for (unsigned k = 0; k < NPCT; k++)
            printf(",\"%s\":%.1f", PCT_NAMES[k], (double)hist_percentile(h, PCTS[k]) / 1e3);
        printf(",\"max\":%.1f,\"mean\":%.1f}", (double)h->max / 1e3, hist_mean(h) / 1e3);
    }
    printf("}");
}

static void json_procs(const bprocs_t *ps)
{
    printf("\"procs\":[");
    for (unsigned i = 0; i < ps->n; i++) {
        const bproc_t *p = &ps->procs[i];
        printf("%s{\"name\":\"%s\",\"pid\":%d,\"cpu_s\":%.3f,\"rss_kib\":%ld,\"hwm_kib\":%ld}",
               i ? "," : "", p->name, (int)p->pid, p->cpu_s - p->cpu0_s, p->rss_kib, p->hwm_kib);
    }
    printf("]");
}

/* s as a JSON string body: quotes, backslashes and control characters escaped. */
static void json_str(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
}

/* Busy CPU seconds on the machine during the measurement not spent by herald or the bench:
 * other load that makes a result unrepresentative. */
static double other_cpu_s(const bprocs_t *ps, const bench_totals_t *t)
{
    double ours = t->bench_cpu_s;
    for (unsigned i = 0; i < ps->n; i++)
        ours += ps->procs[i].cpu_s - ps->procs[i].cpu0_s;
    double other = ps->sys_busy_s - ps->sys_busy0_s - ours;
    return other > 0 ? other : 0;
}

static void json_line(const bench_run_t *r, const bprocs_t *ps, const bench_totals_t *t)
{
    printf("{\"bench\":\"e2e\",\"mode\":\"%s\",\"nodes\":%u,\"sessions\":%u,\"users\":%u,"
           "\"gateways\":%u,\"messages\":%" PRIu64 ",\"rate\":%.0f,\"payload_bytes\":%u,"
           "\"batch\":%u,\"window\":%u,\"mix\":[%u,%u,%u,%u],",
           r->spawn     ? "spawn"
           : r->n_nodes ? "cluster"
                        : "target",
           r->n_nodes ? r->n_nodes : 1, r->sessions, r->users, r->gateways, r->messages, r->rate,
           r->payload_bytes, r->batch, r->window, r->mix[0], r->mix[1], r->mix[2], r->mix[3]);
    printf("\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"refused\":%" PRIu64
           ",\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
           ",\"duplicates\":%" PRIu64 ",\"out_of_order\":%" PRIu64 ",\"foreign\":%" PRIu64
           ",\"malformed\":%" PRIu64 ",\"other_frames\":%" PRIu64 ",\"dropped_sessions\":%u,"
           "\"refused_span_s\":%.3f,",
           r->pub_sent, r->pub_acked, refused_total(r), t->expected, r->received, t->lost,
           r->duplicates, r->out_of_order, r->foreign, r->malformed, r->other_frames,
           t->dropped_sessions, refused_span_s(r));
    printf("\"elapsed_s\":%.3f,\"delivered_per_s\":%.0f,\"steady_per_s\":%.0f,"
           "\"peak_1s_per_s\":%.0f,\"avg_frame_bytes\":%.0f,\"herald_cpu_s\":%.3f,"
           "\"herald_cpu_us_per_delivery\":%.2f,\"ingress\":\"%s\",",
           t->elapsed_s, t->delivered_per_s, t->steady_per_s, t->peak_per_s,
           r->received ? (double)r->frame_bytes / (double)r->received : 0.0, t->herald_cpu_s,
           t->herald_cpu_us_per_delivery, r->ingress_http ? "http" : "native");
    json_latency(r);
    printf(",\"ack_share\":%u,\"acks\":%s,\"acks_sent\":%" PRIu64, r->ack_share,
           r->acks ? "true" : "false", r->acks_sent);
    if (r->slow_readers)
        printf(
            ",\"slow_readers\":{\"sessions\":%u,\"rate\":%u,\"read_bps\":%u,\"published\":%" PRIu64
            ",\"notifications\":%" PRIu64 ",\"conflated_messages\":%" PRIu64
            ",\"conflated_seqs\":%" PRIu64 ",\"gap_seqs\":%" PRIu64 ",\"unaccounted\":%" PRIu64
            ",\"alive\":%u,\"closed\":%u,\"closed_4008\":%u}",
            r->slow_readers, r->slow_rate, r->slow_read_bps, r->slow_published,
            r->slow_notifications, r->slow_conflated_msgs, r->slow_conflated_seqs, r->slow_gap_seqs,
            r->slow_unaccounted, r->slow_alive, r->slow_closed, r->slow_closed_4008);
    printf(",\"per_second\":[");
    const unsigned per_s = (unsigned)(1000000000ull / BENCH_TICK_NS);
    unsigned last = (unsigned)((t->elapsed_s * 1e9) / BENCH_TICK_NS) + 1;
    for (unsigned i = 0; i < last && i < r->n_ticks; i += per_s) {
        uint64_t n = 0;
        for (unsigned k = i; k < i + per_s && k < r->n_ticks; k++)
            n += r->rx_per_tick[k];
        printf("%s%llu", i ? "," : "", (unsigned long long)n);
    }
    printf("],");
    json_procs(ps);
    printf(",\"machine\":{\"busy_s\":%.2f,\"other_s\":%.2f}", ps->sys_busy_s - ps->sys_busy0_s,
           other_cpu_s(ps, t));
    printf(",\"bench_cpu\":{\"total_s\":%.3f,\"publisher_s\":%.3f,\"receiver_s\":%.3f,"
           "\"rx_ceiling_per_s\":%.0f},\"error\":\"",
           t->bench_cpu_s, r->pub_cpu_s, r->rx_cpu_s, t->rx_ceiling_per_s);
    json_str(r->pub_error);
    printf("\"}\n");
    fflush(stdout);
}

static void table(const bench_run_t *r, const bprocs_t *ps, const bench_totals_t *t)
{
    FILE *o = stderr;
    fprintf(o,
            "\nherald-bench e2e: %u sessions, %u users, %u gateways on %u node(s), %" PRIu64
            " notifications, %s\n",
            r->sessions, r->users, r->gateways, r->n_nodes ? r->n_nodes : 1, r->messages,
            r->rate > 0 ? "paced" : "max rate");
    fprintf(o,
            "  delivered/s %10.0f over %.3f s (first publish to last delivery); best 1 s window "
            "%.0f/s\n",
            t->delivered_per_s, t->elapsed_s, t->peak_per_s);
    if (t->steady_per_s > 0)
        fprintf(o, "  steady state %8.0f delivered/s over the middle 80 %% of publishing\n",
                t->steady_per_s);
    fprintf(o, "  herald CPU   %8.2f s: %.2f us per delivered notification (broker + gateways)\n",
            t->herald_cpu_s, t->herald_cpu_us_per_delivery);
    fprintf(o,
            "  sent %" PRIu64 "  acked %" PRIu64 "  refused %" PRIu64 "  expected %" PRIu64
            "  received %" PRIu64 "\n",
            r->pub_sent, r->pub_acked, refused_total(r), t->expected, r->received);
    fprintf(o,
            "  lost %" PRIu64 "  duplicates %" PRIu64 "  out-of-order %" PRIu64 "  foreign %" PRIu64
            "  dropped sessions %u\n",
            t->lost, r->duplicates, r->out_of_order, r->foreign, t->dropped_sessions);
    for (unsigned e = 1; e < HERR__COUNT; e++)
        if (r->pub_refused[e])
            fprintf(o, "  refused %-14s %" PRIu64 "\n", herr_code(herr_at(e)), r->pub_refused[e]);
    if (refused_total(r)) fprintf(o, "  refusals from first to last: %.3f s\n", refused_span_s(r));
    if (r->ack_share || r->acks)
        fprintf(o, "  margin calls %u %%, sessions %s, acks sent %" PRIu64 "\n", r->ack_share,
                r->acks ? "opted in" : "not opted in", r->acks_sent);
    if (r->slow_readers)
        fprintf(o,
                "  slow readers %u (%u B/s each): %" PRIu64 " position updates published, %" PRIu64
                " delivered, %" PRIu64 " named in %" PRIu64 " conflated messages, %" PRIu64
                " in gaps, %" PRIu64 " unaccounted; %u open, %u closed (%u with 4008)\n",
                r->slow_readers, r->slow_read_bps, r->slow_published, r->slow_notifications,
                r->slow_conflated_seqs, r->slow_conflated_msgs, r->slow_gap_seqs,
                r->slow_unaccounted, r->slow_alive, r->slow_closed, r->slow_closed_4008);
    fprintf(o,
            "\n  latency (us)     count        p50        p90        p99      p99.9        max\n");
    for (unsigned p = 0; p < HERALD_PRIORITIES; p++) {
        const hist_t *h = &r->lat[p];
        fprintf(o, "  P%u        %12" PRIu64, p, h->count);
        for (unsigned k = 0; k < NPCT; k++)
            fprintf(o, " %10.1f", (double)hist_percentile(h, PCTS[k]) / 1e3);
        fprintf(o, " %10.1f\n", (double)h->max / 1e3);
    }
    fprintf(o, "\n  process        pid      cpu s    rss KiB   peak KiB\n");
    for (unsigned i = 0; i < ps->n; i++) {
        const bproc_t *p = &ps->procs[i];
        fprintf(o, "  %-10s %7d %10.2f %10ld %10ld\n", p->name, (int)p->pid, p->cpu_s - p->cpu0_s,
                p->rss_kib, p->hwm_kib);
    }
    fprintf(o,
            "  bench      %7s %10.2f  (publisher %.2f, receiver %.2f: %.0f deliveries per "
            "receiver CPU second)\n",
            "-", t->bench_cpu_s, r->pub_cpu_s, r->rx_cpu_s, t->rx_ceiling_per_s);
    fprintf(o, "  machine busy %.2f CPU s, of which %.2f by other processes\n",
            ps->sys_busy_s - ps->sys_busy0_s, other_cpu_s(ps, t));
    if (r->pub_error[0]) fprintf(o, "  publisher stopped: %s\n", r->pub_error);
}

void bench_report(const bench_run_t *r, const bprocs_t *ps, const bench_totals_t *t)
{
    json_line(r, ps, t);
    table(r, ps, t);
}

void bench_report_idle(const bench_run_t *r, const bprocs_t *ps, double settle_s)
{
    long grow = 0, base = 0;
    unsigned gws = 0;
    for (unsigned i = 0; i < ps->n; i++) {
        const bproc_t *p = &ps->procs[i];
        if (strncmp(p->name, "gateway", 7) != 0) continue;
        grow += p->rss_kib - p->rss0_kib;
        base += p->rss0_kib;
        gws++;
    }
    double per = r->sessions ? (double)grow * 1024.0 / r->sessions : 0;
    printf("{\"bench\":\"e2e-idle\",\"sessions\":%u,\"gateways\":%u,\"settle_s\":%.1f,"
           "\"gateway_rss_before_kib\":%ld,\"gateway_rss_growth_kib\":%ld,"
           "\"bytes_per_idle_session\":%.0f,",
           r->sessions, gws, settle_s, base, grow, per);
    json_procs(ps);
    printf("}\n");
    fflush(stdout);
    fprintf(stderr,
            "\nherald-bench e2e --idle: %u idle sessions on %u gateways, settled %.1f s\n"
            "  gateway RSS %ld KiB before the sessions, +%ld KiB with them: %.0f bytes (%.2f "
            "KiB) per idle session\n",
            r->sessions, gws, settle_s, base, grow, per, per / 1024);
}
