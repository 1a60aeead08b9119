/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The filters the agent sets before load (cfg_netns, cfg_ports): which network
 * namespaces and service ports are followed; and the agent's own HTTP port (cfg_self_*),
 * whose scrapes and CLI requests are not upstreams unless asked for (--watch-self).
 *
 * Uses the rodata cfg_netns, cfg_n_netns, cfg_ports, cfg_n_ports and cfg_self_*
 * (keepwatch.bpf.c).
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

/*
 * A connection to the agent itself: inbound on its port in its namespace (its HTTP
 * server), or outbound from there to its address and port (the CLI, a local scraper).
 * Listening on every address, the outbound ones to a loopback address are taken as its.
 */
static __always_inline bool is_self(const struct kw_key *key)
{
	const __u32 *a = (const __u32 *)key->addr;

	if (!cfg_self_port || key->port != cfg_self_port || key->netns != cfg_self_netns)
		return false;
	if (key->direction == KW_DIR_INBOUND)
		return true;
	if (cfg_self_any)
		return key->family == KW_AF_INET ? key->addr[12] == 127 :
						   !a[0] && !a[1] && !a[2] && a[3] == bpf_htonl(1);
	return a[0] == cfg_self_addr[0] && a[1] == cfg_self_addr[1] && a[2] == cfg_self_addr[2] &&
	       a[3] == cfg_self_addr[3];
}

static __always_inline bool wanted(const struct kw_key *key)
{
	return netns_wanted(key->netns) && listed(cfg_ports, cfg_n_ports, key->port) &&
	       !is_self(key);
}

#endif /* KW_FILTER_BPF_H */
