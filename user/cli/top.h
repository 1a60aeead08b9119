/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch top`: samples of the agent's /api/v1/upstreams document,
 * the figures of one upstream between two samples (rates per second that never go
 * negative, whatever resets the counters), the filter, the order, and the lines of the
 * screen fitted to a terminal width. No I/O here: the screen loop is in top_term.c.
 */
#ifndef KW_CLI_TOP_H
#define KW_CLI_TOP_H

#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>
#include "cli/stat.h"
#include "lib/addr.h"

/* The counts top reads of an upstream; TW and ACTIVE are gauges, the others counters. */
enum kw_top_count {
	KW_TC_CONN,   /* conn */
	KW_TC_REQ,    /* req */
	KW_TC_REUSE,  /* reuse */
	KW_TC_RACE,   /* race_server + race_client */
	KW_TC_RST,    /* every rst_sent_* and rst_rcvd_* */
	KW_TC_TW,     /* time_wait: sockets now */
	KW_TC_ACTIVE, /* active: connections open now */
	KW_TC_MAX
};

/* The columns one can sort by, in screen order after DIR. */
enum kw_top_col {
	KW_TOP_PEER, /* direction, peer, port, namespace: ascending */
	KW_TOP_CONN,
	KW_TOP_REQ,
	KW_TOP_REUSE,
	KW_TOP_RACE,
	KW_TOP_RST,
	KW_TOP_TW,
	KW_TOP_ACTIVE,
	KW_TOP_NCOLS
};

struct kw_top_row {
	__u64 now[KW_TC_MAX];	/* totals since the agent started; gauges as sampled */
	__u64 delta[KW_TC_MAX]; /* counters: increase since the previous sample */
	double window;		/* s between the two samples; 0 when there was none */
	__u64 netns_inode;
	const char *dir;	   /* "out", "in", or "?" */
	char peer[KW_ADDR_STRLEN]; /* as the agent wrote it */
	char netns[64];		   /* cut to 63 bytes */
	__u16 port;
};

/* One answer of the agent: its rows in key order (direction, peer, port, namespace). */
struct kw_top_sample {
	double uptime; /* s, the agent's uptime_seconds */
	double taken;  /* s, CLOCK_MONOTONIC of the client when it arrived */
	struct kw_top_row *rows;
	size_t n;
};

/*
 * Read doc into s (kw_top_sample_free() it). -EPROTONOSUPPORT for a version other than
 * 1, -EPROTO for a document of the wrong shape, -ENOMEM.
 */
int kw_top_sample_from_json(const json_t *doc, double taken, struct kw_top_sample *s);
void kw_top_sample_free(struct kw_top_sample *s);

/*
 * Fill cur's deltas and windows from prev (NULL: the first sample, no rates). The window
 * is the agent's uptime between both, or the client's clock when the agent restarted.
 * A counter lower than before was reset (agent restarted, upstream evicted and seen
 * again): its increase is its new value, as Prometheus' rate() takes it. An upstream new
 * since prev counts all of its value.
 */
void kw_top_rates(struct kw_top_sample *cur, const struct kw_top_sample *prev);

/*
 * What a column shows for a row: rates per second (totals: 0) or totals (1); REUSE% is
 * the share of requests that reused a connection in that window (or overall), TW and
 * ACTIVE the gauges. NAN where there is nothing to show (no previous sample, no request).
 */
double kw_top_value(const struct kw_top_row *r, enum kw_top_col col, int totals);

/* The column whose --sort name is name; -EINVAL if none. */
int kw_top_parse_sort(const char *name, enum kw_top_col *col);
const char *kw_top_sort_name(enum kw_top_col col);
/* Its header: "REQ/s", "REQ" with totals. */
const char *kw_top_col_header(enum kw_top_col col, int totals);

/*
 * 1 if one of the globs matches the row's peer, "peer:port" ("[peer]:port" for IPv6),
 * namespace or direction ("out", "in"), or there are no globs.
 */
int kw_top_match(const struct kw_top_row *r, const struct kw_globs *g);

/* The order of the screen. */
struct kw_top_order {
	enum kw_top_col col;
	int reverse; /* smallest first (PEER: descending) */
	int totals;  /* sort by the totals rather than the rates */
};

/*
 * The rows of s that match g, in order, into out (room for s->n); returns how many. Ties
 * (and NAN, always last) fall back to the most requests, then the key.
 */
size_t kw_top_select(const struct kw_top_sample *s, const struct kw_globs *g,
		     const struct kw_top_order *o, const struct kw_top_row **out);

/* Where the columns go in a line of a given width. */
struct kw_top_layout {
	int width; /* the line's columns at most */
	int peer;  /* the peer column: fits the longest peer, if there is room */
	int netns; /* 0: no namespace column (not enough room) */
	int x[KW_TOP_NCOLS], w[KW_TOP_NCOLS]; /* each sortable column's start and width */
};

/* Smallest width with every column (the peer cut); narrower lines are cut at the edge. */
#define KW_TOP_WIDTH_MIN 64

void kw_top_layout(const struct kw_top_row *const *rows, size_t n, int width,
		   struct kw_top_layout *l);

/* Lines without newline, at most l->width columns; 0 or -ENOSPC if out is too small. */
int kw_top_format_header(const struct kw_top_layout *l, int totals, char *out, size_t len);
int kw_top_format_row(const struct kw_top_row *r, const struct kw_top_layout *l, int totals,
		      char *out, size_t len);

/* What the title line says. */
struct kw_top_status {
	double uptime;	     /* s, the agent's */
	double window;	     /* s; 0 before the second sample */
	size_t shown, total; /* upstreams shown and known */
	struct kw_top_order order;
	const char *filter; /* as given, or NULL */
};

/* "up 1h02m  window 1.000 s  3/12 upstreams  by REQ/s  filter 10.*" */
int kw_top_format_title(const struct kw_top_status *st, int width, char *out, size_t len);

/*
 * A figure in at most 6 columns: "-" for NAN, integers up to 99999 (totals: 999999) in
 * full, rates under 100 with one decimal, then k, M, G, T, P, E suffixes.
 */
void kw_top_fmt_num(double v, int rate, char *out, size_t len);

/* --interval: seconds, at most 3 decimals ("1", "0.5"); 0, -EINVAL or -ERANGE. */
#define KW_TOP_INTERVAL_MIN 0.1
#define KW_TOP_INTERVAL_MAX 3600.0
int kw_top_parse_interval(const char *s, double *out);

#endif /* KW_CLI_TOP_H */
