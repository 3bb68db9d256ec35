/* test_latency.c - per-priority latency histograms as Prometheus text and JSON. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "latency.h"

static latency_t L;

/* The value of the first line of out starting with prefix. */
static double metric(const jbuf_t *out, const char *prefix)
{
    char *copy = strndup(out->data, out->len);
    char *p = strstr(copy, prefix);
    ck_assert_msg(p != NULL, "no %s", prefix);
    double v = strtod(p + strlen(prefix), NULL);
    free(copy);
    return v;
}

START_TEST(every_value_is_counted_once_in_its_priority)
{
    latency_init(&L);
    for (int i = 0; i < 10; i++)
        latency_record(&L, 0, 150000); /* 150 us */
    for (int i = 0; i < 5; i++)
        latency_record(&L, 2, 90 * 1000000ull); /* 90 ms */
    latency_record(&L, 3, 3 * 1000000000ull);   /* 3 s */
    latency_record(&L, 7, 1);                   /* no such priority: ignored */
    jbuf_t o;
    jbuf_init(&o, 0);
    latency_prometheus(&L, &o, "t_seconds", "help", "gateway=\"1\"");
    jbuf_putc(&o, '\0');
    ck_assert_ptr_nonnull(strstr(o.data, "# TYPE t_seconds histogram"));
    ck_assert_int_eq((int)metric(&o, "t_seconds_count{gateway=\"1\",priority=\"P0\"} "), 10);
    ck_assert_int_eq((int)metric(&o, "t_seconds_count{gateway=\"1\",priority=\"P1\"} "), 0);
    ck_assert_int_eq((int)metric(&o, "t_seconds_count{gateway=\"1\",priority=\"P2\"} "), 5);
    ck_assert_int_eq((int)metric(&o, "t_seconds_count{gateway=\"1\",priority=\"P3\"} "), 1);
    /* buckets are cumulative and read at 100 us resolution */
    ck_assert_int_eq(
        (int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P0\",le=\"0.0001\"} "), 0);
    ck_assert_int_eq(
        (int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P0\",le=\"0.0002\"} "), 10);
    ck_assert_int_eq(
        (int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P2\",le=\"0.05\"} "), 0);
    ck_assert_int_eq((int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P2\",le=\"0.1\"} "),
                     5);
    ck_assert_int_eq((int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P3\",le=\"2\"} "),
                     0);
    ck_assert_int_eq(
        (int)metric(&o, "t_seconds_bucket{gateway=\"1\",priority=\"P3\",le=\"+Inf\"} "), 1);
    double sum = metric(&o, "t_seconds_sum{gateway=\"1\",priority=\"P0\"} ");
    ck_assert(sum > 0.00149 && sum < 0.00151);
    jbuf_reset(&o);
    latency_json(&L, &o);
    jbuf_putc(&o, '\0');
    ck_assert_ptr_nonnull(strstr(o.data, "\"P0\":{\"count\":10,\"p50_ms\":0.150"));
    ck_assert_ptr_nonnull(strstr(o.data, "\"P1\":{\"count\":0,"));
    jbuf_free(&o);
}
END_TEST

START_TEST(slo_gauges_are_exported_in_seconds)
{
    const uint32_t slo[HERALD_PRIORITIES] = {1, 6, 101, 1001};
    jbuf_t o;
    jbuf_init(&o, 0);
    latency_slo_prometheus(&o, slo);
    jbuf_putc(&o, '\0');
    ck_assert_ptr_nonnull(strstr(o.data, "herald_slo_seconds{priority=\"P0\"} 0.001\n"));
    ck_assert_ptr_nonnull(strstr(o.data, "herald_slo_seconds{priority=\"P3\"} 1.001\n"));
    jbuf_free(&o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("latency");
    TCase *t = tcase_create("latency");
    tcase_add_test(t, every_value_is_counted_once_in_its_priority);
    tcase_add_test(t, slo_gauges_are_exported_in_seconds);
    suite_add_tcase(s, t);
    return check_run_suite(s);
}
