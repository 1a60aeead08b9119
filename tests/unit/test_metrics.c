// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The per-upstream exposition written straight into the buffer: exact lines of a counter,
 * of histogram buckets with and without the histogram's own label, _sum and _count; the
 * sparse rules (zero breakdowns, the impossible race side, empty histograms left out);
 * HELP/TYPE once per family; the overflow upstream written in full; the same page when
 * written in parts of any size, and its length known before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "addr.h"
#include "metrics.h"

#define LABELS "direction=\"inbound\",peer=\"10.0.0.1\",port=\"80\",netns=\"1\""
#define OTHER  "direction=\"outbound\",peer=\"other\",port=\"other\",netns=\"other\""

static struct kw_buf out;
static struct kw_upstream u[2];

static int render(void **state)
{
	struct kw_snapshot s = { .u = u, .n = 2, .attach_mode = "test" };

	(void)state;
	memset(u, 0, sizeof(u));
	u[0].key.direction = KW_DIR_INBOUND;
	u[0].key.family = KW_AF_INET;
	u[0].key.port = 80;
	u[0].key.netns = 1;
	kw_addr_v4mapped(htonl(0x0a000001), u[0].key.addr);
	u[0].val[KW_F_CONN] = 5;
	u[0].val[KW_F_REQ] = 18446744073709551615ull;
	u[0].val[KW_F_RST_SENT_NO_SOCKET] = 2;
	u[0].hist[KW_H_IDLE_PEER][0] = 1;
	u[0].hist[KW_H_IDLE_PEER][KW_IDLE_SLOTS - 1] = 2;
	u[0].hist_sum[KW_H_IDLE_PEER] = 600.25;
	u[0].hist[KW_H_RACE_GAP][1] = 4;
	u[0].hist_sum[KW_H_RACE_GAP] = 0.000123;
	u[1].key.direction = KW_DIR_OUTBOUND; /* the outbound overflow upstream */
	kw_buf_init(&out);
	return kw_metrics_render(&s, &out);
}

static int release(void **state)
{
	(void)state;
	kw_buf_free(&out);
	return 0;
}

static void has(const char *line)
{
	if (!strstr(out.data, line))
		fail_msg("missing: %s", line);
}

static void lacks(const char *text)
{
	if (strstr(out.data, text))
		fail_msg("unexpected: %s", text);
}

static unsigned int count(const char *text)
{
	unsigned int n = 0;
	const char *p;

	for (p = out.data; (p = strstr(p, text)); p++)
		n++;
	return n;
}

static void test_counters(void **state)
{
	(void)state;
	has("\nkeepwatch_connections_opened_total{" LABELS "} 5\n");
	has("\nkeepwatch_requests_total{" LABELS "} 18446744073709551615\n");
	has("\nkeepwatch_connections_closed_total{" LABELS ",closed_by=\"peer\",how=\"rst\"} 0\n");
	has("\nkeepwatch_resets_sent_total{" LABELS ",reason=\"no_socket\"} 2\n");
	lacks("keepwatch_resets_sent_total{" LABELS ",reason=\"tcp_flags\"}");
	has("\nkeepwatch_keepalive_races_total{" LABELS ",side=\"server\"} 0\n");
	lacks("keepwatch_keepalive_races_total{" LABELS ",side=\"client\"}");
	/* the overflow upstream has every series, zero or not */
	has("\nkeepwatch_resets_sent_total{" OTHER ",reason=\"tcp_flags\"} 0\n");
	has("\nkeepwatch_keepalive_races_total{" OTHER ",side=\"server\"} 0\n");
	assert_int_equal(count("# TYPE keepwatch_connections_closed_total counter\n"), 1);
	assert_int_equal(count("# HELP keepwatch_resets_sent_total "), 1);
}

static void test_histograms(void **state)
{
	(void)state;
	has("\nkeepwatch_idle_before_close_seconds_bucket{" LABELS
	    ",closed_by=\"peer\",le=\"0.001\"} 1\n"
	    "keepwatch_idle_before_close_seconds_bucket{" LABELS
	    ",closed_by=\"peer\",le=\"0.01\"} 1\n");
	has("\nkeepwatch_idle_before_close_seconds_bucket{" LABELS
	    ",closed_by=\"peer\",le=\"300.5\"} 1\n"
	    "keepwatch_idle_before_close_seconds_bucket{" LABELS
	    ",closed_by=\"peer\",le=\"+Inf\"} 3\n"
	    "keepwatch_idle_before_close_seconds_sum{" LABELS ",closed_by=\"peer\"} 600.25\n"
	    "keepwatch_idle_before_close_seconds_count{" LABELS ",closed_by=\"peer\"} 3\n");
	lacks("keepwatch_idle_before_close_seconds_count{" LABELS ",closed_by=\"local\"}");
	has("\nkeepwatch_race_gap_seconds_bucket{" LABELS ",le=\"0.0001\"} 0\n"
	    "keepwatch_race_gap_seconds_bucket{" LABELS ",le=\"0.0005\"} 4\n");
	has("\nkeepwatch_race_gap_seconds_sum{" LABELS "} 0.000123\n"
	    "keepwatch_race_gap_seconds_count{" LABELS "} 4\n");
	lacks("keepwatch_race_idle_before_close_seconds_count{" LABELS "}");
	has("\nkeepwatch_race_idle_before_close_seconds_count{" OTHER "} 0\n");
	assert_int_equal(count("# TYPE keepwatch_idle_before_close_seconds histogram\n"), 1);
}

/* Written in parts of any size, the page is the same as written whole. */
static void test_parts(void **state)
{
	static const size_t wants[] = { 1, 100, 777, 65536 };
	unsigned int k;

	(void)state;
	for (k = 0; k < sizeof(wants) / sizeof(wants[0]); k++) {
		struct kw_snapshot s = { .n = 2, .attach_mode = "test" };
		struct kw_metrics_stream *m;
		struct kw_buf page, part;
		unsigned int calls = 0;
		int ret;

		s.u = malloc(sizeof(u));
		assert_non_null(s.u);
		memcpy(s.u, u, sizeof(u));
		m = kw_metrics_stream_new(&s);
		assert_non_null(m);
		assert_null(s.u); /* taken over */
		kw_buf_init(&page);
		kw_buf_init(&part);
		do {
			kw_buf_reset(&part);
			ret = kw_metrics_stream_next(m, &part, wants[k]);
			assert_true(ret >= 0);
			assert_true(part.len > 0);
			kw_buf_append(&page, part.data, part.len);
			calls++;
		} while (ret);
		assert_int_equal(kw_metrics_stream_size(m), out.len);
		kw_metrics_stream_free(m);
		assert_int_equal(page.len, out.len);
		assert_string_equal(page.data, out.data);
		if (wants[k] == 1)
			assert_true(calls > 50); /* a line or a histogram series a part */
		kw_buf_free(&page);
		kw_buf_free(&part);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_histograms),
		cmocka_unit_test(test_parts),
	};

	return cmocka_run_group_tests(tests, render, release);
}
