// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The event log's ring without BPF: sequence numbers, wrap-around, since/limit selection
 * and "next", the dropped count (overwritten before any read), the JSON shape of each event
 * type (addresses, times, reasons), the query parser, and the reason names against the
 * field table's label values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <bpf/bpf.h>

#include "lib/addr.h"
#include "agent/events.h"
#include "lib/fields.h"

/* 2026-11-23T13:05:01.123Z */
#define T0 (1795439101123LL * 1000000)

static struct kw_event ev_v4(unsigned int type, unsigned int dir, unsigned int reason)
{
	struct kw_event ev = { 0 };

	kw_addr_parse("10.77.1.2", ev.laddr);
	kw_addr_parse("10.77.1.1", ev.raddr);
	ev.lport = 80;
	ev.rport = 50312;
	ev.netns = 1; /* no namespace has inode 1: its label is "1" */
	ev.type = type;
	ev.direction = dir;
	ev.reason = reason;
	ev.family = KW_AF_INET;
	ev.idle_ms = 1004;
	ev.gap_us = 200;
	ev.requests = 1;
	return ev;
}

/* Render q and parse the document; checks the envelope. */
static json_t *render(struct kw_event_ring *r, int has_since, __u64 since, unsigned int limit)
{
	struct kw_events_query q = { .has_since = has_since, .since = since, .limit = limit };
	struct kw_buf b;
	json_error_t jerr;
	json_t *doc;

	kw_buf_init(&b);
	assert_int_equal(kw_event_ring_render(r, &q, &b), 0);
	assert_int_equal(b.data[b.len - 1], '\n');
	doc = json_loads(b.data, 0, &jerr);
	if (!doc)
		fail_msg("bad JSON (%s): %s", jerr.text, b.data);
	kw_buf_free(&b);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
	assert_true(json_is_array(json_object_get(doc, "events")));
	return doc;
}

static __u64 next_of(const json_t *doc)
{
	return json_integer_value(json_object_get(doc, "next"));
}

static __u64 dropped_of(const json_t *doc)
{
	return json_integer_value(json_object_get(doc, "dropped"));
}

/* The seqs of the document's events, as "3,4,5". */
static const char *seqs(const json_t *doc)
{
	static char out[512];
	const json_t *e;
	size_t i, n = 0;

	out[0] = '\0';
	json_array_foreach(json_object_get(doc, "events"), i, e)
		n += snprintf(out + n, sizeof(out) - n, "%s%lld", i ? "," : "",
			      (long long)json_integer_value(json_object_get(e, "seq")));
	return out;
}

static void push_n(struct kw_event_ring *r, unsigned int n)
{
	struct kw_event ev = ev_v4(KW_EV_IDLE_CLOSE, KW_DIR_INBOUND, 0);
	unsigned int i;

	for (i = 0; i < n; i++)
		kw_event_ring_push(r, &ev, T0 + (__s64)i * 1000000);
}

static void test_init(void **state)
{
	struct kw_event_ring r;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 15), -EINVAL);
	assert_int_equal(kw_event_ring_init(&r, 1000001), -EINVAL);
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	assert_int_equal(r.cap, 16);
	assert_int_equal(r.last, 0);
	assert_int_equal(kw_event_ring_first(&r), 1);
	kw_event_ring_fini(&r);
	assert_null(r.rec);
}

static void test_empty(void **state)
{
	struct kw_event_ring r;
	json_t *doc;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	doc = render(&r, 0, 0, 20);
	assert_int_equal(json_array_size(json_object_get(doc, "events")), 0);
	assert_int_equal(next_of(doc), 0);
	assert_int_equal(dropped_of(doc), 0);
	json_decref(doc);
	doc = render(&r, 1, 0, 20);
	assert_int_equal(next_of(doc), 0);
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static void test_since_limit(void **state)
{
	struct kw_event_ring r;
	json_t *doc;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	push_n(&r, 10);
	/* with since: the oldest after it, paging by next */
	doc = render(&r, 1, 0, 4);
	assert_string_equal(seqs(doc), "1,2,3,4");
	assert_int_equal(next_of(doc), 4);
	json_decref(doc);
	doc = render(&r, 1, 4, 4);
	assert_string_equal(seqs(doc), "5,6,7,8");
	json_decref(doc);
	doc = render(&r, 1, 8, 4);
	assert_string_equal(seqs(doc), "9,10");
	assert_int_equal(next_of(doc), 10);
	json_decref(doc);
	/* up to date: nothing, next stays */
	doc = render(&r, 1, 10, 4);
	assert_string_equal(seqs(doc), "");
	assert_int_equal(next_of(doc), 10);
	json_decref(doc);
	/* a since from before an agent restart: next goes back to the newest */
	doc = render(&r, 1, 500, 4);
	assert_string_equal(seqs(doc), "");
	assert_int_equal(next_of(doc), 10);
	json_decref(doc);
	/* without since: the newest limit events, oldest first */
	doc = render(&r, 0, 0, 3);
	assert_string_equal(seqs(doc), "8,9,10");
	assert_int_equal(next_of(doc), 10);
	json_decref(doc);
	doc = render(&r, 0, 0, 100);
	assert_string_equal(seqs(doc), "1,2,3,4,5,6,7,8,9,10");
	json_decref(doc);
	doc = render(&r, 1, 9, 1);
	assert_string_equal(seqs(doc), "10");
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static void test_wrap_around(void **state)
{
	struct kw_event_ring r;
	json_t *doc;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	push_n(&r, 16);
	assert_int_equal(kw_event_ring_first(&r), 1);
	push_n(&r, 5); /* 21 events: 1-5 overwritten */
	assert_int_equal(r.last, 21);
	assert_int_equal(kw_event_ring_first(&r), 6);
	doc = render(&r, 1, 0, 3);
	assert_string_equal(seqs(doc), "6,7,8"); /* a since before the oldest starts there */
	json_decref(doc);
	doc = render(&r, 0, 0, 100);
	assert_string_equal(seqs(doc), "6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21");
	json_decref(doc);
	doc = render(&r, 1, 19, 100);
	assert_string_equal(seqs(doc), "20,21");
	json_decref(doc);
	/* times follow their events around the ring: seq 21 was pushed 4 ms after seq 17 */
	doc = render(&r, 1, 20, 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(doc, "events"), 0), "time")),
			    "2026-11-23T13:05:01.127Z");
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static void test_dropped(void **state)
{
	struct kw_event_ring r;
	json_t *doc;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	push_n(&r, 16);
	/* read 1-4 */
	json_decref(render(&r, 1, 0, 4));
	/* 6 more overwrite 1-6: 1-4 were read, 5 and 6 were not */
	push_n(&r, 6);
	doc = render(&r, 1, 100, 1);
	assert_int_equal(dropped_of(doc), 2);
	json_decref(doc);
	/* read everything held (7-22); overwriting read events drops nothing */
	json_decref(render(&r, 0, 0, 100));
	push_n(&r, 16);
	doc = render(&r, 1, 1000, 1);
	assert_int_equal(dropped_of(doc), 2);
	json_decref(doc);
	/* nobody reads: 16 more push out 16 unread */
	push_n(&r, 16);
	doc = render(&r, 1, 1000, 1);
	assert_int_equal(dropped_of(doc), 18);
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static const json_t *only_event(const json_t *doc)
{
	const json_t *evs = json_object_get(doc, "events");

	assert_int_equal(json_array_size(evs), 1);
	return json_array_get(evs, 0);
}

static const char *str(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

static void test_json_race_inbound(void **state)
{
	struct kw_event_ring r;
	struct kw_event ev = ev_v4(KW_EV_RACE, KW_DIR_INBOUND, KW_RST_ABORT_ON_DATA);
	const json_t *e;
	json_t *doc;

	(void)state;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	kw_event_ring_push(&r, &ev, T0);
	doc = render(&r, 1, 0, 10);
	e = only_event(doc);
	assert_int_equal(json_object_size(e), 11);
	assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
	assert_string_equal(str(e, "time"), "2026-11-23T13:05:01.123Z");
	assert_string_equal(str(e, "type"), "race");
	assert_string_equal(str(e, "direction"), "inbound");
	assert_string_equal(str(e, "local"), "10.77.1.2:80");
	assert_string_equal(str(e, "peer"), "10.77.1.1:50312");
	assert_string_equal(str(e, "netns"), "1");
	assert_true(json_real_value(json_object_get(e, "idle_seconds")) == 1.004);
	assert_true(json_real_value(json_object_get(e, "gap_seconds")) == 0.0002);
	assert_int_equal(json_integer_value(json_object_get(e, "requests")), 1);
	assert_string_equal(str(e, "reason"), "abort_on_data");
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static void test_json_race_outbound_v6(void **state)
{
	struct kw_event_ring r;
	struct kw_event ev = ev_v4(KW_EV_RACE, KW_DIR_OUTBOUND, KW_RSTATE_CLOSE_WAIT);
	const json_t *e;
	json_t *doc;

	(void)state;
	kw_addr_parse("fd77::1", ev.laddr);
	kw_addr_parse("fd77::2", ev.raddr);
	ev.lport = 41000;
	ev.rport = 8080;
	ev.family = KW_AF_INET6;
	assert_int_equal(kw_event_ring_init(&r, 16), 0);
	kw_event_ring_push(&r, &ev, T0);
	doc = render(&r, 1, 0, 10);
	e = only_event(doc);
	assert_string_equal(str(e, "direction"), "outbound");
	assert_string_equal(str(e, "local"), "[fd77::1]:41000");
	assert_string_equal(str(e, "peer"), "[fd77::2]:8080");
	/* client-side race: the state our socket was in when the reset came */
	assert_string_equal(str(e, "reason"), "close_wait");
	json_decref(doc);
	kw_event_ring_fini(&r);
}

static void test_json_types(void **state)
{
	static const struct {
		unsigned int type, dir, reason;
		const char *name, *reason_text; /* NULL: JSON null */
		int gap;			/* gap_seconds is a number */
	} cases[] = {
		{ KW_EV_RESET_SENT, KW_DIR_INBOUND, KW_RST_TIMEWAIT_SOCKET, "reset_sent",
		  "timewait_socket", 0 },
		{ KW_EV_RESET_SENT, KW_DIR_OUTBOUND, 200, "reset_sent", "unknown", 0 },
		{ KW_EV_RESET_RCVD, KW_DIR_OUTBOUND, KW_RSTATE_FIN_WAIT2, "reset_received",
		  "fin_wait2", 0 },
		{ KW_EV_RESET_RCVD, KW_DIR_INBOUND, 99, "reset_received", "other", 0 },
		{ KW_EV_IDLE_CLOSE, KW_DIR_INBOUND, 3, "idle_close", NULL, 0 },
		{ KW_EV_UNUSED_CLOSE, KW_DIR_INBOUND, 0, "unused_close", NULL, 0 },
		{ KW_EV_ABORT_UNREAD, KW_DIR_INBOUND, 0, "abort_unread", NULL, 0 },
		{ KW_EV_RACE, KW_DIR_INBOUND, KW_RST_TCP_FLAGS, "race", "tcp_flags", 1 },
		{ 0, KW_DIR_INBOUND, 0, "unknown", NULL, 0 },
		{ 77, KW_DIR_INBOUND, 0, "unknown", NULL, 0 },
	};
	struct kw_event_ring r;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kw_event ev = ev_v4(cases[i].type, cases[i].dir, cases[i].reason);
		const json_t *e, *reason;
		json_t *doc;

		assert_int_equal(kw_event_ring_init(&r, 16), 0);
		kw_event_ring_push(&r, &ev, T0);
		doc = render(&r, 0, 0, 1);
		e = only_event(doc);
		assert_string_equal(str(e, "type"), cases[i].name);
		reason = json_object_get(e, "reason");
		if (cases[i].reason_text)
			assert_string_equal(json_string_value(reason), cases[i].reason_text);
		else if (!json_is_null(reason))
			fail_msg("case %u: reason should be null", i);
		assert_int_equal(json_is_number(json_object_get(e, "gap_seconds")), cases[i].gap);
		assert_true(json_is_number(json_object_get(e, "idle_seconds")));
		json_decref(doc);
		kw_event_ring_fini(&r);
	}
}

static void test_json_time(void **state)
{
	static const struct {
		__s64 ns;
		const char *text;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 999999, "1970-01-01T00:00:00.000Z" },
		{ 1000000, "1970-01-01T00:00:00.001Z" },
		{ 1999999999, "1970-01-01T00:00:01.999Z" },
		{ T0, "2026-11-23T13:05:01.123Z" },
		{ 951782400LL * 1000000000, "2000-02-29T00:00:00.000Z" },
		/* before the epoch: floored, and the extremes without overflow (UBSan) */
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ -1000000, "1969-12-31T23:59:59.999Z" },
		{ -1000001, "1969-12-31T23:59:59.998Z" },
		{ INT64_MIN, "1677-09-21T00:12:43.145Z" },
		{ INT64_MAX, "2262-04-11T23:47:16.854Z" },
	};
	struct kw_event ev = ev_v4(KW_EV_IDLE_CLOSE, KW_DIR_INBOUND, 0);
	struct kw_event_ring r;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc;

		assert_int_equal(kw_event_ring_init(&r, 16), 0);
		kw_event_ring_push(&r, &ev, cases[i].ns);
		doc = render(&r, 0, 0, 1);
		assert_string_equal(str(only_event(doc), "time"), cases[i].text);
		json_decref(doc);
		kw_event_ring_fini(&r);
	}
}

static void test_query_parse(void **state)
{
	struct kw_events_query q;
	const char *why = NULL;

	(void)state;
	assert_int_equal(kw_events_query_parse(NULL, NULL, &q, &why), 0);
	assert_false(q.has_since);
	assert_int_equal(q.limit, KW_EVENTS_DEFAULT_LIMIT);
	assert_int_equal(kw_events_query_parse("0", "1", &q, &why), 0);
	assert_true(q.has_since);
	assert_int_equal(q.since, 0);
	assert_int_equal(q.limit, 1);
	assert_int_equal(kw_events_query_parse("123456789012", "10000", &q, &why), 0);
	assert_int_equal(q.since, 123456789012ULL);
	assert_int_equal(q.limit, 10000);
	assert_int_equal(kw_events_query_parse("-1", NULL, &q, &why), -EINVAL);
	assert_non_null(strstr(why, "since"));
	assert_int_equal(kw_events_query_parse("", NULL, &q, &why), -EINVAL);
	assert_int_equal(kw_events_query_parse("1x", NULL, &q, &why), -EINVAL);
	assert_int_equal(kw_events_query_parse("99999999999999999999", NULL, &q, &why), -EINVAL);
	assert_int_equal(kw_events_query_parse(NULL, "0", &q, &why), -EINVAL);
	assert_non_null(strstr(why, "limit"));
	assert_int_equal(kw_events_query_parse(NULL, "10001", &q, &why), -EINVAL);
	assert_int_equal(kw_events_query_parse(NULL, "", &q, &why), -EINVAL);
	assert_int_equal(kw_events_query_parse(NULL, " 5", &q, &why), -EINVAL);
}

/* The names in events match the label values of the field table's reset rows. */
static void test_reason_names(void **state)
{
	unsigned int i, f, found;

	(void)state;
	for (i = 0; i < KW_RST_MAX; i++) {
		for (f = 0, found = 0; f < KW_F_MAX; f++)
			found |= !strcmp(kw_fields[f].family, "keepwatch_resets_sent_total") &&
				 !strcmp(kw_fields[f].lvalue[0], kw_rst_reason_name(i));
		if (!found)
			fail_msg("reset reason %u (%s) is no reason label", i,
				 kw_rst_reason_name(i));
	}
	for (i = 0; i < KW_RSTATE_MAX; i++) {
		for (f = 0, found = 0; f < KW_F_MAX; f++)
			found |= !strcmp(kw_fields[f].family, "keepwatch_resets_received_total") &&
				 !strcmp(kw_fields[f].lvalue[0], kw_rst_state_name(i));
		if (!found)
			fail_msg("reset state %u (%s) is no state label", i, kw_rst_state_name(i));
	}
	assert_string_equal(kw_rst_reason_name(KW_RST_MAX), "unknown");
	assert_string_equal(kw_rst_state_name(KW_RSTATE_MAX), "other");
	assert_string_equal(kw_event_type_name(KW_EV_MAX), "unknown");
	for (i = 1; i < KW_EV_MAX; i++)
		assert_string_not_equal(kw_event_type_name(i), "unknown");
}

static void test_clock_offset(void **state)
{
	__s64 a = kw_monotonic_to_realtime_offset(), b = kw_monotonic_to_realtime_offset();

	(void)state;
	/* the realtime clock is ahead of the monotonic one by decades, and stable */
	assert_true(a > 1000000000LL * 86400 * 365 * 30);
	assert_true(a - b < 1000000 && b - a < 1000000);
}

/* The thread's start and stop on a real ring buffer map: needs CAP_BPF, skipped without. */
static void test_thread(void **state)
{
	struct kw_events_query q = { .limit = 10 };
	__u64 received = 1, dropped = 1;
	struct kw_events *e;
	struct kw_buf b;
	int fd;

	(void)state;
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "kw_test_events", 0, 0, 4096, NULL);
	if (fd < 0) {
		skip();
		return;
	}
	assert_null(kw_events_start(fd, 15));
	assert_int_equal(errno, EINVAL);
	e = kw_events_start(fd, 16);
	assert_non_null(e);
	kw_buf_init(&b);
	assert_int_equal(kw_events_render(e, &q, &b), 0);
	assert_string_equal(b.data, "{\"version\":1,\"next\":0,\"dropped\":0,\"events\":[]}\n");
	kw_buf_free(&b);
	kw_events_stats(e, &received, &dropped);
	assert_int_equal(received, 0);
	assert_int_equal(dropped, 0);
	kw_events_stop(e);
	kw_events_stop(NULL);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_since_limit),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_dropped),
		cmocka_unit_test(test_json_race_inbound),
		cmocka_unit_test(test_json_race_outbound_v6),
		cmocka_unit_test(test_json_types),
		cmocka_unit_test(test_json_time),
		cmocka_unit_test(test_query_parse),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_clock_offset),
		cmocka_unit_test(test_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
