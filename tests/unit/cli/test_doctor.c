// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch doctor` text: word wrapping at its edges, the exact report of a literal agent
 * document (timeouts named per direction, findings with evidence and fix, the aligned
 * case), the reuse lines (single-use connections by closer, null ratios, older documents
 * without them), the agent's own document end to end within 79 columns (the reuse and port
 * findings included), and documents of another version or shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/addr.h"
#include "cli/doctor.h"
#include "doctor/doctor.h"

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *doc = json_loads(text, 0, &err);

	if (!doc)
		fail_msg("bad test JSON: %s at line %d column %d", err.text, err.line, err.column);
	return doc;
}

static void check_wrap(const char *prefix, const char *text, int indent, int width,
		       const char *want)
{
	struct kw_buf b;

	kw_buf_init(&b);
	assert_int_equal(kw_wrap(&b, prefix, text, indent, width), 0);
	assert_string_equal(b.data, want);
	kw_buf_free(&b);
}

static void test_wrap(void **state)
{
	(void)state;
	check_wrap("", "", 0, 10, "\n");
	check_wrap("fix: ", "", 2, 10, "fix: \n");
	check_wrap("", "one two three", 0, 13, "one two three\n");
	check_wrap("", "one two three", 0, 12, "one two\nthree\n");
	check_wrap("> ", "one two three four", 4, 11, "> one two\n    three\n    four\n");
	/* spaces collapse; a word longer than the width stays whole on its own line */
	check_wrap("", "  a   b  ", 0, 10, "a b\n");
	check_wrap("", "a abcdefghijkl b", 2, 6, "a\n  abcdefghijkl\n  b\n");
	check_wrap("a-long-prefix ", "word", 2, 5, "a-long-prefix word\n");
}

static const char doc_text[] =
	"{\"version\": 1, \"uptime_seconds\": 11520.5, \"lb_idle_timeout\": 60, \"upstreams\": ["
	" {\"direction\": \"inbound\", \"peer\": \"10.77.1.1\", \"port\": 80, \"netns\": \"blue\","
	"  \"timeouts\": {\"local\": {\"seconds\": 5, \"exact\": true, \"range\": [4.5, 5.5],"
	"   \"confidence\": \"high\", \"samples\": 40, \"idle_closes\": 40, \"share\": 1.0},"
	"   \"peer\": null},"
	"  \"findings\": [{\"id\": \"keepalive_shorter_than_lb\", \"severity\": \"critical\","
	"   \"summary\": \"12 keep-alive races\", \"evidence\": \"12 requests met a connection we"
	" had closed (server-side races); since the counts started, 3h12m ago\","
	"   \"failure\": \"502\", \"fix\": \"raise the keep-alive timeout above the balancer's"
	" idle timeout of 60 s, e.g. to 65 s\"}]},"
	" {\"direction\": \"outbound\", \"peer\": \"fd77::2\", \"port\": 8080, \"netns\": \"host\","
	"  \"timeouts\": {\"local\": {\"seconds\": 3.2, \"exact\": false, \"range\": [2.1, 4.5],"
	"   \"confidence\": \"medium\", \"samples\": 8, \"idle_closes\": 8, \"share\": 1.0},"
	"   \"peer\": {\"seconds\": 300.5, \"exact\": false, \"range\": [300.5, null],"
	"   \"confidence\": \"low\", \"samples\": 2, \"idle_closes\": 3, \"share\": 0.667}},"
	"  \"findings\": []}"
	"]}";

static const char report[] =
	"2 upstreams diagnosed from counts since the counts started 3h12m ago\n"
	"balancer idle timeout: 60 s\n"
	"\n"
	"inbound from 10.77.1.1 to port 80 (netns blue)\n"
	"  our keep-alive timeout: 5 s (high confidence: 40 of 40 idle closes)\n"
	"  the peer's idle timeout: not seen (the client or balancer never closed an\n"
	"      idle connection)\n"
	"  CRITICAL: 12 keep-alive races (502)\n"
	"    evidence: 12 requests met a connection we had closed (server-side races);\n"
	"      since the counts started, 3h12m ago\n"
	"    fix: raise the keep-alive timeout above the balancer's idle timeout of 60\n"
	"      s, e.g. to 65 s\n"
	"\n"
	"outbound to [fd77::2]:8080 (netns host)\n"
	"  our pool's idle timeout: between 2.1 and 4.5 s (about 3.2 s) (medium\n"
	"      confidence: 8 of 8 idle closes)\n"
	"  the backend's keep-alive timeout: over 300.5 s (about 300.5 s) (low\n"
	"      confidence: 2 of 3 idle closes)\n"
	"  no findings: keep-alive timeouts look aligned\n";

static void test_report(void **state)
{
	json_t *doc = load(doc_text);
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	assert_int_equal(kw_doctor_text(doc, &b), 0);
	assert_string_equal(b.data, report);
	kw_buf_free(&b);
	json_decref(doc);
}

static void test_report_empty(void **state)
{
	json_t *doc = load("{\"version\": 1, \"uptime_seconds\": 42, \"lb_idle_timeout\": null,"
			   " \"upstreams\": []}");
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	assert_int_equal(kw_doctor_text(doc, &b), 0);
	assert_string_equal(b.data,
			    "0 upstreams diagnosed from counts since the counts started 42s ago\n"
			    "balancer idle timeout: unknown (start the agent with "
			    "--lb-idle-timeout)\n"
			    "\n"
			    "no upstream has closed a connection yet: nothing to diagnose\n");
	kw_buf_free(&b);
	json_decref(doc);
}

/* The reuse block: figures, single-use connections by closer, null ratios, no block. */
static const char reuse_doc[] =
	"{\"version\": 1, \"uptime_seconds\": 3600, \"lb_idle_timeout\": null, \"upstreams\": ["
	" {\"direction\": \"outbound\", \"peer\": \"10.77.2.2\", \"port\": 8080, \"netns\": \"1\","
	"  \"timeouts\": {\"local\": null, \"peer\": null},"
	"  \"reuse\": {\"connections\": 1152000, \"requests\": 1152010,"
	"   \"requests_per_connection\": 1.000009, \"closed\": 1152000, \"single_use\": 1151990,"
	"   \"single_use_share\": 1, \"single_use_closed_by\": {\"local\": 1151990, \"peer\": 0},"
	"   \"single_use_idle_seconds\": {\"local\": 0.001, \"peer\": null}},"
	"  \"findings\": [{\"id\": \"client_closes_after_each_response\", \"severity\":"
	"   \"warning\", \"summary\": \"our client does not reuse connections\", \"evidence\":"
	"   \"1151990 of the 1152000\", \"failure\": \"wasted handshakes, connect failures once"
	" ports run out\", \"fix\": \"keep connections\"}]},"
	" {\"direction\": \"inbound\", \"peer\": \"10.77.1.1\", \"port\": 80, \"netns\": \"1\","
	"  \"timeouts\": {\"local\": null, \"peer\": null},"
	"  \"reuse\": {\"connections\": 9, \"requests\": 8, \"requests_per_connection\": 0.889,"
	"   \"closed\": 8, \"single_use\": 4, \"single_use_share\": 0.5,"
	"   \"single_use_closed_by\": {\"local\": 1, \"peer\": 3},"
	"   \"single_use_idle_seconds\": {\"local\": 5.004, \"peer\": 0.25}},"
	"  \"findings\": []},"
	" {\"direction\": \"inbound\", \"peer\": \"10.77.1.3\", \"port\": 80, \"netns\": \"1\","
	"  \"timeouts\": {\"local\": null, \"peer\": null},"
	"  \"reuse\": {\"connections\": 0, \"requests\": 0, \"requests_per_connection\": null,"
	"   \"closed\": 0, \"single_use\": 0, \"single_use_share\": null,"
	"   \"single_use_closed_by\": {\"local\": 0, \"peer\": 0},"
	"   \"single_use_idle_seconds\": {\"local\": null, \"peer\": null}},"
	"  \"findings\": []}"
	"]}";

static const char reuse_report[] =
	"3 upstreams diagnosed from counts since the counts started 1h00m ago\n"
	"balancer idle timeout: unknown (start the agent with --lb-idle-timeout)\n"
	"\n"
	"outbound to 10.77.2.2:8080 (netns 1)\n"
	"  our pool's idle timeout: not seen (our pool never closed an idle connection)\n"
	"  the backend's keep-alive timeout: not seen (the backend never closed an idle\n"
	"      connection)\n"
	"  reuse: 1152000 connections, 1152010 requests, 1.00001 per connection\n"
	"  single-use: 1151990 of 1152000 closed connections (100%) carried one request,\n"
	"      closed 1151990 by us (0.001 s after the response on average), 0 by the\n"
	"      backend\n"
	"  WARNING: our client does not reuse connections (wasted handshakes, connect\n"
	"    failures once ports run out)\n"
	"    evidence: 1151990 of the 1152000\n"
	"    fix: keep connections\n"
	"\n"
	"inbound from 10.77.1.1 to port 80 (netns 1)\n"
	"  our keep-alive timeout: not seen (we closed no connection idle over 0.5 s)\n"
	"  the peer's idle timeout: not seen (the client or balancer never closed an\n"
	"      idle connection)\n"
	"  reuse: 9 connections, 8 requests, 0.889 per connection\n"
	"  single-use: 4 of 8 closed connections (50%) carried one request, closed 1 by\n"
	"      us (5.004 s after the response on average), 3 by the client or balancer\n"
	"      (0.25 s after the response on average)\n"
	"  no findings: keep-alive timeouts look aligned\n"
	"\n"
	"inbound from 10.77.1.3 to port 80 (netns 1)\n"
	"  our keep-alive timeout: not seen (we closed no connection idle over 0.5 s)\n"
	"  the peer's idle timeout: not seen (the client or balancer never closed an\n"
	"      idle connection)\n"
	"  reuse: 0 connections, 0 requests\n"
	"  no findings: keep-alive timeouts look aligned\n";

static void test_report_reuse(void **state)
{
	json_t *doc = load(reuse_doc);
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	assert_int_equal(kw_doctor_text(doc, &b), 0);
	assert_string_equal(b.data, reuse_report);
	kw_buf_free(&b);
	json_decref(doc);
}

static void text_rejects(const char *text, int err)
{
	json_t *doc = load(text);
	struct kw_buf b;

	kw_buf_init(&b);
	assert_int_equal(kw_doctor_text(doc, &b), err);
	kw_buf_free(&b);
	json_decref(doc);
}

static void test_bad_documents(void **state)
{
	(void)state;
	text_rejects("{\"version\": 2, \"upstreams\": []}", -EPROTONOSUPPORT);
	text_rejects("{\"upstreams\": []}", -EPROTO);
	text_rejects("{\"version\": 1}", -EPROTO);
	text_rejects("{\"version\": 1, \"upstreams\": [{}]}", -EPROTO);
	text_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\":"
		     " \"x\", \"port\": 80, \"findings\": []}]}",
		     -EPROTO); /* no timeouts */
	text_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\":"
		     " \"x\", \"port\": 80, \"timeouts\": {\"local\": {\"seconds\": \"5\"}},"
		     " \"findings\": []}]}",
		     -EPROTO);
	text_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\":"
		     " \"x\", \"port\": 80, \"timeouts\": {}, \"findings\": [{\"id\": \"a\"}]}]}",
		     -EPROTO);
	/* a reuse block of the wrong shape (none at all is fine: an older agent) */
	text_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\":"
		     " \"x\", \"port\": 80, \"timeouts\": {}, \"reuse\": [], \"findings\": []}]}",
		     -EPROTO);
	text_rejects("{\"version\": 1, \"upstreams\": [{\"direction\": \"inbound\", \"peer\":"
		     " \"x\", \"port\": 80, \"timeouts\": {}, \"reuse\": {\"connections\": 1,"
		     " \"requests\": 1, \"closed\": 1, \"single_use\": \"1\","
		     " \"single_use_closed_by\": {}, \"single_use_idle_seconds\": {}},"
		     " \"findings\": []}]}",
		     -EPROTO);
}

/* Closes of one side at one idle time, as the BPF side counts them. */
static void closes(struct kw_upstream *u, int by, double seconds, __u64 n)
{
	enum kw_hist_id h = by == KW_BY_LOCAL ? KW_H_IDLE_LOCAL : KW_H_IDLE_PEER;

	u->hist[h][kw_idle_slot((__u64)(seconds * 1000 + 0.5))] += n;
	u->hist_sum[h] += seconds * n;
	u->val[by == KW_BY_LOCAL ? KW_F_CLOSED_LOCAL_FIN : KW_F_CLOSED_PEER_FIN] += n;
}

/* n connections of reqs requests each, closed by `by` after seconds idle. */
static void conns(struct kw_upstream *u, int by, unsigned int reqs, double seconds, __u64 n)
{
	enum kw_hist_id h = by == KW_BY_LOCAL ? KW_H_REQS_LOCAL : KW_H_REQS_PEER;

	closes(u, by, seconds, n);
	u->val[KW_F_CONN] += n;
	u->val[KW_F_REQ] += (__u64)reqs * n;
	u->val[KW_F_REUSE] += reqs ? (__u64)(reqs - 1) * n : 0;
	u->hist[h][kw_reqs_slot(reqs)] += n;
	u->hist_sum[h] += (double)reqs * n;
	if (reqs == 1)
		u->single_idle_sum[by] += seconds * n;
	if (by == KW_BY_LOCAL)
		u->val[KW_F_TIME_WAIT_ENTERED] += n;
}

/* The agent's document for every rule at once, rendered by the CLI within 79 columns. */
static void test_agent_document(void **state)
{
	struct kw_census_dest dest = { .netns = 1,
				       .rport = 8080,
				       .in_use = 28300,
				       .time_wait = 28000,
				       .held = 28232,
				       .range = 28232 };
	struct kw_census_netns ns = {
		.inode = 1, .port_lo = 32768, .port_hi = 60999, .range = 28232
	};
	struct kw_census_result r = { .dest = &dest, .n_dest = 1, .ns = &ns, .n_ns = 1 };
	struct kw_doctor_opts o = { .lb_idle_timeout = 60, .uptime = 3600, .census = &r };
	struct kw_upstream u[6];
	struct kw_diagnosis *d;
	struct kw_buf b, t;
	const char *line;
	json_t *doc;
	size_t n;

	(void)state;
	memset(u, 0, sizeof(u));
	u[0].key.direction = KW_DIR_INBOUND;
	u[0].key.port = 80;
	u[0].key.netns = 1;
	kw_addr_parse("2001:db8:1234:5678:9abc:def0:1234:5678", u[0].key.addr);
	closes(&u[0], KW_BY_LOCAL, 5, 40);
	u[0].val[KW_F_RACE_SERVER] = 12;
	u[0].val[KW_F_UNUSED_LOCAL] = 30;
	u[0].val[KW_F_ABORTED_UNREAD] = 2;
	u[1].key.direction = KW_DIR_OUTBOUND;
	u[1].key.port = 8080;
	u[1].key.netns = 1;
	kw_addr_parse("10.77.2.2", u[1].key.addr);
	closes(&u[1], KW_BY_PEER, 2, 10);
	/* a client that never reuses, out of ports, to a backend */
	u[2].key.direction = KW_DIR_OUTBOUND;
	u[2].key.port = 8080;
	u[2].key.netns = 1;
	kw_addr_parse("2001:db8:1234:5678:9abc:def0:1234:5678", u[2].key.addr);
	memcpy(dest.raddr, u[2].key.addr, 16);
	kw_addr_parse("2001:db8:1234:5678:9abc:def0:1234:5679", dest.laddr);
	conns(&u[2], KW_BY_LOCAL, 1, 0.001, 1000000);
	u[2].val[KW_F_CF_EADDRNOTAVAIL] = 123456;
	u[2].val[KW_F_TIME_WAIT] = 28000;
	/* behind an internal balancer, keep-alive 5 s */
	u[3].key.direction = KW_DIR_INBOUND;
	u[3].key.port = 80;
	u[3].key.netns = 1;
	kw_addr_parse("10.77.1.9", u[3].key.addr);
	conns(&u[3], KW_BY_LOCAL, 40, 5.004, 9000);
	/* a server with a cap of 100 */
	u[5].key.direction = KW_DIR_INBOUND;
	u[5].key.port = 80;
	u[5].key.netns = 1;
	kw_addr_parse("10.77.1.11", u[5].key.addr);
	conns(&u[5], KW_BY_LOCAL, 100, 0.001, 500);
	/* ab without -k */
	u[4].key.direction = KW_DIR_INBOUND;
	u[4].key.port = 80;
	u[4].key.netns = 1;
	kw_addr_parse("10.77.1.10", u[4].key.addr);
	conns(&u[4], KW_BY_LOCAL, 1, 0, 50);

	kw_buf_init(&b);
	kw_buf_init(&t);
	assert_int_equal(kw_doctor_run(u, 6, &o, &d, &n), 0);
	assert_int_equal(kw_doctor_json(d, n, &o, &b), 0);
	free(d);
	doc = load(b.data);
	assert_int_equal(kw_doctor_text(doc, &t), 0);
	for (line = t.data; *line;) {
		size_t len = strcspn(line, "\n");

		if (len > KW_DOCTOR_WIDTH)
			fail_msg("%zu columns: %.*s", len, (int)len, line);
		line += len + (line[len] == '\n');
	}
	assert_non_null(strstr(t.data, "CRITICAL: 12 keep-alive races"));
	assert_non_null(strstr(t.data, "WARNING: 2 requests cut off"));
	assert_non_null(strstr(t.data, "WARNING: the balancer pre-opens"));
	assert_non_null(strstr(t.data, "WARNING: the backend closes idle connections after 2 s"));
	assert_non_null(strstr(t.data, "inbound from 2001:db8:1234:5678:9abc:def0:1234:5678 to"));
	assert_non_null(strstr(t.data, "outbound to 10.77.2.2:8080 (netns 1)"));
	assert_non_null(strstr(t.data, "CRITICAL: 123456 connects to"));
	assert_non_null(strstr(t.data, "2001:db8:1234:5678:9abc:def0:1234:5679 will fail with "
				       "EADDRNOTAVAIL now"));
	assert_non_null(strstr(t.data, "WARNING: our client does not reuse connections"));
	assert_non_null(strstr(t.data, "INFO: this server closes connections after 100 requests"));
	assert_non_null(strstr(t.data, "INFO: our keep-alive timeout is 5 s while 2.5"));
	assert_non_null(strstr(t.data, "WARNING: we close connections after each response"));
	assert_non_null(strstr(t.data, "  reuse: 50 connections, 50 requests, 1 per connection\n"));
	assert_null(strstr(t.data, "no findings"));
	json_decref(doc);
	kw_buf_free(&b);
	kw_buf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrap),	      cmocka_unit_test(test_report),
		cmocka_unit_test(test_report_empty),  cmocka_unit_test(test_report_reuse),
		cmocka_unit_test(test_bad_documents), cmocka_unit_test(test_agent_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
