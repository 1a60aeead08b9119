// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Snapshots: their memory, the order of their upstreams, their labels; see snapshot.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "agent/netns.h"
#include "agent/snapshot.h"
#include "lib/addr.h"
#include "lib/numfmt.h"

#define HUGE_PAGE (2ul << 20) /* a PMD's worth with 4 KiB pages (x86-64, arm64) */

/*
 * A snapshot's records, 2 KB an upstream, are written once and then read by every pass
 * over the snapshot. From 2 MB on they get a mapping of their own with huge pages asked
 * for: at 10k upstreams, 10 page faults instead of 4,900 and far fewer TLB misses in
 * the passes after (BENCHMARKS.md has what it saved). Where the kernel has no free huge
 * page it may compact memory first (transparent_hugepage/defrag "madvise", the
 * default) or use small pages. Unmapped whole by kw_snapshot_free: nothing of it stays
 * in the RSS.
 */
int kw_snapshot_alloc(struct kw_snapshot *s, size_t n)
{
	size_t len = n * sizeof(*s->u), map;
	char *p, *start;

	s->u_mapped = 0;
	if (n > (SIZE_MAX - 2 * HUGE_PAGE) / sizeof(*s->u))
		return -ENOMEM;
	if (len < HUGE_PAGE) {
		s->u = calloc(n ? n : 1, sizeof(*s->u));
		return s->u ? 0 : -ENOMEM;
	}
	/* aligned to a huge page: map one more and give back what is before and after */
	len = (len + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	map = len + HUGE_PAGE;
	p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	start = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
	if (start > p)
		munmap(p, start - p);
	if (start + len < p + map)
		munmap(start + len, p + map - (start + len));
	madvise(start, len, MADV_HUGEPAGE); /* advice: without it, small pages */
	s->u = (struct kw_upstream *)start;
	s->u_mapped = len;
	return 0;
}

void kw_snapshot_free(struct kw_snapshot *s)
{
	if (s->u_mapped)
		munmap(s->u, s->u_mapped);
	else
		free(s->u);
	free(s->groups);
	memset(s, 0, sizeof(*s));
}

void kw_upstream_labels(const struct kw_upstream *u, struct kw_upstream_labels *l)
{
	char port[KW_NUM_MAX];
	size_t n;

	l->direction = u->key.direction == KW_DIR_OUTBOUND ? "outbound" : "inbound";
	if (u->flags & KW_UP_COLLAPSED) {
		snprintf(l->peer, sizeof(l->peer), "*");
		snprintf(l->port, sizeof(l->port), "*");
		snprintf(l->netns, sizeof(l->netns), "*");
		return;
	}
	if (kw_upstream_is_overflow(u)) {
		snprintf(l->peer, sizeof(l->peer), "other");
		snprintf(l->port, sizeof(l->port), "other");
		snprintf(l->netns, sizeof(l->netns), "other");
		return;
	}
	if (u->flags & KW_UP_FOLDED)
		snprintf(l->peer, sizeof(l->peer), "*");
	else if (kw_addr_format(u->key.addr, l->peer, sizeof(l->peer)))
		snprintf(l->peer, sizeof(l->peer), "?");
	/* "%u" without printf: this runs for every upstream of every scrape */
	n = kw_fmt_u64(port, u->key.port);
	memcpy(l->port, port, n + 1);
	kw_netns_name(u->key.netns, l->netns, sizeof(l->netns));
}
