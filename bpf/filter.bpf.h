/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The filters the agent sets before load (cfg_netns, cfg_ports): which network
 * namespaces and service ports are followed.
 *
 * Uses the rodata cfg_netns, cfg_n_netns, cfg_ports and cfg_n_ports (keepwatch.bpf.c).
 */
#ifndef KW_FILTER_BPF_H
#define KW_FILTER_BPF_H

/* Whether v is in a filter list of n values; an empty list takes everything. */
static __always_inline bool listed(const volatile __u32 *list, __u32 n, __u32 v)
{
	__u32 i;

	if (!n)
		return true;
	for (i = 0; i < KW_MAX_FILTERS && i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

static __always_inline bool netns_wanted(__u32 netns)
{
	return listed(cfg_netns, cfg_n_netns, netns);
}

static __always_inline bool wanted(const struct kw_key *key)
{
	return netns_wanted(key->netns) && listed(cfg_ports, cfg_n_ports, key->port);
}

#endif /* KW_FILTER_BPF_H */
