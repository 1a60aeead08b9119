/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch stat`: sum every kw_fields[] figure of the agent's
 * upstreams document per direction into varnishstat-style counters (backend_<field> for
 * outbound upstreams, client_<field> for inbound ones), filter them with fnmatch globs and
 * render them as lines or as JSON. No I/O here, so the unit tests feed it literal JSON.
 */
#ifndef KW_CLI_STAT_H
#define KW_CLI_STAT_H

#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>
#include "keepwatch.h"
#include "lib/fields.h"

#define KW_STAT_NAME_MAX 48
/* The name column is at least this wide, and as wide as the longest name shown. */
#define KW_STAT_NAME_MIN 24
#define KW_STAT_ROWS	 (KW_DIR_MAX * KW_F_MAX)
/* Longest line kw_stat_format writes, without its NUL: output stays under 80 columns. */
#define KW_STAT_LINE_MAX 79

struct kw_stat_row {
	char name[KW_STAT_NAME_MAX]; /* backend_conn, client_req, ... */
	__u64 value;		     /* sum over the upstreams of one direction */
	double rate;		     /* value / uptime, per second; 0 when uptime is 0 */
	const char *desc;	     /* kw_fields[].desc */
};

struct kw_stat {
	double uptime;			       /* s, the agent's uptime_seconds */
	struct kw_stat_row rows[KW_STAT_ROWS]; /* backend rows, then client rows, table order */
};

/*
 * Fill st from the agent's /api/v1/upstreams document. -EPROTONOSUPPORT for a version
 * other than 1, -EPROTO for a document of the wrong shape (a figure that is not a
 * non-negative integer, no upstreams array). Missing figures count as 0 and upstreams of
 * an unknown direction are skipped, so newer agents still work.
 */
int kw_stat_from_json(const json_t *doc, struct kw_stat *st);

/*
 * "name value rate description" as `%-*s %12llu %10.2f  %s` with the name padded to width
 * (kw_stat_name_width), the description cut so the line fits KW_STAT_LINE_MAX columns.
 * Returns 0 or -ENOSPC if out is too small.
 */
int kw_stat_format(const struct kw_stat_row *r, unsigned int width, char *out, size_t len);

/* fnmatch globs from -f options; an empty set matches every name. */
struct kw_globs {
	char **v;
	unsigned int n;
};

void kw_globs_init(struct kw_globs *g);
/* Add the comma-separated globs of list; -EINVAL for an empty glob, -ENOMEM. */
int kw_globs_add(struct kw_globs *g, const char *list);
/* 1 if name matches one glob or there are none, else 0. */
int kw_globs_match(const struct kw_globs *g, const char *name);
/* The width of the name column for the rows g shows: every value column then aligns. */
unsigned int kw_stat_name_width(const struct kw_stat *st, const struct kw_globs *g);
void kw_globs_free(struct kw_globs *g);

/*
 * {"version": 1, "uptime_seconds": U, "counters": {"backend_conn": {"value": 3,
 * "rate": 0.24, "description": "..."}, ...}} with the rows g matches, in table order.
 * NULL with errno ENOMEM on allocation failure.
 */
json_t *kw_stat_to_json(const struct kw_stat *st, const struct kw_globs *g);

#endif /* KW_CLI_STAT_H */
