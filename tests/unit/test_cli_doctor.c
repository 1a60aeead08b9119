// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch doctor` text: word wrapping at its edges, the exact report of a literal agent
 * document (timeouts named per direction, findings with evidence and fix, the aligned
 * case), the agent's own document end to end within 79 columns, and documents of another
 * version or shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "cli_doctor.h"
#include "doctor.h"

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
	" had closed (server-side races); since the agent started, 3h12m ago\","
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
	"2 upstreams diagnosed from counts since the agent started 3h12m ago\n"
	"balancer idle timeout: 60 s\n"
	"\n"
	"inbound from 10.77.1.1 to port 80 (netns blue)\n"
	"  our keep-alive timeout: 5 s (high confidence: 40 of 40 idle closes)\n"
	"  the peer's idle timeout: not seen (the client or balancer never closed an\n"
	"      idle connection)\n"
	"  CRITICAL: 12 keep-alive races (502)\n"
	"    evidence: 12 requests met a connection we had closed (server-side races);\n"
	"      since the agent started, 3h12m ago\n"
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
			    "0 upstreams diagnosed from counts since the agent started 42s ago\n"
			    "balancer idle timeout: unknown (start the agent with "
			    "--lb-idle-timeout)\n"
			    "\n"
			    "no upstream has closed a connection yet: nothing to diagnose\n");
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
}

/* Closes of one side at one idle time, as the BPF side counts them. */
static void closes(struct kw_upstream *u, int by, double seconds, __u64 n)
{
	enum kw_hist_id h = by == KW_BY_LOCAL ? KW_H_IDLE_LOCAL : KW_H_IDLE_PEER;

	u->hist[h][kw_idle_slot((__u64)(seconds * 1000 + 0.5))] += n;
	u->hist_sum[h] += seconds * n;
	u->val[by == KW_BY_LOCAL ? KW_F_CLOSED_LOCAL_FIN : KW_F_CLOSED_PEER_FIN] += n;
}

/* The agent's document for every rule at once, rendered by the CLI within 79 columns. */
static void test_agent_document(void **state)
{
	struct kw_doctor_opts o = { .lb_idle_timeout = 60, .uptime = 3600 };
	struct kw_upstream u[2];
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

	kw_buf_init(&b);
	kw_buf_init(&t);
	assert_int_equal(kw_doctor_run(u, 2, &o, &d, &n), 0);
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
	assert_null(strstr(t.data, "no findings"));
	json_decref(doc);
	kw_buf_free(&b);
	kw_buf_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrap),	       cmocka_unit_test(test_report),
		cmocka_unit_test(test_report_empty),   cmocka_unit_test(test_bad_documents),
		cmocka_unit_test(test_agent_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
