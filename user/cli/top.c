// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * `keepwatch top` without the terminal: samples of the agent's upstreams, the increase of
 * every counter between two of them, the filter and order of the rows, and their layout.
 * The fixed columns take 60 of a line; the peer column grows to fit the longest peer and
 * the namespace column, last, gets what is left (shown from 5 columns on).
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/top.h"
#include "lib/duration.h"
#include "lib/fields.h"

#define PEER_MIN  4 /* "PEER" */
#define NETNS_MIN 5 /* "NETNS" */
#define NUM_W	  6 /* a figure's column, REQ's 7 */

struct col_desc {
	const char *sort;  /* --sort name */
	const char *rate;  /* header in rates mode */
	const char *total; /* header in totals mode */
	int count;	   /* enum kw_top_count, or -1 */
	int gauge;	   /* shows its sampled value in both modes */
	int width;
};

static const struct col_desc cols[KW_TOP_NCOLS] = {
	[KW_TOP_PEER] = { "peer", "PEER", "PEER", -1, 0, 0 },
	[KW_TOP_CONN] = { "conn", "CONN/s", "CONN", KW_TC_CONN, 0, NUM_W },
	[KW_TOP_REQ] = { "req", "REQ/s", "REQ", KW_TC_REQ, 0, NUM_W + 1 },
	[KW_TOP_REUSE] = { "reuse", "REUSE%", "REUSE%", KW_TC_REUSE, 0, NUM_W },
	[KW_TOP_RACE] = { "race", "RACE/s", "RACE", KW_TC_RACE, 0, NUM_W },
	[KW_TOP_RST] = { "rst", "RST/s", "RST", KW_TC_RST, 0, NUM_W },
	[KW_TOP_TW] = { "tw", "TW", "TW", KW_TC_TW, 1, NUM_W },
	[KW_TOP_ACTIVE] = { "active", "ACTIVE", "ACTIVE", KW_TC_ACTIVE, 1, NUM_W },
};

/* DIR, PORT and the figures, with the separators of every column up to ACTIVE. */
#define FIXED_W (3 + 5 + 7 * NUM_W + 1 + 9)

static const char *short_dir(const char *direction)
{
	if (!strcmp(direction, "outbound"))
		return "out";
	if (!strcmp(direction, "inbound"))
		return "in";
	return "?";
}

static __u64 add_sat(__u64 a, __u64 b)
{
	return a + b < a ? ~0ULL : a + b;
}

/* A non-negative integer member added to *sum; a missing one adds 0. */
static int add_u64(const json_t *obj, const char *key, __u64 max, __u64 *sum)
{
	const json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (__u64)json_integer_value(v) > max)
		return -EPROTO;
	*sum = add_sat(*sum, (__u64)json_integer_value(v));
	return 0;
}

static int is_reset_field(const char *field)
{
	return !strncmp(field, "rst_sent_", 9) || !strncmp(field, "rst_rcvd_", 9);
}

static int row_from_json(const json_t *up, struct kw_top_row *r)
{
	const json_t *dir = json_object_get(up, "direction"), *peer = json_object_get(up, "peer"),
		     *netns = json_object_get(up, "netns");
	__u64 port = 0;
	unsigned int f;
	int err;

	if (!json_is_object(up) || !json_is_string(dir) || !json_is_string(peer) ||
	    (netns && !json_is_string(netns)))
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	r->dir = short_dir(json_string_value(dir));
	snprintf(r->peer, sizeof(r->peer), "%s", json_string_value(peer));
	snprintf(r->netns, sizeof(r->netns), "%s", netns ? json_string_value(netns) : "-");
	err = add_u64(up, "port", 65535, &port);
	err = err ?: add_u64(up, "netns_inode", ~0ULL, &r->netns_inode);
	err = err ?: add_u64(up, "conn", ~0ULL, &r->now[KW_TC_CONN]);
	err = err ?: add_u64(up, "req", ~0ULL, &r->now[KW_TC_REQ]);
	err = err ?: add_u64(up, "reuse", ~0ULL, &r->now[KW_TC_REUSE]);
	err = err ?: add_u64(up, "race_server", ~0ULL, &r->now[KW_TC_RACE]);
	err = err ?: add_u64(up, "race_client", ~0ULL, &r->now[KW_TC_RACE]);
	err = err ?: add_u64(up, "time_wait", ~0ULL, &r->now[KW_TC_TW]);
	err = err ?: add_u64(up, "active", ~0ULL, &r->now[KW_TC_ACTIVE]);
	for (f = 0; !err && f < KW_F_MAX; f++)
		if (is_reset_field(kw_fields[f].field))
			err = add_u64(up, kw_fields[f].field, ~0ULL, &r->now[KW_TC_RST]);
	r->port = (__u16)port;
	return err;
}

static int cmp_key(const void *pa, const void *pb)
{
	const struct kw_top_row *a = pa, *b = pb;
	int c;

	c = strcmp(a->dir, b->dir);
	c = c ?: strcmp(a->peer, b->peer);
	c = c ?: (a->port > b->port) - (a->port < b->port);
	c = c ?: (a->netns_inode > b->netns_inode) - (a->netns_inode < b->netns_inode);
	return c ?: strcmp(a->netns, b->netns);
}

int kw_top_sample_from_json(const json_t *doc, double taken, struct kw_top_sample *s)
{
	const json_t *version = json_object_get(doc, "version"),
		     *ups = json_object_get(doc, "upstreams"), *uptime, *up;
	size_t i;
	int err;

	memset(s, 0, sizeof(*s));
	if (!json_is_integer(version))
		return -EPROTO;
	if (json_integer_value(version) != 1)
		return -EPROTONOSUPPORT;
	uptime = json_object_get(doc, "uptime_seconds");
	if (!json_is_array(ups) || (uptime && !json_is_number(uptime)))
		return -EPROTO;
	s->uptime = uptime ? json_number_value(uptime) : 0;
	s->taken = taken;
	s->rows = calloc(json_array_size(ups) ?: 1, sizeof(*s->rows));
	if (!s->rows)
		return -ENOMEM;
	json_array_foreach(ups, i, up) {
		err = row_from_json(up, &s->rows[i]);
		if (err) {
			kw_top_sample_free(s);
			return err;
		}
	}
	s->n = json_array_size(ups);
	if (s->n > 1)
		qsort(s->rows, s->n, sizeof(*s->rows), cmp_key);
	return 0;
}

void kw_top_sample_free(struct kw_top_sample *s)
{
	free(s->rows);
	s->rows = NULL;
	s->n = 0;
}

void kw_top_rates(struct kw_top_sample *cur, const struct kw_top_sample *prev)
{
	double window = 0;
	size_t i;
	int c;

	if (prev) {
		window = cur->uptime - prev->uptime;
		if (!(window > 0)) /* the agent restarted: its uptime began again */
			window = cur->taken - prev->taken;
		if (!(window > 0))
			window = 0;
	}
	for (i = 0; i < cur->n; i++) {
		struct kw_top_row *r = &cur->rows[i];
		const struct kw_top_row *p = NULL;

		memset(r->delta, 0, sizeof(r->delta));
		r->window = window;
		if (!window)
			continue;
		if (prev->n)
			p = bsearch(r, prev->rows, prev->n, sizeof(*r), cmp_key);
		for (c = 0; c < KW_TC_MAX; c++)
			r->delta[c] = p && p->now[c] <= r->now[c] ? r->now[c] - p->now[c] :
								    r->now[c];
	}
}

double kw_top_value(const struct kw_top_row *r, enum kw_top_col col, int totals)
{
	const struct col_desc *d = &cols[col];

	if (col == KW_TOP_PEER || col >= KW_TOP_NCOLS)
		return NAN;
	if (d->gauge)
		return (double)r->now[d->count];
	if (col == KW_TOP_REUSE) {
		const __u64 *v = totals ? r->now : r->delta;

		if ((!totals && !r->window) || !v[KW_TC_REQ])
			return NAN;
		return (double)v[KW_TC_REUSE] * 100.0 / (double)v[KW_TC_REQ];
	}
	if (totals)
		return (double)r->now[d->count];
	if (!r->window)
		return NAN;
	return (double)r->delta[d->count] / r->window;
}

int kw_top_parse_sort(const char *name, enum kw_top_col *col)
{
	int c;

	for (c = 0; c < KW_TOP_NCOLS; c++) {
		if (!strcmp(name, cols[c].sort)) {
			*col = c;
			return 0;
		}
	}
	return -EINVAL;
}

const char *kw_top_sort_name(enum kw_top_col col)
{
	return col < KW_TOP_NCOLS ? cols[col].sort : "?";
}

const char *kw_top_col_header(enum kw_top_col col, int totals)
{
	if (col >= KW_TOP_NCOLS)
		return "?";
	return totals ? cols[col].total : cols[col].rate;
}

int kw_top_match(const struct kw_top_row *r, const struct kw_globs *g)
{
	char hostport[KW_ADDR_STRLEN + 8];
	size_t i;

	if (!g->n)
		return 1;
	snprintf(hostport, sizeof(hostport), strchr(r->peer, ':') ? "[%s]:%u" : "%s:%u", r->peer,
		 r->port);
	if (kw_globs_match(g, r->peer) || kw_globs_match(g, hostport) ||
	    kw_globs_match(g, r->netns) || kw_globs_match(g, r->dir))
		return 1;
	/* "[fd00::2]:80" as typed: its brackets would be a glob's character class */
	for (i = 0; i < g->n; i++)
		if (!strcmp(g->v[i], hostport))
			return 1;
	return 0;
}

/* Descending by value, NAN last; 0 for a tie. */
static int cmp_value(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return a < b ? 1 : a > b ? -1 : 0;
}

static const struct kw_top_order *sort_order; /* qsort has no context argument */

static int cmp_rows(const void *pa, const void *pb)
{
	const struct kw_top_row *a = *(const struct kw_top_row *const *)pa,
				*b = *(const struct kw_top_row *const *)pb;
	const struct kw_top_order *o = sort_order;
	int c = 0;

	if (o->col != KW_TOP_PEER) {
		double va = kw_top_value(a, o->col, o->totals),
		       vb = kw_top_value(b, o->col, o->totals);

		c = cmp_value(va, vb);
		if (o->reverse && !isnan(va) && !isnan(vb))
			c = -c;
		if (c)
			return c;
		c = cmp_value((double)a->now[KW_TC_REQ], (double)b->now[KW_TC_REQ]);
		if (c)
			return c;
	}
	c = cmp_key(a, b);
	return o->col == KW_TOP_PEER && o->reverse ? -c : c;
}

size_t kw_top_select(const struct kw_top_sample *s, const struct kw_globs *g,
		     const struct kw_top_order *o, const struct kw_top_row **out)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		if (kw_top_match(&s->rows[i], g))
			out[n++] = &s->rows[i];
	sort_order = o;
	if (n > 1)
		qsort(out, n, sizeof(*out), cmp_rows);
	sort_order = NULL;
	return n;
}

void kw_top_layout(const struct kw_top_row *const *rows, size_t n, int width,
		   struct kw_top_layout *l)
{
	int peer = PEER_MIN, netns = NETNS_MIN, left, x, c;
	size_t i;

	for (i = 0; i < n; i++) {
		int p = strlen(rows[i]->peer), s = strlen(rows[i]->netns);

		peer = p > peer ? p : peer;
		netns = s > netns ? s : netns;
	}
	memset(l, 0, sizeof(*l));
	l->width = width;
	left = width - FIXED_W;
	l->peer = peer < left ? peer : left;
	if (l->peer < PEER_MIN)
		l->peer = PEER_MIN;
	left -= l->peer + 1; /* the namespace's separator */
	if (left >= NETNS_MIN)
		l->netns = netns < left ? netns : left;
	if (l->netns >= (int)sizeof(rows[0]->netns))
		l->netns = sizeof(rows[0]->netns) - 1;
	/* DIR PEER PORT, then the figures */
	l->x[KW_TOP_PEER] = 4;
	l->w[KW_TOP_PEER] = l->peer;
	x = 4 + l->peer + 1 + 5 + 1;
	for (c = KW_TOP_CONN; c < KW_TOP_NCOLS; c++) {
		l->x[c] = x;
		l->w[c] = cols[c].width;
		x += cols[c].width + 1;
	}
}

/* Text cut to width columns, a trailing '~' marking the cut. */
static void cut(char *dst, size_t len, const char *src, int width)
{
	snprintf(dst, len, "%s", src);
	if (width > 0 && (int)strlen(dst) > width && (size_t)width < len) {
		dst[width - 1] = '~';
		dst[width] = '\0';
	}
}

/* Finish a line: no trailing blanks, at most l->width columns. */
static int finish(const struct kw_top_layout *l, char *out, size_t len, int n)
{
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	if (n > l->width)
		n = l->width > 0 ? l->width : 0;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return 0;
}

int kw_top_format_header(const struct kw_top_layout *l, int totals, char *out, size_t len)
{
	int n, c;

	n = snprintf(out, len, "%-3s %-*s %5s", "DIR", l->peer, "PEER", "PORT");
	for (c = KW_TOP_CONN; c < KW_TOP_NCOLS && n >= 0 && (size_t)n < len; c++)
		n += snprintf(out + n, len - n, " %*s", cols[c].width,
			      kw_top_col_header(c, totals));
	if (l->netns && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - n, " %s", "NETNS");
	return finish(l, out, len, n);
}

int kw_top_format_row(const struct kw_top_row *r, const struct kw_top_layout *l, int totals,
		      char *out, size_t len)
{
	char peer[KW_ADDR_STRLEN], netns[sizeof(r->netns)], num[16];
	int n, c;

	cut(peer, sizeof(peer), r->peer, l->peer);
	n = snprintf(out, len, "%-3s %-*s %5u", r->dir, l->peer, peer, r->port);
	for (c = KW_TOP_CONN; c < KW_TOP_NCOLS && n >= 0 && (size_t)n < len; c++) {
		int rate = !totals && !cols[c].gauge;
		double v = kw_top_value(r, c, totals);

		if (c == KW_TOP_REUSE && !isnan(v))
			snprintf(num, sizeof(num), "%.1f", v); /* 0.0 to 100.0 */
		else
			kw_top_fmt_num(v, rate, num, sizeof(num));
		n += snprintf(out + n, len - n, " %*s", cols[c].width, num);
	}
	if (l->netns && n >= 0 && (size_t)n < len) {
		cut(netns, sizeof(netns), r->netns, l->netns);
		n += snprintf(out + n, len - n, " %s", netns);
	}
	return finish(l, out, len, n);
}

int kw_top_format_title(const struct kw_top_status *st, int width, char *out, size_t len)
{
	struct kw_top_layout l = { .width = width };
	char up[32], window[32];
	int n;

	kw_format_duration(st->uptime, up, sizeof(up));
	if (st->window > 0)
		snprintf(window, sizeof(window), "window %.3f s", st->window);
	else
		snprintf(window, sizeof(window), "first sample");
	n = snprintf(out, len, "up %s  %s  %zu/%zu upstreams  by %s%s%s%s%s", up, window, st->shown,
		     st->total, kw_top_col_header(st->order.col, st->order.totals),
		     st->order.totals ? " totals" : "", st->order.reverse ? " reversed" : "",
		     st->filter ? "  filter " : "", st->filter ? st->filter : "");
	return finish(&l, out, len, n);
}

void kw_top_fmt_num(double v, int rate, char *out, size_t len)
{
	static const char suffix[] = "kMGTPE";
	unsigned int i;

	if (isnan(v) || v < 0) {
		snprintf(out, len, "-");
		return;
	}
	if (!v) {
		snprintf(out, len, "0");
		return;
	}
	if (rate && v < 99.95) {
		snprintf(out, len, "%.1f", v);
		return;
	}
	if (v < (rate ? 99999.5 : 999999.5)) {
		snprintf(out, len, "%.0f", v);
		return;
	}
	for (i = 0; i < sizeof(suffix) - 1; i++) {
		v /= 1000;
		if (v < 99.95) {
			snprintf(out, len, "%.1f%c", v, suffix[i]);
			return;
		}
		if (v < 999.5 || i == sizeof(suffix) - 2) {
			snprintf(out, len, "%.0f%c", v, suffix[i]);
			return;
		}
	}
}

int kw_top_parse_interval(const char *s, double *out)
{
	const char *p = s;
	double v;
	int digits = 0, decimals = 0;

	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			decimals++;
	if (!digits || *p || (p[-1] == '.') || decimals > 3)
		return -EINVAL;
	v = strtod(s, NULL);
	if (v < KW_TOP_INTERVAL_MIN || v > KW_TOP_INTERVAL_MAX)
		return -ERANGE;
	*out = v;
	return 0;
}
