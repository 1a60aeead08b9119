// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Renders a snapshot as Prometheus text: every row of the field table as one series per
 * upstream (families grouped, HELP/TYPE once), the histograms, then the agent's own
 * health, modelled on ebpf_exporter's self-metrics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/addr.h"
#include "agent/census.h"
#include "agent/expo.h"
#include "agent/metrics.h"
#include "agent/netns.h"
#include "lib/numfmt.h"

static const char *const error_reasons[KW_ERR_MAX] = {
	[KW_ERR_UPSTREAMS_FULL] = "upstreams_full",
	[KW_ERR_SOCK_STORAGE] = "sock_storage",
	[KW_ERR_FAMILY] = "family",
	[KW_ERR_EVENTS_RATE] = "events_rate_limited",
	[KW_ERR_RINGBUF_FULL] = "ringbuf_full",
	[KW_ERR_CONN_TABLE] = "conn_table_full",
	[KW_ERR_SYN_TABLE] = "syn_table_taken",
};

/*
 * Series of the per-upstream families are written straight into the reader's buffer
 * (the HTTP server's send buffer): at 10k upstreams a scrape is about 650k lines and
 * 90 MB, and each copy, check or printf per sample shows. Once per snapshot
 * (stream_init), each upstream's labels are escaped into one string, what decides which
 * of its lines are written is noted, its histogram sums are formatted, and the page's
 * exact length is added up. Each line is then copied together from pieces of known
 * length, numbers formatted without printf (numfmt.h). HELP/TYPE still go through
 * kw_expo_family, which keeps the family rules.
 */

/* A short string built once per page: a family name with "{", or extra labels. */
struct piece {
	char s[192];
	size_t len;
};

/* The text of one histogram's lines but for the upstream's labels and the numbers. */
struct hist_text {
	struct piece bucket; /* family_bucket{ */
	struct piece le;     /* ,closed_by="local",le=" (the le label after the histogram's) */
	struct piece sum;    /* family_sum{ */
	struct piece count;  /* family_count{ */
	struct piece tail;   /* ,closed_by="local"} */
	struct piece bound[KW_HIST_MAXSLOTS]; /* 0.5"} ... +Inf"} */
	size_t bounds;			      /* the bound pieces' lengths together */
	size_t line_max;		      /* the longest line, labels and value excluded */
};

/* Which upstreams have a line of a field (see skip_field). */
enum field_rule { FR_ALWAYS, FR_SPARSE, FR_INBOUND, FR_OUTBOUND };

/* What the page's lines do not repeat per upstream. */
struct page_text {
	struct piece head[KW_F_MAX], tail[KW_F_MAX]; /* of each field: name{ and labels "} " */
	unsigned char rule[KW_F_MAX];		     /* enum field_rule */
	struct hist_text hist[KW_H_MAX];
};

#define UP_OVERFLOW 0x1 /* the overflow upstream of its direction: every series written */
#define UP_INBOUND  0x2
#define UP_OUTBOUND 0x4

/* Per upstream, made once per snapshot: all the rendering needs but its figures. */
struct up {
	size_t labels;	     /* offset of its labels in render.text */
	__u16 labels_len;    /* direction="..",peer="..",port="..",netns=".." */
	unsigned char flags; /* UP_* */
	__u16 hists;	     /* bit k: histogram k is written */
};
_Static_assert(KW_H_MAX <= 16, "struct up's hists has a bit per histogram");

/* Where a page being written is, so that it can be written in parts (metrics.h). */
struct render {
	struct kw_buf text; /* every upstream's labels, one after the other */
	struct up *up;
	/* the records histograms are written for: s->u, or an exposition view's groups */
	const struct kw_upstream *hu;
	struct up *hup;
	size_t hn;
	/* per histogram, the _sum value of each of its series in page order: length, text */
	struct kw_buf sums[KW_H_MAX];
	size_t sum_at;	/* the next of sums[k] */
	size_t series;	/* per-upstream series of the page */
	unsigned int k; /* the field or histogram being written */
	size_t i;	/* its next upstream */
	int begun;	/* its HELP/TYPE written */
};

/* The reader's buffer, from where the next byte goes to its end. */
struct out {
	char *p, *end;
};

static int piece(struct piece *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int piece(struct piece *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->s, sizeof(p->s), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(p->s))
		return -ENAMETOOLONG; /* a name in the tables is far too long */
	p->len = n;
	return 0;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* A count, as kw_fmt_u64 writes it: most are one digit (histogram buckets). */
static char *put_u64(char *p, __u64 v)
{
	if (v < 10) {
		*p = '0' + v;
		return p + 1;
	}
	return p + kw_fmt_u64(p, v);
}

/* The length put_u64 gives v. */
static size_t len_u64(__u64 v)
{
	return v < 10 ? 1 : kw_len_u64(v);
}

static char *put_piece(char *p, const struct piece *s)
{
	return put(p, s->s, s->len);
}

/*
 * The label values of one upstream, escaped, appended to r->text; without peer for a
 * group's histograms (an exposition view's, snapshot.h).
 */
static int add_labels(struct render *r, struct up *up, const struct kw_upstream *u, int peer)
{
	struct kw_upstream_labels l;
	struct kw_buf *t = &r->text;
	size_t len;

	kw_upstream_labels(u, &l);
	up->labels = t->len;
	kw_buf_puts(t, "direction=\"");
	kw_buf_puts(t, l.direction);
	if (peer) {
		kw_buf_puts(t, "\",peer=\"");
		kw_expo_escape_label(t, l.peer);
	}
	kw_buf_puts(t, "\",port=\"");
	kw_buf_puts(t, l.port);
	kw_buf_puts(t, "\",netns=\"");
	kw_expo_escape_label(t, l.netns);
	kw_buf_puts(t, "\"");
	len = t->len - up->labels;
	if (len > UINT16_MAX)
		return -ENAMETOOLONG; /* cannot be: a peer and a namespace name are short */
	up->labels_len = len;
	return t->err;
}

/*
 * Breakdowns of rare events (resets by reason or state, connect failures by errno, the
 * race side an upstream's direction cannot have), connections adopted or lost at the start
 * (kw_field_sparse()) are written only where they are not
 * zero, and always for the overflow upstream so that every family exists from the
 * start: at 10k upstreams, writing every zero multiplies a scrape by ten.
 */
static enum field_rule field_rule(unsigned int f)
{
	if (f == KW_F_RACE_SERVER)
		return FR_INBOUND;
	if (f == KW_F_RACE_CLIENT)
		return FR_OUTBOUND;
	return kw_field_sparse(f) ? FR_SPARSE : FR_ALWAYS;
}

static int skip_field(unsigned int rule, unsigned int flags, __u64 v)
{
	if (flags & UP_OVERFLOW)
		return 0;
	switch (rule) {
	case FR_SPARSE:
		return !v;
	case FR_INBOUND:
		return !(flags & UP_INBOUND);
	case FR_OUTBOUND:
		return !(flags & UP_OUTBOUND);
	default:
		return 0;
	}
}

/* The labels a field adds after the upstream's, and the closing "} ". */
static int field_tail(struct piece *p, const struct kw_field *fd)
{
	if (fd->lname[1])
		return piece(p, ",%s=\"%s\",%s=\"%s\"} ", fd->lname[0], fd->lvalue[0], fd->lname[1],
			     fd->lvalue[1]);
	if (fd->lname[0])
		return piece(p, ",%s=\"%s\"} ", fd->lname[0], fd->lvalue[0]);
	return piece(p, "} ");
}

static int hist_text(struct hist_text *t, const struct kw_hist_desc *hd)
{
	char v[KW_NUM_MAX];
	unsigned int k;
	int err;

	if (!hd->nslots || hd->nslots > KW_HIST_MAXSLOTS)
		return -EINVAL;
	err = piece(&t->bucket, "%s_bucket{", hd->family);
	if (!err)
		err = piece(&t->sum, "%s_sum{", hd->family);
	if (!err)
		err = piece(&t->count, "%s_count{", hd->family);
	if (!err && hd->lname)
		err = piece(&t->le, ",%s=\"%s\",le=\"", hd->lname, hd->lvalue);
	else if (!err)
		err = piece(&t->le, ",le=\"");
	if (!err && hd->lname)
		err = piece(&t->tail, ",%s=\"%s\"} ", hd->lname, hd->lvalue);
	else if (!err)
		err = piece(&t->tail, "} ");
	t->line_max = t->sum.len > t->count.len ? t->sum.len : t->count.len;
	t->line_max += t->tail.len;
	t->bounds = 0;
	for (k = 0; !err && k < hd->nslots; k++) {
		if (k + 1 < hd->nslots)
			kw_fmt_prom(v, hd->bounds[k]);
		else
			snprintf(v, sizeof(v), "+Inf");
		err = piece(&t->bound[k], "%s\"} ", v);
		if (!err && t->bucket.len + t->le.len + t->bound[k].len > t->line_max)
			t->line_max = t->bucket.len + t->le.len + t->bound[k].len;
		t->bounds += t->bound[k].len;
	}
	return err;
}

static int page_text(struct page_text *pt)
{
	unsigned int k;
	int err = 0;

	for (k = 0; !err && k < KW_F_MAX; k++) {
		err = piece(&pt->head[k], "%s{", kw_fields[k].family);
		if (!err)
			err = field_tail(&pt->tail[k], &kw_fields[k]);
		pt->rule[k] = field_rule(k);
	}
	for (k = 0; !err && k < KW_H_MAX; k++)
		err = hist_text(&pt->hist[k], &kw_hists[k]);
	return err;
}

/* name{labels[,k="v"][,k2="v2"]} value */
static char *field_line(char *p, const struct page_text *pt, unsigned int k, const char *labels,
			size_t labels_len, __u64 v)
{
	p = put_piece(p, &pt->head[k]);
	p = put(p, labels, labels_len);
	p = put_piece(p, &pt->tail[k]);
	p = put_u64(p, v);
	*p++ = '\n';
	return p;
}

/* One upstream's series of a histogram: cumulative buckets, _sum and _count. */
static char *hist_lines(char *p, const struct hist_text *t, unsigned int nslots, const char *labels,
			size_t labels_len, const __u64 *slots, const char *sum, size_t sum_len)
{
	char *prefix = p;
	size_t prefix_len;
	__u64 cum = 0;
	unsigned int k;

	/* the first bucket's family_bucket{labels,le=" is copied for the others */
	p = put_piece(p, &t->bucket);
	p = put(p, labels, labels_len);
	p = put_piece(p, &t->le);
	prefix_len = p - prefix;
	for (k = 0; k < nslots; k++) {
		if (k)
			p = put(p, prefix, prefix_len);
		cum += slots[k];
		p = put_piece(p, &t->bound[k]);
		p = put_u64(p, cum);
		*p++ = '\n';
	}
	p = put_piece(p, &t->sum);
	p = put(p, labels, labels_len);
	p = put_piece(p, &t->tail);
	p = put(p, sum, sum_len);
	*p++ = '\n';
	p = put_piece(p, &t->count);
	p = put(p, labels, labels_len);
	p = put_piece(p, &t->tail);
	p = put_u64(p, cum);
	*p++ = '\n';
	return p;
}

/*
 * The length of upstream u's series of histogram k, as hist_lines writes them, or 0 when
 * it has none: histograms with no observation are left out (but for the overflow
 * upstream). Its _sum is formatted here, once, and kept for hist_lines.
 */
static size_t hist_size(struct render *r, const struct page_text *pt, const struct kw_upstream *u,
			struct up *up, unsigned int k)
{
	const struct hist_text *t = &pt->hist[k];
	unsigned int nslots = kw_hists[k].nslots, j;
	size_t labels = up->labels_len, total;
	char v[KW_NUM_MAX + 1];
	__u64 cum = 0;

	for (j = 0; j < nslots; j++)
		cum += u->hist[k][j];
	if (!cum && !(up->flags & UP_OVERFLOW))
		return 0;
	up->hists |= 1u << k;
	total = nslots * (t->bucket.len + labels + t->le.len + 1) + t->bounds;
	r->series += nslots + 2;
	for (cum = 0, j = 0; j < nslots; j++) {
		cum += u->hist[k][j];
		total += len_u64(cum);
	}
	v[0] = kw_fmt_prom(v + 1, u->hist_sum[k]);
	kw_buf_append(&r->sums[k], v, 1 + v[0]);
	total += t->sum.len + labels + t->tail.len + v[0] + 1;
	return total + t->count.len + labels + t->tail.len + len_u64(cum) + 1;
}

/*
 * Notes what upstream i's lines need (its histograms' too when hists); returns their
 * length.
 */
static size_t add_upstream(struct render *r, const struct page_text *pt,
			   const struct kw_upstream *u, struct up *up, int hists, int *err)
{
	size_t total = 0, labels;
	unsigned int k;

	*err = add_labels(r, up, u, 1);
	labels = up->labels_len;
	if (kw_upstream_is_overflow(u))
		up->flags |= UP_OVERFLOW;
	up->flags |= u->key.direction == KW_DIR_INBOUND ? UP_INBOUND : 0;
	up->flags |= u->key.direction == KW_DIR_OUTBOUND ? UP_OUTBOUND : 0;
	for (k = 0; k < KW_F_MAX; k++) {
		__u64 v = u->val[k];

		if (!skip_field(pt->rule[k], up->flags, v)) {
			total += pt->head[k].len + labels + pt->tail[k].len + len_u64(v) + 1;
			r->series++;
		}
	}
	for (k = 0; hists && k < KW_H_MAX; k++)
		total += hist_size(r, pt, u, up, k);
	return total;
}

/* Notes what a group's histograms need (an exposition view's); returns their length. */
static size_t add_group(struct render *r, const struct page_text *pt, const struct kw_upstream *g,
			struct up *up, int *err)
{
	size_t total = 0;
	unsigned int k;

	*err = add_labels(r, up, g, 0);
	if (kw_upstream_is_overflow(g))
		up->flags |= UP_OVERFLOW;
	for (k = 0; k < KW_H_MAX; k++)
		total += hist_size(r, pt, g, up, k);
	return total;
}
/* The agent's own families: declared once here, rendered below, documented by docs.c. */
const struct kw_self_family kw_self_families[KW_S_MAX] = {
	[KW_S_BUILD_INFO] = { "keepwatch_build_info", "gauge", "version",
			      "keepwatch's version (always 1)." },
	[KW_S_ATTACH_INFO] = { "keepwatch_bpf_attach_info", "gauge", "job, program",
			       "What serves each job of the kernel side on this kernel, chosen by "
			       "probing its BTF: a program, a fallback, or none (always 1)." },
	[KW_S_BPF_ERRORS] = { "keepwatch_bpf_errors_total", "counter", "reason",
			      "Events the BPF programs could not count as they should, by reason." },
	[KW_S_UPSTREAMS] = { "keepwatch_upstreams", "gauge", NULL,
			     "Upstreams in the kernel map (the overflow entries included)." },
	[KW_S_CAPACITY] = { "keepwatch_upstreams_capacity", "gauge", NULL,
			    "Capacity of the kernel's upstream map (--max-upstreams plus overflow)." },
	[KW_S_EVICTED] = { "keepwatch_upstreams_evicted_total", "counter", NULL,
			   "Idle upstreams removed to make room in a nearly full map." },
	[KW_S_TRACKED] = { "keepwatch_tracked_connections", "gauge", NULL,
			   "Open connections with keepwatch state in the kernel." },
	[KW_S_STATS_ENABLED] = { "keepwatch_bpf_stats_enabled", "gauge", NULL,
				 "kernel.bpf_stats_enabled: 1 when program run counts and times are "
				 "kept, -1 if unreadable." },
	[KW_S_PROG_RUNS] = { "keepwatch_bpf_program_runs_total", "counter", "program",
			     "Runs of each BPF program (needs kernel.bpf_stats_enabled=1)." },
	[KW_S_PROG_SECONDS] = { "keepwatch_bpf_program_run_seconds_total", "counter", "program",
				"Time spent in each BPF program (needs kernel.bpf_stats_enabled=1)." },
	[KW_S_EVENTS_RECEIVED] = { "keepwatch_events_received_total", "counter", NULL,
				   "Notable events read from the kernel's ring buffer." },
	[KW_S_EVENTS_DROPPED] = { "keepwatch_events_dropped_total", "counter", NULL,
				  "Events overwritten in the agent's log before anyone read them." },
	[KW_S_PORTS_HELD] = { "keepwatch_ephemeral_ports_in_use", "gauge",
			      "netns, local, peer, port",
			      "Ephemeral ports held towards one destination (TIME_WAIT that "
			      "tcp_tw_reuse can take again excluded)." },
	[KW_S_PORTS_RANGE] = { "keepwatch_ephemeral_ports_range", "gauge", "netns",
			       "Ephemeral ports connect() can give in the namespace "
			       "(ip_local_port_range less reserved and listening ports)." },
	[KW_S_PORTS_HEADROOM] = { "keepwatch_ephemeral_port_headroom", "gauge",
				  "netns, local, peer, port",
				  "Connects left to one destination before EADDRNOTAVAIL." },
	[KW_S_PORTS_EXHAUSTION] = { "keepwatch_ephemeral_port_exhaustion_seconds", "gauge",
				    "netns, local, peer, port",
				    "Seconds until the headroom is 0 at the current growth (+Inf when "
				    "not growing)." },
	[KW_S_CENSUS_NETNS] = { "keepwatch_census_namespaces", "gauge", "result",
				"Namespaces of the last TCP census, by result (read, skipped, "
				"error)." },
	[KW_S_CENSUS_UNREADABLE] = { "keepwatch_census_unreadable_processes", "gauge", NULL,
				     "Processes whose network namespace the agent may not read "
				     "(/proc/PID/ns/net refused: no CAP_SYS_PTRACE); their "
				     "namespaces are left out of the census unless reached otherwise." },
	[KW_S_CENSUS_SECONDS] = { "keepwatch_census_duration_seconds", "gauge", NULL,
				  "How long the last TCP census took." },
	[KW_S_NETNS_ADDRESS] = { "keepwatch_netns_address_info", "gauge", "netns, address",
				 "A local address of a watched namespace (value 1; at most 16 a "
				 "namespace, loopback and IPv6 link-local left out): which host owns "
				 "which address, for keepwatch doctor --prometheus." },
	[KW_S_UPTIME] = { "keepwatch_agent_uptime_seconds", "gauge", NULL,
			  "Seconds since the agent started." },
	[KW_S_EXPO_SERIES] = { "keepwatch_exposition_series", "gauge", NULL,
			       "Per-upstream series on this page, the agent's own excluded (at "
			       "most --max-series)." },
	[KW_S_PEERS_FOLDED] = { "keepwatch_peers_folded", "gauge", "direction",
				"Peers shown only in their group's peer=\"*\" upstream now, by "
				"direction (--max-peers-per-port, --max-series)." },
};

static const char *self_family(struct kw_expo *e, enum kw_self_id id)
{
	const struct kw_self_family *f = &kw_self_families[id];

	kw_expo_family(e, f->name, f->type, f->help);
	return f->name;
}

static void self_labeled(struct kw_expo *e, enum kw_self_id id, const char *lvalue, double v)
{
	struct kw_label lab = { kw_self_families[id].label, lvalue };

	kw_expo_sample(e, kw_self_families[id].name, &lab, 1, v);
}

#define PORT_ROWS_MAX 200 /* destinations exposed, fewest ports left first */

static int by_headroom(const void *a, const void *b)
{
	const struct kw_census_dest *x = *(const struct kw_census_dest *const *)a;
	const struct kw_census_dest *y = *(const struct kw_census_dest *const *)b;

	if (x->headroom != y->headroom)
		return x->headroom < y->headroom ? -1 : 1;
	return (x->held < y->held) - (x->held > y->held);
}

static void dest_labels(const struct kw_census_dest *d, char *netns, char *local, char *peer,
			char *port)
{
	kw_netns_name(d->netns, netns, 64);
	if (kw_addr_format(d->laddr, local, 48))
		snprintf(local, 48, "?");
	if (kw_addr_format(d->raddr, peer, 48))
		snprintf(peer, 48, "?");
	snprintf(port, 8, "%u", d->rport);
}

/*
 * Ephemeral ports per destination from the census. Only destinations holding ports are
 * shown, and at most PORT_ROWS_MAX of them, those closest to running out first.
 */
static void render_census(struct kw_expo *e, const struct kw_snapshot *s)
{
	static const enum kw_self_id ids[] = { KW_S_PORTS_HELD, KW_S_PORTS_HEADROOM,
					       KW_S_PORTS_EXHAUSTION };
	const struct kw_census_result *c = s->census;
	const struct kw_census_dest **rows;
	char netns[64], local[48], peer[48], port[8];
	struct kw_label lab[4];
	size_t i, n = 0, k;

	self_family(e, KW_S_PORTS_RANGE);
	for (i = 0; c && i < c->n_ns; i++) {
		kw_netns_name(c->ns[i].inode, netns, sizeof(netns));
		lab[0] = (struct kw_label){ "netns", netns };
		kw_expo_u64(e, kw_self_families[KW_S_PORTS_RANGE].name, lab, 1, c->ns[i].range);
	}
	rows = calloc(c && c->n_dest ? c->n_dest : 1, sizeof(*rows));
	for (i = 0; rows && c && i < c->n_dest; i++)
		if (c->dest[i].held)
			rows[n++] = &c->dest[i];
	if (rows)
		qsort(rows, n, sizeof(*rows), by_headroom);
	if (n > PORT_ROWS_MAX)
		n = PORT_ROWS_MAX;
	for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		const char *name = self_family(e, ids[k]);

		for (i = 0; i < n; i++) {
			dest_labels(rows[i], netns, local, peer, port);
			lab[0] = (struct kw_label){ "netns", netns };
			lab[1] = (struct kw_label){ "local", local };
			lab[2] = (struct kw_label){ "peer", peer };
			lab[3] = (struct kw_label){ "port", port };
			if (ids[k] == KW_S_PORTS_HELD)
				kw_expo_u64(e, name, lab, 4, rows[i]->held);
			else if (ids[k] == KW_S_PORTS_HEADROOM)
				kw_expo_u64(e, name, lab, 4, rows[i]->headroom);
			else
				kw_expo_sample(e, name, lab, 4, rows[i]->exhaustion_s);
		}
	}
	free(rows);
	self_family(e, KW_S_CENSUS_NETNS);
	self_labeled(e, KW_S_CENSUS_NETNS, "read",
		     c ? c->n_ns - (c->errors < c->n_ns ? c->errors : c->n_ns) : 0);
	self_labeled(e, KW_S_CENSUS_NETNS, "skipped", c ? c->skipped : 0);
	self_labeled(e, KW_S_CENSUS_NETNS, "error", c ? c->errors : 0);
	kw_expo_u64(e, self_family(e, KW_S_CENSUS_UNREADABLE), NULL, 0, c ? c->unreadable : 0);
	kw_expo_sample(e, self_family(e, KW_S_CENSUS_SECONDS), NULL, 0, s->census_seconds);
	self_family(e, KW_S_NETNS_ADDRESS);
	for (i = 0; c && i < c->n_addr; i++) {
		kw_netns_name(c->addr[i].netns, netns, sizeof(netns));
		if (kw_addr_format(c->addr[i].addr, local, sizeof(local)))
			continue;
		lab[0] = (struct kw_label){ "netns", netns };
		lab[1] = (struct kw_label){ "address", local };
		kw_expo_sample(e, kw_self_families[KW_S_NETNS_ADDRESS].name, lab, 2, 1);
	}
}

static void render_self(struct kw_expo *e, const struct kw_snapshot *s, size_t series)
{
	unsigned int i;

	self_family(e, KW_S_BUILD_INFO);
	self_labeled(e, KW_S_BUILD_INFO, KW_VERSION, 1);
	self_family(e, KW_S_ATTACH_INFO);
	for (i = 0; i < s->njobs; i++) {
		struct kw_label lab[2] = { { "job", s->jobs[i].job },
					   { "program", s->jobs[i].program } };

		kw_expo_sample(e, kw_self_families[KW_S_ATTACH_INFO].name, lab, 2, 1);
	}
	self_family(e, KW_S_BPF_ERRORS);
	for (i = 0; i < KW_ERR_MAX; i++)
		self_labeled(e, KW_S_BPF_ERRORS, error_reasons[i], s->errors[i]);
	kw_expo_u64(e, self_family(e, KW_S_UPSTREAMS), NULL, 0, s->n);
	kw_expo_u64(e, self_family(e, KW_S_CAPACITY), NULL, 0, s->capacity);
	kw_expo_u64(e, self_family(e, KW_S_EVICTED), NULL, 0, s->evicted);
	kw_expo_u64(e, self_family(e, KW_S_TRACKED), NULL, 0, s->live_sockets);
	kw_expo_sample(e, self_family(e, KW_S_STATS_ENABLED), NULL, 0, s->bpf_stats_enabled);
	self_family(e, KW_S_PROG_RUNS);
	for (i = 0; i < s->nprogs; i++)
		self_labeled(e, KW_S_PROG_RUNS, s->progs[i].name, s->progs[i].run_cnt);
	self_family(e, KW_S_PROG_SECONDS);
	for (i = 0; i < s->nprogs; i++)
		self_labeled(e, KW_S_PROG_SECONDS, s->progs[i].name, s->progs[i].run_time_ns / 1e9);
	kw_expo_sample(e, self_family(e, KW_S_UPTIME), NULL, 0, s->uptime);
	kw_expo_u64(e, self_family(e, KW_S_EVENTS_RECEIVED), NULL, 0, s->events_received);
	kw_expo_u64(e, self_family(e, KW_S_EVENTS_DROPPED), NULL, 0, s->events_dropped);
	kw_expo_u64(e, self_family(e, KW_S_EXPO_SERIES), NULL, 0, series);
	self_family(e, KW_S_PEERS_FOLDED);
	self_labeled(e, KW_S_PEERS_FOLDED, "inbound", s->peers_folded[KW_DIR_INBOUND]);
	self_labeled(e, KW_S_PEERS_FOLDED, "outbound", s->peers_folded[KW_DIR_OUTBOUND]);
	render_census(e, s);
}

enum stream_phase { PH_FIELDS, PH_HISTS, PH_SELF, PH_DONE };

struct kw_metrics_stream {
	struct kw_snapshot s;
	int owned; /* s's upstreams are freed with the stream */
	struct page_text pt;
	struct render r;
	struct kw_expo e; /* HELP/TYPE, written into spill */
	/*
	 * The agent's own families come last but are written first: the census they show
	 * is the collector's, valid only until its next snapshot.
	 */
	struct kw_buf self;
	size_t self_at; /* of it read so far */
	/*
	 * Written but not read yet: HELP/TYPE lines, and a line or series that did not fit
	 * in what was left of the reader's buffer. Read before anything else is written.
	 */
	struct kw_buf spill;
	size_t spill_at;
	enum stream_phase phase;
	size_t size; /* of the whole page */
};

/*
 * Where a line or series of at most need bytes is written: straight into the reader's
 * buffer if it fits, else into the (empty) spill buffer. *spilled tells which.
 */
static char *room(struct kw_metrics_stream *m, const struct out *o, size_t need, int *spilled)
{
	*spilled = (size_t)(o->end - o->p) < need;
	return *spilled ? kw_buf_room(&m->spill, need) : o->p;
}

/*
 * What room() gave has been written up to p: in the reader's buffer, or in the spill,
 * which ends this read (the next one starts with it, then the next upstream). True
 * when the read is over.
 */
static bool placed(struct kw_metrics_stream *m, struct out *o, char *p, int spilled)
{
	if (spilled) {
		kw_buf_commit(&m->spill, p);
		m->r.i++;
		return true;
	}
	o->p = p;
	return false;
}

/*
 * Each pass over the upstreams reads a little of each 2 KB record (a field, or one
 * histogram's slots), too far apart for the CPU to guess: the records a few upstreams
 * ahead are fetched while the lines of this one are written.
 */
#define PREFETCH_AHEAD 8

static void prefetch_hist(const __u64 *slots, unsigned int nslots)
{
	unsigned int j;

	for (j = 0; j < nslots; j += 64 / sizeof(*slots))
		__builtin_prefetch(&slots[j]);
	__builtin_prefetch(&slots[nslots - 1]); /* the slots need not start a line */
}

/* Every field's line of every upstream, from where the last read stopped. */
static int render_fields(struct kw_metrics_stream *m, struct out *o)
{
	const struct kw_snapshot *s = &m->s;
	struct render *r = &m->r;

	for (; r->k < KW_F_MAX; r->k++, r->i = 0, r->begun = 0) {
		const struct kw_field *fd = &kw_fields[r->k];
		unsigned int k = r->k, rule = m->pt.rule[k];
		size_t line = m->pt.head[k].len + m->pt.tail[k].len + KW_NUM_MAX + 1;

		if (!r->begun) {
			r->begun = 1;
			return kw_expo_family(&m->e, fd->family, fd->type, fd->help);
		}
		for (; r->i < s->n; r->i++) {
			const struct up *up = &r->up[r->i];
			__u64 v = s->u[r->i].val[k];
			int spilled;
			char *p;

			if (r->i + PREFETCH_AHEAD < s->n)
				__builtin_prefetch(&s->u[r->i + PREFETCH_AHEAD].val[k]);
			if (o->p == o->end)
				return 0;
			if (skip_field(rule, up->flags, v))
				continue;
			p = room(m, o, line + up->labels_len, &spilled);
			if (!p)
				return m->spill.err;
			p = field_line(p, &m->pt, k, r->text.data + up->labels, up->labels_len, v);
			if (placed(m, o, p, spilled))
				return 0;
		}
	}
	return 0;
}

/* Every upstream's series of every histogram, from where the last read stopped. */
static int render_hists(struct kw_metrics_stream *m, struct out *o)
{
	struct render *r = &m->r;

	for (; r->k < KW_H_MAX; r->k++, r->i = 0, r->begun = 0, r->sum_at = 0) {
		const struct kw_hist_desc *hd = &kw_hists[r->k];
		const struct hist_text *t = &m->pt.hist[r->k];
		unsigned int k = r->k;

		if (!r->begun) {
			r->begun = 1;
			return kw_expo_family(&m->e, hd->family, "histogram", hd->help);
		}
		for (; r->i < r->hn; r->i++) {
			const struct up *up = &r->hup[r->i];
			/* each line: the text, the labels, a number of at most KW_NUM_MAX, '\n' */
			size_t line = t->line_max + up->labels_len + KW_NUM_MAX + 1;
			const char *sum;
			int spilled;
			char *p;

			if (o->p == o->end)
				return 0;
			if (r->i + PREFETCH_AHEAD < r->hn && (up[PREFETCH_AHEAD].hists & (1u << k)))
				prefetch_hist(r->hu[r->i + PREFETCH_AHEAD].hist[k], hd->nslots);
			if (!(up->hists & (1u << k)))
				continue;
			sum = r->sums[k].data + r->sum_at;
			p = room(m, o, (hd->nslots + 2) * line, &spilled);
			if (!p)
				return m->spill.err;
			p = hist_lines(p, t, hd->nslots, r->text.data + up->labels, up->labels_len,
				       r->hu[r->i].hist[k], sum + 1, (unsigned char)sum[0]);
			r->sum_at += 1 + (unsigned char)sum[0];
			if (placed(m, o, p, spilled))
				return 0;
		}
	}
	return 0;
}

/* The length of every family's HELP/TYPE, as the stream writes them. */
static int headers_size(size_t *size)
{
	struct kw_buf headers;
	struct kw_expo e;
	unsigned int k;
	int err;

	kw_buf_init(&headers);
	kw_expo_init(&e, &headers);
	for (k = 0; k < KW_F_MAX; k++)
		kw_expo_family(&e, kw_fields[k].family, kw_fields[k].type, kw_fields[k].help);
	for (k = 0; k < KW_H_MAX; k++)
		kw_expo_family(&e, kw_hists[k].family, "histogram", kw_hists[k].help);
	err = e.err ? e.err : headers.err;
	*size = headers.len;
	kw_buf_free(&headers);
	return err;
}

/*
 * Everything the page needs of the snapshot, each upstream's record read once, and the
 * page's exact length, so that it can be sent with a Content-Length: clients then read
 * it into one buffer instead of growing one chunk by chunk.
 * The length must follow render_fields and hist_lines to the byte: test_metrics checks
 * it, and http.c cuts a response whose length turns out different.
 */
static int stream_init(struct kw_metrics_stream *m, const struct kw_snapshot *s)
{
	size_t i, size;
	int err;

	memset(m, 0, sizeof(*m));
	m->s = *s;
	err = page_text(&m->pt);
	if (err)
		return err;
	m->r.up = calloc(s->n ? s->n : 1, sizeof(*m->r.up));
	m->r.hup = s->hist_by_group ? calloc(s->ngroups ? s->ngroups : 1, sizeof(*m->r.hup)) :
				      m->r.up;
	if (!m->r.up || !m->r.hup)
		return -ENOMEM;
	m->r.hu = s->hist_by_group ? s->groups : s->u;
	m->r.hn = s->hist_by_group ? s->ngroups : s->n;
	err = headers_size(&size);
	for (i = 0; !err && i < s->n; i++)
		size += add_upstream(&m->r, &m->pt, &s->u[i], &m->r.up[i], !s->hist_by_group, &err);
	for (i = 0; !err && s->hist_by_group && i < s->ngroups; i++)
		size += add_group(&m->r, &m->pt, &s->groups[i], &m->r.hup[i], &err);
	for (i = 0; !err && i < KW_H_MAX; i++)
		err = m->r.sums[i].err;
	if (err)
		return err;
	kw_expo_init(&m->e, &m->self);
	render_self(&m->e, s, m->r.series);
	err = m->e.err ? m->e.err : m->self.err;
	m->e.buf = &m->spill;
	m->size = size + m->self.len;
	return err;
}

static void stream_fini(struct kw_metrics_stream *m)
{
	unsigned int k;

	kw_buf_free(&m->r.text);
	for (k = 0; k < KW_H_MAX; k++)
		kw_buf_free(&m->r.sums[k]);
	if (m->r.hup != m->r.up)
		free(m->r.hup);
	free(m->r.up);
	kw_buf_free(&m->self);
	kw_buf_free(&m->spill);
	if (m->owned)
		kw_snapshot_free(&m->s);
}

/* Copies what is left of src after *at into o; 1 when all of it is out. */
static int copy_out(struct out *o, const struct kw_buf *src, size_t *at)
{
	size_t n = src->len - *at;

	if (n > (size_t)(o->end - o->p))
		n = o->end - o->p;
	if (n)
		memcpy(o->p, src->data + *at, n);
	o->p += n;
	*at += n;
	return *at == src->len;
}

ssize_t kw_metrics_stream_read(struct kw_metrics_stream *m, char *buf, size_t max)
{
	struct out o = { buf, buf + max };
	int err = 0;

	while (!err && o.p < o.end) {
		if (m->spill_at < m->spill.len) {
			if (copy_out(&o, &m->spill, &m->spill_at)) {
				kw_buf_reset(&m->spill);
				m->spill_at = 0;
			}
			continue;
		}
		if (m->phase == PH_DONE)
			break;
		switch (m->phase) {
		case PH_FIELDS:
			err = render_fields(m, &o);
			if (!err && m->r.k == KW_F_MAX) {
				m->r.k = 0;
				m->phase = PH_HISTS;
			}
			break;
		case PH_HISTS:
			err = render_hists(m, &o);
			if (!err && m->r.k == KW_H_MAX)
				m->phase = PH_SELF;
			break;
		case PH_SELF:
			if (copy_out(&o, &m->self, &m->self_at))
				m->phase = PH_DONE;
			break;
		case PH_DONE:
			break;
		}
	}
	if (!err)
		err = m->e.err ? m->e.err : m->spill.err;
	return err ? err : o.p - buf;
}

struct kw_metrics_stream *kw_metrics_stream_new(struct kw_snapshot *s)
{
	struct kw_metrics_stream *m = malloc(sizeof(*m));
	int err;

	if (!m) {
		kw_snapshot_free(s); /* taken over all the same */
		errno = ENOMEM;
		return NULL;
	}
	err = stream_init(m, s);
	m->owned = 1;
	memset(s, 0, sizeof(*s)); /* the stream's now */
	if (err) {
		stream_fini(m);
		free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

size_t kw_metrics_stream_size(const struct kw_metrics_stream *m)
{
	return m->size;
}

void kw_metrics_stream_free(struct kw_metrics_stream *m)
{
	if (!m)
		return;
	stream_fini(m);
	free(m);
}

int kw_metrics_render(const struct kw_snapshot *s, struct kw_buf *out)
{
	struct kw_metrics_stream *m = malloc(sizeof(*m));
	ssize_t n = -ENOMEM;
	char *p, end;

	if (!m)
		return -ENOMEM;
	n = stream_init(m, s);
	p = n ? NULL : kw_buf_room(out, m->size);
	if (p) {
		n = kw_metrics_stream_read(m, p, m->size);
		if (n >= 0 && ((size_t)n != m->size || kw_metrics_stream_read(m, &end, 1)))
			n = -EPROTO; /* the page is not as long as computed: a bug */
		if (n >= 0)
			kw_buf_commit(out, p + n);
	} else if (!n) {
		n = out->err;
	}
	stream_fini(m);
	free(m);
	return n < 0 ? n : 0;
}
