// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch events` on literal agent documents: the envelope (version, next, events),
 * one line per event type with its parts present or left out, local time from the UTC
 * stamp (TZ pinned), short durations, and events of the wrong shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cli/events.h"

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *doc = json_loads(text, 0, &err);

	if (!doc)
		fail_msg("bad test JSON: %s at line %d column %d", err.text, err.line, err.column);
	return doc;
}

static int setup_utc(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void test_doc_parse(void **state)
{
	const json_t *events;
	json_t *doc;
	__u64 next;

	(void)state;
	doc = load("{\"version\": 1, \"next\": 42, \"dropped\": 0, \"events\": [{}]}");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), 0);
	assert_int_equal(next, 42);
	assert_int_equal(json_array_size(events), 1);
	json_decref(doc);
	doc = load("{\"version\": 2, \"next\": 42, \"events\": []}");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), -EPROTONOSUPPORT);
	json_decref(doc);
	doc = load("{\"version\": 1, \"next\": -1, \"events\": []}");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), -EPROTO);
	json_decref(doc);
	doc = load("{\"version\": 1, \"events\": []}");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), -EPROTO);
	json_decref(doc);
	doc = load("{\"version\": 1, \"next\": 1, \"events\": {}}");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), -EPROTO);
	json_decref(doc);
	doc = load("[]");
	assert_int_equal(kw_ev_doc_parse(doc, &next, &events), -EPROTO);
	json_decref(doc);
}

static void check_line(const char *event, const char *want)
{
	char line[256];
	json_t *ev = load(event);

	assert_int_equal(kw_ev_format(ev, line, sizeof(line)), 0);
	assert_string_equal(line, want);
	json_decref(ev);
}

#define EV(type, dir, idle, gap, reason)                                                           \
	"{\"seq\": 1, \"time\": \"2026-11-23T13:05:01.123Z\", \"type\": \"" type "\","             \
	" \"direction\": \"" dir "\", \"local\": \"10.77.1.2:80\","                                \
	" \"peer\": \"10.77.1.1:50312\", \"netns\": \"blue\", \"idle_seconds\": " idle ","         \
	" \"gap_seconds\": " gap ", \"requests\": 1, \"reason\": " reason "}"

static void test_lines(void **state)
{
	(void)state;
	check_line(EV("race", "inbound", "1.004", "0.0002", "\"abort_on_data\""),
		   "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 race idle 1.004s gap 200us "
		   "abort_on_data");
	check_line(EV("race", "outbound", "65.2", "0.0153", "\"close_wait\""),
		   "13:05:01.123 out 10.77.1.2:80 -> 10.77.1.1:50312 race idle 65.200s gap 15.3ms "
		   "close_wait");
	check_line(EV("reset_sent", "inbound", "0", "null", "\"timewait_socket\""),
		   "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 reset sent timewait_socket");
	check_line(EV("reset_received", "outbound", "0.7", "null", "\"fin_wait2\""),
		   "13:05:01.123 out 10.77.1.2:80 -> 10.77.1.1:50312 reset received idle 700ms "
		   "fin_wait2");
	check_line(EV("idle_close", "inbound", "5.004", "null", "null"),
		   "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 idle close idle 5.004s");
	check_line(EV("unused_close", "inbound", "0", "null", "null"),
		   "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 unused close idle 0s");
	check_line(EV("abort_unread", "inbound", "0", "null", "null"),
		   "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 abort unread");
	check_line(EV("something_new", "sideways", "300.5", "null", "null"),
		   "13:05:01.123 ?   10.77.1.2:80 -> 10.77.1.1:50312 something_new idle 300.5s");
	/* IPv6 endpoints as the agent writes them; no gap, no reason, no netns: left out */
	check_line("{\"time\": \"2026-11-23T13:05:01.123Z\", \"type\": \"idle_close\","
		   " \"direction\": \"outbound\", \"local\": \"[fd77::1]:41000\","
		   " \"peer\": \"[fd77::2]:8080\", \"idle_seconds\": 2.004}",
		   "13:05:01.123 out [fd77::1]:41000 -> [fd77::2]:8080 idle close idle 2.004s");
}

static void test_bad_events(void **state)
{
	static const char *const bad[] = {
		"{}",
		"[]",
		EV("race", "inbound", "-1", "0", "null"),
		EV("race", "inbound", "\"1\"", "0", "null"),
		EV("race", "inbound", "1", "\"0\"", "null"),
		EV("race", "inbound", "1", "0", "5"),
		"{\"time\": \"2026-11-23T13:05:01.123Z\", \"type\": \"race\","
		" \"direction\": \"inbound\", \"local\": \"a\"}",
	};
	char line[256];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *ev = load(bad[i]);

		if (kw_ev_format(ev, line, sizeof(line)) != -EPROTO)
			fail_msg("accepted %s", bad[i]);
		json_decref(ev);
	}
}

/*
 * A line longer than the buffer (a long reason, peer or local text from the agent) is cut
 * and ends with '~', as the upstreams table cuts a column: the command goes on (it failed
 * with "No space left on device"). The cut falls between UTF-8 characters.
 */
static void test_long_lines(void **state)
{
	const char *head = "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 race idle 1.004s ";
	char line[512], reason[1001], text[1400];
	json_t *ev;
	size_t i;

	(void)state;
	memset(reason, 'r', 1000);
	reason[1000] = '\0';
	snprintf(text, sizeof(text), EV("race", "inbound", "1.004", "null", "\"%s\""), reason);
	ev = load(text);
	assert_int_equal(kw_ev_format(ev, line, sizeof(line)), 0);
	assert_int_equal(strlen(line), sizeof(line) - 1);
	assert_memory_equal(line, head, strlen(head));
	assert_int_equal(line[sizeof(line) - 2], '~');
	assert_int_equal(line[sizeof(line) - 3], 'r');
	/* the smallest buffers: room for '~' alone, then for nothing */
	assert_int_equal(kw_ev_format(ev, line, 2), 0);
	assert_string_equal(line, "~");
	assert_int_equal(kw_ev_format(ev, line, 1), -ENOSPC);
	json_decref(ev);

	/* two-byte characters (U+00E9) from the head's end on: no half of one is left */
	for (i = 0; i < 500; i++)
		memcpy(reason + 2 * i, "\xc3\xa9", 2);
	reason[1000] = '\0';
	snprintf(text, sizeof(text), EV("race", "inbound", "1.004", "null", "\"%s\""), reason);
	ev = load(text);
	assert_int_equal(kw_ev_format(ev, line, sizeof(line)), 0);
	/* the head (66 bytes) and 222 characters fill 510 bytes: the 511th is not cut */
	assert_int_equal(strlen(line), strlen(head) + 2 * 222 + 1);
	assert_int_equal(line[strlen(line) - 1], '~');
	assert_int_equal((unsigned char)line[strlen(line) - 2], 0xa9);
	json_decref(ev);
}

static void test_local_time(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01.123Z", out, sizeof(out)), 0);
	assert_string_equal(out, "13:05:01.123");
	assert_int_equal(kw_ev_local_time("2026-11-23T00:00:00.000Z", out, sizeof(out)), 0);
	assert_string_equal(out, "00:00:00.000");
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01Z", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01.123", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01.123Zx", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_ev_local_time("2026-13-23T13:05:01.123Z", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_ev_local_time("", out, sizeof(out)), -EINVAL);
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01.123Z", out, 5), -ENOSPC);
	/* another zone shifts the clock time, not the milliseconds */
	setenv("TZ", "EST5", 1);
	tzset();
	assert_int_equal(kw_ev_local_time("2026-11-23T13:05:01.123Z", out, sizeof(out)), 0);
	assert_string_equal(out, "08:05:01.123");
	setup_utc(NULL);
}

static void test_seconds(void **state)
{
	static const struct {
		double s;
		const char *text;
	} cases[] = {
		{ 0, "0s" },	       { 0.0000004, "0us" },  { 0.0002, "200us" },
		{ 0.000999, "999us" }, { 0.001, "1ms" },      { 0.0153, "15.3ms" },
		{ 0.0009996, "1ms" },  { 0.0999, "99.9ms" },  { 0.09996, "100ms" },
		{ 0.7, "700ms" },      { 0.9994, "999ms" },   { 0.9996, "1.000s" },
		{ 1, "1.000s" },       { 99.9996, "100.0s" }, { 65.2, "65.200s" },
		{ 99.9, "99.900s" },   { 100, "100.0s" },     { 300.5, "300.5s" },
	};
	char out[32];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kw_ev_format_seconds(cases[i].s, out, sizeof(out));
		assert_string_equal(out, cases[i].text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_parse),  cmocka_unit_test(test_lines),
		cmocka_unit_test(test_bad_events), cmocka_unit_test(test_local_time),
		cmocka_unit_test(test_seconds),	   cmocka_unit_test(test_long_lines),
	};

	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
