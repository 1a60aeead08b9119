// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The CLI's pure logic on a literal agent document: per-direction sums and rates for
 * `stat`, its line format and 80-column limit, glob filtering and JSON; the rows, order
 * and layout of `upstreams`; rejection of documents of another version or shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/stat.h"
#include "cli/upstreams.h"

/* Three upstreams: two outbound, one inbound; histograms trimmed to what the CLI reads. */
static const char doc_text[] =
	"{\"version\": 1, \"uptime_seconds\": 12.5, \"upstreams\": ["
	" {\"direction\": \"outbound\", \"family\": \"ipv4\", \"peer\": \"10.0.0.2\", \"port\": 80,"
	"  \"netns\": \"kw-srv\", \"netns_inode\": 4026532100,"
	"  \"conn\": 3, \"req\": 30, \"reuse\": 27, \"closed_local_fin\": 0,"
	"  \"closed_local_rst\": 0, \"closed_peer_fin\": 3, \"closed_peer_rst\": 0,"
	"  \"unused_local\": 0, \"unused_peer\": 0, \"active\": 0,"
	"  \"idle_before_close_peer\": {\"buckets\": [[0.001, 0], [\"+Inf\", 3]], \"sum\": 3.01,"
	"   \"count\": 3}},"
	" {\"direction\": \"outbound\", \"family\": \"ipv6\", \"peer\": \"fd77::2\", \"port\": 8080,"
	"  \"netns\": \"a-very-long-network-namespace-name\", \"netns_inode\": 4026532101,"
	"  \"conn\": 5, \"adopted\": 2, \"req\": 0, \"reuse\": 0, \"closed_local_fin\": 2,"
	"  \"closed_local_rst\": 1, \"closed_peer_fin\": 0, \"closed_peer_rst\": 1,"
	"  \"unused_local\": 4, \"unused_peer\": 1, \"active\": 1},"
	" {\"direction\": \"inbound\", \"family\": \"ipv4\", \"peer\": \"10.0.0.1\", \"port\": 9479,"
	"  \"netns\": \"host\", \"netns_inode\": 4026531840,"
	"  \"conn\": 2, \"req\": 30, \"reuse\": 28, \"closed_local_fin\": 1,"
	"  \"closed_local_rst\": 0, \"closed_peer_fin\": 1, \"closed_peer_rst\": 0,"
	"  \"unused_local\": 0, \"unused_peer\": 2, \"active\": 1}"
	"]}";

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *doc = json_loads(text, 0, &err);

	if (!doc)
		fail_msg("bad test JSON: %s at line %d column %d", err.text, err.line, err.column);
	return doc;
}

static const struct kw_stat_row *find_row(const struct kw_stat *st, const char *name)
{
	unsigned int i;

	for (i = 0; i < KW_STAT_ROWS; i++)
		if (!strcmp(st->rows[i].name, name))
			return &st->rows[i];
	fail_msg("no stat row %s", name);
	return NULL;
}

static void check_value(const struct kw_stat *st, const char *name, __u64 want)
{
	const struct kw_stat_row *r = find_row(st, name);

	if (r->value != want)
		fail_msg("%s: %llu, expected %llu", name, (unsigned long long)r->value,
			 (unsigned long long)want);
}

static void test_stat_sums(void **state)
{
	struct kw_stat st;
	json_t *doc = load(doc_text);

	(void)state;
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	assert_true(st.uptime == 12.5);
	/* table order, backend rows first */
	assert_string_equal(st.rows[0].name, "backend_conn");
	assert_string_equal(st.rows[1].name, "backend_adopted");
	assert_string_equal(st.rows[2].name, "backend_lost");
	assert_string_equal(st.rows[3].name, "backend_req");
	assert_string_equal(st.rows[4].name, "backend_reuse");
	assert_string_equal(st.rows[KW_F_MAX].name, "client_conn");
	assert_string_equal(st.rows[KW_F_MAX + KW_F_ACTIVE].name, "client_active");
	assert_string_equal(st.rows[0].desc, kw_fields[0].desc);
	check_value(&st, "backend_conn", 8);
	check_value(&st, "backend_adopted", 2);
	check_value(&st, "client_adopted", 0);
	check_value(&st, "backend_lost", 0);
	check_value(&st, "backend_req", 30);
	check_value(&st, "backend_reuse", 27);
	check_value(&st, "backend_closed_local_fin", 2);
	check_value(&st, "backend_closed_local_rst", 1);
	check_value(&st, "backend_closed_peer_fin", 3);
	check_value(&st, "backend_closed_peer_rst", 1);
	check_value(&st, "backend_unused_local", 4);
	check_value(&st, "backend_unused_peer", 1);
	check_value(&st, "backend_active", 1);
	check_value(&st, "client_conn", 2);
	check_value(&st, "client_req", 30);
	check_value(&st, "client_reuse", 28);
	check_value(&st, "client_closed_local_fin", 1);
	check_value(&st, "client_unused_local", 0);
	check_value(&st, "client_unused_peer", 2);
	/* rate = value / uptime */
	assert_true(find_row(&st, "backend_conn")->rate == 8 / 12.5);
	assert_true(find_row(&st, "client_req")->rate == 30 / 12.5);
	json_decref(doc);
}

static void test_stat_zero_uptime(void **state)
{
	struct kw_stat st;
	json_t *doc = load("{\"version\": 1, \"uptime_seconds\": 0, \"upstreams\": ["
			   "{\"direction\": \"outbound\", \"peer\": \"::1\", \"conn\": 4}]}");

	(void)state;
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	check_value(&st, "backend_conn", 4);
	check_value(&st, "backend_req", 0); /* missing figures count as 0 */
	assert_true(find_row(&st, "backend_conn")->rate == 0);
	json_decref(doc);
}

static void test_stat_unknown_direction(void **state)
{
	struct kw_stat st;
	json_t *doc = load("{\"version\": 1, \"uptime_seconds\": 1, \"upstreams\": ["
			   "{\"direction\": \"sideways\", \"conn\": 4},"
			   "{\"direction\": \"inbound\", \"conn\": 1}]}");

	(void)state;
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	check_value(&st, "backend_conn", 0);
	check_value(&st, "client_conn", 1);
	json_decref(doc);
}

static void stat_rejects(const char *text, int err)
{
	struct kw_stat st;
	json_t *doc = load(text);

	assert_int_equal(kw_stat_from_json(doc, &st), err);
	json_decref(doc);
}

static void test_stat_bad_documents(void **state)
{
	(void)state;
	stat_rejects("{\"version\": 2, \"upstreams\": []}", -EPROTONOSUPPORT);
	stat_rejects("{\"upstreams\": []}", -EPROTO);
	stat_rejects("{\"version\": \"1\", \"upstreams\": []}", -EPROTO);
	stat_rejects("{\"version\": 1}", -EPROTO);
	stat_rejects("{\"version\": 1, \"upstreams\": {}}", -EPROTO);
	stat_rejects("{\"version\": 1, \"uptime_seconds\": \"x\", \"upstreams\": []}", -EPROTO);
	stat_rejects("{\"version\": 1, \"upstreams\": [1]}", -EPROTO);
	stat_rejects("{\"version\": 1, \"upstreams\": [{\"conn\": 1}]}", -EPROTO);
	stat_rejects(
		"{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"conn\": -1}]}",
		-EPROTO);
	stat_rejects(
		"{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"conn\": 1.5}]}",
		-EPROTO);
	stat_rejects("[]", -EPROTO);
}

/* Sums that would pass 2^64 - 1 stop there instead of wrapping round to small numbers. */
static void test_stat_saturates(void **state)
{
	static const char text[] =
		"{\"version\": 1, \"uptime_seconds\": 1, \"upstreams\": ["
		" {\"direction\": \"outbound\", \"conn\": 9223372036854775807, \"req\": 5},"
		" {\"direction\": \"outbound\", \"conn\": 9223372036854775807, \"req\": 6},"
		" {\"direction\": \"outbound\", \"conn\": 9, \"req\": 7}]}";
	json_t *doc = load(text);
	struct kw_stat st;
	unsigned int i;

	(void)state;
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	for (i = 0; i < KW_STAT_ROWS; i++) {
		if (!strcmp(st.rows[i].name, "backend_conn"))
			assert_true(st.rows[i].value == UINT64_MAX);
		if (!strcmp(st.rows[i].name, "backend_req"))
			assert_int_equal(st.rows[i].value, 18);
	}
	json_decref(doc);
}

static void test_stat_format(void **state)
{
	struct kw_stat_row r = {
		.name = "backend_conn", .value = 3, .rate = 0.24, .desc = "Connections opened"
	};
	struct kw_stat st;
	struct kw_globs g;
	char line[256];
	json_t *doc = load(doc_text);
	unsigned int i, width;

	(void)state;
	assert_int_equal(kw_stat_format(&r, KW_STAT_NAME_MIN, line, sizeof(line)), 0);
	assert_string_equal(line,
			    "backend_conn                        3       0.24  Connections opened");
	assert_int_equal(kw_stat_format(&r, KW_STAT_NAME_MIN, line, 20), -ENOSPC);

	/*
	 * every real row fits 79 columns, long descriptions cut, and the value column ends
	 * at the same column on every line, the longest name included
	 * (backend_rst_sent_disconnect_with_data)
	 */
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	kw_globs_init(&g);
	width = kw_stat_name_width(&st, &g);
	assert_int_equal(width, strlen("backend_rst_sent_disconnect_with_data"));
	for (i = 0; i < KW_STAT_ROWS; i++) {
		assert_int_equal(kw_stat_format(&st.rows[i], width, line, sizeof(line)), 0);
		if (strlen(line) > KW_STAT_LINE_MAX)
			fail_msg("%zu columns: %s", strlen(line), line);
		assert_true(!strncmp(line, st.rows[i].name, strlen(st.rows[i].name)));
		if (line[width + 12] == ' ' || line[width + 13] != ' ')
			fail_msg("value not right-aligned at column %u: %s", width + 13, line);
	}
	/* filtered to short names, the column is the usual 24 */
	assert_int_equal(kw_globs_add(&g, "backend_conn,client_req"), 0);
	assert_int_equal(kw_stat_name_width(&st, &g), KW_STAT_NAME_MIN);
	kw_globs_free(&g);
	r.value = UINT64_MAX;
	r.rate = 1e30;
	assert_int_equal(kw_stat_format(&r, KW_STAT_NAME_MIN, line, sizeof(line)), 0);
	assert_true(strlen(line) > KW_STAT_LINE_MAX); /* numbers are never cut... */
	assert_null(strstr(line, "Connections"));     /* ...the description is */
	json_decref(doc);
}

static void test_globs(void **state)
{
	struct kw_globs g;

	(void)state;
	kw_globs_init(&g);
	assert_true(kw_globs_match(&g, "anything"));
	assert_int_equal(kw_globs_add(&g, "backend_*"), 0);
	assert_int_equal(kw_globs_add(&g, "client_req,*_rst"), 0);
	assert_int_equal(g.n, 3);
	assert_true(kw_globs_match(&g, "backend_conn"));
	assert_true(kw_globs_match(&g, "client_req"));
	assert_true(kw_globs_match(&g, "client_closed_peer_rst"));
	assert_false(kw_globs_match(&g, "client_reuse"));
	assert_false(kw_globs_match(&g, "client_req_x"));
	assert_int_equal(kw_globs_add(&g, ""), -EINVAL);
	assert_int_equal(kw_globs_add(&g, "a,,b"), -EINVAL);
	assert_int_equal(kw_globs_add(&g, "a,"), -EINVAL);
	kw_globs_free(&g);
	assert_int_equal(g.n, 0);
	assert_true(kw_globs_match(&g, "anything"));
}

static void test_stat_json(void **state)
{
	struct kw_globs g;
	struct kw_stat st;
	json_t *doc = load(doc_text), *out, *c;

	(void)state;
	assert_int_equal(kw_stat_from_json(doc, &st), 0);
	kw_globs_init(&g);
	assert_int_equal(kw_globs_add(&g, "backend_conn,client_re*"), 0);
	out = kw_stat_to_json(&st, &g);
	assert_non_null(out);
	assert_int_equal(json_integer_value(json_object_get(out, "version")), 1);
	assert_true(json_real_value(json_object_get(out, "uptime_seconds")) == 12.5);
	c = json_object_get(out, "counters");
	assert_int_equal(json_object_size(c), 4); /* client_req, _reuse, _retransmits */
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(c, "backend_conn"), "value")),
		8);
	assert_true(json_real_value(json_object_get(json_object_get(c, "backend_conn"), "rate")) ==
		    8 / 12.5);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(c, "client_req"), "description")),
		kw_fields[KW_F_REQ].desc);
	assert_non_null(json_object_get(c, "client_reuse"));
	assert_null(json_object_get(c, "backend_req"));
	json_decref(out);
	kw_globs_free(&g);
	json_decref(doc);
}

static void test_upstream_rows(void **state)
{
	struct kw_up_row *rows;
	size_t n;
	json_t *doc = load(doc_text);

	(void)state;
	assert_int_equal(kw_up_rows_from_json(doc, &rows, &n), 0);
	assert_int_equal(n, 3);
	/* busiest first: 30 requests twice, then by connections; 0 requests last */
	assert_string_equal(rows[0].peer, "10.0.0.2");
	assert_string_equal(rows[0].dir, "out");
	assert_int_equal(rows[0].port, 80);
	assert_int_equal(rows[0].index, 0);
	assert_string_equal(rows[1].peer, "10.0.0.1");
	assert_string_equal(rows[1].dir, "in");
	assert_string_equal(rows[1].netns, "host");
	assert_int_equal(rows[1].reuse, 28);
	assert_int_equal(rows[1].active, 1);
	assert_string_equal(rows[2].peer, "fd77::2");
	assert_int_equal(rows[2].conn, 5);
	free(rows);
	json_decref(doc);
}

static void up_rejects(const char *text, int err)
{
	struct kw_up_row *rows = NULL;
	size_t n;
	json_t *doc = load(text);

	assert_int_equal(kw_up_rows_from_json(doc, &rows, &n), err);
	assert_null(rows);
	json_decref(doc);
}

static void test_upstream_bad_documents(void **state)
{
	(void)state;
	up_rejects("{\"version\": 3, \"upstreams\": []}", -EPROTONOSUPPORT);
	up_rejects("{\"version\": 1}", -EPROTO);
	up_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\"}]}", -EPROTO);
	up_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\": \"x\","
		   " \"port\": 65536}]}",
		   -EPROTO);
	up_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\": \"x\","
		   " \"req\": \"3\"}]}",
		   -EPROTO);
}

static void test_upstream_empty(void **state)
{
	struct kw_up_row *rows = NULL;
	size_t n = 9;
	json_t *doc = load("{\"version\": 1, \"upstreams\": []}");

	(void)state;
	assert_int_equal(kw_up_rows_from_json(doc, &rows, &n), 0);
	assert_int_equal(n, 0);
	free(rows);
	json_decref(doc);
}

static void test_upstream_layout(void **state)
{
	struct kw_up_widths w;
	struct kw_up_row *rows;
	char line[256];
	size_t n, i;
	json_t *doc = load(doc_text);

	(void)state;
	assert_int_equal(kw_up_rows_from_json(doc, &rows, &n), 0);
	kw_up_widths(rows, n, &w);
	assert_int_equal(w.peer, 8);
	assert_int_equal(w.netns, 79 - 51 - 8);
	assert_int_equal(kw_up_format_header(&w, line, sizeof(line)), 0);
	assert_string_equal(
		line,
		"DIR PEER      PORT NETNS                   CONN      REQ    REUSE ACTIVE REUSE%");
	assert_int_equal(kw_up_format_row(&rows[0], &w, line, sizeof(line)), 0);
	assert_string_equal(
		line,
		"out 10.0.0.2    80 kw-srv                     3       30       27      0   90.0");
	assert_int_equal(kw_up_format_row(&rows[2], &w, line, sizeof(line)), 0);
	/* long namespace names are cut with a '~'; no requests, no reuse ratio */
	assert_string_equal(
		line,
		"out fd77::2   8080 a-very-long-network~       5        0        0      1      -");
	for (i = 0; i < n; i++) {
		assert_int_equal(kw_up_format_row(&rows[i], &w, line, sizeof(line)), 0);
		if (strlen(line) > KW_UP_LINE_MAX)
			fail_msg("%zu columns: %s", strlen(line), line);
	}
	assert_int_equal(kw_up_format_row(&rows[0], &w, line, 20), -ENOSPC);
	free(rows);
	json_decref(doc);
}

static void test_upstream_widths_v6(void **state)
{
	struct kw_up_row r = { .dir = "out",
			       .peer = "2001:db8:1234:5678:9abc:def0:1234:5678",
			       .netns = "4026532100",
			       .port = 443 };
	struct kw_up_widths w;
	char line[256];

	(void)state;
	kw_up_widths(&r, 1, &w);
	assert_int_equal(w.peer, 38);
	assert_int_equal(w.netns, 5); /* never below the header's width */
	assert_int_equal(kw_up_format_row(&r, &w, line, sizeof(line)), 0);
	assert_non_null(strstr(line, " 2001:db8:1234:5678:9abc:def0:1234:5678 "));
	assert_non_null(strstr(line, " 4026~ "));
}

static void test_upstream_select_json(void **state)
{
	struct kw_up_row *rows;
	size_t n;
	json_t *doc = load(doc_text), *sel, *ups;

	(void)state;
	assert_int_equal(kw_up_rows_from_json(doc, &rows, &n), 0);
	sel = kw_up_select_json(doc, rows, 2);
	assert_non_null(sel);
	ups = json_object_get(sel, "upstreams");
	assert_int_equal(json_array_size(ups), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ups, 0), "peer")),
			    "10.0.0.2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ups, 1), "peer")),
			    "10.0.0.1");
	assert_true(json_real_value(json_object_get(sel, "uptime_seconds")) == 12.5);
	/* the original is untouched */
	assert_int_equal(json_array_size(json_object_get(doc, "upstreams")), 3);
	json_decref(sel);
	free(rows);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_sums),
		cmocka_unit_test(test_stat_zero_uptime),
		cmocka_unit_test(test_stat_unknown_direction),
		cmocka_unit_test(test_stat_bad_documents),
		cmocka_unit_test(test_stat_format),
		cmocka_unit_test(test_stat_saturates),
		cmocka_unit_test(test_globs),
		cmocka_unit_test(test_stat_json),
		cmocka_unit_test(test_upstream_rows),
		cmocka_unit_test(test_upstream_bad_documents),
		cmocka_unit_test(test_upstream_empty),
		cmocka_unit_test(test_upstream_layout),
		cmocka_unit_test(test_upstream_widths_v6),
		cmocka_unit_test(test_upstream_select_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
