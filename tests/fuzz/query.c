// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The agent's query arguments, as its routes get them from libmicrohttpd (decoded, the
 * first of each name): since and limit of /api/v1/events (kw_events_query_parse, then the
 * selection and rendering of an event ring with the query) and peer of /api/v1/doctor
 * (kw_addr_parse_peer). The input is a query string, "since=5&limit=2&peer=10.0.0.1:80";
 * what follows a NUL fills the ring's events byte by byte (types, reasons, addresses
 * beyond the known ones, times from INT64_MIN to INT64_MAX).
 */
#include <errno.h>
#include <jansson.h>
#include "fuzz.h"
#include "agent/events.h"
#include "lib/addr.h"

#define RING_CAP    16
#define RING_EVENTS 40 /* wrapped more than twice */

/* The value of the first argument name in query (split in place), NULL if absent. */
static const char *arg(char *const *keys, char *const *vals, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(keys[i], name))
			return vals[i];
	return NULL;
}

static void render(const struct kw_events_query *q, const uint8_t *ev_bytes, size_t ev_size)
{
	struct kw_event_ring r;
	struct kw_event ev;
	struct kw_buf out;
	json_t *doc, *events, *e;
	__u64 seq, prev = 0;
	size_t i, j;

	FUZZ_CHECK(!kw_event_ring_init(&r, RING_CAP));
	for (i = 0; i < RING_EVENTS; i++) {
		memset(&ev, 0, sizeof(ev));
		for (j = 0; ev_size && j < sizeof(ev); j++)
			((uint8_t *)&ev)[j] = ev_bytes[(i * sizeof(ev) + j) % ev_size];
		/* the wall-clock time too: any value, INT64_MIN included */
		kw_event_ring_push(&r, &ev, (__s64)ev.ts_ns);
	}
	kw_buf_init(&out);
	FUZZ_CHECK(!kw_event_ring_render(&r, q, &out));
	doc = json_loadb(out.data, out.len, 0, NULL);
	FUZZ_CHECK(doc);
	events = json_object_get(doc, "events");
	FUZZ_CHECK(json_array_size(events) <= q->limit);
	json_array_foreach(events, i, e) {
		seq = json_integer_value(json_object_get(e, "seq"));
		FUZZ_CHECK(seq > prev && seq <= RING_EVENTS && seq > RING_EVENTS - RING_CAP);
		FUZZ_CHECK(!q->has_since || seq > q->since);
		prev = seq;
	}
	json_decref(doc);
	kw_buf_free(&out);
	kw_event_ring_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t qlen = strnlen((const char *)data, size);
	char *query = fuzz_cstr(data, qlen), *keys[16], *vals[16], *p, *amp, *eq;
	struct kw_events_query q;
	const char *why, *peer;
	__u8 addr[16];
	__u16 port;
	int n = 0;

	for (p = query; p && n < 16; p = amp) {
		amp = strchr(p, '&');
		if (amp)
			*amp++ = '\0';
		eq = strchr(p, '=');
		if (eq)
			*eq++ = '\0';
		keys[n] = p;
		vals[n++] = eq ? eq : p + strlen(p); /* "?since": "" */
	}
	if (!kw_events_query_parse(arg(keys, vals, n, "since"), arg(keys, vals, n, "limit"), &q,
				   &why)) {
		FUZZ_CHECK(q.limit >= 1 && q.limit <= KW_EVENTS_MAX_LIMIT);
		FUZZ_CHECK(q.since <= INT64_MAX);
		/* the events: what follows the NUL after the query, if anything */
		render(&q, data + qlen + (qlen < size), size - qlen - (qlen < size));
	} else {
		FUZZ_CHECK(why && *why);
	}
	peer = arg(keys, vals, n, "peer");
	if (peer && !kw_addr_parse_peer(peer, addr, &port))
		FUZZ_CHECK(*peer);
	free(query);
	return 0;
}
