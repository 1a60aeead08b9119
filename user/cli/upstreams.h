/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch upstreams`: turn the agent's /api/v1/upstreams document
 * into table rows sorted busiest first (by requests, then connections) and render them in
 * under 80 columns. No I/O here, so the unit tests feed it literal JSON.
 */
#ifndef KW_CLI_UPSTREAMS_H
#define KW_CLI_UPSTREAMS_H

#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>
#include "lib/addr.h"

/* Widest table line, without its NUL. */
#define KW_UP_LINE_MAX 79

struct kw_up_row {
	__u64 conn, req, reuse, active;
	size_t index;		   /* position in the document's upstreams array */
	const char *dir;	   /* "out", "in", or "?" for a direction this CLI does not know */
	char peer[KW_ADDR_STRLEN]; /* as the agent wrote it */
	char netns[64];		   /* name, "host" or inode; cut to 63 bytes */
	__u16 port;
};

/*
 * Rows of every upstream in doc, sorted busiest first, in *rows (free() them) and *n.
 * -EPROTONOSUPPORT for a version other than 1, -EPROTO for a document of the wrong
 * shape, -ENOMEM.
 */
int kw_up_rows_from_json(const json_t *doc, struct kw_up_row **rows, size_t *n);

/* Busiest first: more requests, then more connections; ties in a fixed order. */
void kw_up_sort(struct kw_up_row *rows, size_t n);

/* Column widths for a set of rows: the peer column fits every peer, netns what is left. */
struct kw_up_widths {
	int peer;
	int netns;
};

void kw_up_widths(const struct kw_up_row *rows, size_t n, struct kw_up_widths *w);

/* The header and one row, without newline; 0 or -ENOSPC if out is too small. */
int kw_up_format_header(const struct kw_up_widths *w, char *out, size_t len);
int kw_up_format_row(const struct kw_up_row *r, const struct kw_up_widths *w, char *out,
		     size_t len);

/*
 * A copy of doc whose upstreams array holds the given rows' upstreams, in the rows' order
 * (for `upstreams -j -n N`). NULL with errno set on failure.
 */
json_t *kw_up_select_json(const json_t *doc, const struct kw_up_row *rows, size_t n);

#endif /* KW_CLI_UPSTREAMS_H */
