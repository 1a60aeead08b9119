// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Rows of `keepwatch upstreams` from the agent's JSON, their order and their layout. The
 * fixed columns take 51 of the 79 usable columns; the peer column grows to fit the
 * longest peer and the network namespace gets what is left (at least its header's
 * width), long names cut with a trailing '~'.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/upstreams.h"

#define HDR_FMT	  "%-3s %-*s %5s %-*s %7s %8s %8s %6s %6s"
#define ROW_FMT	  "%-3s %-*s %5u %-*s %7llu %8llu %8llu %6llu %6s"
#define FIXED_W	  (3 + 5 + 7 + 8 + 8 + 6 + 6 + 8) /* fixed columns and the 8 separators */
#define PEER_MIN  4				  /* "PEER" */
#define NETNS_MIN 5				  /* "NETNS" */

static const char *short_dir(const char *direction)
{
	if (!strcmp(direction, "outbound"))
		return "out";
	if (!strcmp(direction, "inbound"))
		return "in";
	return "?";
}

/* A non-negative integer member; a missing one is 0. */
static int get_u64(const json_t *obj, const char *key, __u64 max, __u64 *out)
{
	const json_t *v = json_object_get(obj, key);

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (__u64)json_integer_value(v) > max)
		return -EPROTO;
	*out = (__u64)json_integer_value(v);
	return 0;
}

static int row_from_json(const json_t *up, size_t index, struct kw_up_row *r)
{
	const json_t *dir, *peer, *netns;
	__u64 port;
	int err;

	if (!json_is_object(up))
		return -EPROTO;
	dir = json_object_get(up, "direction");
	peer = json_object_get(up, "peer");
	netns = json_object_get(up, "netns");
	if (!json_is_string(dir) || !json_is_string(peer) || (netns && !json_is_string(netns)))
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	r->index = index;
	r->dir = short_dir(json_string_value(dir));
	snprintf(r->peer, sizeof(r->peer), "%s", json_string_value(peer));
	snprintf(r->netns, sizeof(r->netns), "%s", netns ? json_string_value(netns) : "-");
	err = get_u64(up, "port", 65535, &port);
	err = err ?: get_u64(up, "conn", ~0ULL, &r->conn);
	err = err ?: get_u64(up, "req", ~0ULL, &r->req);
	err = err ?: get_u64(up, "reuse", ~0ULL, &r->reuse);
	err = err ?: get_u64(up, "active", ~0ULL, &r->active);
	r->port = (__u16)port;
	return err;
}

int kw_up_rows_from_json(const json_t *doc, struct kw_up_row **rows, size_t *n)
{
	const json_t *version, *ups, *up;
	struct kw_up_row *v;
	size_t i;
	int err;

	version = json_object_get(doc, "version");
	ups = json_object_get(doc, "upstreams");
	if (!json_is_integer(version))
		return -EPROTO;
	if (json_integer_value(version) != 1)
		return -EPROTONOSUPPORT;
	if (!json_is_array(ups))
		return -EPROTO;
	v = calloc(json_array_size(ups) ?: 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	json_array_foreach(ups, i, up) {
		err = row_from_json(up, i, &v[i]);
		if (err) {
			free(v);
			return err;
		}
	}
	kw_up_sort(v, json_array_size(ups));
	*rows = v;
	*n = json_array_size(ups);
	return 0;
}

static int cmp_u64_desc(__u64 a, __u64 b)
{
	return a < b ? 1 : a > b ? -1 : 0;
}

static int cmp_busiest(const void *pa, const void *pb)
{
	const struct kw_up_row *a = pa, *b = pb;
	int c;

	c = cmp_u64_desc(a->req, b->req);
	c = c ?: cmp_u64_desc(a->conn, b->conn);
	c = c ?: strcmp(a->dir, b->dir);
	c = c ?: strcmp(a->peer, b->peer);
	c = c ?: (a->port > b->port) - (a->port < b->port);
	return c ?: (a->index > b->index) - (a->index < b->index);
}

void kw_up_sort(struct kw_up_row *rows, size_t n)
{
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_busiest);
}

void kw_up_widths(const struct kw_up_row *rows, size_t n, struct kw_up_widths *w)
{
	int netns = NETNS_MIN;
	size_t i;

	w->peer = PEER_MIN;
	for (i = 0; i < n; i++) {
		int p = strlen(rows[i].peer), s = strlen(rows[i].netns);

		if (p > w->peer)
			w->peer = p;
		if (s > netns)
			netns = s;
	}
	/* the namespace column takes what the peers leave, down to its header's width */
	w->netns = KW_UP_LINE_MAX - FIXED_W - w->peer;
	if (w->netns > netns)
		w->netns = netns;
	if (w->netns < NETNS_MIN)
		w->netns = NETNS_MIN;
}

int kw_up_format_header(const struct kw_up_widths *w, char *out, size_t len)
{
	int n;

	n = snprintf(out, len, HDR_FMT, "DIR", w->peer, "PEER", "PORT", w->netns, "NETNS", "CONN",
		     "REQ", "REUSE", "ACTIVE", "REUSE%");
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int kw_up_format_row(const struct kw_up_row *r, const struct kw_up_widths *w, char *out, size_t len)
{
	char netns[sizeof(r->netns)], pct[16];
	int n, width = w->netns;

	if (width >= (int)sizeof(netns))
		width = sizeof(netns) - 1;
	snprintf(netns, sizeof(netns), "%s", r->netns);
	if ((int)strlen(netns) > width) {
		netns[width - 1] = '~';
		netns[width] = '\0';
	}
	if (r->req)
		snprintf(pct, sizeof(pct), "%.1f", (double)r->reuse * 100.0 / (double)r->req);
	else
		snprintf(pct, sizeof(pct), "-");
	n = snprintf(out, len, ROW_FMT, r->dir, w->peer, r->peer, r->port, w->netns, netns,
		     (unsigned long long)r->conn, (unsigned long long)r->req,
		     (unsigned long long)r->reuse, (unsigned long long)r->active, pct);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

json_t *kw_up_select_json(const json_t *doc, const struct kw_up_row *rows, size_t n)
{
	const json_t *ups = json_object_get(doc, "upstreams");
	json_t *copy, *sel;
	size_t i;

	copy = json_deep_copy(doc);
	sel = json_array();
	if (!copy || !sel)
		goto fail;
	for (i = 0; i < n; i++) {
		json_t *up = json_array_get(ups, rows[i].index);

		if (!up || json_array_append_new(sel, json_deep_copy(up)))
			goto fail;
	}
	if (json_object_set_new(copy, "upstreams", sel)) {
		sel = NULL; /* set_new consumed it */
		goto fail;
	}
	return copy;
fail:
	json_decref(sel);
	json_decref(copy);
	errno = ENOMEM;
	return NULL;
}
