/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The numbers both sides must agree on: map sizes and their defaults, filter slots, the
 * event rate limit and the thresholds that decide what counts as a keep-alive race. The
 * BPF programs size their maps and rodata from these; the agent's options, help text and
 * documentation should read them from here too, so that a change is made in one place.
 */
#ifndef KW_LIMITS_H
#define KW_LIMITS_H

/*
 * Upstreams kept in the kernel by default (--max-upstreams); the kw_upstreams,
 * kw_counters and kw_free_slots maps hold this plus KW_DIR_MAX overflow slots.
 */
#define KW_MAX_UPSTREAMS_DEFAULT 4096 /* upstreams */

/* Entries of the kw_conns table by default (--conn-table): a power of two, 64 bytes each. */
#define KW_CONN_TABLE_DEFAULT 65536 /* entries */

/* Network namespaces and service ports a filter can list (--netns, --port): each at most. */
#define KW_MAX_FILTERS 64 /* entries */

/* The ring buffer of notable events (struct kw_event): a power of two of pages. */
#define KW_EVENTS_RINGBUF_BYTES (256 * 1024) /* bytes */

/* Event rate limit, per CPU: the steady rate, and the burst allowed above it. */
#define KW_EVENTS_PER_SEC_DEFAULT 200 /* events per second */
#define KW_EVENTS_BURST_DEFAULT	  100 /* events */

/*
 * Inbound connections we closed while idle, remembered by tuple so that a request meeting
 * the connection after its full socket is gone is still seen as a race (LRU).
 */
#define KW_CLOSED_BY_US_ENTRIES 16384 /* entries */

/*
 * A keep-alive race needs a connection that was idle: closed by us after at least this
 * long without data, or a request arriving after at least this long of quiet. Also the
 * idle time from which our closes are sent as KW_EV_IDLE_CLOSE events.
 */
#define KW_RACE_MIN_QUIET_MS 500 /* ms */

/*
 * A reset to a tuple we closed counts as a race only this long after the close; later,
 * the tuple belongs to another connection (ports are reused) or to a scan.
 */
#define KW_RACE_WINDOW_S 120 /* s */

#endif /* KW_LIMITS_H */
