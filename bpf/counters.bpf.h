/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Lookups of the per-upstream counters, the global values and the per-CPU error
 * counters, by index.
 *
 * Uses the maps kw_counters, kw_globals and kw_errors (keepwatch.bpf.c).
 */
#ifndef KW_COUNTERS_BPF_H
#define KW_COUNTERS_BPF_H

static __always_inline __u64 *global(__u32 which)
{
	return bpf_map_lookup_elem(&kw_globals, &which);
}

static __always_inline void count_error(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&kw_errors, &slot);

	if (v)
		*v += 1; /* per-CPU: no atomic needed */
}

static __always_inline struct kw_counters *counters(__u32 idx)
{
	return bpf_map_lookup_elem(&kw_counters, &idx);
}

#endif /* KW_COUNTERS_BPF_H */
