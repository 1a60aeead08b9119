/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The exposition view: what /metrics shows of a snapshot, in a bounded number of series.
 * Histograms are summed per group (direction, network namespace, service port) unless
 * per-peer histograms are asked for. Inbound peers beyond max_peers_per_port of a group
 * are folded into one upstream with peer="*", the exact sum of their counters, and if the
 * page would still exceed max_series, more are folded (see view.c for the order). Which
 * peers are shown and which folded is kept from one scrape to the next (sticky), and the
 * counters of folded peers that are evicted stay in their "*" upstream, so that every
 * counter Prometheus sees only grows. The JSON API and the doctor read the snapshot
 * itself: every peer on its own.
 */
#ifndef KW_VIEW_H
#define KW_VIEW_H

#include <stddef.h>
#include "agent/snapshot.h"

/*
 * Inbound peers of a port shown on their own by default: a tier of balancers or proxies
 * in front of a service is rarely more, and beyond it the peers are clients, whose detail
 * belongs to the JSON API and the doctor (about 16 series each: 1,600 per port).
 */
#define KW_VIEW_PEERS_PER_PORT_DEFAULT 100
/*
 * Per-upstream series of a page at most by default: about 4.7 MB of text (118 bytes a
 * series), so that 10,000 upstreams of any mix fit 5 MB; a proxy's 10,000 (clients folded
 * per port) need 20,000. Beyond it more peers are folded, their counts exact in peer="*".
 * Below the minimum not even every direction collapsed would fit (the overflow upstreams
 * alone are ~520 series).
 */
#define KW_VIEW_SERIES_DEFAULT 40000
#define KW_VIEW_SERIES_MIN     1000

struct kw_view_opts {
	unsigned int max_peers_per_port; /* inbound peers shown on their own per group */
	size_t max_series;		 /* per-upstream series of a page, at most */
	int per_peer_hists;		 /* histograms per upstream, not per group */
};

struct kw_view;

/* NULL with errno set. */
struct kw_view *kw_view_new(const struct kw_view_opts *o);
void kw_view_free(struct kw_view *v);

/*
 * Turns s, a snapshot as the collector takes it (sorted by key), into the view of it: the
 * upstreams shown on their own, then the peer="*" ones, and s->groups. 0 or -errno (s is
 * then as it was). Views must be made in the order their snapshots were taken, and
 * kw_view_evicted told of every eviction in between: the caller serializes them.
 */
int kw_view_apply(struct kw_view *v, struct kw_snapshot *s);

/* Upstreams evicted from the kernel (as last read): their counts stay in the sums. */
void kw_view_evicted(struct kw_view *v, const struct kw_upstream *u, size_t n);

/* Per-upstream series of the last view, as metrics.c writes them. */
size_t kw_view_series(const struct kw_view *v);

#endif /* KW_VIEW_H */
