/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The upstream slot allocator: an upstream key to its slot in kw_counters, through a
 * small per-CPU cache of recently used upstreams, then the kw_upstreams hash, creating the
 * slot on first use from the agent's freed slots or fresh ones.
 *
 * Uses the maps kw_slot_cache, kw_upstreams, kw_free_slots and kw_meta and the rodata
 * cfg_capacity (keepwatch.bpf.c); counters.bpf.h.
 */
#ifndef KW_SLOTS_BPF_H
#define KW_SLOTS_BPF_H

static __always_inline bool same_key(const struct kw_key *a, const struct kw_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] &&
	       x[5] == y[5];
}

/*
 * The upstream's slot, created on first use: a slot evicted by the agent, else a fresh
 * one. When none is left the counts go to the direction's overflow slot.
 */
static __u32 upstream_slot_slow(const struct kw_key *key)
{
	__u32 *p, idx, zero = 0;
	struct kw_meta *m;

	p = bpf_map_lookup_elem(&kw_upstreams, key);
	if (p)
		return *p;
	if (bpf_map_pop_elem(&kw_free_slots, &idx)) {
		m = bpf_map_lookup_elem(&kw_meta, &zero);
		if (!m)
			return key->direction;
		idx = __sync_fetch_and_add(&m->next_slot, 1);
		if (idx >= cfg_capacity) {
			count_error(KW_ERR_UPSTREAMS_FULL);
			return key->direction;
		}
	}
	if (bpf_map_update_elem(&kw_upstreams, key, &idx, BPF_NOEXIST)) {
		/* Another CPU created it first: give the slot back and use theirs. */
		bpf_map_push_elem(&kw_free_slots, &idx, 0);
		p = bpf_map_lookup_elem(&kw_upstreams, key);
		if (p)
			return *p;
		count_error(KW_ERR_UPSTREAMS_FULL);
		return key->direction;
	}
	return idx;
}

static __always_inline __u32 upstream_slot(const struct kw_key *key)
{
	__u32 way = (key->direction ^ key->port ^ key->addr[15]) & (SLOT_CACHE_WAYS - 1);
	struct kw_slot_cache *e;
	__u32 idx, gen;
	__u64 *g;

	e = bpf_map_lookup_elem(&kw_slot_cache, &way);
	g = global(KW_GLOBAL_GEN);
	if (!e || !g)
		return upstream_slot_slow(key);
	gen = *g;
	if (e->gen == gen && same_key(&e->key, key))
		return e->idx;
	idx = upstream_slot_slow(key);
	e->key = *key;
	e->idx = idx;
	e->gen = gen;
	return idx;
}

#endif /* KW_SLOTS_BPF_H */
