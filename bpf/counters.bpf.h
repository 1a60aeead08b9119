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

/*
 * Only the programs of the generation the agent handed over to count: at a restart the new
 * programs attach while the last run's (their links pinned) still count, and one store of
 * KW_GLOBAL_ACTIVE moves the counting from those to these, with no gap and no overlap.
 */
static __always_inline bool in_charge(void)
{
	__u64 *g = global(KW_GLOBAL_ACTIVE);

	return g && *g == cfg_gen;
}

#endif /* KW_COUNTERS_BPF_H */
