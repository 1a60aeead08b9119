// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Renders a snapshot as Prometheus text: every row of the field table as one series per
 * upstream (families grouped, HELP/TYPE once), the histograms, then the agent's own
 * health, modelled on ebpf_exporter's self-metrics.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "expo.h"
#include "metrics.h"
#include "netns.h"
#include "numfmt.h"

static const char *const error_reasons[KW_ERR_MAX] = {
	[KW_ERR_UPSTREAMS_FULL] = "upstreams_full",   [KW_ERR_SOCK_STORAGE] = "sock_storage",
	[KW_ERR_NO_UPSTREAM] = "no_upstream",	      [KW_ERR_FAMILY] = "family",
	[KW_ERR_EVENTS_RATE] = "events_rate_limited", [KW_ERR_RINGBUF_FULL] = "ringbuf_full",
	[KW_ERR_CONN_TABLE] = "conn_table_full",
};

void kw_upstream_labels(const struct kw_upstream *u, struct kw_upstream_labels *l)
{
	l->direction = u->key.direction == KW_DIR_OUTBOUND ? "outbound" : "inbound";
	if (kw_key_is_overflow(&u->key)) {
		snprintf(l->peer, sizeof(l->peer), "other");
		snprintf(l->port, sizeof(l->port), "other");
		snprintf(l->netns, sizeof(l->netns), "other");
		return;
	}
	if (kw_addr_format(u->key.addr, l->peer, sizeof(l->peer)))
		snprintf(l->peer, sizeof(l->peer), "?");
	snprintf(l->port, sizeof(l->port), "%u", u->key.port);
	kw_netns_name(u->key.netns, l->netns, sizeof(l->netns));
}

/*
 * Series of the per-upstream families are written straight into the buffer: at 10k
 * upstreams a scrape is about 650k lines and 90 MB, and the general writer's checks,
 * escaping and printf per sample cost most of it. Each upstream's labels are escaped
 * once into one string; each line is then copied together from pieces of known length
 * after one reservation for the whole series, numbers formatted without printf
 * (numfmt.h). HELP/TYPE still go through kw_expo_family, which keeps the family rules.
 */
struct span {
	size_t off, len; /* of a piece of render.text */
};

/* A short string built once per family: a family name with "{", or extra labels. */
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
	size_t line_max;		      /* the longest line, labels and value excluded */
};

/* Where a page being written is, so that it can be written in parts (metrics.h). */
struct render {
	struct kw_expo *e;
	struct kw_buf *b;	 /* where the current part goes */
	struct kw_buf text;	 /* every upstream's labels, one after the other */
	struct span *labels;	 /* per upstream: direction="..",peer="..",port="..",netns=".." */
	unsigned int k;		 /* the field or histogram being written */
	size_t i;		 /* its next upstream */
	int begun;		 /* its HELP/TYPE written and the pieces below built */
	struct piece head, tail; /* of field k: name{ and its labels with "} " */
	struct hist_text ht;	 /* of histogram k */
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

static char *put_piece(char *p, const struct piece *s)
{
	return put(p, s->s, s->len);
}

static char *put_labels(char *p, const struct render *r, size_t i)
{
	return put(p, r->text.data + r->labels[i].off, r->labels[i].len);
}

/* The label values of one upstream, escaped, appended to r->text. */
static void add_labels(struct render *r, size_t i, const struct kw_upstream *u)
{
	struct kw_upstream_labels l;
	struct kw_buf *t = &r->text;

	kw_upstream_labels(u, &l);
	r->labels[i].off = t->len;
	kw_buf_puts(t, "direction=\"");
	kw_buf_puts(t, l.direction);
	kw_buf_puts(t, "\",peer=\"");
	kw_expo_escape_label(t, l.peer);
	kw_buf_puts(t, "\",port=\"");
	kw_buf_puts(t, l.port);
	kw_buf_puts(t, "\",netns=\"");
	kw_expo_escape_label(t, l.netns);
	kw_buf_puts(t, "\"");
	r->labels[i].len = t->len - r->labels[i].off;
}

/*
 * Breakdowns of rare events (resets by reason or state, connect failures by errno, the
 * race side an upstream's direction cannot have) are written only where they are not
 * zero, and always for the overflow upstream so that every family exists from the
 * start: at 10k upstreams, writing every zero multiplies a scrape by ten.
 */
static int skip_field(const struct kw_upstream *u, unsigned int f)
{
	if (kw_key_is_overflow(&u->key))
		return 0;
	if (f == KW_F_RACE_SERVER)
		return u->key.direction != KW_DIR_INBOUND;
	if (f == KW_F_RACE_CLIENT)
		return u->key.direction != KW_DIR_OUTBOUND;
	return kw_field_sparse(f) && !u->val[f];
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

/*
 * name{labels[,k="v"][,k2="v2"]} value, for every field and upstream, from where the
 * last part stopped until the buffer reaches limit.
 */
static int render_fields(struct render *r, const struct kw_snapshot *s, size_t limit)
{
	int err;

	for (; r->k < KW_F_MAX; r->k++, r->i = 0, r->begun = 0) {
		const struct kw_field *fd = &kw_fields[r->k];

		if (!r->begun) {
			err = kw_expo_family(r->e, fd->family, fd->type, fd->help);
			if (!err)
				err = piece(&r->head, "%s{", fd->family);
			if (!err)
				err = field_tail(&r->tail, fd);
			if (err)
				return err;
			r->begun = 1;
		}
		for (; r->i < s->n; r->i++) {
			size_t i = r->i;
			char *p;

			if (r->b->len >= limit)
				return 0;
			if (skip_field(&s->u[i], r->k))
				continue;
			p = kw_buf_room(r->b, r->head.len + r->labels[i].len + r->tail.len +
						      KW_NUM_MAX + 1);
			if (!p)
				return r->b->err;
			p = put_piece(p, &r->head);
			p = put_labels(p, r, i);
			p = put_piece(p, &r->tail);
			p += kw_fmt_u64(p, s->u[i].val[r->k]);
			*p++ = '\n';
			kw_buf_commit(r->b, p);
		}
	}
	return 0;
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
	for (k = 0; !err && k < hd->nslots; k++) {
		if (k + 1 < hd->nslots)
			kw_fmt_prom(v, hd->bounds[k]);
		else
			snprintf(v, sizeof(v), "+Inf");
		err = piece(&t->bound[k], "%s\"} ", v);
		if (!err && t->bucket.len + t->le.len + t->bound[k].len > t->line_max)
			t->line_max = t->bucket.len + t->le.len + t->bound[k].len;
	}
	return err;
}

/* One upstream's series of a histogram: cumulative buckets, _sum and _count. */
static int hist_series(struct render *r, const struct hist_text *t, unsigned int nslots, size_t i,
		       const __u64 *slots, double sum)
{
	/* each line: the text, the labels, a number of at most KW_NUM_MAX, the newline */
	size_t line = t->line_max + r->labels[i].len + KW_NUM_MAX + 1;
	char *p, *prefix;
	size_t prefix_len;
	__u64 cum = 0;
	unsigned int k;

	p = kw_buf_room(r->b, (nslots + 2) * line);
	if (!p)
		return r->b->err;
	/* the first bucket's family_bucket{labels,le=" is copied for the others */
	prefix = p;
	p = put_piece(p, &t->bucket);
	p = put_labels(p, r, i);
	p = put_piece(p, &t->le);
	prefix_len = p - prefix;
	for (k = 0; k < nslots; k++) {
		if (k)
			p = put(p, prefix, prefix_len);
		cum += slots[k];
		p = put_piece(p, &t->bound[k]);
		p += kw_fmt_u64(p, cum);
		*p++ = '\n';
	}
	p = put_piece(p, &t->sum);
	p = put_labels(p, r, i);
	p = put_piece(p, &t->tail);
	p += kw_fmt_prom(p, sum);
	*p++ = '\n';
	p = put_piece(p, &t->count);
	p = put_labels(p, r, i);
	p = put_piece(p, &t->tail);
	p += kw_fmt_u64(p, cum);
	*p++ = '\n';
	kw_buf_commit(r->b, p);
	return 0;
}

static __u64 hist_count(const __u64 *slots, unsigned int nslots)
{
	__u64 n = 0;
	unsigned int i;

	for (i = 0; i < nslots; i++)
		n += slots[i];
	return n;
}

/*
 * Histograms with no observation are left out (but for the overflow upstream). From
 * where the last part stopped until the buffer reaches limit.
 */
static int render_hists(struct render *r, const struct kw_snapshot *s, size_t limit)
{
	int err;

	for (; r->k < KW_H_MAX; r->k++, r->i = 0, r->begun = 0) {
		const struct kw_hist_desc *hd = &kw_hists[r->k];

		if (!r->begun) {
			err = kw_expo_family(r->e, hd->family, "histogram", hd->help);
			if (!err)
				err = hist_text(&r->ht, hd);
			if (err)
				return err;
			r->begun = 1;
		}
		for (; r->i < s->n; r->i++) {
			const struct kw_upstream *u = &s->u[r->i];

			if (r->b->len >= limit)
				return 0;
			if (!hist_count(u->hist[r->k], hd->nslots) && !kw_key_is_overflow(&u->key))
				continue;
			err = hist_series(r, &r->ht, hd->nslots, r->i, u->hist[r->k],
					  u->hist_sum[r->k]);
			if (err)
				return err;
		}
	}
	return 0;
}

/* The agent's own families: declared once here, rendered below, documented by docs.c. */
const struct kw_self_family kw_self_families[KW_S_MAX] = {
	[KW_S_BUILD_INFO] = { "keepwatch_build_info", "gauge", "version",
			      "keepwatch's version (always 1)." },
	[KW_S_ATTACH_INFO] = { "keepwatch_bpf_attach_info", "gauge", "programs",
			       "The BPF programs attached, chosen by probing the kernel (always 1)." },
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
	[KW_S_CENSUS_SECONDS] = { "keepwatch_census_duration_seconds", "gauge", NULL,
				  "How long the last TCP census took." },
	[KW_S_UPTIME] = { "keepwatch_agent_uptime_seconds", "gauge", NULL,
			  "Seconds since the agent started." },
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
	kw_expo_sample(e, self_family(e, KW_S_CENSUS_SECONDS), NULL, 0, s->census_seconds);
}

static void render_self(struct kw_expo *e, const struct kw_snapshot *s)
{
	unsigned int i;

	self_family(e, KW_S_BUILD_INFO);
	self_labeled(e, KW_S_BUILD_INFO, KW_VERSION, 1);
	self_family(e, KW_S_ATTACH_INFO);
	self_labeled(e, KW_S_ATTACH_INFO, s->attach_mode, 1);
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
	render_census(e, s);
}

enum stream_phase { PH_FIELDS, PH_HISTS, PH_SELF, PH_DONE };

struct kw_metrics_stream {
	struct kw_snapshot s;
	int owned; /* s's upstreams are freed with the stream */
	struct kw_expo e;
	struct render r;
	/*
	 * The agent's own families come last but are written first: the census they show
	 * is the collector's, valid only until its next snapshot.
	 */
	struct kw_buf self;
	enum stream_phase phase;
	size_t size; /* of the whole page */
};

static int stream_init(struct kw_metrics_stream *m, const struct kw_snapshot *s)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	m->s = *s;
	m->r.e = &m->e;
	kw_buf_init(&m->r.text);
	kw_buf_init(&m->self);
	m->r.labels = calloc(s->n ? s->n : 1, sizeof(*m->r.labels));
	if (!m->r.labels)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		add_labels(&m->r, i, &s->u[i]);
	if (m->r.text.err)
		return m->r.text.err;
	kw_expo_init(&m->e, &m->self);
	render_self(&m->e, s);
	return m->e.err ? m->e.err : m->self.err;
}

static void stream_fini(struct kw_metrics_stream *m)
{
	kw_buf_free(&m->r.text);
	kw_buf_free(&m->self);
	free(m->r.labels);
	if (m->owned)
		kw_snapshot_free(&m->s);
}

int kw_metrics_stream_next(struct kw_metrics_stream *m, struct kw_buf *out, size_t want)
{
	size_t limit;
	int err = 0;

	if (!want)
		want = 1; /* progress on every call */
	limit = want < SIZE_MAX - out->len ? out->len + want : SIZE_MAX;

	m->r.b = out;
	m->e.buf = out;
	while (!err && m->phase != PH_DONE && out->len < limit) {
		switch (m->phase) {
		case PH_FIELDS:
			err = render_fields(&m->r, &m->s, limit);
			if (!err && m->r.k == KW_F_MAX) {
				m->r.k = 0;
				m->phase = PH_HISTS;
			}
			break;
		case PH_HISTS:
			err = render_hists(&m->r, &m->s, limit);
			if (!err && m->r.k == KW_H_MAX)
				m->phase = PH_SELF;
			break;
		case PH_SELF:
			err = kw_buf_append(out, m->self.data ? m->self.data : "", m->self.len);
			m->phase = PH_DONE;
			break;
		case PH_DONE:
			break;
		}
	}
	if (!err)
		err = m->e.err ? m->e.err : out->err;
	return err ? err : m->phase != PH_DONE;
}

static size_t digits_u64(__u64 v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* The length of upstream i's lines of histogram k, as hist_series writes them. */
static size_t hist_size(const struct render *r, const struct kw_upstream *u, size_t i,
			unsigned int k, const struct hist_text *t, size_t bounds)
{
	unsigned int nslots = kw_hists[k].nslots, j;
	size_t labels = r->labels[i].len, total;
	char v[KW_NUM_MAX];
	__u64 cum = 0;

	if (!hist_count(u->hist[k], nslots) && !kw_key_is_overflow(&u->key))
		return 0;
	total = nslots * (t->bucket.len + labels + t->le.len + 1) + bounds;
	for (j = 0; j < nslots; j++) {
		cum += u->hist[k][j];
		total += digits_u64(cum);
	}
	total += t->sum.len + labels + t->tail.len + kw_fmt_prom(v, u->hist_sum[k]) + 1;
	return total + t->count.len + labels + t->tail.len + digits_u64(cum) + 1;
}

/* What the page's lines do not repeat per upstream, built once for page_size. */
struct page_text {
	struct piece head[KW_F_MAX], tail[KW_F_MAX];
	struct hist_text hist[KW_H_MAX];
	size_t bounds[KW_H_MAX]; /* the length of a histogram's le values together */
};

/*
 * The page's exact length, without writing it (but for HELP/TYPE, written aside), so that
 * it can be sent with a Content-Length: clients then read it into one buffer (Python's
 * http.client took twice as long over a chunked 90 MB). Upstream by upstream, which
 * reads each 2 KB record once. Must follow render_fields and hist_series to the byte:
 * test_metrics checks it, and http.c cuts a response whose length turns out different.
 */
static int page_size(struct kw_metrics_stream *m, size_t *size)
{
	const struct kw_snapshot *s = &m->s;
	struct page_text *pt = calloc(1, sizeof(*pt));
	struct kw_buf headers;
	struct kw_expo e;
	size_t total = m->self.len, i;
	unsigned int k, j;
	int err = 0;

	if (!pt)
		return -ENOMEM;
	kw_buf_init(&headers);
	kw_expo_init(&e, &headers);
	for (k = 0; !err && k < KW_F_MAX; k++) {
		const struct kw_field *fd = &kw_fields[k];

		err = kw_expo_family(&e, fd->family, fd->type, fd->help);
		if (!err)
			err = piece(&pt->head[k], "%s{", fd->family);
		if (!err)
			err = field_tail(&pt->tail[k], fd);
	}
	for (k = 0; !err && k < KW_H_MAX; k++) {
		err = kw_expo_family(&e, kw_hists[k].family, "histogram", kw_hists[k].help);
		if (!err)
			err = hist_text(&pt->hist[k], &kw_hists[k]);
		for (j = 0; !err && j < kw_hists[k].nslots; j++)
			pt->bounds[k] += pt->hist[k].bound[j].len;
	}
	for (i = 0; !err && i < s->n; i++) {
		const struct kw_upstream *u = &s->u[i];

		for (k = 0; k < KW_F_MAX; k++)
			if (!skip_field(u, k))
				total += pt->head[k].len + m->r.labels[i].len + pt->tail[k].len +
					 digits_u64(u->val[k]) + 1;
		for (k = 0; k < KW_H_MAX; k++)
			total += hist_size(&m->r, u, i, k, &pt->hist[k], pt->bounds[k]);
	}
	if (!err)
		err = e.err ? e.err : headers.err;
	*size = total + headers.len;
	kw_buf_free(&headers);
	free(pt);
	return err;
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
	if (!err)
		err = page_size(m, &m->size);
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
	struct kw_metrics_stream m;
	int err;

	err = stream_init(&m, s);
	if (!err)
		err = kw_metrics_stream_next(&m, out, SIZE_MAX);
	stream_fini(&m);
	return err < 0 ? err : 0;
}
