/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Notable events for the agent's event log (struct kw_event in the kw_events ring
 * buffer), rate limited per CPU so that a storm of resets cannot flood user space: every
 * event dropped is counted.
 *
 * Uses the maps kw_events and kw_event_rate and the rodata cfg_events_per_sec and
 * cfg_events_burst (keepwatch.bpf.c); counters.bpf.h.
 */
#ifndef KW_EVENTS_BPF_H
#define KW_EVENTS_BPF_H

/* Token bucket (GCRA) per CPU: bursts of cfg_events_burst, then cfg_events_per_sec. */
static __always_inline bool event_allowed(__u64 now)
{
	__u64 interval = 1000000000ULL / (cfg_events_per_sec ? cfg_events_per_sec : 1);
	__u32 zero = 0;
	struct kw_rate *r;
	__u64 tat;

	r = bpf_map_lookup_elem(&kw_event_rate, &zero);
	if (!r)
		return false;
	tat = r->tat > now ? r->tat : now;
	if (tat - now > (__u64)cfg_events_burst * interval) {
		count_error(KW_ERR_EVENTS_RATE);
		return false;
	}
	r->tat = tat + interval;
	return true;
}

/* Sends one notable event; t describes the connection, key its upstream. */
static __always_inline void emit(__u8 type, const struct kw_key *key, const struct kw_tuple *t,
				 __u8 reason, __u32 idle_ms, __u64 gap_ns, __u32 requests)
{
	__u64 now = bpf_ktime_get_ns();
	struct kw_event *e;

	if (!event_allowed(now))
		return;
	e = bpf_ringbuf_reserve(&kw_events, sizeof(*e), 0);
	if (!e) {
		count_error(KW_ERR_RINGBUF_FULL);
		return;
	}
	e->ts_ns = now;
	__builtin_memcpy(e->laddr, t->laddr, 16);
	__builtin_memcpy(e->raddr, t->raddr, 16);
	e->netns = t->netns;
	e->idle_ms = idle_ms;
	e->gap_us = gap_ns / 1000 > 0xffffffff ? 0xffffffff : gap_ns / 1000;
	e->requests = requests;
	e->lport = t->lport;
	e->rport = t->rport;
	e->type = type;
	e->direction = key->direction;
	e->reason = reason;
	e->family = key->family;
	bpf_ringbuf_submit(e, 0);
}

#endif /* KW_EVENTS_BPF_H */
