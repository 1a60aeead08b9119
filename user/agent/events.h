/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The agent's event log: the notable events the BPF programs send through their ring
 * buffer (struct kw_event: races, resets, idle and unused closes, aborts), kept in a
 * bounded in-memory ring with a sequence number and a wall-clock time each, and served as
 * JSON. The ring itself (kw_event_ring_*) is pure and single-threaded, so the unit tests
 * feed it kw_event values; kw_events_* wraps it with a mutex and a thread that polls the
 * ring buffer.
 */
#ifndef KW_EVENTS_H
#define KW_EVENTS_H

#include <linux/types.h>
#include "keepwatch.h"
#include "lib/buf.h"

#define KW_EVENTS_DEFAULT_CAPACITY 4096
#define KW_EVENTS_MIN_CAPACITY	   16
#define KW_EVENTS_MAX_CAPACITY	   1000000
#define KW_EVENTS_DEFAULT_LIMIT	   1000 /* events per answer when no limit is asked */
#define KW_EVENTS_MAX_LIMIT	   10000

struct kw_event_rec {
	__u64 seq;     /* from 1, one more for each event */
	__s64 time_ns; /* ns since the epoch, CLOCK_REALTIME */
	struct kw_event ev;
	int read; /* handed out by a render: not a loss when overwritten */
};

struct kw_event_ring {
	struct kw_event_rec *rec; /* rec[(seq - 1) % cap] */
	unsigned int cap;
	__u64 last;    /* seq of the newest event, 0 while empty */
	__u64 dropped; /* events overwritten before any render handed them out */
};

/*
 * Which events to render. With since set: the oldest limit events with seq > since (a
 * client pages through them, passing back "next"). Without: the newest limit events.
 */
struct kw_events_query {
	int has_since;
	__u64 since;
	unsigned int limit; /* 1..KW_EVENTS_MAX_LIMIT */
};

/* 0, -EINVAL for a capacity outside KW_EVENTS_MIN/MAX_CAPACITY, -ENOMEM. */
int kw_event_ring_init(struct kw_event_ring *r, unsigned int cap);
void kw_event_ring_fini(struct kw_event_ring *r);
/* Store ev as the next event, overwriting the oldest when full. */
void kw_event_ring_push(struct kw_event_ring *r, const struct kw_event *ev, __s64 time_ns);
/* Seq of the oldest event held, or last + 1 when the ring is empty. */
__u64 kw_event_ring_first(const struct kw_event_ring *r);
/*
 * {"version":1,"next":N,"dropped":D,"events":[...]} for q, marking the events rendered as
 * read. "next" is the seq of the last event rendered or, when none is, the newest seq (less
 * than since when the agent restarted since the client's last call). 0 or -ENOMEM.
 */
int kw_event_ring_render(struct kw_event_ring *r, const struct kw_events_query *q,
			 struct kw_buf *out);

/*
 * The query of GET /api/v1/events from its since and limit arguments (NULL when absent).
 * 0, or -EINVAL with *why saying which argument is bad.
 */
int kw_events_query_parse(const char *since, const char *limit, struct kw_events_query *q,
			  const char **why);

/* Names used in the JSON: "race", ...; "unknown" out of range. */
const char *kw_event_type_name(unsigned int type);
/* KW_RST_* as "abort_on_data", ...; "unknown" out of range. */
const char *kw_rst_reason_name(unsigned int reason);
/* KW_RSTATE_* as "close_wait", ...; "other" out of range. */
const char *kw_rst_state_name(unsigned int state);
/* The event's reason as text, or NULL for types without one. */
const char *kw_event_reason_name(const struct kw_event *ev);

/* Nanoseconds to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) to get CLOCK_REALTIME. */
__s64 kw_monotonic_to_realtime_offset(void);

struct kw_events;

/*
 * Starts a thread that moves events from the BPF ring buffer ringbuf_fd into a ring of
 * capacity events. NULL with errno set.
 */
struct kw_events *kw_events_start(int ringbuf_fd, unsigned int capacity);
/* Stops the thread and frees everything; NULL is fine. */
void kw_events_stop(struct kw_events *e);
/* kw_event_ring_render under the log's lock. */
int kw_events_render(struct kw_events *e, const struct kw_events_query *q, struct kw_buf *out);
/* Events received from the kernel, and of those overwritten unread (for self-metrics). */
void kw_events_stats(struct kw_events *e, __u64 *received, __u64 *dropped);

#endif /* KW_EVENTS_H */
