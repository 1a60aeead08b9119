// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatch doctor --prometheus (see fleet.h): the keepwatch series of a Prometheus
 * answer, host by host, back into the records the doctor reads; the doctor itself
 * (doctor/), unchanged; the pairs of a proxy host's outbound upstream and its backend
 * host's inbound one; the report as JSON and as text.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/doctor.h"
#include "cli/fleet.h"
#include "lib/addr.h"
#include "lib/parse.h"

/* A balancer's idle timeout plus this is the keep-alive we suggest (as rules.c does). */
#define LB_MARGIN 5

/* The series of one label set of a host, while the answer is read. */
struct series {
	int hist;     /* 0: counters of an upstream; 1: histograms */
	int has_peer; /* the label set has a peer label */
	__u8 dir;     /* KW_DIR_* */
	char netns[64], port[8], peer[KW_ADDR_STRLEN];
	__u64 val[KW_F_MAX];
	double cum[KW_H_MAX][KW_HIST_MAXSLOTS]; /* cumulative buckets, by slot */
	double sum[KW_H_MAX];
};

static const char *label(const json_t *m, const char *name)
{
	return json_string_value(json_object_get(m, name));
}

static struct kw_fleet_host *host_of(struct kw_fleet *f, const char *instance)
{
	struct kw_fleet_host *h;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (!strcmp(f->h[i].instance, instance))
			return &f->h[i];
	h = realloc(f->h, (f->n + 1) * sizeof(*h));
	if (!h)
		return NULL;
	f->h = h;
	h = &f->h[f->n++];
	memset(h, 0, sizeof(*h));
	snprintf(h->instance, sizeof(h->instance), "%s", instance);
	return h;
}

/* The id of a netns label value on a host (1 and up), added if new; 0 when out of memory. */
static __u32 netns_id(struct kw_fleet_host *h, const char *name)
{
	char(*n)[64];
	size_t i;

	for (i = 0; i < h->n_netns; i++)
		if (!strcmp(h->netns[i], name))
			return i + 1;
	n = realloc(h->netns, (h->n_netns + 1) * sizeof(*n));
	if (!n)
		return 0;
	h->netns = n;
	snprintf(h->netns[h->n_netns++], 64, "%s", name);
	return h->n_netns;
}

/* The series record of a label set, added zeroed if new; NULL when out of memory. */
static struct series *series_of(struct kw_fleet_host *h, int hist, __u8 dir, const char *netns,
				const char *port, const char *peer)
{
	struct series *s;
	size_t i;

	for (i = 0; i < h->n_s; i++) {
		s = &h->s[i];
		if (s->hist == hist && s->dir == dir && !strcmp(s->netns, netns) &&
		    !strcmp(s->port, port) && s->has_peer == !!peer &&
		    (!peer || !strcmp(s->peer, peer)))
			return s;
	}
	s = realloc(h->s, (h->n_s + 1) * sizeof(*s));
	if (!s)
		return NULL;
	h->s = s;
	s = &h->s[h->n_s++];
	memset(s, 0, sizeof(*s));
	s->hist = hist;
	s->dir = dir;
	s->has_peer = !!peer;
	snprintf(s->netns, sizeof(s->netns), "%s", netns);
	snprintf(s->port, sizeof(s->port), "%s", port);
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "");
	return s;
}

/* The field a counter series is, by family and labels; -1 if none. */
static int field_of(const char *name, const json_t *m)
{
	unsigned int i, k;

	for (i = 0; i < KW_F_MAX; i++) {
		const struct kw_field *fd = &kw_fields[i];
		int ok = !strcmp(fd->family, name);

		for (k = 0; ok && k < 2; k++) {
			const char *v = fd->lname[k] ? label(m, fd->lname[k]) : NULL;

			ok = !fd->lname[k] || (v && !strcmp(v, fd->lvalue[k]));
		}
		if (ok)
			return i;
	}
	return -1;
}

/* The histogram of a _bucket or _sum series; -1 if none. *sum: it is a _sum. */
static int hist_of(const char *name, const json_t *m, int *sum)
{
	size_t n = strlen(name);
	unsigned int i;

	if (n > 7 && !strcmp(name + n - 7, "_bucket")) {
		*sum = 0;
		n -= 7;
	} else if (n > 4 && !strcmp(name + n - 4, "_sum")) {
		*sum = 1;
		n -= 4;
	} else {
		return -1;
	}
	for (i = 0; i < KW_H_MAX; i++) {
		const struct kw_hist_desc *hd = &kw_hists[i];
		const char *v = hd->lname ? label(m, hd->lname) : NULL;

		if (strlen(hd->family) == n && !strncmp(hd->family, name, n) &&
		    (!hd->lname || (v && !strcmp(v, hd->lvalue))))
			return i;
	}
	return -1;
}

/* The slot of a bucket's le label; -1 if it is no bound of the histogram. */
static int slot_of(const struct kw_hist_desc *hd, const char *le)
{
	unsigned int i;
	double v;
	char *end;

	if (!strcmp(le, "+Inf"))
		return hd->nslots - 1;
	v = strtod(le, &end);
	if (end == le || *end)
		return -1;
	for (i = 0; i + 1 < hd->nslots; i++)
		if (fabs(hd->bounds[i] - v) <= 1e-9 * (hd->bounds[i] > 1 ? hd->bounds[i] : 1))
			return i;
	return -1;
}

/* A per-host figure: its address info, its uptime. 1 if it was one, 0 if not. */
static int host_series(struct kw_fleet_host *h, const char *name, const json_t *m, double v,
		       int *err)
{
	struct kw_fleet_addr *a, x = { 0 };
	const char *ns, *addr;

	if (!strcmp(name, "keepwatch_agent_uptime_seconds")) {
		h->uptime = v;
		return 1;
	}
	if (strcmp(name, "keepwatch_netns_address_info"))
		return 0;
	ns = label(m, "netns");
	addr = label(m, "address");
	if (!ns || !addr || kw_addr_parse(addr, x.addr))
		return 0; /* counted as not understood */
	x.netns = netns_id(h, ns);
	a = x.netns ? realloc(h->addr, (h->n_addr + 1) * sizeof(*a)) : NULL;
	if (!a) {
		*err = -ENOMEM;
		return 1;
	}
	h->addr = a;
	h->addr[h->n_addr++] = x;
	return 1;
}

/* One series of the answer: 0, 1 if not understood, -ENOMEM. */
static int add_one(struct kw_fleet *f, const json_t *r)
{
	const json_t *m = json_object_get(r, "metric");
	const char *name = label(m, "__name__"), *inst = label(m, "instance");
	const char *vs = json_string_value(json_array_get(json_object_get(r, "value"), 1));
	const char *dir, *netns, *port, *peer;
	struct kw_fleet_host *h;
	struct series *s;
	int fld, hid, sum = 0, err = 0;
	double v;
	char *end;

	if (!json_is_object(m) || !vs)
		return -EPROTO;
	if (!name || !inst)
		return 1;
	v = strtod(vs, &end);
	if (end == vs || *end || isnan(v))
		return 1;
	h = host_of(f, inst);
	if (!h)
		return -ENOMEM;
	if (host_series(h, name, m, v, &err))
		return err;
	dir = label(m, "direction");
	netns = label(m, "netns");
	port = label(m, "port");
	peer = label(m, "peer");
	if (!dir || !netns || !port || (strcmp(dir, "inbound") && strcmp(dir, "outbound")))
		return 1;
	fld = field_of(name, m);
	hid = fld < 0 ? hist_of(name, m, &sum) : -1;
	if (fld < 0 && hid < 0)
		return 1;
	if (fld >= 0 && !peer)
		return 1;
	s = series_of(h, fld < 0, !strcmp(dir, "outbound"), netns, port, peer);
	if (!s)
		return -ENOMEM;
	if (fld >= 0) {
		s->val[fld] = v > 0 ? (__u64)(v + 0.5) : 0;
	} else if (sum) {
		s->sum[hid] = v;
	} else {
		int i = slot_of(&kw_hists[hid], label(m, "le") ?: "");

		if (i < 0)
			return 1;
		s->cum[hid][i] = v;
	}
	return 0;
}

int kw_fleet_add(struct kw_fleet *f, const json_t *result)
{
	const json_t *r;
	size_t i;
	int err;

	if (!json_is_array(result))
		return -EPROTO;
	json_array_foreach(result, i, r) {
		err = add_one(f, r);
		if (err < 0)
			return err;
		f->ignored += err;
	}
	return 0;
}

/* ---- the records ---- */

static int same_group(const struct series *a, const struct series *b)
{
	return a->dir == b->dir && !strcmp(a->netns, b->netns) && !strcmp(a->port, b->port);
}

/* The histograms of an upstream's counters: its own (per-peer), else its group's. */
static const struct series *hists_for(const struct kw_fleet_host *h, const struct series *c,
				      int *per_peer)
{
	const struct series *group = NULL;
	size_t i;

	*per_peer = 0;
	for (i = 0; i < h->n_s; i++) {
		const struct series *s = &h->s[i];

		if (!s->hist || !same_group(s, c))
			continue;
		if (s->has_peer)
			*per_peer = 1;
		if (s->has_peer && !strcmp(s->peer, c->peer))
			return s;
		if (!s->has_peer)
			group = s;
	}
	return *per_peer ? NULL : group;
}

static size_t group_size(const struct kw_fleet_host *h, const struct series *c)
{
	size_t i, n = 0;

	for (i = 0; i < h->n_s; i++)
		n += !h->s[i].hist && same_group(&h->s[i], c);
	return n;
}

/* The key of a label set: "other" is the overflow upstream, "*" a folded record. */
static int key_of(struct kw_fleet_host *h, const struct series *c, int folded,
		  struct kw_upstream *u)
{
	memset(&u->key, 0, sizeof(u->key));
	u->key.direction = c->dir;
	if (!strcmp(c->port, "other") && !strcmp(c->netns, "other"))
		return 0; /* the overflow upstream: all zero */
	u->key.netns = netns_id(h, c->netns);
	if (!u->key.netns)
		return -ENOMEM;
	if (kw_parse_u16(c->port, 1, 65535, &u->key.port))
		u->key.port = 0; /* port="*": a collapsed direction */
	if (folded || kw_addr_parse(c->peer, u->key.addr)) {
		memset(u->key.addr, 0, 16);
		u->flags |= KW_UP_FOLDED;
	}
	u->key.family = kw_addr_is_v4mapped(u->key.addr) ? KW_AF_INET : KW_AF_INET6;
	return 0;
}

static void set_hists(struct kw_upstream *u, const struct series *hs)
{
	unsigned int k, i;

	for (k = 0; hs && k < KW_H_MAX; k++) {
		for (i = 0; i < kw_hists[k].nslots; i++) {
			double d = hs->cum[k][i] - (i ? hs->cum[k][i - 1] : 0);

			u->hist[k][i] = d > 0 ? (__u64)(d + 0.5) : 0;
		}
		u->hist_sum[k] = hs->sum[k];
	}
}

static int upstream_cmp(const void *a, const void *b)
{
	const struct kw_upstream *x = a, *y = b;
	int c = kw_key_cmp(&x->key, &y->key);

	return c ?: (int)x->flags - (int)y->flags;
}

/* A host's records: each upstream, or each group whose several peers share histograms. */
static int finish_host(struct kw_fleet_host *h)
{
	size_t i, j;
	int err;

	h->u = calloc(h->n_s ?: 1, sizeof(*h->u));
	if (!h->u)
		return -ENOMEM;
	for (i = 0; i < h->n_s; i++) {
		const struct series *c = &h->s[i], *hs;
		int per_peer, folded;
		struct kw_upstream u = { 0 }, *x = NULL;

		if (c->hist)
			continue;
		hs = hists_for(h, c, &per_peer);
		/* histograms of several peers: one record, so that rules read the same closes */
		folded = hs && !per_peer && group_size(h, c) > 1;
		err = key_of(h, c, folded, &u);
		if (err)
			return err;
		for (j = 0; folded && j < h->n; j++)
			if (!kw_key_cmp(&h->u[j].key, &u.key) && h->u[j].flags == u.flags)
				x = &h->u[j];
		if (!x) {
			x = &h->u[h->n++];
			*x = u;
			x->single_idle_sum[KW_BY_LOCAL] = NAN; /* not in /metrics */
			x->single_idle_sum[KW_BY_PEER] = NAN;
			set_hists(x, hs);
		}
		for (j = 0; j < KW_F_MAX; j++)
			x->val[j] += c->val[j];
		x->folded += folded;
	}
	qsort(h->u, h->n, sizeof(*h->u), upstream_cmp);
	free(h->s);
	h->s = NULL;
	h->n_s = 0;
	return 0;
}

int kw_fleet_finish(struct kw_fleet *f)
{
	size_t i;
	int err;

	for (i = 0; i < f->n; i++) {
		err = finish_host(&f->h[i]);
		if (err)
			return err;
	}
	return 0;
}

void kw_fleet_free(struct kw_fleet *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->h[i].u);
		free(f->h[i].netns);
		free(f->h[i].addr);
		free(f->h[i].s);
	}
	free(f->h);
	memset(f, 0, sizeof(*f));
}

/* ---- pairs ---- */

static int owns(const struct kw_fleet_host *h, const __u8 addr[16], __u32 netns)
{
	size_t i;

	for (i = 0; i < h->n_addr; i++)
		if ((!netns || h->addr[i].netns == netns) && !memcmp(h->addr[i].addr, addr, 16))
			return 1;
	return 0;
}

/* The first namespace of h owning addr, or 0. */
static __u32 owner_netns(const struct kw_fleet_host *h, const __u8 addr[16])
{
	size_t i;

	for (i = 0; i < h->n_addr; i++)
		if (!memcmp(h->addr[i].addr, addr, 16))
			return h->addr[i].netns;
	return 0;
}

/* The server's inbound record for client c of host ch: from one of its addresses, or the
 * group's folded record; (size_t)-1 if none. */
static size_t server_record(const struct kw_fleet_host *ch, const struct kw_upstream *c,
			    const struct kw_fleet_host *sh, __u32 netns)
{
	size_t i, folded = (size_t)-1;

	for (i = 0; i < sh->n; i++) {
		const struct kw_upstream *s = &sh->u[i];

		if (s->key.direction != KW_DIR_INBOUND || s->key.netns != netns ||
		    s->key.port != c->key.port)
			continue;
		if (s->flags & KW_UP_FOLDED)
			folded = i;
		else if (owns(ch, s->key.addr, c->key.netns))
			return i;
	}
	return folded;
}

int kw_fleet_pairs(const struct kw_fleet *f, struct kw_fleet_pair **out, size_t *nout)
{
	struct kw_fleet_pair *p = NULL, *q;
	size_t a, b, i, n = 0;

	for (a = 0; a < f->n; a++) {
		const struct kw_fleet_host *ch = &f->h[a];

		for (i = 0; i < ch->n; i++) {
			const struct kw_upstream *c = &ch->u[i];

			if (c->key.direction != KW_DIR_OUTBOUND || c->flags ||
			    kw_upstream_is_overflow(c))
				continue;
			for (b = 0; b < f->n; b++) {
				__u32 ns = owner_netns(&f->h[b], c->key.addr);
				size_t s = ns ? server_record(ch, c, &f->h[b], ns) : (size_t)-1;

				if (s == (size_t)-1)
					continue;
				q = realloc(p, (n + 1) * sizeof(*p));
				if (!q) {
					free(p);
					return -ENOMEM;
				}
				p = q;
				p[n++] = (struct kw_fleet_pair){ a, i, b, s };
			}
		}
	}
	*out = p;
	*nout = n;
	return 0;
}

/* ---- the document ---- */

static void netns_name(__u32 inode, char *out, size_t len, void *arg)
{
	const struct kw_fleet_host *h = arg;

	snprintf(out, len, "%s", inode && inode <= h->n_netns ? h->netns[inode - 1] : "?");
}

static void host_opts(const struct kw_fleet_host *h, struct kw_doctor_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->uptime = h->uptime > 1 ? h->uptime : 1;
	o->netns_name = netns_name;
	o->netns_arg = (void *)h;
}

static json_t *host_json(const struct kw_fleet_host *h)
{
	struct kw_doctor_opts o;
	struct kw_diagnosis *d;
	json_t *ups;
	size_t n;

	host_opts(h, &o);
	if (kw_doctor_run(h->u, h->n, &o, &d, &n))
		return NULL;
	ups = kw_doctor_upstreams_json(d, n, &o);
	free(d);
	if (!ups)
		return NULL;
	return json_pack("{s:s, s:i, s:f, s:n, s:o}", "instance", h->instance, "version", 1,
			 "uptime_seconds", o.uptime, "lb_idle_timeout", "upstreams", ups);
}

/* "10.0.0.2", or "*" for a group's record */
static void peer_text(const struct kw_upstream *u, char *out, size_t len)
{
	if (u->flags & KW_UP_FOLDED || kw_addr_format(u->key.addr, out, len))
		snprintf(out, len, "*");
}

static json_t *end_json(const struct kw_fleet_host *h, const struct kw_upstream *u, const char *t1,
			const struct kw_timeout *a, const char *t2, const struct kw_timeout *b,
			__u64 races)
{
	char peer[KW_ADDR_STRLEN], netns[64];

	peer_text(u, peer, sizeof(peer));
	netns_name(u->key.netns, netns, sizeof(netns), (void *)h);
	return json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I}", "instance", h->instance, "netns",
			 netns, "peer", peer, "port", (int)u->key.port, t1,
			 kw_doctor_timeout_json(a), t2, kw_doctor_timeout_json(b), "races",
			 (json_int_t)races);
}

static int known(const struct kw_timeout *t)
{
	return t->confidence != KW_CONF_NONE;
}

/*
 * The verdict of a pair and the one setting to change. The rule: the backend's keep-alive
 * must outlast the proxy pool's idle timeout, or the backend closes connections the pool
 * still hands out (the races). Where the pool's timeout is known, the backend's keep-alive
 * goes above it (a backend serves many proxies; as the local doctor's fix); where the pool
 * never closed an idle connection, its timeout is the one to set, below the backend's.
 */
static json_t *verdict_json(const struct kw_fleet *f, const struct kw_fleet_pair *p,
			    const struct kw_diagnosis *cd, const struct kw_diagnosis *sd)
{
	const struct kw_timeout *pool = &cd->timeout[KW_BY_LOCAL];
	const struct kw_timeout *ka = known(&sd->timeout[KW_BY_LOCAL]) ? &sd->timeout[KW_BY_LOCAL] :
									 &cd->timeout[KW_BY_PEER];
	__u64 crace = cd->u->val[KW_F_RACE_CLIENT], srace = sd->u->val[KW_F_RACE_SERVER];
	__u64 races = crace + srace;
	const char *verdict, *host = NULL, *role = NULL;
	char summary[512], fix[512];

	fix[0] = '\0';
	if (races || (known(ka) && (!known(pool) || pool->seconds >= ka->seconds))) {
		verdict = "misaligned";
		if (known(ka) && known(pool))
			snprintf(
				summary, sizeof(summary),
				"the backend closes idle connections after %g s and the proxy's pool "
				"after %g s: the backend closes first, and a request the pool sends "
				"as it does meets a reset (%llu races seen at the proxy, %llu at the "
				"backend)",
				ka->seconds, pool->seconds, (unsigned long long)crace,
				(unsigned long long)srace);
		else if (known(ka))
			snprintf(
				summary, sizeof(summary),
				"the backend closes idle connections after %g s and the proxy's pool "
				"never closed one: the backend closes first, and a request the pool "
				"sends as it does meets a reset (%llu races seen at the proxy, %llu at "
				"the backend)",
				ka->seconds, (unsigned long long)crace, (unsigned long long)srace);
		else
			snprintf(
				summary, sizeof(summary),
				"keep-alive races between the proxy's pool and the backend: %llu seen "
				"at the proxy, %llu at the backend",
				(unsigned long long)crace, (unsigned long long)srace);
		if (known(pool)) {
			host = f->h[p->server_host].instance;
			role = "backend";
			snprintf(
				fix, sizeof(fix),
				"raise the backend's keep-alive timeout above the proxy pool's idle "
				"timeout of %g s, e.g. to %g s (nginx keepalive_timeout %gs; Apache "
				"KeepAliveTimeout %g)",
				pool->seconds, pool->seconds + LB_MARGIN, pool->seconds + LB_MARGIN,
				pool->seconds + LB_MARGIN);
		} else {
			host = f->h[p->client_host].instance;
			role = "proxy";
			if (known(ka))
				snprintf(
					fix, sizeof(fix),
					"set the proxy pool's idle timeout below the backend's "
					"keep-alive timeout of %g s (HAProxy timeout http-keep-alive, "
					"nginx upstream keepalive_timeout, Varnish backend_idle_timeout)",
					ka->seconds);
			else
				snprintf(fix, sizeof(fix),
					 "set the proxy pool's idle timeout below the backend's "
					 "keep-alive timeout");
		}
	} else if (known(ka) && known(pool)) {
		verdict = "aligned";
		snprintf(summary, sizeof(summary),
			 "the proxy's pool closes idle connections after %g s, before the backend "
			 "does (%g s)",
			 pool->seconds, ka->seconds);
	} else {
		verdict = "unknown";
		snprintf(summary, sizeof(summary),
			 "neither end has closed an idle connection yet: no timeout to compare");
	}
	return json_pack("{s:s, s:s, s:o}", "verdict", verdict, "summary", summary, "change",
			 host ? json_pack("{s:s, s:s, s:s}", "instance", host, "role", role, "fix",
					  fix) :
				json_null());
}

static json_t *pair_json(const struct kw_fleet *f, const struct kw_fleet_pair *p)
{
	const struct kw_fleet_host *ch = &f->h[p->client_host], *sh = &f->h[p->server_host];
	struct kw_diagnosis *cd = malloc(2 * sizeof(*cd)), *sd;
	struct kw_doctor_opts co, so;
	json_t *doc = NULL, *v;

	if (!cd)
		return NULL;
	sd = cd + 1;
	host_opts(ch, &co);
	host_opts(sh, &so);
	kw_doctor_upstream(&ch->u[p->client_u], &co, cd);
	kw_doctor_upstream(&sh->u[p->server_u], &so, sd);
	v = verdict_json(f, p, cd, sd);
	if (v)
		doc = json_pack("{s:o, s:o}", "proxy",
				end_json(ch, cd->u, "pool_idle_timeout", &cd->timeout[KW_BY_LOCAL],
					 "backend_idle_timeout_seen", &cd->timeout[KW_BY_PEER],
					 cd->u->val[KW_F_RACE_CLIENT]),
				"backend",
				end_json(sh, sd->u, "keepalive_timeout", &sd->timeout[KW_BY_LOCAL],
					 "proxy_idle_timeout_seen", &sd->timeout[KW_BY_PEER],
					 sd->u->val[KW_F_RACE_SERVER]));
	if (doc && json_object_update(doc, v))
		json_decref(doc), doc = NULL;
	json_decref(v);
	free(cd);
	return doc;
}

json_t *kw_fleet_json(const struct kw_fleet *f)
{
	json_t *hosts = json_array(), *pairs = json_array();
	struct kw_fleet_pair *p = NULL;
	size_t i, n = 0;
	int err = !hosts || !pairs;

	for (i = 0; !err && i < f->n; i++)
		err = json_array_append_new(hosts, host_json(&f->h[i]));
	err = err ?: kw_fleet_pairs(f, &p, &n);
	for (i = 0; !err && i < n; i++)
		err = json_array_append_new(pairs, pair_json(f, &p[i]));
	free(p);
	if (err) {
		json_decref(hosts);
		json_decref(pairs);
		return NULL;
	}
	return json_pack("{s:i, s:o, s:o}", "version", 1, "hosts", hosts, "pairs", pairs);
}

/* ---- text ---- */

/* "2 s (high confidence)", "not seen" */
static void timeout_short(const json_t *t, char *out, size_t len)
{
	const json_t *s = json_object_get(t, "seconds");
	const char *conf = json_string_value(json_object_get(t, "confidence"));

	if (!json_is_number(s) || !conf)
		snprintf(out, len, "not seen (no idle close)");
	else
		snprintf(out, len, "%s%g s (%s confidence)",
			 json_is_true(json_object_get(t, "exact")) ? "" : "about ",
			 json_number_value(s), conf);
}

static int end_fields(const json_t *e, const char **inst, const char **netns, const char **peer,
		      json_int_t *port, json_int_t *races)
{
	*inst = json_string_value(json_object_get(e, "instance"));
	*netns = json_string_value(json_object_get(e, "netns"));
	*peer = json_string_value(json_object_get(e, "peer"));
	*port = json_integer_value(json_object_get(e, "port"));
	*races = json_integer_value(json_object_get(e, "races"));
	return *inst && *netns && *peer ? 0 : -EPROTO;
}

static int pair_lines(const json_t *p, struct kw_buf *out)
{
	const json_t *px = json_object_get(p, "proxy"), *bk = json_object_get(p, "backend");
	const json_t *change = json_object_get(p, "change");
	const char *pi, *pn, *pp, *bi, *bn, *bp, *verdict, *summary;
	json_int_t pport, bport, pr, br;
	char text[640], a[96];
	size_t i;

	verdict = json_string_value(json_object_get(p, "verdict"));
	summary = json_string_value(json_object_get(p, "summary"));
	if (!verdict || !summary || end_fields(px, &pi, &pn, &pp, &pport, &pr) ||
	    end_fields(bk, &bi, &bn, &bp, &bport, &br))
		return -EPROTO;
	snprintf(text, sizeof(text),
		 "%s (netns %s) to %s%s%s:%lld, served by %s (netns %s) from %s", pi, pn,
		 strchr(pp, ':') ? "[" : "", pp, strchr(pp, ':') ? "]" : "", (long long)pport, bi,
		 bn, strcmp(bp, "*") ? bp : "its folded peers");
	kw_wrap(out, "", text, 2, KW_DOCTOR_WIDTH);
	timeout_short(json_object_get(px, "pool_idle_timeout"), a, sizeof(a));
	kw_wrap(out, "  pool idle timeout (proxy):  ", a, 6, KW_DOCTOR_WIDTH);
	timeout_short(json_object_get(bk, "keepalive_timeout"), a, sizeof(a));
	kw_wrap(out, "  keep-alive (backend):       ", a, 6, KW_DOCTOR_WIDTH);
	snprintf(text, sizeof(text),
		 "%lld at the proxy (client side), %lld at the backend (server side)",
		 (long long)pr, (long long)br);
	kw_wrap(out, "  races: ", text, 6, KW_DOCTOR_WIDTH);
	for (i = 0; verdict[i] && i < 16; i++)
		a[i] = verdict[i] >= 'a' && verdict[i] <= 'z' ? verdict[i] - 'a' + 'A' : verdict[i];
	snprintf(a + i, sizeof(a) - i, ": ");
	kw_buf_puts(out, "  ");
	kw_wrap(out, a, summary, 4, KW_DOCTOR_WIDTH - 2);
	if (json_is_object(change)) {
		const char *ci = json_string_value(json_object_get(change, "instance"));
		const char *role = json_string_value(json_object_get(change, "role"));
		const char *fix = json_string_value(json_object_get(change, "fix"));

		if (!ci || !role || !fix)
			return -EPROTO;
		snprintf(text, sizeof(text), "on %s (the %s): %s", ci, role, fix);
		kw_wrap(out, "    change ", text, 6, KW_DOCTOR_WIDTH);
	}
	return 0;
}

int kw_fleet_text(const json_t *doc, struct kw_buf *out)
{
	const json_t *hosts = json_object_get(doc, "hosts"), *pairs = json_object_get(doc, "pairs");
	const json_t *h, *p;
	size_t i;
	int err;

	if (!json_is_array(hosts) || !json_is_array(pairs))
		return -EPROTO;
	json_array_foreach(hosts, i, h) {
		const char *inst = json_string_value(json_object_get(h, "instance"));

		if (!inst)
			return -EPROTO;
		kw_buf_printf(out, "%s== host %s ==\n", i ? "\n" : "", inst);
		err = kw_doctor_text(h, out);
		if (err)
			return err;
	}
	kw_buf_printf(out, "\n== pairs: proxy outbound <-> backend inbound (%zu) ==\n",
		      json_array_size(pairs));
	if (!json_array_size(pairs))
		kw_buf_puts(out, "no outbound upstream goes to an address a scraped host owns "
				 "(keepwatch_netns_address_info)\n");
	json_array_foreach(pairs, i, p) {
		kw_buf_puts(out, "\n");
		err = pair_lines(p, out);
		if (err)
			return err;
	}
	return out->err;
}
