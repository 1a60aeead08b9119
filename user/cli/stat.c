// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Counters for `keepwatch stat`, computed from the agent's JSON: per-direction sums of
 * the kw_fields[] table, glob filtering and rendering. The row order is the table's, with
 * every backend (outbound) row before the client (inbound) ones.
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/stat.h"

/* Row block of a direction: backend rows come first. */
static int dir_block(const char *direction)
{
	if (!strcmp(direction, "outbound"))
		return 0;
	if (!strcmp(direction, "inbound"))
		return 1;
	return -1;
}

static void stat_init_rows(struct kw_stat *st)
{
	static const char *const prefix[KW_DIR_MAX] = { "backend_", "client_" };
	unsigned int d, f;

	for (d = 0; d < KW_DIR_MAX; d++) {
		for (f = 0; f < KW_F_MAX; f++) {
			struct kw_stat_row *r = &st->rows[d * KW_F_MAX + f];

			snprintf(r->name, sizeof(r->name), "%s%s", prefix[d], kw_fields[f].field);
			r->value = 0;
			r->rate = 0;
			r->desc = kw_fields[f].desc;
		}
	}
}

/* Add one upstream's figures to the rows of its direction. */
static int stat_add_upstream(struct kw_stat *st, const json_t *up)
{
	const json_t *dir = json_object_get(up, "direction");
	unsigned int f;
	int block;

	if (!json_is_object(up) || !json_is_string(dir))
		return -EPROTO;
	block = dir_block(json_string_value(dir));
	if (block < 0)
		return 0;
	for (f = 0; f < KW_F_MAX; f++) {
		const json_t *v = json_object_get(up, kw_fields[f].field);

		if (!v)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -EPROTO;
		/* saturates: a sum beyond 2^64 - 1 shows as 18446744073709551615 */
		if (__builtin_add_overflow(st->rows[block * KW_F_MAX + f].value,
					   (__u64)json_integer_value(v),
					   &st->rows[block * KW_F_MAX + f].value))
			st->rows[block * KW_F_MAX + f].value = UINT64_MAX;
	}
	return 0;
}

int kw_stat_from_json(const json_t *doc, struct kw_stat *st)
{
	const json_t *version, *uptime, *ups, *up;
	unsigned int i;
	size_t idx;
	int err;

	version = json_object_get(doc, "version");
	uptime = json_object_get(doc, "uptime_seconds");
	ups = json_object_get(doc, "upstreams");
	if (!json_is_integer(version))
		return -EPROTO;
	if (json_integer_value(version) != 1)
		return -EPROTONOSUPPORT;
	if (!json_is_array(ups) || (uptime && !json_is_number(uptime)))
		return -EPROTO;

	stat_init_rows(st);
	st->uptime = uptime ? json_number_value(uptime) : 0;
	if (!isfinite(st->uptime) || st->uptime < 0)
		st->uptime = 0;
	json_array_foreach(ups, idx, up) {
		err = stat_add_upstream(st, up);
		if (err)
			return err;
	}
	for (i = 0; i < KW_STAT_ROWS; i++)
		st->rows[i].rate = st->uptime > 0 ? st->rows[i].value / st->uptime : 0;
	return 0;
}

unsigned int kw_stat_name_width(const struct kw_stat *st, const struct kw_globs *g)
{
	unsigned int i, w = KW_STAT_NAME_MIN;

	for (i = 0; i < KW_STAT_ROWS; i++)
		if (kw_globs_match(g, st->rows[i].name) && strlen(st->rows[i].name) > w)
			w = strlen(st->rows[i].name);
	return w;
}

int kw_stat_format(const struct kw_stat_row *r, unsigned int width, char *out, size_t len)
{
	int n, room;

	n = snprintf(out, len, "%-*s %12llu %10.2f  ", (int)width, r->name,
		     (unsigned long long)r->value, r->rate);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	room = KW_STAT_LINE_MAX - n;
	if (room <= 0) {
		/* a name or value so long that nothing fits after it: no description */
		while (n > 0 && out[n - 1] == ' ')
			out[--n] = '\0';
		return 0;
	}
	if ((size_t)n + snprintf(out + n, len - n, "%.*s", room, r->desc) >= len)
		return -ENOSPC;
	return 0;
}

void kw_globs_init(struct kw_globs *g)
{
	g->v = NULL;
	g->n = 0;
}

static int globs_push(struct kw_globs *g, const char *s, size_t n)
{
	char **v, *copy;

	copy = strndup(s, n);
	if (!copy)
		return -ENOMEM;
	v = realloc(g->v, (g->n + 1) * sizeof(*v));
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	v[g->n++] = copy;
	g->v = v;
	return 0;
}

int kw_globs_add(struct kw_globs *g, const char *list)
{
	const char *p = list, *comma;
	int err;

	for (;;) {
		size_t n;

		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (!n)
			return -EINVAL;
		err = globs_push(g, p, n);
		if (err)
			return err;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

int kw_globs_match(const struct kw_globs *g, const char *name)
{
	unsigned int i;

	if (!g || !g->n)
		return 1;
	for (i = 0; i < g->n; i++)
		if (!fnmatch(g->v[i], name, 0))
			return 1;
	return 0;
}

void kw_globs_free(struct kw_globs *g)
{
	unsigned int i;

	for (i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	kw_globs_init(g);
}

json_t *kw_stat_to_json(const struct kw_stat *st, const struct kw_globs *g)
{
	json_t *doc, *counters;
	unsigned int i;

	counters = json_object();
	if (!counters)
		goto fail;
	for (i = 0; i < KW_STAT_ROWS; i++) {
		const struct kw_stat_row *r = &st->rows[i];
		json_t *c;

		if (!kw_globs_match(g, r->name))
			continue;
		c = json_pack("{s:I, s:f, s:s}", "value", (json_int_t)r->value, "rate", r->rate,
			      "description", r->desc);
		if (!c || json_object_set_new(counters, r->name, c))
			goto fail_counters;
	}
	doc = json_pack("{s:i, s:f, s:o}", "version", 1, "uptime_seconds", st->uptime, "counters",
			counters);
	if (!doc)
		goto fail;
	return doc;
fail_counters:
	json_decref(counters);
fail:
	errno = ENOMEM;
	return NULL;
}
