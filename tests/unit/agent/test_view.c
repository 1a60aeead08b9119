// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The exposition view: inbound peers beyond the per-port limit folded into peer="*" and
 * every counter's total over the page still the total over the peers, exactly (in the
 * records and on the rendered page); histograms summed per group, or per peer; the
 * series the view counts those the page has; assignments kept from one scrape to the
 * next and evicted peers' counts kept in the sums; the series budget, down to collapsing
 * a direction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "lib/addr.h"
#include "agent/metrics.h"
#include "agent/view.h"

/* A population: peers of (direction, port); addresses numbered from base. */
struct pop {
	unsigned int dir, port, n, base;
};

static void fill(struct kw_upstream *u, unsigned int dir, unsigned int port, unsigned int a)
{
	unsigned int k;

	memset(u, 0, sizeof(*u));
	u->key.direction = dir;
	u->key.family = KW_AF_INET;
	u->key.port = port;
	u->key.netns = 7;
	kw_addr_v4mapped(htonl(0x0a000000u + a), u->key.addr);
	u->val[KW_F_CONN] = 1 + a % 13;
	u->val[KW_F_REQ] = 3 * (1 + a % 13) + a % 5;
	u->val[KW_F_REUSE] = u->val[KW_F_REQ] - u->val[KW_F_CONN];
	u->val[KW_F_CLOSED_PEER_FIN] = u->val[KW_F_CONN] - (a % 2);
	u->val[KW_F_ACTIVE] = a % 2;
	u->val[KW_F_TIME_WAIT] = a % 3 == 0;
	if (a % 17 == 0)
		u->val[KW_F_RST_SENT_TCP_FLAGS] = a;
	if (a % 29 == 0)
		u->val[KW_F_CF_ETIMEDOUT] = 2;
	for (k = 0; k < KW_H_MAX; k++) {
		u->hist[k][a % kw_hists[k].nslots] = 1 + a % 3;
		u->hist_sum[k] = 0.5 * (1 + a % 3);
	}
}

static int by_key(const void *a, const void *b)
{
	return kw_key_cmp(&((const struct kw_upstream *)a)->key,
			  &((const struct kw_upstream *)b)->key);
}

/* A collected snapshot: the populations and the two overflow upstreams, sorted by key. */
static void make(struct kw_snapshot *s, const struct pop *p, unsigned int np)
{
	unsigned int i, j, n = 2;

	for (i = 0; i < np; i++)
		n += p[i].n;
	memset(s, 0, sizeof(*s));
	assert_int_equal(kw_snapshot_alloc(s, n), 0);
	for (i = 0, n = 0; i < np; i++)
		for (j = 0; j < p[i].n; j++)
			fill(&s->u[n++], p[i].dir, p[i].port, p[i].base + j);
	s->u[n].key.direction = KW_DIR_INBOUND;
	s->u[n + 1].key.direction = KW_DIR_OUTBOUND;
	s->u[n + 1].val[KW_F_CONN] = 3;
	s->n = n + 2;
	qsort(s->u, s->n, sizeof(*s->u), by_key);
}

/* Totals of every field, and of every histogram slot, over a snapshot's records. */
struct totals {
	__u64 val[KW_F_MAX];
	__u64 hist[KW_H_MAX][KW_HIST_MAXSLOTS];
};

static void totals(const struct kw_upstream *u, size_t n, struct totals *t, int hists)
{
	size_t i;
	unsigned int f, k, j;

	for (i = 0; i < n; i++) {
		for (f = 0; f < KW_F_MAX; f++)
			t->val[f] += u[i].val[f];
		for (k = 0; hists && k < KW_H_MAX; k++)
			for (j = 0; j < KW_HIST_MAXSLOTS; j++)
				t->hist[k][j] += u[i].hist[k][j];
	}
}

static void assert_same_totals(const struct totals *a, const struct totals *b)
{
	unsigned int f, k, j;

	for (f = 0; f < KW_F_MAX; f++)
		if (a->val[f] != b->val[f])
			fail_msg("%s: actual %llu, expected %llu", kw_fields[f].field,
				 (unsigned long long)a->val[f], (unsigned long long)b->val[f]);
	for (k = 0; k < KW_H_MAX; k++)
		for (j = 0; j < KW_HIST_MAXSLOTS; j++)
			if (a->hist[k][j] != b->hist[k][j])
				fail_msg("%s slot %u: actual %llu, expected %llu",
					 kw_hists[k].field, j, (unsigned long long)a->hist[k][j],
					 (unsigned long long)b->hist[k][j]);
}

/* The view's totals (its histograms per group or per record) against the snapshot's. */
static void check_exact(const struct kw_snapshot *before, const struct kw_snapshot *view)
{
	struct totals want = { 0 }, got = { 0 };

	totals(before->u, before->n, &want, 1);
	totals(view->u, view->n, &got, !view->hist_by_group);
	/* the groups' val is zero: the field totals come from the records alone */
	if (view->hist_by_group)
		totals(view->groups, view->ngroups, &got, 1);
	assert_same_totals(&got, &want);
}

static struct kw_snapshot copy_of(const struct kw_snapshot *s)
{
	struct kw_snapshot c = *s;

	assert_int_equal(kw_snapshot_alloc(&c, s->n), 0);
	memcpy(c.u, s->u, s->n * sizeof(*s->u));
	c.groups = NULL;
	return c;
}

static const struct kw_upstream *find(const struct kw_snapshot *s, unsigned int dir,
				      unsigned int port, int folded, unsigned int a)
{
	__u8 addr[16];
	size_t i;

	kw_addr_v4mapped(htonl(0x0a000000u + a), addr);
	for (i = 0; i < s->n; i++) {
		const struct kw_upstream *u = &s->u[i];

		if (u->key.direction != dir || u->key.port != port)
			continue;
		if (folded ? (u->flags & KW_UP_FOLDED) :
			     !u->flags && !memcmp(u->key.addr, addr, 16))
			return u;
	}
	return NULL;
}

/* Lines of the page that are samples of per-upstream families; the sum of one family. */
static size_t page_series(const char *page, const char *family, double *sum)
{
	const char *p = page, *nl;
	size_t n = 0, flen = family ? strlen(family) : 0;

	*sum = 0;
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == '#')
			continue;
		if (!strchr(p, '{') || strchr(p, '{') > nl)
			continue; /* the agent's own: no labels */
		if (!strncmp(p, "keepwatch_", 10) && strstr(p, "direction=\"") &&
		    strstr(p, "direction=\"") < nl && strncmp(p, "keepwatch_peers_folded", 22))
			n++;
		if (family && !strncmp(p, family, flen) && p[flen] == '{') {
			const char *v = nl;

			while (v > p && v[-1] != ' ')
				v--;
			*sum += strtod(v, NULL);
		}
		if (!nl[1])
			break;
	}
	return n;
}

static const struct pop population[] = {
	{ KW_DIR_INBOUND, 80, 250, 1000 },   /* clients of one port: 150 folded */
	{ KW_DIR_INBOUND, 81, 20, 5000 },    /* another port, under the limit */
	{ KW_DIR_OUTBOUND, 8080, 30, 9000 }, /* backends: never folded by the limit */
};

static void test_folds_beyond_limit_exactly(void **state)
{
	struct kw_view_opts o = { .max_peers_per_port = 100, .max_series = 1000000 };
	struct kw_snapshot s, v;
	struct kw_view *view = kw_view_new(&o);
	struct kw_buf page;
	const struct kw_upstream *star;
	double sum, want = 0;
	size_t i;

	(void)state;
	assert_non_null(view);
	make(&s, population, 3);
	v = copy_of(&s);
	assert_int_equal(kw_view_apply(view, &v), 0);
	check_exact(&s, &v);
	/* 100 + 1 "*" on port 80, 20 on 81, 30 outbound, 2 overflow */
	assert_int_equal(v.n, 153);
	assert_int_equal(v.peers_folded[KW_DIR_INBOUND], 150);
	assert_int_equal(v.peers_folded[KW_DIR_OUTBOUND], 0);
	star = find(&v, KW_DIR_INBOUND, 80, 1, 0);
	assert_non_null(star);
	assert_int_equal(star->folded, 150);
	assert_null(find(&v, KW_DIR_INBOUND, 81, 1, 0));
	/* histograms: one group per port and direction, and the overflow ones, no peer */
	assert_true(v.hist_by_group);
	assert_int_equal(v.ngroups, 5);
	/* the page: its totals, its series as the view counted them */
	kw_buf_init(&page);
	assert_int_equal(kw_metrics_render(&v, &page), 0);
	for (i = 0; i < s.n; i++)
		want += s.u[i].val[KW_F_REQ];
	assert_int_equal(page_series(page.data, "keepwatch_requests_total", &sum),
			 kw_view_series(view));
	assert_true(sum == want);
	page_series(page.data, "keepwatch_requests_per_connection_count", &sum);
	for (want = 0, i = 0; i < s.n; i++) {
		unsigned int j;

		for (j = 0; j < KW_REQS_SLOTS; j++)
			want += s.u[i].hist[KW_H_REQS_LOCAL][j] + s.u[i].hist[KW_H_REQS_PEER][j];
	}
	assert_true(sum == want);
	assert_non_null(strstr(page.data,
			       "\nkeepwatch_requests_per_connection_count{direction="
			       "\"inbound\",port=\"80\",netns=\"7\",closed_by=\"local\"}"));
	assert_non_null(strstr(page.data, "peer=\"*\",port=\"80\""));
	assert_null(strstr(page.data, "_bucket{direction=\"inbound\",peer="));
	assert_non_null(strstr(page.data, "\nkeepwatch_peers_folded{direction=\"inbound\"} 150\n"));
	printf("%zu peers: %zu series, %zu bytes\n", s.n, kw_view_series(view), page.len);
	kw_buf_free(&page);
	/* 25 series an upstream at most, by default */
	assert_true(kw_view_series(view) <= 25 * (s.n - 2));
	kw_snapshot_free(&v);
	kw_snapshot_free(&s);
	kw_view_free(view);
}

static void test_per_peer_histograms(void **state)
{
	struct kw_view_opts o = { .max_peers_per_port = 100,
				  .max_series = 1000000,
				  .per_peer_hists = 1 };
	struct kw_view *view = kw_view_new(&o);
	struct kw_snapshot s, v;
	struct kw_buf page;
	double sum;

	(void)state;
	make(&s, population, 3);
	v = copy_of(&s);
	assert_int_equal(kw_view_apply(view, &v), 0);
	assert_false(v.hist_by_group);
	assert_null(v.groups);
	check_exact(&s, &v); /* the "*" record's histograms: its peers' */
	kw_buf_init(&page);
	assert_int_equal(kw_metrics_render(&v, &page), 0);
	assert_int_equal(page_series(page.data, NULL, &sum), kw_view_series(view));
	assert_non_null(strstr(page.data, "_bucket{direction=\"inbound\",peer=\"*\",port=\"80\""));
	kw_buf_free(&page);
	kw_snapshot_free(&v);
	kw_snapshot_free(&s);
	kw_view_free(view);
}

/* A peer shown stays shown, one folded stays folded; evicted ones stay in the sums. */
static void test_sticky_and_evicted(void **state)
{
	struct kw_view_opts o = { .max_peers_per_port = 3, .max_series = 1000000 };
	static const struct pop first[] = { { KW_DIR_INBOUND, 80, 5, 100 } };
	/* the quietest of the first five is gone, three new ones came, all busier */
	static const struct pop second[] = { { KW_DIR_INBOUND, 80, 4, 101 },
					     { KW_DIR_INBOUND, 80, 3, 112 } };
	struct kw_view *view = kw_view_new(&o);
	struct kw_snapshot s, v, s2, v2;
	const struct kw_upstream *star;
	int shown[200] = { 0 };
	__u64 star_req, star_conn, want;
	struct kw_buf page;
	unsigned int a;
	double sum;
	size_t i;

	(void)state;
	make(&s, first, 1);
	v = copy_of(&s);
	assert_int_equal(kw_view_apply(view, &v), 0);
	check_exact(&s, &v);
	for (a = 100; a < 105; a++)
		shown[a] = find(&v, KW_DIR_INBOUND, 80, 0, a) != NULL;
	assert_int_equal(v.peers_folded[KW_DIR_INBOUND], 2);
	star = find(&v, KW_DIR_INBOUND, 80, 1, 0);
	star_req = star->val[KW_F_REQ];
	star_conn = star->val[KW_F_CONN];
	/* busiest first: 103, 102 and 101 shown (fill(): 104 is the quietest) */
	assert_true(shown[103] && shown[102] && shown[101] && !shown[100] && !shown[104]);
	/* 100 evicted (folded): its counts stay in the "*" upstream */
	for (i = 0; i < s.n; i++)
		if (find(&s, KW_DIR_INBOUND, 80, 0, 100) == &s.u[i])
			kw_view_evicted(view, &s.u[i], 1);
	make(&s2, second, 2);
	v2 = copy_of(&s2);
	assert_int_equal(kw_view_apply(view, &v2), 0);
	for (a = 101; a < 105; a++)
		if ((find(&v2, KW_DIR_INBOUND, 80, 0, a) != NULL) != shown[a])
			fail_msg("peer %u: shown %d before, not now", a, shown[a]);
	for (a = 112; a < 115; a++)
		assert_null(find(&v2, KW_DIR_INBOUND, 80, 0, a)); /* no room: folded */
	star = find(&v2, KW_DIR_INBOUND, 80, 1, 0);
	assert_non_null(star);
	assert_int_equal(star->folded, 4);
	/* 101 and the three new ones now, and 100's counts kept */
	assert_true(star->val[KW_F_REQ] >= star_req);
	assert_true(star->val[KW_F_CONN] >= star_conn);
	want = find(&s, KW_DIR_INBOUND, 80, 0, 100)->val[KW_F_REQ];
	for (a = 101; a < 115; a++) {
		const struct kw_upstream *u = find(&s2, KW_DIR_INBOUND, 80, 0, a);

		if (u && !find(&v2, KW_DIR_INBOUND, 80, 0, a))
			want += u->val[KW_F_REQ];
	}
	assert_int_equal(star->val[KW_F_REQ], want);
	/* the page, with an evicted peer's counts in its sums, has the series counted */
	kw_buf_init(&page);
	assert_int_equal(kw_metrics_render(&v2, &page), 0);
	assert_int_equal(page_series(page.data, NULL, &sum), kw_view_series(view));
	kw_buf_free(&page);
	kw_snapshot_free(&v);
	kw_snapshot_free(&s);
	kw_snapshot_free(&v2);
	kw_snapshot_free(&s2);
	kw_view_free(view);
}

/* Over the budget: inbound peers folded first, then outbound, then a direction collapsed. */
static void test_budget(void **state)
{
	static const struct pop many_ports[] = { { KW_DIR_INBOUND, 80, 300, 1000 },
						 { KW_DIR_OUTBOUND, 8080, 200, 3000 } };
	struct kw_view_opts o = { .max_peers_per_port = 1000, .max_series = 5000 };
	struct kw_view *view = kw_view_new(&o);
	struct kw_snapshot s, v;
	struct kw_buf page;
	double sum;
	size_t i;

	(void)state;
	make(&s, many_ports, 2);
	v = copy_of(&s);
	assert_int_equal(kw_view_apply(view, &v), 0);
	check_exact(&s, &v);
	assert_true(kw_view_series(view) <= o.max_series);
	assert_true(v.peers_folded[KW_DIR_INBOUND] > 0);
	assert_int_equal(v.peers_folded[KW_DIR_OUTBOUND], 0); /* inbound sufficed */
	kw_buf_init(&page);
	assert_int_equal(kw_metrics_render(&v, &page), 0);
	assert_int_equal(page_series(page.data, NULL, &sum), kw_view_series(view));
	kw_buf_free(&page);
	kw_snapshot_free(&v);
	kw_snapshot_free(&s);
	kw_view_free(view);

	/* 600 backends on as many ports: only collapsing outbound fits 1000 series */
	o.max_series = KW_VIEW_SERIES_MIN;
	view = kw_view_new(&o);
	memset(&s, 0, sizeof(s));
	assert_int_equal(kw_snapshot_alloc(&s, 602), 0);
	for (i = 0; i < 600; i++)
		fill(&s.u[i], KW_DIR_OUTBOUND, 10000 + i, 1 + i);
	s.u[600].key.direction = KW_DIR_INBOUND;
	s.u[601].key.direction = KW_DIR_OUTBOUND;
	s.n = 602;
	qsort(s.u, s.n, sizeof(*s.u), by_key);
	v = copy_of(&s);
	assert_int_equal(kw_view_apply(view, &v), 0);
	check_exact(&s, &v);
	assert_true(kw_view_series(view) <= o.max_series);
	assert_int_equal(v.peers_folded[KW_DIR_OUTBOUND], 600);
	kw_buf_init(&page);
	assert_int_equal(kw_metrics_render(&v, &page), 0);
	assert_int_equal(page_series(page.data, NULL, &sum), kw_view_series(view));
	assert_non_null(
		strstr(page.data, "{direction=\"outbound\",peer=\"*\",port=\"*\",netns=\"*\"}"));
	kw_buf_free(&page);
	kw_snapshot_free(&v);
	kw_snapshot_free(&s);
	kw_view_free(view);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folds_beyond_limit_exactly),
		cmocka_unit_test(test_per_peer_histograms),
		cmocka_unit_test(test_sticky_and_evicted),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
