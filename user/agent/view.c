// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The exposition view (view.h): which peers /metrics shows on their own and which it
 * folds into peer="*", the histograms summed per group, the series budget, and what is
 * kept between scrapes so that the sums never go back.
 *
 * Each scrape: every peer already assigned keeps its place; new peers are taken busiest
 * first, an inbound one shown while its group shows fewer than max_peers_per_port, an
 * outbound one always. The page's series are then counted exactly (by the rules of
 * metrics.c: a test holds them together) and while they exceed max_series, more peers
 * are folded, for good: inbound before outbound, of the group showing most peers first,
 * new before old, least busy first. Should every peer be folded and the page still be
 * too large (tens of thousands of groups: services on as many ports), a direction is
 * collapsed, outbound first: one upstream and one histogram group with port="*" and
 * netns="*", for the agent's life.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/view.h"

/* What a view keeps of a peer between scrapes. */
struct peer {
	struct kw_key key;
	unsigned char folded; /* 1 folded, 0 shown, GONE evicted */
};

#define GONE 2

/*
 * A group: a direction's peers of one namespace and service port, or all of them once
 * collapsed. The overflow upstream of a direction is a group of its own.
 */
struct gkey {
	struct kw_key key; /* addr zero; netns and port zero when collapsed or overflow */
	unsigned int collapsed;
};

/* The counts of evicted peers a group's sums keep. */
struct base {
	struct gkey g;
	struct kw_upstream star; /* counters (and histograms) of folded peers evicted */
	struct kw_upstream all;	 /* histograms of every peer evicted */
	int has_star;
};

struct kw_view {
	struct kw_view_opts o;
	struct peer *peers; /* sorted by key */
	size_t npeers;
	struct base *base; /* unsorted, few */
	size_t nbase;
	int collapsed[KW_DIR_MAX];
	size_t series;
	__u64 always[KW_DIR_MAX]; /* fields written for every upstream of a direction */
	__u64 sparse;		  /* fields written where not zero */
	__u64 counters;		  /* fields that are counters (evicted counts stay in sums) */
};

_Static_assert(KW_F_MAX <= 64, "a field mask has a bit per field");
_Static_assert(KW_H_MAX <= 16, "a histogram mask has a bit per histogram");

enum { NEW, SHOWN, FOLDED };

/* Per upstream of the snapshot, while a view is made. */
struct row {
	__u64 fmask;	     /* fields not zero */
	__u16 hmask;	     /* histograms not empty */
	unsigned char state; /* NEW, SHOWN, FOLDED */
	unsigned char overflow;
	size_t group; /* index into plan.g */
};

/* Per group, while a view is made. */
struct group {
	struct gkey g;
	size_t shown;	  /* peers shown on their own */
	size_t folded;	  /* peers folded, now */
	__u64 star_fmask; /* of the peer="*" record */
	__u16 star_hmask, hmask;
	int has_star;	   /* a peer="*" record: peers folded now, or evicted */
	struct base *base; /* or NULL */
};

struct plan {
	struct row *r;
	struct group *g;
	size_t ng;
	size_t *order; /* upstreams by group */
};

struct kw_view *kw_view_new(const struct kw_view_opts *o)
{
	struct kw_view *v = calloc(1, sizeof(*v));
	unsigned int f, d;

	if (!v)
		return NULL;
	v->o = *o;
	for (f = 0; f < KW_F_MAX; f++) {
		if (kw_fields[f].type[0] == 'c')
			v->counters |= 1ull << f;
		if (kw_field_sparse(f)) {
			v->sparse |= 1ull << f;
			continue;
		}
		for (d = 0; d < KW_DIR_MAX; d++)
			if (!(f == KW_F_RACE_SERVER && d != KW_DIR_INBOUND) &&
			    !(f == KW_F_RACE_CLIENT && d != KW_DIR_OUTBOUND))
				v->always[d] |= 1ull << f;
	}
	return v;
}

void kw_view_free(struct kw_view *v)
{
	if (!v)
		return;
	free(v->peers);
	free(v->base);
	free(v);
}

size_t kw_view_series(const struct kw_view *v)
{
	return v->series;
}

static size_t field_series(const struct kw_view *v, __u64 fmask, unsigned int dir, int overflow)
{
	if (overflow)
		return KW_F_MAX;
	return __builtin_popcountll(v->always[dir] | (fmask & v->sparse));
}

static size_t hist_series(unsigned int hmask, int overflow)
{
	size_t n = 0;
	unsigned int k;

	for (k = 0; k < KW_H_MAX; k++)
		if (overflow || (hmask & (1u << k)))
			n += kw_hists[k].nslots + 2;
	return n;
}

static __u64 field_mask(const struct kw_upstream *u)
{
	__u64 m = 0;
	unsigned int f;

	for (f = 0; f < KW_F_MAX; f++)
		m |= (__u64) !!u->val[f] << f;
	return m;
}

static unsigned int hist_mask(const struct kw_upstream *u)
{
	unsigned int k, j, m = 0;

	for (k = 0; k < KW_H_MAX; k++)
		for (j = 0; j < kw_hists[k].nslots; j++)
			if (u->hist[k][j]) {
				m |= 1u << k;
				break;
			}
	return m;
}

static struct gkey group_of(const struct kw_view *v, const struct kw_key *k, int overflow)
{
	struct gkey g;

	memset(&g, 0, sizeof(g));
	g.key.direction = k->direction;
	if (overflow)
		return g;
	if (v->collapsed[k->direction & 1]) {
		g.collapsed = 1;
		return g;
	}
	g.key.netns = k->netns;
	g.key.port = k->port;
	return g;
}

static int gkey_cmp(const struct gkey *a, const struct gkey *b)
{
	int c = kw_key_cmp(&a->key, &b->key);

	return c ? c : (a->collapsed > b->collapsed) - (a->collapsed < b->collapsed);
}

static int by_key(const void *a, const void *b)
{
	return kw_key_cmp(&((const struct peer *)a)->key, &((const struct peer *)b)->key);
}

static struct peer *find_peer(const struct kw_view *v, const struct kw_key *k)
{
	struct peer p = { .key = *k };

	return bsearch(&p, v->peers, v->npeers, sizeof(p), by_key);
}

/* qsort has no context: the snapshot and plan being sorted, one view at a time. */
static const struct kw_snapshot *sort_s;
static const struct plan *sort_p;
static const struct kw_view *sort_v;

static int by_group(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	struct gkey x = group_of(sort_v, &sort_s->u[i].key, sort_p->r[i].overflow);
	struct gkey y = group_of(sort_v, &sort_s->u[j].key, sort_p->r[j].overflow);
	int c = gkey_cmp(&x, &y);

	return c ? c : (i > j) - (i < j);
}

static __u64 busy(const struct kw_upstream *u)
{
	return u->val[KW_F_CONN] + u->val[KW_F_REQ];
}

/* Groups of the snapshot's upstreams (and of the bases), and each upstream's group. */
static int make_groups(struct kw_view *v, const struct kw_snapshot *s, struct plan *p)
{
	size_t i, b;

	free(p->g);
	p->g = calloc(s->n + v->nbase + 1, sizeof(*p->g));
	if (!p->g)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		p->order[i] = i;
	sort_s = s;
	sort_p = p;
	sort_v = v;
	qsort(p->order, s->n, sizeof(*p->order), by_group);
	p->ng = 0;
	for (i = 0; i < s->n; i++) {
		size_t x = p->order[i];
		struct gkey g = group_of(v, &s->u[x].key, p->r[x].overflow);

		if (!p->ng || gkey_cmp(&p->g[p->ng - 1].g, &g))
			p->g[p->ng++].g = g;
		p->r[x].group = p->ng - 1;
	}
	for (b = 0; b < v->nbase; b++) {
		struct gkey g = v->base[b].g;
		size_t k;

		if (v->collapsed[g.key.direction & 1])
			g = group_of(v, &g.key, 0); /* collapsed since */
		for (k = 0; k < p->ng && gkey_cmp(&p->g[k].g, &g); k++)
			;
		if (k == p->ng)
			p->g[p->ng++].g = g;
		/* bases that collapsed into one group: the first stands for all (apply sums) */
		if (!p->g[k].base)
			p->g[k].base = &v->base[b];
		p->g[k].has_star |= v->base[b].has_star;
	}
	return 0;
}

/* The page's per-upstream series with the assignments as they are. */
static size_t count_series(const struct kw_view *v, const struct kw_snapshot *s, struct plan *p)
{
	size_t i, k, n = 0;

	for (k = 0; k < p->ng; k++) {
		struct group *g = &p->g[k];

		g->shown = g->folded = 0;
		g->star_fmask = g->star_hmask = g->hmask = 0;
		g->has_star = 0;
	}
	/* evicted peers' counts: the group's histograms keep them, and "*" its folded ones' */
	for (i = 0; i < v->nbase; i++) {
		struct gkey g = v->base[i].g;

		if (v->collapsed[g.key.direction & 1])
			g = group_of(v, &g.key, 0);
		for (k = 0; k < p->ng; k++) {
			if (gkey_cmp(&p->g[k].g, &g))
				continue;
			p->g[k].hmask |= hist_mask(&v->base[i].all);
			if (!v->base[i].has_star)
				continue;
			p->g[k].has_star = 1;
			p->g[k].star_fmask |= field_mask(&v->base[i].star) & v->counters;
			p->g[k].star_hmask |= hist_mask(&v->base[i].star);
		}
	}
	for (i = 0; i < s->n; i++) {
		const struct row *r = &p->r[i];
		struct group *g = &p->g[r->group];

		g->hmask |= r->hmask;
		if (r->state == FOLDED) {
			g->folded++;
			g->has_star = 1;
			g->star_fmask |= r->fmask;
			g->star_hmask |= r->hmask;
			continue;
		}
		g->shown += !r->overflow;
		n += field_series(v, r->fmask, s->u[i].key.direction, r->overflow);
		if (v->o.per_peer_hists)
			n += hist_series(r->hmask, r->overflow);
	}
	for (k = 0; k < p->ng; k++) {
		const struct group *g = &p->g[k];
		int overflow = !g->g.collapsed && kw_key_is_overflow(&g->g.key);

		if (g->has_star) {
			n += field_series(v, g->star_fmask, g->g.key.direction, 0);
			if (v->o.per_peer_hists)
				n += hist_series(g->star_hmask, 0);
		}
		if (!v->o.per_peer_hists)
			n += hist_series(g->hmask, overflow);
	}
	return n;
}

static int by_busy_desc(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	__u64 x = busy(&sort_s->u[i]), y = busy(&sort_s->u[j]);

	if (x != y)
		return x > y ? -1 : 1;
	return (i > j) - (i < j);
}

/* New peers, busiest first: inbound ones shown while their group has room. */
static int place_new(const struct kw_view *v, const struct kw_snapshot *s, struct plan *p)
{
	size_t i, n = 0, *fresh = malloc((s->n ? s->n : 1) * sizeof(*fresh));

	if (!fresh)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		if (p->r[i].state == NEW)
			fresh[n++] = i;
	sort_s = s;
	qsort(fresh, n, sizeof(*fresh), by_busy_desc);
	for (i = 0; i < s->n; i++)
		if (p->r[i].state == SHOWN && !p->r[i].overflow)
			p->g[p->r[i].group].shown++;
	for (i = 0; i < n; i++) {
		struct row *r = &p->r[fresh[i]];
		struct group *g = &p->g[r->group];

		if (g->g.collapsed || (s->u[fresh[i]].key.direction == KW_DIR_INBOUND &&
				       g->shown >= v->o.max_peers_per_port)) {
			r->state = FOLDED;
			continue;
		}
		r->state = SHOWN;
		g->shown++;
	}
	free(fresh);
	return 0;
}

/* The order in which the budget folds shown peers (view.c's comment). */
static int by_fold_order(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct kw_upstream *x = &sort_s->u[i], *y = &sort_s->u[j];
	size_t gx = sort_p->g[sort_p->r[i].group].shown, gy = sort_p->g[sort_p->r[j].group].shown;

	if (x->key.direction != y->key.direction)
		return x->key.direction == KW_DIR_INBOUND ? -1 : 1;
	if (gx != gy)
		return gx > gy ? -1 : 1;
	if (busy(x) != busy(y))
		return busy(x) < busy(y) ? -1 : 1;
	return (i > j) - (i < j);
}

/*
 * Folds shown peers until the page fits, else collapses a direction; true when something
 * changed that needs the groups made again.
 */
static int fit(struct kw_view *v, const struct kw_snapshot *s, struct plan *p, size_t *series,
	       int *regroup, const unsigned char *was_new)
{
	size_t i, n = 0, *cand, over;
	int err = 0;

	*regroup = 0;
	cand = malloc((s->n ? s->n : 1) * sizeof(*cand));
	if (!cand)
		return -ENOMEM;
	while (*series > v->o.max_series) {
		for (n = 0, i = 0; i < s->n; i++)
			if (p->r[i].state == SHOWN && !p->r[i].overflow)
				cand[n++] = i;
		if (!n)
			break;
		sort_s = s;
		sort_p = p;
		qsort(cand, n, sizeof(*cand), by_fold_order);
		/* new peers first: folding them changes no series Prometheus has seen */
		over = *series - v->o.max_series;
		for (i = 0; i < n && over; i++) {
			size_t x = cand[i];
			const struct kw_upstream *u = &s->u[x];
			size_t cost = field_series(v, p->r[x].fmask, u->key.direction, 0);

			if (!was_new[x])
				continue;
			cost += v->o.per_peer_hists ? hist_series(p->r[x].hmask, 0) : 0;
			p->r[x].state = FOLDED;
			over = cost >= over ? 0 : over - cost;
		}
		for (i = 0; i < n && over; i++) {
			size_t x = cand[i];
			const struct kw_upstream *u = &s->u[x];
			size_t cost = field_series(v, p->r[x].fmask, u->key.direction, 0);

			if (p->r[x].state == FOLDED)
				continue;
			cost += v->o.per_peer_hists ? hist_series(p->r[x].hmask, 0) : 0;
			p->r[x].state = FOLDED;
			over = cost >= over ? 0 : over - cost;
		}
		*series = count_series(v, s, p);
	}
	if (*series > v->o.max_series) {
		unsigned int d = !v->collapsed[KW_DIR_OUTBOUND] ? KW_DIR_OUTBOUND : KW_DIR_INBOUND;

		if (!v->collapsed[d]) {
			v->collapsed[d] = 1;
			for (i = 0; i < s->n; i++)
				if (!p->r[i].overflow && s->u[i].key.direction == d)
					p->r[i].state = FOLDED;
			*regroup = 1;
		}
	}
	free(cand);
	return err;
}

static void add_hists(struct kw_upstream *to, const struct kw_upstream *u)
{
	unsigned int k, j;

	for (k = 0; k < KW_H_MAX; k++) {
		for (j = 0; j < kw_hists[k].nslots; j++)
			to->hist[k][j] += u->hist[k][j];
		to->hist_sum[k] += u->hist_sum[k];
	}
}

static void add_fields(struct kw_upstream *to, const struct kw_upstream *u, __u64 which)
{
	unsigned int f;

	for (f = 0; f < KW_F_MAX; f++)
		if (which & (1ull << f))
			to->val[f] += u->val[f];
}

/* A group's records: its peer="*" upstream and its histograms, evicted counts included. */
static void fill_group(const struct kw_view *v, const struct gkey *g, struct kw_upstream *star,
		       struct kw_upstream *grp)
{
	size_t b;

	memset(star, 0, sizeof(*star));
	memset(grp, 0, sizeof(*grp));
	star->key = grp->key = g->key;
	star->flags = KW_UP_FOLDED | (g->collapsed ? KW_UP_COLLAPSED : 0);
	grp->flags = g->collapsed ? KW_UP_COLLAPSED : 0;
	for (b = 0; b < v->nbase; b++) {
		struct gkey bg = v->base[b].g;

		if (v->collapsed[bg.key.direction & 1])
			bg = group_of(v, &bg.key, 0);
		if (gkey_cmp(&bg, g))
			continue;
		add_fields(star, &v->base[b].star, v->counters);
		add_hists(star, &v->base[b].star);
		add_hists(grp, &v->base[b].all);
	}
}

/* The view's records in s: shown upstreams in their order, then the peer="*" ones. */
static int materialize(struct kw_view *v, struct kw_snapshot *s, const struct plan *p)
{
	struct kw_upstream *star, *grp;
	size_t i, k, w = 0, nstar = 0, *slot;
	__u64 folded[KW_DIR_MAX] = { 0 };

	star = calloc(p->ng ? p->ng : 1, sizeof(*star));
	grp = calloc(p->ng ? p->ng : 1, sizeof(*grp));
	slot = calloc(p->ng ? p->ng : 1, sizeof(*slot));
	if (!star || !grp || !slot) {
		free(star);
		free(grp);
		free(slot);
		return -ENOMEM;
	}
	for (k = 0; k < p->ng; k++)
		fill_group(v, &p->g[k].g, &star[k], &grp[k]);
	for (i = 0; i < s->n; i++) {
		const struct row *r = &p->r[i];
		struct kw_upstream *u = &s->u[i];

		add_hists(&grp[r->group], u);
		if (r->state != FOLDED)
			continue;
		add_fields(&star[r->group], u, ~0ull);
		if (v->o.per_peer_hists)
			add_hists(&star[r->group], u);
		star[r->group].folded++;
		folded[u->key.direction & 1]++;
	}
	for (k = 0; k < p->ng; k++)
		if (p->g[k].has_star)
			slot[nstar++] = k;
	/* shown records moved down over the folded ones; room for the stars after them */
	for (i = 0; i < s->n; i++) {
		if (p->r[i].state == FOLDED)
			continue;
		if (w != i)
			s->u[w] = s->u[i];
		w++;
	}
	if (s->n - w < nstar) {
		struct kw_snapshot bigger = { 0 };

		if (kw_snapshot_alloc(&bigger, w + nstar)) {
			free(star);
			free(grp);
			free(slot);
			return -ENOMEM; /* s is spoilt: the caller frees it */
		}
		memcpy(bigger.u, s->u, w * sizeof(*s->u));
		if (s->u_mapped)
			kw_snapshot_free(
				&(struct kw_snapshot){ .u = s->u, .u_mapped = s->u_mapped });
		else
			free(s->u);
		s->u = bigger.u;
		s->u_mapped = bigger.u_mapped;
	}
	for (k = 0; k < nstar; k++)
		s->u[w + k] = star[slot[k]];
	s->n = w + nstar;
	free(star);
	free(slot);
	free(s->groups);
	s->groups = NULL;
	s->ngroups = 0;
	s->hist_by_group = !v->o.per_peer_hists;
	if (s->hist_by_group) {
		s->groups = grp;
		s->ngroups = p->ng;
	} else {
		free(grp);
	}
	memcpy(s->peers_folded, folded, sizeof(folded));
	return 0;
}

/* The peers of this view, kept for the next one (those gone were evicted or never seen). */
static int remember(struct kw_view *v, const struct kw_snapshot *s, const struct plan *p)
{
	struct peer *peers = malloc((s->n ? s->n : 1) * sizeof(*peers));
	size_t i, n = 0;

	if (!peers)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		if (!p->r[i].overflow)
			peers[n++] = (struct peer){ .key = s->u[i].key,
						    .folded = p->r[i].state == FOLDED };
	free(v->peers);
	v->peers = peers;
	v->npeers = n;
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->r);
	free(p->g);
	free(p->order);
}

int kw_view_apply(struct kw_view *v, struct kw_snapshot *s)
{
	struct plan p = { 0 };
	unsigned char *was_new;
	size_t i, j = 0, series;
	int err, regroup, rounds;

	p.r = calloc(s->n ? s->n : 1, sizeof(*p.r));
	p.order = calloc(s->n ? s->n : 1, sizeof(*p.order));
	was_new = calloc(s->n ? s->n : 1, 1);
	if (!p.r || !p.order || !was_new) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s->n; i++) {
		const struct kw_upstream *u = &s->u[i];
		struct row *r = &p.r[i];

		r->fmask = field_mask(u);
		r->hmask = hist_mask(u);
		r->overflow = kw_upstream_is_overflow(u);
		while (j < v->npeers && kw_key_cmp(&v->peers[j].key, &u->key) < 0)
			j++;
		if (r->overflow)
			r->state = SHOWN;
		else if (j < v->npeers && !kw_key_cmp(&v->peers[j].key, &u->key))
			r->state = v->peers[j].folded ? FOLDED : SHOWN;
		else
			was_new[i] = 1;
		if (!r->overflow && v->collapsed[u->key.direction & 1])
			r->state = FOLDED;
	}
	err = make_groups(v, s, &p);
	if (!err)
		err = place_new(v, s, &p);
	/* at most a regroup per direction collapsed */
	for (rounds = 0; !err && rounds <= KW_DIR_MAX; rounds++) {
		series = count_series(v, s, &p);
		err = fit(v, s, &p, &series, &regroup, was_new);
		if (!err && regroup)
			err = make_groups(v, s, &p);
		if (!regroup)
			break;
	}
	if (!err)
		series = count_series(v, s, &p);
	if (!err)
		err = remember(v, s, &p);
	if (!err)
		err = materialize(v, s, &p);
	if (!err)
		v->series = series;
out:
	free(was_new);
	plan_free(&p);
	return err;
}

static struct base *base_of(struct kw_view *v, const struct gkey *g)
{
	struct base *b;
	size_t i;

	for (i = 0; i < v->nbase; i++)
		if (!gkey_cmp(&v->base[i].g, g))
			return &v->base[i];
	b = realloc(v->base, (v->nbase + 1) * sizeof(*b));
	if (!b)
		return NULL;
	v->base = b;
	b = &v->base[v->nbase++];
	memset(b, 0, sizeof(*b));
	b->g = *g;
	return b;
}

void kw_view_evicted(struct kw_view *v, const struct kw_upstream *u, size_t n)
{
	size_t i, w;

	for (i = 0; i < n; i++) {
		struct peer *p = find_peer(v, &u[i].key);
		struct gkey g;
		struct base *b;

		if (!p || p->folded == GONE || kw_upstream_is_overflow(&u[i]))
			continue; /* in no sum shown yet */
		g = group_of(v, &u[i].key, 0);
		b = base_of(v, &g);
		if (!b)
			continue; /* out of memory: that sum goes back, once */
		add_hists(&b->all, &u[i]);
		if (p->folded) {
			add_fields(&b->star, &u[i], v->counters);
			add_hists(&b->star, &u[i]);
			b->has_star = 1;
		}
		p->folded = GONE;
	}
	/* forgotten: the same key coming back is a new peer */
	for (i = 0, w = 0; i < v->npeers; i++)
		if (v->peers[i].folded != GONE)
			v->peers[w++] = v->peers[i];
	v->npeers = w;
}
