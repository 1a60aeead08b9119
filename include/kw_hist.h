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

#define KW_IDLE_SLOTS 31
#define KW_REQS_SLOTS 19

/* ms; the slot after the last bound is +Inf */
#define KW_IDLE_BOUNDS_MS                                                                          \
	{                                                                                          \
		1, 10, 100, 500, 900, 1100, 1900, 2100, 4500, 5500, 9500, 10500, 14500, 15500,     \
			19500, 20500, 29500, 30500, 44500, 45500, 59500, 60500, 64500, 65500,      \
			74500, 75500, 119500, 120500, 299500, 300500                               \
	}

/*
 * requests per connection; the slot after the last bound is +Inf. Exact slots for the
 * request caps met in practice: 1 to 6 (Apache's MaxKeepAliveRequests N serves N + 1),
 * 100 and 101 (Apache's default 100), 1000 and 1001 (nginx's keepalive_requests).
 */
#define KW_REQS_BOUNDS                                                                             \
	{                                                                                          \
		0, 1, 2, 3, 4, 5, 6, 10, 20, 50, 99, 100, 101, 500, 999, 1000, 1001, 10000         \
	}

#define KW_GAP_SLOTS 13
/* us: 100 us .. 60 s */
#define KW_GAP_BOUNDS_US                                                                           \
	{                                                                                          \
		100, 500, 1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000, 10000000,    \
			60000000                                                                   \
	}

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
	static const __u32 b[KW_IDLE_SLOTS - 1] = KW_IDLE_BOUNDS_MS;

	return kw_slot(b, KW_IDLE_SLOTS, ms);
}

static inline __attribute__((always_inline)) unsigned int kw_reqs_slot(__u64 n)
{
	static const __u32 b[KW_REQS_SLOTS - 1] = KW_REQS_BOUNDS;

	return kw_slot(b, KW_REQS_SLOTS, n);
}

static inline __attribute__((always_inline)) unsigned int kw_gap_slot(__u64 us)
{
	static const __u32 b[KW_GAP_SLOTS - 1] = KW_GAP_BOUNDS_US;

	return kw_slot(b, KW_GAP_SLOTS, us);
}

#endif /* KW_HIST_H */
