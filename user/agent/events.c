// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The event log declared in events.h: a ring of records indexed by sequence number, its
 * JSON rendering, and the thread that fills it from the BPF ring buffer. A record counts
 * as dropped when it is overwritten before any render handed it out.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "lib/addr.h"
#include "agent/events.h"
#include "agent/json.h"
#include "lib/log.h"
#include "agent/netns.h"
#include "lib/parse.h"

#define POLL_MS 200

static const char *const type_names[KW_EV_MAX] = {
	[KW_EV_RACE] = "race",
	[KW_EV_RESET_SENT] = "reset_sent",
	[KW_EV_RESET_RCVD] = "reset_received",
	[KW_EV_IDLE_CLOSE] = "idle_close",
	[KW_EV_UNUSED_CLOSE] = "unused_close",
	[KW_EV_ABORT_UNREAD] = "abort_unread",
};

static const char *const rst_names[KW_RST_MAX] = {
	[KW_RST_NOT_SPECIFIED] = "not_specified",
	[KW_RST_NO_SOCKET] = "no_socket",
	[KW_RST_TCP_FLAGS] = "tcp_flags",
	[KW_RST_ABORT_ON_DATA] = "abort_on_data",
	[KW_RST_TIMEWAIT_SOCKET] = "timewait_socket",
	[KW_RST_ABORT_ON_CLOSE] = "abort_on_close",
	[KW_RST_ABORT_ON_LINGER] = "abort_on_linger",
	[KW_RST_ABORT_ON_MEMORY] = "abort_on_memory",
	[KW_RST_TCP_STATE] = "tcp_state",
	[KW_RST_KEEPALIVE_TIMEOUT] = "keepalive_timeout",
	[KW_RST_DISCONNECT_WITH_DATA] = "disconnect_with_data",
	[KW_RST_INVALID_SYN] = "invalid_syn",
	[KW_RST_OTHER] = "other",
};

static const char *const rstate_names[KW_RSTATE_MAX] = {
	[KW_RSTATE_ESTABLISHED] = "established", [KW_RSTATE_SYN_SENT] = "syn_sent",
	[KW_RSTATE_CLOSE_WAIT] = "close_wait",	 [KW_RSTATE_FIN_WAIT1] = "fin_wait1",
	[KW_RSTATE_FIN_WAIT2] = "fin_wait2",	 [KW_RSTATE_LAST_ACK] = "last_ack",
	[KW_RSTATE_CLOSING] = "closing",	 [KW_RSTATE_OTHER] = "other",
};

const char *kw_event_type_name(unsigned int type)
{
	return type < KW_EV_MAX && type_names[type] ? type_names[type] : "unknown";
}

const char *kw_rst_reason_name(unsigned int reason)
{
	return reason < KW_RST_MAX ? rst_names[reason] : "unknown";
}

const char *kw_rst_state_name(unsigned int state)
{
	return state < KW_RSTATE_MAX ? rstate_names[state] : "other";
}

const char *kw_event_reason_name(const struct kw_event *ev)
{
	switch (ev->type) {
	case KW_EV_RESET_SENT:
		return kw_rst_reason_name(ev->reason);
	case KW_EV_RESET_RCVD:
		return kw_rst_state_name(ev->reason);
	case KW_EV_RACE:
		/* server side (we closed, a request came): our reset's reason; client side: the
		 * state our socket was in when the peer's reset came */
		return ev->direction == KW_DIR_OUTBOUND ? kw_rst_state_name(ev->reason) :
							  kw_rst_reason_name(ev->reason);
	default:
		return NULL;
	}
}

/* ---- the ring ---- */

int kw_event_ring_init(struct kw_event_ring *r, unsigned int cap)
{
	memset(r, 0, sizeof(*r));
	if (cap < KW_EVENTS_MIN_CAPACITY || cap > KW_EVENTS_MAX_CAPACITY)
		return -EINVAL;
	r->rec = calloc(cap, sizeof(*r->rec));
	if (!r->rec)
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

void kw_event_ring_fini(struct kw_event_ring *r)
{
	free(r->rec);
	memset(r, 0, sizeof(*r));
}

static struct kw_event_rec *slot(const struct kw_event_ring *r, __u64 seq)
{
	return &r->rec[(seq - 1) % r->cap];
}

void kw_event_ring_push(struct kw_event_ring *r, const struct kw_event *ev, __s64 time_ns)
{
	struct kw_event_rec *rec = slot(r, r->last + 1);

	if (rec->seq && !rec->read)
		r->dropped++;
	rec->seq = ++r->last;
	rec->time_ns = time_ns;
	rec->ev = *ev;
	rec->read = 0;
}

__u64 kw_event_ring_first(const struct kw_event_ring *r)
{
	return r->last > r->cap ? r->last - r->cap + 1 : 1;
}

/* "2026-11-23T13:05:01.123Z" */
static void format_time(__s64 time_ns, char *out, size_t len)
{
	/* floor divisions that never negate (INT64_MIN has no positive) */
	__s64 ms = time_ns / 1000000 - (time_ns % 1000000 < 0);
	time_t sec = ms / 1000 - (ms % 1000 < 0);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&sec, &tm)) {
		snprintf(out, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, len - n, ".%03dZ", (int)(ms - (__s64)sec * 1000));
}

static json_t *event_json(const struct kw_event_rec *rec)
{
	const struct kw_event *ev = &rec->ev;
	char time[40], local[KW_ENDPOINT_STRLEN], peer[KW_ENDPOINT_STRLEN];
	char netns[KW_NETNS_NAMELEN];
	const char *reason = kw_event_reason_name(ev);

	format_time(rec->time_ns, time, sizeof(time));
	kw_addr_format_endpoint(ev->laddr, ev->lport, local, sizeof(local));
	kw_addr_format_endpoint(ev->raddr, ev->rport, peer, sizeof(peer));
	kw_netns_name(ev->netns, netns, sizeof(netns));
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:o, s:I, s:o}", "seq",
			 (json_int_t)rec->seq, "time", time, "type", kw_event_type_name(ev->type),
			 "direction", ev->direction == KW_DIR_OUTBOUND ? "outbound" : "inbound",
			 "local", local, "peer", peer, "netns", netns, "idle_seconds",
			 ev->idle_ms / 1000.0, "gap_seconds",
			 ev->type == KW_EV_RACE ? json_real(ev->gap_us / 1e6) : json_null(),
			 "requests", (json_int_t)ev->requests, "reason",
			 reason ? json_string(reason) : json_null());
}

/* The seqs [*from, *to] that q selects; *from > *to when none. */
static void select_range(const struct kw_event_ring *r, const struct kw_events_query *q,
			 __u64 *from, __u64 *to)
{
	__u64 first = kw_event_ring_first(r);

	if (q->has_since) {
		*from = q->since >= first ? q->since + 1 : first;
		*to = *from <= r->last && r->last - *from >= q->limit ? *from + q->limit - 1 :
									r->last;
	} else {
		*to = r->last;
		*from = r->last >= q->limit && r->last - q->limit + 1 > first ?
				r->last - q->limit + 1 :
				first;
	}
}

int kw_event_ring_render(struct kw_event_ring *r, const struct kw_events_query *q,
			 struct kw_buf *out)
{
	__u64 from, to, seq, next;
	json_t *events, *doc;

	select_range(r, q, &from, &to);
	events = json_array();
	if (!events)
		return -ENOMEM;
	for (seq = from; seq <= to; seq++) {
		if (json_array_append_new(events, event_json(slot(r, seq)))) {
			json_decref(events);
			return -ENOMEM;
		}
	}
	for (seq = from; seq <= to; seq++)
		slot(r, seq)->read = 1;
	/* nothing selected: the client is up to date, or ahead after an agent restart */
	next = from <= to ? to : r->last;
	doc = json_pack("{s:i, s:I, s:I, s:o}", "version", 1, "next", (json_int_t)next, "dropped",
			(json_int_t)r->dropped, "events", events);
	return kw_json_dump(doc, out);
}

int kw_events_query_parse(const char *since, const char *limit, struct kw_events_query *q,
			  const char **why)
{
	__u64 v;

	q->has_since = 0;
	q->since = 0;
	q->limit = KW_EVENTS_DEFAULT_LIMIT;
	if (since) {
		if (kw_parse_u64(since, 0, INT64_MAX, &v)) {
			*why = "since: not a sequence number (0 or more)";
			return -EINVAL;
		}
		q->has_since = 1;
		q->since = v;
	}
	if (limit) {
		if (kw_parse_u64(limit, 1, KW_EVENTS_MAX_LIMIT, &v)) {
			*why = "limit: not a number from 1 to 10000";
			return -EINVAL;
		}
		q->limit = v;
	}
	return 0;
}

__s64 kw_monotonic_to_realtime_offset(void)
{
	struct timespec m1, rt, m2;
	__s64 mono;

	/* the realtime reading sits between two monotonic ones: take their middle */
	clock_gettime(CLOCK_MONOTONIC, &m1);
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &m2);
	mono = ((__s64)m1.tv_sec * 1000000000 + m1.tv_nsec) / 2 +
	       ((__s64)m2.tv_sec * 1000000000 + m2.tv_nsec) / 2;
	return (__s64)rt.tv_sec * 1000000000 + rt.tv_nsec - mono;
}

/* ---- the thread ---- */

struct kw_events {
	pthread_mutex_t lock;
	struct kw_event_ring ring;
	struct ring_buffer *rb;
	pthread_t thread;
	atomic_int stop;
	__s64 offset_ns; /* CLOCK_MONOTONIC to CLOCK_REALTIME */
	__u64 short_records;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct kw_events *e = ctx;
	struct kw_event ev;

	if (size < sizeof(ev)) {
		e->short_records++;
		return 0;
	}
	memcpy(&ev, data, sizeof(ev));
	pthread_mutex_lock(&e->lock);
	kw_event_ring_push(&e->ring, &ev, (__s64)ev.ts_ns + e->offset_ns);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static void *poll_loop(void *arg)
{
	struct kw_events *e = arg;
	int n;

	while (!atomic_load(&e->stop)) {
		n = ring_buffer__poll(e->rb, POLL_MS);
		if (n < 0 && n != -EINTR) {
			kw_err("event log: poll the ring buffer: %s; no more events", strerror(-n));
			break;
		}
	}
	if (e->short_records)
		kw_warn("event log: %llu records shorter than struct kw_event ignored",
			(unsigned long long)e->short_records);
	return NULL;
}

struct kw_events *kw_events_start(int ringbuf_fd, unsigned int capacity)
{
	struct kw_events *e;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	err = kw_event_ring_init(&e->ring, capacity);
	if (err)
		goto free_events;
	pthread_mutex_init(&e->lock, NULL);
	e->offset_ns = kw_monotonic_to_realtime_offset();
	e->rb = ring_buffer__new(ringbuf_fd, on_event, e, NULL);
	if (!e->rb) {
		err = -errno;
		goto fini_ring;
	}
	err = -pthread_create(&e->thread, NULL, poll_loop, e);
	if (err)
		goto free_rb;
	return e;
free_rb:
	ring_buffer__free(e->rb);
fini_ring:
	pthread_mutex_destroy(&e->lock);
	kw_event_ring_fini(&e->ring);
free_events:
	free(e);
	errno = -err;
	return NULL;
}

void kw_events_stop(struct kw_events *e)
{
	if (!e)
		return;
	atomic_store(&e->stop, 1);
	pthread_join(e->thread, NULL);
	ring_buffer__free(e->rb);
	pthread_mutex_destroy(&e->lock);
	kw_event_ring_fini(&e->ring);
	free(e);
}

int kw_events_render(struct kw_events *e, const struct kw_events_query *q, struct kw_buf *out)
{
	int err;

	pthread_mutex_lock(&e->lock);
	err = kw_event_ring_render(&e->ring, q, out);
	pthread_mutex_unlock(&e->lock);
	return err;
}

void kw_events_stats(struct kw_events *e, __u64 *received, __u64 *dropped)
{
	pthread_mutex_lock(&e->lock);
	*received = e->ring.last;
	*dropped = e->ring.dropped;
	pthread_mutex_unlock(&e->lock);
}
