/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Histogram slots shared by the BPF programs (which count into them) and user space
 * (which exposes them as Prometheus buckets). Each slot i counts values v with
 * bound[i-1] < v <= bound[i]; the last slot is +Inf.
 *
 * Idle-before-close bounds bracket the keep-alive timeouts users really meet (1, 2, 5,
 * 10, 15, 20, 30, 45, 60, 65, 75, 120 and 300 s): a server that closes idle connections
 * after T seconds fills the narrow slot (T - d, T + d], so the timeout reads off the
 * histogram directly.
 */
#ifndef KW_HIST_H
#define KW_HIST_H

/* BPF before kernel 5.3 had no loops; unrolling also keeps the verifier's work small. */
#ifdef __bpf__
#define KW_UNROLL _Pragma("unroll")
#else
#define KW_UNROLL
#endif

/*
 * The bounds are lists of X(value), expanded by each user: the BPF side and the unit tests
 * take them as they are (KW_BOUND), the agent in the unit it exposes (seconds).
 */
#define KW_BOUND(v) v,

#define KW_IDLE_SLOTS 31
#define KW_REQS_SLOTS 19

/* ms; the slot after the last bound is +Inf */
/* clang-format off */
#define KW_IDLE_BOUNDS_MS(X) \
	X(1) X(10) X(100) X(500) X(900) X(1100) X(1900) X(2100) X(4500) X(5500) \
	X(9500) X(10500) X(14500) X(15500) X(19500) X(20500) X(29500) X(30500) X(44500) X(45500) \
	X(59500) X(60500) X(64500) X(65500) X(74500) X(75500) X(119500) X(120500) X(299500) X(300500)
/* clang-format on */

/*
 * requests per connection; the slot after the last bound is +Inf. Exact slots for the
 * request caps met in practice: 1 to 6 (Apache's MaxKeepAliveRequests N serves N + 1),
 * 100 and 101 (Apache's default 100), 1000 and 1001 (nginx's keepalive_requests).
 */
/* clang-format off */
#define KW_REQS_BOUNDS(X) \
	X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(10) X(20) X(50) \
	X(99) X(100) X(101) X(500) X(999) X(1000) X(1001) X(10000)
/* clang-format on */

#define KW_GAP_SLOTS 13
/* us: 100 us .. 60 s */
/* clang-format off */
#define KW_GAP_BOUNDS_US(X) \
	X(100) X(500) X(1000) X(5000) X(10000) X(50000) X(100000) \
	X(500000) X(1000000) X(5000000) X(10000000) X(60000000)
/* clang-format on */

/*
 * Connection lifetime, ms, established to the first close: Connection: close requests
 * (a few ms), keep-alive pools (seconds to hours), and the idle timeouts of NATs and
 * firewalls a long-lived connection outlives (5 min to a day).
 */
#define KW_LIFETIME_SLOTS 18
/* clang-format off */
#define KW_LIFETIME_BOUNDS_MS(X) \
	X(1) X(10) X(100) X(1000) X(5000) X(10000) X(30000) X(60000) X(120000) X(300000) \
	X(600000) X(900000) X(1800000) X(3600000) X(7200000) X(21600000) X(86400000)
/* clang-format on */

/*
 * Connect latency, us, SYN_SENT to ESTABLISHED. A lost SYN is sent again after 1 s, then
 * 2, 4 and 8 s more: a connect that needed k retries lands in the slot ending at
 * 1.5, 3.5, 7.5 or 15.5 s.
 */
#define KW_CONNECT_SLOTS 19
/* clang-format off */
#define KW_CONNECT_BOUNDS_US(X) \
	X(50) X(100) X(250) X(500) X(1000) X(2500) X(5000) X(10000) X(25000) X(50000) \
	X(100000) X(250000) X(500000) X(1000000) X(1500000) X(3500000) X(7500000) X(15500000)
/* clang-format on */

/* Smoothed RTT at close, us: a host's loopback (tens of us) to another continent. */
#define KW_RTT_SLOTS 15
/* clang-format off */
#define KW_RTT_BOUNDS_US(X) \
	X(50) X(100) X(250) X(500) X(1000) X(2500) X(5000) X(10000) X(25000) X(50000) \
	X(100000) X(250000) X(500000) X(1000000)
/* clang-format on */

/*
 * Slot of a value in a histogram of n slots with the n - 1 bounds b: the first bound
 * >= v, or the +Inf slot. n is a constant at every call, so the loop unrolls into n - 1
 * compares with constants: no loop for the verifier to walk, no loads from b.
 */
static inline __attribute__((always_inline)) unsigned int kw_slot(const __u32 *b, unsigned int n,
								  __u64 v)
{
	unsigned int i;

	KW_UNROLL
	for (i = 0; i < n - 1; i++)
		if (v <= b[i])
			return i;
	return n - 1;
}

static inline __attribute__((always_inline)) unsigned int kw_idle_slot(__u64 ms)
{
	static const __u32 b[KW_IDLE_SLOTS - 1] = { KW_IDLE_BOUNDS_MS(KW_BOUND) };

	return kw_slot(b, KW_IDLE_SLOTS, ms);
}

static inline __attribute__((always_inline)) unsigned int kw_reqs_slot(__u64 n)
{
	static const __u32 b[KW_REQS_SLOTS - 1] = { KW_REQS_BOUNDS(KW_BOUND) };

	return kw_slot(b, KW_REQS_SLOTS, n);
}

static inline __attribute__((always_inline)) unsigned int kw_gap_slot(__u64 us)
{
	static const __u32 b[KW_GAP_SLOTS - 1] = { KW_GAP_BOUNDS_US(KW_BOUND) };

	return kw_slot(b, KW_GAP_SLOTS, us);
}

static inline __attribute__((always_inline)) unsigned int kw_lifetime_slot(__u64 ms)
{
	static const __u32 b[KW_LIFETIME_SLOTS - 1] = { KW_LIFETIME_BOUNDS_MS(KW_BOUND) };

	return kw_slot(b, KW_LIFETIME_SLOTS, ms);
}

static inline __attribute__((always_inline)) unsigned int kw_connect_slot(__u64 us)
{
	static const __u32 b[KW_CONNECT_SLOTS - 1] = { KW_CONNECT_BOUNDS_US(KW_BOUND) };

	return kw_slot(b, KW_CONNECT_SLOTS, us);
}

static inline __attribute__((always_inline)) unsigned int kw_rtt_slot(__u64 us)
{
	static const __u32 b[KW_RTT_SLOTS - 1] = { KW_RTT_BOUNDS_US(KW_BOUND) };

	return kw_slot(b, KW_RTT_SLOTS, us);
}

#endif /* KW_HIST_H */
