// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The per-upstream exposition written straight into the buffer: exact lines of a counter,
 * of histogram buckets with and without the histogram's own label, _sum and _count; the
 * sparse rules (zero breakdowns, the impossible race side, empty histograms left out);
 * HELP/TYPE once per family; the overflow upstream written in full; the same page when
 * read in parts of any size, and its length known before; that length the
 * Content-Length of a page of many parts served over HTTP, and the bytes sent.
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
#include <curl/curl.h>

#include "lib/addr.h"
#include "agent/http.h"
#include "agent/metrics.h"

#define LABELS "direction=\"inbound\",peer=\"10.0.0.1\",port=\"80\",netns=\"1\""
#define OTHER  "direction=\"outbound\",peer=\"other\",port=\"other\",netns=\"other\""

static struct kw_buf out;
static struct kw_upstream u[2];

static int render(void **state)
{
	struct kw_snapshot s = { .u = u, .n = 2, .njobs = 0 };

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

/* Read in parts of any size, the page is the same as written whole, every part full. */
static void test_parts(void **state)
{
	static const size_t sizes[] = { 1, 100, 777, 65536 };
	unsigned int k;

	(void)state;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct kw_snapshot s = { .n = 2, .njobs = 0 };
		struct kw_metrics_stream *m;
		char *part = malloc(sizes[k]);
		unsigned int reads = 0;
		struct kw_buf page;
		ssize_t n;

		assert_non_null(part);
		s.u = malloc(sizeof(u));
		assert_non_null(s.u);
		memcpy(s.u, u, sizeof(u));
		m = kw_metrics_stream_new(&s);
		assert_non_null(m);
		assert_null(s.u); /* taken over */
		kw_buf_init(&page);
		while ((n = kw_metrics_stream_read(m, part, sizes[k])) > 0) {
			/* only the page's end leaves a part short */
			if ((size_t)n < sizes[k])
				assert_int_equal(page.len + n, out.len);
			kw_buf_append(&page, part, n);
			reads++;
		}
		assert_int_equal(n, 0);
		assert_int_equal(kw_metrics_stream_read(m, part, sizes[k]), 0); /* and stays so */
		assert_int_equal(kw_metrics_stream_size(m), out.len);
		kw_metrics_stream_free(m);
		assert_int_equal(page.len, out.len);
		assert_string_equal(page.data, out.data);
		assert_int_equal(reads, (out.len + sizes[k] - 1) / sizes[k]);
		kw_buf_free(&page);
		free(part);
	}
}

/* A page of many parts as the agent serves it: Content-Length is the bytes sent. */
#define MANY 400

static struct kw_snapshot many;

static void fill_many(void)
{
	size_t i;

	many = (struct kw_snapshot){ .n = MANY, .njobs = 0 };
	many.u = calloc(MANY, sizeof(*many.u));
	assert_non_null(many.u);
	for (i = 0; i < MANY; i++) {
		struct kw_upstream *x = &many.u[i];

		x->key.direction = i % 3 ? KW_DIR_INBOUND : KW_DIR_OUTBOUND;
		x->key.family = KW_AF_INET;
		x->key.port = 8080;
		x->key.netns = 1 + i % 2;
		kw_addr_v4mapped(htonl(0x0a000001 + i), x->key.addr);
		x->val[KW_F_CONN] = i * 1000003;
		x->val[KW_F_REQ] = i * i * 7919;
		x->val[KW_F_RST_SENT_TCP_FLAGS] = i % 5;
		x->hist[KW_H_IDLE_LOCAL][i % KW_IDLE_SLOTS] = i;
		x->hist_sum[KW_H_IDLE_LOCAL] = i / 7.0;
		x->hist[KW_H_REQS_PEER][i % KW_REQS_SLOTS] = 3;
		x->hist_sum[KW_H_REQS_PEER] = 3 * (i % KW_REQS_SLOTS);
	}
}

static ssize_t stream_read(void *cls, char *buf, size_t max)
{
	return kw_metrics_stream_read(cls, buf, max);
}

static void stream_release(void *cls)
{
	kw_metrics_stream_free(cls);
}

static int route_many(void *ctx, const struct kw_request *req, struct kw_buf *body,
		      const char **ctype)
{
	struct kw_snapshot s = many;
	struct kw_metrics_stream *m;

	(void)ctx;
	(void)ctype;
	s.u = malloc(MANY * sizeof(*s.u));
	if (!s.u)
		return 500;
	memcpy(s.u, many.u, MANY * sizeof(*s.u));
	m = kw_metrics_stream_new(&s);
	if (!m) {
		kw_buf_puts(body, "no stream\n");
		return 500;
	}
	kw_request_stream(req, &(struct kw_stream){ .read = stream_read,
						    .release = stream_release,
						    .cls = m,
						    .size = kw_metrics_stream_size(m) });
	return 200;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	return kw_buf_append(ctx, data, size * nmemb) ? 0 : size * nmemb;
}

static void test_served(void **state)
{
	static const struct kw_route routes[] = { { "/metrics", route_many, 0, NULL } };
	curl_off_t length = -1;
	struct kw_buf whole, body;
	struct kw_http *http;
	char url[64];
	long status = 0;
	CURL *h;

	(void)state;
	fill_many();
	kw_buf_init(&whole);
	kw_buf_init(&body);
	assert_int_equal(kw_metrics_render(&many, &whole), 0);
	assert_true(whole.len > 3 * 1024 * 1024); /* several of the server's 1 MiB parts */
	http = kw_http_start("127.0.0.1", 0, routes, 1, NULL);
	assert_non_null(http);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", kw_http_port(http));
	h = curl_easy_init();
	assert_non_null(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
	curl_easy_cleanup(h);
	kw_http_stop(http);
	assert_int_equal(status, 200);
	assert_int_equal(length, whole.len);
	assert_int_equal(body.len, whole.len);
	assert_memory_equal(body.data, whole.data, whole.len);
	kw_buf_free(&whole);
	kw_buf_free(&body);
	free(many.u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_histograms),
		cmocka_unit_test(test_parts),
		cmocka_unit_test(test_served),
	};
	int ret;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = cmocka_run_group_tests(tests, render, release);
	curl_global_cleanup();
	return ret;
}
