// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch top`'s pure logic on literal agent documents: samples, rates between two of
 * them (resets, new upstreams, a restarted agent), the filter, every sort column, the
 * lines fitted to a width, the figures' format and the --interval parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/top.h"

/* Two outbound upstreams and one inbound one, at an agent uptime of `uptime`. */
static json_t *doc3(double uptime, int conn, int req, int reuse, int rst)
{
	char text[2048];
	json_error_t err;
	json_t *doc;

	snprintf(text, sizeof(text),
		 "{\"version\": 1, \"uptime_seconds\": %.3f, \"upstreams\": ["
		 " {\"direction\": \"outbound\", \"peer\": \"10.0.0.2\", \"port\": 80,"
		 "  \"netns\": \"kw-cli\", \"netns_inode\": 11, \"conn\": %d, \"req\": %d,"
		 "  \"reuse\": %d, \"race_server\": 1, \"race_client\": 2,"
		 "  \"rst_sent_no_socket\": %d, \"rst_rcvd_established\": 10,"
		 "  \"time_wait\": 7, \"time_wait_entered\": 99, \"active\": 3},"
		 " {\"direction\": \"inbound\", \"peer\": \"10.0.0.1\", \"port\": 80,"
		 "  \"netns\": \"kw-srv\", \"netns_inode\": 12, \"conn\": 4, \"req\": 40,"
		 "  \"reuse\": 36, \"active\": 0},"
		 " {\"direction\": \"outbound\", \"peer\": \"fd00::2\", \"port\": 8080,"
		 "  \"netns\": \"host\", \"netns_inode\": 13, \"conn\": 1, \"req\": 0}"
		 "]}",
		 uptime, conn, req, reuse, rst);
	doc = json_loads(text, 0, &err);
	if (!doc)
		fail_msg("bad test JSON: %s at column %d", err.text, err.column);
	return doc;
}

static void sample(json_t *doc, double taken, struct kw_top_sample *s)
{
	int err = kw_top_sample_from_json(doc, taken, s);

	json_decref(doc);
	if (err)
		fail_msg("kw_top_sample_from_json: actual %d, expected 0", err);
}

static const struct kw_top_row *row_of(const struct kw_top_sample *s, const char *peer)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->rows[i].peer, peer))
			return &s->rows[i];
	fail_msg("no row for %s", peer);
	return NULL;
}

static void assert_num(double actual, double expected)
{
	if (isnan(expected) ? !isnan(actual) : fabs(actual - expected) > 1e-9)
		fail_msg("actual %.9g, expected %.9g", actual, expected);
}

static void test_sample_rows(void **state)
{
	const struct kw_top_row *r;
	struct kw_top_sample s;

	(void)state;
	sample(doc3(12.5, 3, 30, 27, 5), 100.0, &s);
	assert_int_equal(s.n, 3);
	assert_num(s.uptime, 12.5);
	assert_num(s.taken, 100.0);
	/* key order: direction ("in" < "out"), then peer */
	assert_string_equal(s.rows[0].peer, "10.0.0.1");
	assert_string_equal(s.rows[1].peer, "10.0.0.2");
	assert_string_equal(s.rows[2].peer, "fd00::2");
	r = row_of(&s, "10.0.0.2");
	assert_string_equal(r->dir, "out");
	assert_string_equal(r->netns, "kw-cli");
	assert_int_equal(r->port, 80);
	assert_int_equal(r->netns_inode, 11);
	assert_int_equal(r->now[KW_TC_CONN], 3);
	assert_int_equal(r->now[KW_TC_REQ], 30);
	assert_int_equal(r->now[KW_TC_REUSE], 27);
	assert_int_equal(r->now[KW_TC_RACE], 3);     /* server 1 + client 2 */
	assert_int_equal(r->now[KW_TC_RST], 5 + 10); /* sent and received */
	assert_int_equal(r->now[KW_TC_TW], 7);	     /* the gauge, not time_wait_entered */
	assert_int_equal(r->now[KW_TC_ACTIVE], 3);
	r = row_of(&s, "fd00::2");
	assert_int_equal(r->now[KW_TC_RACE], 0); /* absent members are 0 */
	assert_int_equal(r->now[KW_TC_RST], 0);
	kw_top_sample_free(&s);
}

static void expect_doc_error(const char *text, int expected)
{
	struct kw_top_sample s;
	json_t *doc = json_loads(text, 0, NULL);
	int err;

	assert_non_null(doc);
	err = kw_top_sample_from_json(doc, 0, &s);
	json_decref(doc);
	if (err != expected)
		fail_msg("%s: actual %d, expected %d", text, err, expected);
	assert_null(s.rows);
}

static void test_sample_bad_documents(void **state)
{
	(void)state;
	expect_doc_error("{\"version\": 2, \"upstreams\": []}", -EPROTONOSUPPORT);
	expect_doc_error("{\"upstreams\": []}", -EPROTO);
	expect_doc_error("{\"version\": 1}", -EPROTO);
	expect_doc_error("{\"version\": 1, \"uptime_seconds\": \"1\", \"upstreams\": []}", -EPROTO);
	expect_doc_error("{\"version\": 1, \"upstreams\": [1]}", -EPROTO);
	expect_doc_error("{\"version\": 1, \"upstreams\": [{\"direction\": \"outbound\"}]}",
			 -EPROTO);
	expect_doc_error("{\"version\": 1, \"upstreams\": [{\"direction\": \"outbound\","
			 " \"peer\": \"a\", \"port\": 65536}]}",
			 -EPROTO);
	expect_doc_error("{\"version\": 1, \"upstreams\": [{\"direction\": \"outbound\","
			 " \"peer\": \"a\", \"req\": -1}]}",
			 -EPROTO);
	expect_doc_error("{\"version\": 1, \"upstreams\": [{\"direction\": \"outbound\","
			 " \"peer\": \"a\", \"rst_rcvd_other\": 1.5}]}",
			 -EPROTO);
}

static void test_rates(void **state)
{
	struct kw_top_sample a, b;
	const struct kw_top_row *r;

	(void)state;
	sample(doc3(10.0, 3, 30, 27, 5), 50.0, &a);
	kw_top_rates(&a, NULL);
	r = row_of(&a, "10.0.0.2");
	/* the first sample: totals, no rates */
	assert_num(kw_top_value(r, KW_TOP_REQ, 0), NAN);
	assert_num(kw_top_value(r, KW_TOP_REUSE, 0), NAN);
	assert_num(kw_top_value(r, KW_TOP_REQ, 1), 30);
	assert_num(kw_top_value(r, KW_TOP_REUSE, 1), 90);
	assert_num(kw_top_value(r, KW_TOP_TW, 0), 7);
	assert_num(kw_top_value(r, KW_TOP_PEER, 0), NAN);

	/* 2.5 s of the agent later (the client's clock says 3 s: the agent's wins) */
	sample(doc3(12.5, 8, 55, 51, 5), 53.0, &b);
	kw_top_rates(&b, &a);
	r = row_of(&b, "10.0.0.2");
	assert_num(r->window, 2.5);
	assert_num(kw_top_value(r, KW_TOP_CONN, 0), 5 / 2.5);
	assert_num(kw_top_value(r, KW_TOP_REQ, 0), 25 / 2.5);
	assert_num(kw_top_value(r, KW_TOP_REUSE, 0), 24 * 100.0 / 25);
	assert_num(kw_top_value(r, KW_TOP_RST, 0), 0);
	assert_num(kw_top_value(r, KW_TOP_RACE, 0), 0);
	assert_num(kw_top_value(r, KW_TOP_ACTIVE, 0), 3);
	assert_num(kw_top_value(r, KW_TOP_REUSE, 1), 51 * 100.0 / 55);
	/* no request in the window: no reuse share */
	assert_num(kw_top_value(row_of(&b, "10.0.0.1"), KW_TOP_REUSE, 0), NAN);
	assert_num(kw_top_value(row_of(&b, "10.0.0.1"), KW_TOP_REQ, 0), 0);
	kw_top_sample_free(&a);

	/* counters lower than before: reset, the new value is the increase */
	sample(doc3(13.5, 2, 6, 4, 1), 54.0, &a);
	kw_top_rates(&a, &b);
	r = row_of(&a, "10.0.0.2");
	assert_num(r->window, 1.0);
	assert_num(kw_top_value(r, KW_TOP_CONN, 0), 2);
	assert_num(kw_top_value(r, KW_TOP_REQ, 0), 6);
	assert_num(kw_top_value(r, KW_TOP_RST, 0), 11); /* 1 + 10 < 5 + 10: reset */
	kw_top_sample_free(&b);
	kw_top_sample_free(&a);
}

static void test_rates_reset_and_restart(void **state)
{
	struct kw_top_sample a, b;
	const struct kw_top_row *r;

	(void)state;
	sample(doc3(100.0, 10, 100, 90, 50), 1000.0, &a);
	/* the agent restarted: uptime 2 s, every counter lower; the client's clock: 4 s */
	sample(doc3(2.0, 4, 20, 16, 5), 1004.0, &b);
	kw_top_rates(&b, &a);
	r = row_of(&b, "10.0.0.2");
	assert_num(r->window, 4.0);
	assert_int_equal(r->delta[KW_TC_CONN], 4);
	assert_int_equal(r->delta[KW_TC_REQ], 20);
	assert_int_equal(r->delta[KW_TC_RST], 15); /* 5 + 10, below 60 */
	assert_int_equal(r->delta[KW_TC_RACE], 0); /* 3 then 3 */
	assert_num(kw_top_value(r, KW_TOP_REQ, 0), 5);
	kw_top_sample_free(&b);

	/* an upstream not in the previous sample counts all of its value */
	sample(json_loads("{\"version\": 1, \"uptime_seconds\": 102.0, \"upstreams\": ["
			  " {\"direction\": \"outbound\", \"peer\": \"10.9.9.9\", \"port\": 80,"
			  "  \"conn\": 6, \"req\": 8}]}",
			  0, NULL),
	       1002.0, &b);
	kw_top_rates(&b, &a);
	assert_num(kw_top_value(&b.rows[0], KW_TOP_CONN, 0), 3);
	assert_num(kw_top_value(&b.rows[0], KW_TOP_REQ, 0), 4);
	kw_top_sample_free(&b);

	/* no time between both (same uptime, same clock): no rates rather than infinity */
	sample(doc3(100.0, 10, 100, 90, 50), 1000.0, &b);
	kw_top_rates(&b, &a);
	assert_num(kw_top_value(row_of(&b, "10.0.0.2"), KW_TOP_REQ, 0), NAN);
	kw_top_sample_free(&b);
	kw_top_sample_free(&a);
}

static void test_sort_names(void **state)
{
	static const char *const names[KW_TOP_NCOLS] = { "peer", "conn", "req", "reuse",
							 "race", "rst",	 "tw",	"active" };
	enum kw_top_col col;
	int c;

	(void)state;
	for (c = 0; c < KW_TOP_NCOLS; c++) {
		assert_int_equal(kw_top_parse_sort(names[c], &col), 0);
		assert_int_equal(col, c);
		assert_string_equal(kw_top_sort_name(c), names[c]);
	}
	assert_int_equal(kw_top_parse_sort("REQ", &col), -EINVAL);
	assert_int_equal(kw_top_parse_sort("", &col), -EINVAL);
	assert_string_equal(kw_top_col_header(KW_TOP_REQ, 0), "REQ/s");
	assert_string_equal(kw_top_col_header(KW_TOP_REQ, 1), "REQ");
	assert_string_equal(kw_top_col_header(KW_TOP_REUSE, 0), "REUSE%");
	assert_string_equal(kw_top_col_header(KW_TOP_TW, 0), "TW");
}

static int matches(const struct kw_top_row *r, const char *globs)
{
	struct kw_globs g;
	int m;

	kw_globs_init(&g);
	assert_int_equal(kw_globs_add(&g, globs), 0);
	m = kw_top_match(r, &g);
	kw_globs_free(&g);
	return m;
}

static void test_match(void **state)
{
	const struct kw_top_row *v4, *v6;
	struct kw_top_sample s;
	struct kw_globs none;

	(void)state;
	sample(doc3(1, 1, 1, 1, 1), 0, &s);
	v4 = row_of(&s, "10.0.0.2");
	v6 = row_of(&s, "fd00::2");
	kw_globs_init(&none);
	assert_true(kw_top_match(v4, &none));
	assert_true(matches(v4, "10.0.0.2"));
	assert_false(matches(v4, "10.0.0"));
	assert_true(matches(v4, "10.0.*"));
	assert_true(matches(v4, "10.0.0.2:80"));
	assert_true(matches(v4, "*:80"));
	assert_false(matches(v4, "*:8080"));
	assert_true(matches(v4, "kw-cli"));
	assert_true(matches(v4, "out"));
	assert_false(matches(v4, "in"));
	assert_true(matches(v4, "in,kw-*"));
	assert_true(matches(v6, "fd00::2"));
	assert_true(matches(v6, "[fd00::2]:8080"));
	assert_false(matches(v6, "fd00::2:8080"));
	assert_true(matches(v6, "host"));
	kw_top_sample_free(&s);
}

/* The peers of the selected rows, space-separated. */
static const char *order_of(const struct kw_top_sample *s, const char *globs, enum kw_top_col col,
			    int reverse, int totals)
{
	static char out[256];
	const struct kw_top_row *sel[8];
	struct kw_top_order o = { col, reverse, totals };
	struct kw_globs g;
	size_t i, n, len = 0;

	kw_globs_init(&g);
	if (globs)
		assert_int_equal(kw_globs_add(&g, globs), 0);
	n = kw_top_select(s, &g, &o, sel);
	kw_globs_free(&g);
	out[0] = '\0';
	for (i = 0; i < n; i++)
		len += snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "", sel[i]->peer);
	return out;
}

static void test_select_order(void **state)
{
	struct kw_top_sample a, b;

	(void)state;
	sample(doc3(10.0, 3, 30, 27, 5), 0, &a);
	sample(doc3(11.0, 9, 32, 28, 6), 1, &b);
	kw_top_rates(&b, &a);
	/* rates: 10.0.0.2 req 2/s, conn 6/s; 10.0.0.1 0/s; fd00::2 0/s */
	assert_string_equal(order_of(&b, NULL, KW_TOP_REQ, 0, 0), "10.0.0.2 10.0.0.1 fd00::2");
	/* a tie on the column: the most requests in all, then the key */
	assert_string_equal(order_of(&b, NULL, KW_TOP_REQ, 1, 0), "10.0.0.1 fd00::2 10.0.0.2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_REQ, 0, 1), "10.0.0.1 10.0.0.2 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_CONN, 0, 0), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_CONN, 0, 1), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_RST, 0, 0), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_TW, 0, 0), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_ACTIVE, 0, 1), "10.0.0.2 10.0.0.1 fd00::2");
	/* REUSE%: 10.0.0.2 1 of 2 (50%); the others had no request: last, reversed too */
	assert_string_equal(order_of(&b, NULL, KW_TOP_REUSE, 0, 0), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_REUSE, 1, 0), "10.0.0.2 10.0.0.1 fd00::2");
	/* totals: 10.0.0.1 90%, 10.0.0.2 28/32 = 87.5%, fd00::2 none */
	assert_string_equal(order_of(&b, NULL, KW_TOP_REUSE, 0, 1), "10.0.0.1 10.0.0.2 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_REUSE, 1, 1), "10.0.0.2 10.0.0.1 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_RACE, 0, 1), "10.0.0.2 10.0.0.1 fd00::2");
	/* PEER: the key ascending (in before out), reversed descending */
	assert_string_equal(order_of(&b, NULL, KW_TOP_PEER, 0, 0), "10.0.0.1 10.0.0.2 fd00::2");
	assert_string_equal(order_of(&b, NULL, KW_TOP_PEER, 1, 0), "fd00::2 10.0.0.2 10.0.0.1");
	assert_string_equal(order_of(&b, "out", KW_TOP_REQ, 0, 0), "10.0.0.2 fd00::2");
	assert_string_equal(order_of(&b, "nothing", KW_TOP_REQ, 0, 0), "");
	kw_top_sample_free(&a);
	kw_top_sample_free(&b);
}

/* Lines of a sample's rows at a width: header first. */
static void lines_at(const struct kw_top_sample *s, int width, int totals, char lines[4][600])
{
	const struct kw_top_row *sel[8];
	struct kw_top_order o = { KW_TOP_PEER, 0, 0 };
	struct kw_top_layout l;
	struct kw_globs g;
	size_t i, n;

	kw_globs_init(&g);
	n = kw_top_select(s, &g, &o, sel);
	assert_int_equal(n, 3);
	kw_top_layout(sel, n, width, &l);
	assert_int_equal(kw_top_format_header(&l, totals, lines[0], 600), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(kw_top_format_row(sel[i], &l, totals, lines[i + 1], 600), 0);
	for (i = 0; i < 4; i++)
		if ((int)strlen(lines[i]) > width)
			fail_msg("line of %zu columns, expected at most %d: '%s'", strlen(lines[i]),
				 width, lines[i]);
}

static void test_format(void **state)
{
	struct kw_top_sample a, b;
	char lines[4][600];

	(void)state;
	sample(doc3(10.0, 3, 30, 27, 5), 0, &a);
	sample(doc3(12.0, 9, 32, 28, 6), 1, &b);
	kw_top_rates(&b, &a);
	lines_at(&b, 79, 0, lines);
	assert_string_equal(lines[0],
			    "DIR PEER      PORT CONN/s   REQ/s REUSE% RACE/s  RST/s     TW "
			    "ACTIVE NETNS");
	assert_string_equal(lines[1],
			    "in  10.0.0.1    80      0       0      -      0      0      0 "
			    "     0 kw-srv");
	assert_string_equal(lines[2],
			    "out 10.0.0.2    80    3.0     1.0   50.0      0    0.5      7 "
			    "     3 kw-cli");
	assert_string_equal(lines[3],
			    "out fd00::2   8080      0       0      -      0      0      0 "
			    "     0 host");
	lines_at(&b, 79, 1, lines);
	assert_string_equal(lines[0],
			    "DIR PEER      PORT   CONN     REQ REUSE%   RACE    RST     TW "
			    "ACTIVE NETNS");
	assert_string_equal(lines[1],
			    "in  10.0.0.1    80      4      40   90.0      0      0      0 "
			    "     0 kw-srv");
	assert_string_equal(lines[2],
			    "out 10.0.0.2    80      9      32   87.5      3     16      7 "
			    "     3 kw-cli");
	assert_string_equal(lines[3],
			    "out fd00::2   8080      1       0      -      0      0      0 "
			    "     0 host");
	/* too narrow for the namespace: no column; narrower still: lines cut */
	lines_at(&b, 70, 0, lines);
	assert_null(strstr(lines[0], "NETNS"));
	lines_at(&b, 40, 0, lines);
	assert_string_equal(lines[0], "DIR PEER  PORT CONN/s   REQ/s REUSE% RAC");
	kw_top_sample_free(&a);
	kw_top_sample_free(&b);
}

static void test_layout_long_names(void **state)
{
	struct kw_top_row r[2] = { 0 }, *pr[2] = { &r[0], &r[1] };
	struct kw_top_layout l;
	char line[600];

	(void)state;
	r[0].dir = "out";
	snprintf(r[0].peer, sizeof(r[0].peer), "fd00:1234:5678:9abc:def0:1234:5678:9abc");
	snprintf(r[0].netns, sizeof(r[0].netns), "a-very-long-network-namespace-name");
	r[1] = r[0];
	kw_top_layout((const struct kw_top_row *const *)pr, 2, 79, &l);
	assert_int_equal(l.peer, 19); /* 79 - 60 */
	assert_int_equal(l.netns, 0);
	assert_int_equal(kw_top_format_row(&r[0], &l, 1, line, sizeof(line)), 0);
	assert_string_equal(line, "out fd00:1234:5678:9ab~     0      0       0      -      0 "
				  "     0      0      0");
	/* a wide terminal: the whole peer, then the namespace */
	kw_top_layout((const struct kw_top_row *const *)pr, 2, 200, &l);
	assert_int_equal(l.peer, 39);
	assert_int_equal(l.netns, 34);
	assert_int_equal(l.x[KW_TOP_PEER], 4);
	assert_int_equal(l.x[KW_TOP_CONN], 4 + 39 + 1 + 5 + 1);
	assert_int_equal(l.w[KW_TOP_REQ], 7);
	kw_top_layout((const struct kw_top_row *const *)pr, 2, 110, &l);
	assert_int_equal(l.netns, 110 - 60 - 39 - 1);
	assert_int_equal(kw_top_format_row(&r[0], &l, 0, line, sizeof(line)), 0);
	assert_non_null(strstr(line, " a-very-lo~"));
	assert_int_equal(strlen(line), 110);
	assert_int_equal(kw_top_format_row(&r[0], &l, 0, line, 20), -ENOSPC);
}

static void test_title(void **state)
{
	struct kw_top_status st = { 3725.0, 1.0004, 2, 5, { KW_TOP_REQ, 0, 0 }, NULL };
	char line[300];

	(void)state;
	assert_int_equal(kw_top_format_title(&st, 79, line, sizeof(line)), 0);
	assert_string_equal(line, "up 1h02m  window 1.000 s  2/5 upstreams  by REQ/s");
	st.window = 0;
	st.order = (struct kw_top_order){ KW_TOP_REUSE, 1, 1 };
	st.filter = "10.*";
	assert_int_equal(kw_top_format_title(&st, 200, line, sizeof(line)), 0);
	assert_string_equal(line, "up 1h02m  first sample  2/5 upstreams  by REUSE% totals "
				  "reversed  filter 10.*");
	assert_int_equal(kw_top_format_title(&st, 20, line, sizeof(line)), 0);
	assert_string_equal(line, "up 1h02m  first samp");
}

static void expect_num(double v, int rate, const char *expected)
{
	char out[16];

	kw_top_fmt_num(v, rate, out, sizeof(out));
	if (strcmp(out, expected))
		fail_msg("kw_top_fmt_num(%.17g, %d): actual '%s', expected '%s'", v, rate, out,
			 expected);
	if (strlen(out) > 6)
		fail_msg("kw_top_fmt_num(%.17g): '%s' is wider than 6", v, out);
}

static void test_fmt_num(void **state)
{
	(void)state;
	expect_num(NAN, 1, "-");
	expect_num(-1, 1, "-");
	expect_num(0, 1, "0");
	expect_num(0, 0, "0");
	expect_num(0.04, 1, "0.0");
	expect_num(0.05, 1, "0.1");
	expect_num(99.94, 1, "99.9");
	expect_num(99.95, 1, "100");
	expect_num(99999.4, 1, "99999");
	expect_num(99999.5, 1, "100k");
	expect_num(123456, 1, "123k");
	expect_num(999499, 1, "999k");
	expect_num(999500, 1, "1.0M");
	expect_num(12, 0, "12");
	expect_num(999999, 0, "999999");
	expect_num(1000000, 0, "1.0M");
	expect_num(99949999, 0, "99.9M");
	expect_num(99950000, 0, "100M");
	expect_num(1e9, 0, "1.0G");
	expect_num(18446744073709551615.0, 0, "18.4E");
	expect_num(1e21, 1, "1000E");
}

static void expect_interval(const char *s, int err, double v)
{
	double out = -1;

	if (kw_top_parse_interval(s, &out) != err)
		fail_msg("kw_top_parse_interval('%s'): actual %d, expected %d", s,
			 kw_top_parse_interval(s, &out), err);
	if (!err)
		assert_num(out, v);
	else
		assert_num(out, -1);
}

static void test_parse_interval(void **state)
{
	(void)state;
	expect_interval("1", 0, 1);
	expect_interval("0.5", 0, 0.5);
	expect_interval("0.1", 0, 0.1);
	expect_interval("2.125", 0, 2.125);
	expect_interval("3600", 0, 3600);
	expect_interval("0.099", -ERANGE, 0);
	expect_interval("0", -ERANGE, 0);
	expect_interval("3600.001", -ERANGE, 0);
	expect_interval("1.0001", -EINVAL, 0);
	expect_interval("", -EINVAL, 0);
	expect_interval(".5", -EINVAL, 0);
	expect_interval("1.", -EINVAL, 0);
	expect_interval("-1", -EINVAL, 0);
	expect_interval("+1", -EINVAL, 0);
	expect_interval("1e3", -EINVAL, 0);
	expect_interval(" 1", -EINVAL, 0);
	expect_interval("1s", -EINVAL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_rows),
		cmocka_unit_test(test_sample_bad_documents),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_rates_reset_and_restart),
		cmocka_unit_test(test_sort_names),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_select_order),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_layout_long_names),
		cmocka_unit_test(test_title),
		cmocka_unit_test(test_fmt_num),
		cmocka_unit_test(test_parse_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
