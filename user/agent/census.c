// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The TIME_WAIT census and ephemeral-port headroom; see census.h. The runner enters each
 * namespace from a thread of its own (setns() changes only the calling thread, and the
 * agent's other threads must stay where they are), because both the tcp iterator and the
 * net sysctls under /proc/sys take the namespace of the task that opens them. The
 * aggregation below it is pure and unit-tested.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "agent/census.h"
#include "lib/addr.h"
#include "lib/log.h"
#include "agent/netns.h"

_Static_assert(sizeof(struct kw_census) == 40, "kw_census layout");

/* ---- parsing the sysctls ---- */

/* A decimal number of at most 5 digits up to max; advances *s past it. */
static int parse_port(const char **s, __u32 max, __u32 *out)
{
	const char *p = *s;
	__u32 v = 0;
	int i;

	for (i = 0; i < 6 && isdigit((unsigned char)p[i]); i++)
		v = v * 10 + (p[i] - '0');
	if (i == 0)
		return -EINVAL;
	if (i > 5 || v > max)
		return -ERANGE;
	*s = p + i;
	*out = v;
	return 0;
}

/* Accepts the end of the text: nothing, or one newline. */
static int at_end(const char *s)
{
	return !*s || (s[0] == '\n' && !s[1]);
}

int kw_census_parse_port_range(const char *s, __u32 *lo, __u32 *hi)
{
	__u32 a, b;
	int err;

	if (!s)
		return -EINVAL;
	err = parse_port(&s, 65535, &a);
	if (err)
		return err;
	if (*s != '\t' && *s != ' ')
		return -EINVAL;
	while (*s == '\t' || *s == ' ')
		s++;
	err = parse_port(&s, 65535, &b);
	if (err)
		return err;
	if (!at_end(s))
		return -EINVAL;
	if (a == 0 || a > b)
		return -ERANGE;
	*lo = a;
	*hi = b;
	return 0;
}

int kw_census_parse_reserved(const char *s, __u8 *bitmap)
{
	__u8 bits[65536 / 8] = {};
	__u32 a, b, p;
	int err;

	if (!s)
		return -EINVAL;
	/* The kernel prints "" (or "\n") for none, else "a,b-c,..." in ascending order. */
	while (!at_end(s)) {
		err = parse_port(&s, 65535, &a);
		if (err)
			return err;
		b = a;
		if (*s == '-') {
			s++;
			err = parse_port(&s, 65535, &b);
			if (err)
				return err;
			if (b < a)
				return -ERANGE;
		}
		for (p = a; p <= b; p++)
			bits[p / 8] |= 1 << (p % 8);
		if (*s == ',') {
			if (at_end(++s))
				return -EINVAL; /* a trailing comma */
		} else if (!at_end(s)) {
			return -EINVAL;
		}
	}
	memcpy(bitmap, bits, sizeof(bits));
	return 0;
}

int kw_census_parse_tw_reuse(const char *s, __u32 *out)
{
	__u32 v;
	int err;

	if (!s)
		return -EINVAL;
	err = parse_port(&s, 65535, &v);
	if (err)
		return err;
	if (!at_end(s))
		return -EINVAL;
	if (v > 2)
		return -ERANGE;
	*out = v;
	return 0;
}

/* ---- the pure aggregation ---- */

static int bit_test(const __u8 *bitmap, __u32 p)
{
	return bitmap[p / 8] >> (p % 8) & 1;
}

static int tw_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct kw_census_tw *)a)->key,
		      &((const struct kw_census_tw *)b)->key, sizeof(struct kw_key));
}

static int dest_cmp(const void *pa, const void *pb)
{
	const struct kw_census_dest *a = pa, *b = pb;
	int c;

	if (a->netns != b->netns)
		return a->netns < b->netns ? -1 : 1;
	c = memcmp(a->laddr, b->laddr, 16);
	if (!c)
		c = memcmp(a->raddr, b->raddr, 16);
	if (!c && a->rport != b->rport)
		c = a->rport < b->rport ? -1 : 1;
	return c;
}

static int ns_cmp(const void *pa, const void *pb)
{
	const struct kw_census_netns *a = pa, *b = pb;

	return a->inode < b->inode ? -1 : a->inode > b->inode;
}

/* A socket's destination, for sorting and grouping: no growth figures yet. */
static int rec_dest_cmp(const void *pa, const void *pb)
{
	const struct kw_census *a = pa, *b = pb;
	int c = memcmp(a->laddr, b->laddr, 16);

	if (!c)
		c = memcmp(a->raddr, b->raddr, 16);
	if (!c && a->rport != b->rport)
		c = a->rport < b->rport ? -1 : 1;
	return c;
}

/*
 * Merges the sorted array add[0..nadd) into the sorted *base[0..*n); both hold elements of
 * size sz. Keys never collide: the new ones are of a namespace base does not have yet.
 */
static int merge(void **base, size_t *n, const void *add, size_t nadd, size_t sz,
		 int (*cmp)(const void *, const void *))
{
	const char *a = *base, *b = add;
	size_t i = 0, j = 0, k = 0;
	char *m;

	if (!nadd)
		return 0;
	m = malloc((*n + nadd) * sz);
	if (!m)
		return -ENOMEM;
	while (i < *n || j < nadd) {
		if (j == nadd || (i < *n && cmp(a + i * sz, b + j * sz) < 0))
			memcpy(m + k++ * sz, a + i++ * sz, sz);
		else
			memcpy(m + k++ * sz, b + j++ * sz, sz);
	}
	free(*base);
	*base = m;
	*n = k;
	return 0;
}

/*
 * Ports connect() is sure to find in the range. __inet_hash_connect() scans an even number
 * of them (remaining &= ~1U, Linux 4.6 and later): each scan of an odd range misses one
 * port, the first or the last depending on where it starts. Measured on 6.18 with
 * "40000 40100": one run gave 100 connections (never 40000), another 101. Count the one
 * port that is not sure as absent, so that headroom is never overstated.
 */
static __u32 scan_size(const struct kw_census_sysctl *sys)
{
	__u32 size = sys->port_hi - sys->port_lo + 1;

	return size > 1 ? size & ~1U : size;
}

static int ephemeral(const struct kw_census_sysctl *sys, __u16 port)
{
	return port >= sys->port_lo && port <= sys->port_hi;
}

/*
 * Whether we accepted a socket rather than connected it: its port listens. A listener
 * closed before its connections (a server restarted or stopped) leaves them on a port
 * that no longer listens; they still count as accepted when our port is outside the
 * ephemeral range and the peer's inside it, as connect() gives a port of the range.
 * Otherwise, ports given to connect() would become service ports of "outbound" upstreams.
 */
static int accepted(const struct kw_census_sysctl *sys, const struct kw_census *rec,
		    const __u8 *listening)
{
	return bit_test(listening, rec->lport) ||
	       (!ephemeral(sys, rec->lport) && ephemeral(sys, rec->rport));
}

/* The upstream a TIME_WAIT socket belongs to, as the BPF side keys its connections. */
static void tw_key(__u32 netns, const struct kw_census_sysctl *sys, const struct kw_census *rec,
		   const __u8 *listening, struct kw_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->addr, rec->raddr, 16);
	key->netns = netns;
	if (accepted(sys, rec, listening)) {
		key->direction = KW_DIR_INBOUND;
		key->port = rec->lport;
	} else {
		key->direction = KW_DIR_OUTBOUND;
		key->port = rec->rport;
	}
	key->family = kw_addr_is_v4mapped(rec->raddr) ? KW_AF_INET : KW_AF_INET6;
}

/* TIME_WAIT counts per upstream of one namespace, sorted; *out NULL when there are none. */
static int count_tw(__u32 netns, const struct kw_census_sysctl *sys, const struct kw_census *rec,
		    size_t n, const __u8 *listening, struct kw_census_tw **out, size_t *nout)
{
	struct kw_census_tw *tw;
	size_t i, k = 0;

	*out = NULL;
	*nout = 0;
	tw = calloc(n ? n : 1, sizeof(*tw));
	if (!tw)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (rec[i].state != KW_TCP_TIME_WAIT)
			continue;
		tw_key(netns, sys, &rec[i], listening, &tw[k].key);
		tw[k++].count = 1;
	}
	qsort(tw, k, sizeof(*tw), tw_cmp);
	/* Fold runs of one key into their first element. */
	for (i = 0, n = 0; i < k; i++) {
		if (n && !tw_cmp(&tw[n - 1], &tw[i]))
			tw[n - 1].count++;
		else
			tw[n++] = tw[i];
	}
	if (!n) {
		free(tw);
		return 0;
	}
	*out = tw;
	*nout = n;
	return 0;
}

/* Headroom figures of a row whose in_use, time_wait and held are counted. */
static void dest_finish(struct kw_census_dest *d, __u64 range)
{
	d->range = range;
	d->headroom = d->held < range ? range - d->held : 0;
	d->growth_per_s = 0;
	d->exhaustion_s = d->headroom ? INFINITY : 0;
}

/*
 * Outbound destinations of one namespace: every socket that is neither a listener nor
 * accepted, sorted. A port held is one of the range connect() can give (not reserved, not
 * listening) and not a reusable TIME_WAIT.
 */
static int count_dests(__u32 netns, const struct kw_census_sysctl *sys, const struct kw_census *rec,
		       size_t n, const __u8 *listening, __u64 range, struct kw_census_dest **out,
		       size_t *nout)
{
	struct kw_census_dest *d = NULL;
	struct kw_census *out_recs;
	size_t i, m = 0, k = 0;
	int err = 0;

	*out = NULL;
	*nout = 0;
	out_recs = malloc((n ? n : 1) * sizeof(*out_recs));
	if (!out_recs)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (rec[i].state != KW_TCP_LISTEN && !accepted(sys, &rec[i], listening))
			out_recs[m++] = rec[i];
	if (!m)
		goto free_recs;
	qsort(out_recs, m, sizeof(*out_recs), rec_dest_cmp);
	d = calloc(m, sizeof(*d));
	if (!d) {
		err = -ENOMEM;
		goto free_recs;
	}
	for (i = 0; i < m; i++) {
		const struct kw_census *r = &out_recs[i];
		int tw = r->state == KW_TCP_TIME_WAIT;
		int eph = ephemeral(sys, r->lport) && !bit_test(sys->reserved, r->lport);

		if (!k || rec_dest_cmp(&out_recs[i - 1], r)) {
			if (k)
				dest_finish(&d[k - 1], range);
			memcpy(d[k].laddr, r->laddr, 16);
			memcpy(d[k].raddr, r->raddr, 16);
			d[k].netns = netns;
			d[k].rport = r->rport;
			d[k].family = kw_addr_is_v4mapped(r->raddr) ? KW_AF_INET : KW_AF_INET6;
			k++;
		}
		d[k - 1].in_use++;
		d[k - 1].time_wait += tw;
		if (eph && !(tw && kw_tw_reuse_applies(sys->tw_reuse, r->laddr, r->raddr)))
			d[k - 1].held++;
	}
	dest_finish(&d[k - 1], range);
	*out = d;
	*nout = k;
free_recs:
	free(out_recs);
	return err;
}

int kw_census_add(struct kw_census_result *r, __u32 netns, const struct kw_census_sysctl *sys,
		  const struct kw_census *rec, size_t n)
{
	struct kw_census_netns ns = { .inode = netns };
	struct kw_census_dest *dest = NULL;
	struct kw_census_tw *tw = NULL;
	size_t i, n_tw = 0, n_dest = 0;
	__u8 listening[65536 / 8] = {};
	__u32 p;
	int err;

	if (sys->port_lo > sys->port_hi || sys->port_hi > 65535 || sys->tw_reuse > 2)
		return -EINVAL;
	if (r->n_ns && bsearch(&ns, r->ns, r->n_ns, sizeof(ns), ns_cmp))
		return -EEXIST;
	ns.port_lo = sys->port_lo;
	ns.port_hi = sys->port_hi;
	ns.tw_reuse = sys->tw_reuse;
	ns.sockets = n;
	for (i = 0; i < n; i++) {
		if (rec[i].state == KW_TCP_LISTEN)
			listening[rec[i].lport / 8] |= 1 << (rec[i].lport % 8);
		ns.time_wait += rec[i].state == KW_TCP_TIME_WAIT;
	}
	/* A port bound by a listener (or reserved) is never given by connect(). */
	for (p = sys->port_lo; p <= sys->port_hi; p++) {
		if (bit_test(sys->reserved, p))
			ns.reserved++;
		else if (bit_test(listening, p))
			ns.listening++;
	}
	ns.range = scan_size(sys) > ns.reserved + ns.listening ?
			   scan_size(sys) - ns.reserved - ns.listening :
			   0;

	err = count_tw(netns, sys, rec, n, listening, &tw, &n_tw);
	if (!err)
		err = count_dests(netns, sys, rec, n, listening, ns.range, &dest, &n_dest);
	if (err)
		goto free_rows;
	/* Grow every array first, so that a failure leaves r as it was. */
	{
		struct kw_census_result next = *r;

		next.tw = NULL;
		next.dest = NULL;
		next.ns = NULL;
		next.addr = NULL; /* r's, moved below */
		next.n_tw = next.n_dest = next.n_ns = 0;
		err = merge((void **)&next.tw, &next.n_tw, r->tw, r->n_tw, sizeof(*tw), tw_cmp);
		if (!err)
			err = merge((void **)&next.tw, &next.n_tw, tw, n_tw, sizeof(*tw), tw_cmp);
		if (!err)
			err = merge((void **)&next.dest, &next.n_dest, r->dest, r->n_dest,
				    sizeof(*dest), dest_cmp);
		if (!err)
			err = merge((void **)&next.dest, &next.n_dest, dest, n_dest, sizeof(*dest),
				    dest_cmp);
		if (!err)
			err = merge((void **)&next.ns, &next.n_ns, r->ns, r->n_ns, sizeof(ns),
				    ns_cmp);
		if (!err)
			err = merge((void **)&next.ns, &next.n_ns, &ns, 1, sizeof(ns), ns_cmp);
		if (err) {
			kw_census_free(&next);
			goto free_rows;
		}
		next.skipped = r->skipped;
		next.errors = r->errors;
		next.addr = r->addr;
		r->addr = NULL;
		next.unreadable = r->unreadable;
		kw_census_free(r);
		*r = next;
	}
free_rows:
	free(tw);
	free(dest);
	return err;
}

void kw_census_diff(const struct kw_census_result *prev, struct kw_census_result *cur,
		    double seconds)
{
	size_t i;

	for (i = 0; i < cur->n_dest; i++) {
		struct kw_census_dest *d = &cur->dest[i];
		const struct kw_census_dest *p = NULL;
		struct kw_census_netns probe = { .inode = d->netns };
		double growth = 0;

		if (prev && seconds > 0) {
			if (prev->n_dest)
				p = bsearch(d, prev->dest, prev->n_dest, sizeof(*d), dest_cmp);
			if (p)
				growth = ((double)d->held - (double)p->held) / seconds;
			else if (prev->n_ns &&
				 bsearch(&probe, prev->ns, prev->n_ns, sizeof(probe), ns_cmp))
				growth = d->held / seconds;
		}
		d->growth_per_s = growth;
		if (!d->headroom)
			d->exhaustion_s = 0;
		else if (growth > 0)
			d->exhaustion_s = d->headroom / growth;
		else
			d->exhaustion_s = INFINITY;
	}
}

__u64 kw_census_time_wait(const struct kw_census_result *r, const struct kw_key *key)
{
	struct kw_census_tw probe = { .key = *key };
	const struct kw_census_tw *t;

	if (!r->n_tw)
		return 0;
	t = bsearch(&probe, r->tw, r->n_tw, sizeof(probe), tw_cmp);
	return t ? t->count : 0;
}

void kw_census_free(struct kw_census_result *r)
{
	free(r->tw);
	free(r->dest);
	free(r->ns);
	free(r->addr);
	memset(r, 0, sizeof(*r));
}

/* ---- the runner ---- */

/* The whole iterator output: struct kw_census records (read() may split one). */
static int read_iter(int link_fd, struct kw_census **out, size_t *n)
{
	size_t cap = 1024, len = 0, max = (size_t)KW_CENSUS_MAX_SOCKETS * sizeof(**out);
	char *buf;
	int fd, err = 0;
	ssize_t r;

	fd = bpf_iter_create(link_fd);
	if (fd < 0)
		return -errno;
	buf = malloc(cap * sizeof(**out));
	if (!buf) {
		err = -ENOMEM;
		goto close_fd;
	}
	cap *= sizeof(**out);
	for (;;) {
		if (len == cap) {
			char *nb;

			if (cap >= max) {
				err = -E2BIG;
				break;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		len += r;
	}
	if (!err && len % sizeof(**out))
		err = -EPROTO;
	if (err) {
		free(buf);
		goto close_fd;
	}
	*out = (struct kw_census *)buf;
	*n = len / sizeof(**out);
close_fd:
	close(fd);
	return err;
}

/* Reads a small /proc/sys file of the current namespace into buf. */
static int read_sysctl(const char *path, char *buf, size_t len)
{
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	return 0;
}

static int read_sysctls(struct kw_census_sysctl *sys)
{
	char buf[4096];
	int err;

	err = read_sysctl("/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof(buf));
	if (!err)
		err = kw_census_parse_port_range(buf, &sys->port_lo, &sys->port_hi);
	if (!err)
		err = read_sysctl("/proc/sys/net/ipv4/ip_local_reserved_ports", buf, sizeof(buf));
	if (!err)
		err = kw_census_parse_reserved(buf, sys->reserved);
	if (!err)
		err = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", buf, sizeof(buf));
	if (!err)
		err = kw_census_parse_tw_reuse(buf, &sys->tw_reuse);
	return err;
}

struct run {
	int link_fd;
	struct kw_census_result *out;
	struct kw_census_sysctl sys;
};

/*
 * The local addresses of the namespace this thread is in now (getifaddrs' netlink socket
 * is made in it), for keepwatch_netns_address_info: which host owns which address, so
 * that the fleet doctor pairs a proxy's outbound upstream with its backend's inbound one.
 */
static void read_addrs(struct kw_census_result *r, __u32 netns)
{
	struct ifaddrs *ifa, *i;
	struct kw_census_addr *a;
	unsigned int kept = 0;

	if (getifaddrs(&ifa)) {
		kw_dbg("census of netns %u: getifaddrs: %s", netns, strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		struct kw_census_addr x = { .netns = netns };

		if (!i->ifa_addr || kw_addr_from_sockaddr(i->ifa_addr, x.addr) ||
		    kw_addr_is_loopback(x.addr) || kw_addr_is_link_local(x.addr))
			continue;
		if (kept == KW_CENSUS_ADDRS_MAX) {
			r->addr_dropped++;
			continue;
		}
		a = realloc(r->addr, (r->n_addr + 1) * sizeof(*a));
		if (!a)
			break;
		r->addr = a;
		r->addr[r->n_addr++] = x;
		kept++;
	}
	freeifaddrs(ifa);
}

/* The census of the namespace this thread is in now. */
static int census_here(void *arg, __u32 netns)
{
	struct run *run = arg;
	struct kw_census *rec = NULL;
	size_t n = 0;
	int err;

	err = read_iter(run->link_fd, &rec, &n);
	if (err) {
		kw_dbg("census of netns %u: read iter/tcp: %s", netns, strerror(-err));
		run->out->errors++;
		return 0;
	}
	err = read_sysctls(&run->sys);
	if (err) {
		kw_dbg("census of netns %u: read port sysctls: %s", netns, strerror(-err));
		run->out->errors++;
		goto free_rec;
	}
	err = kw_census_add(run->out, netns, &run->sys, rec, n);
	if (err == -ENOMEM)
		goto free_rec;
	if (!err)
		read_addrs(run->out, netns);
	if (err) {
		kw_dbg("census of netns %u: %s", netns, strerror(-err));
		run->out->errors++;
		err = 0;
	}
free_rec:
	free(rec);
	return err;
}

int kw_census_run(int link_fd, const __u32 *netns, unsigned int n, struct kw_census_result *out)
{
	unsigned int skipped = 0;
	struct run *run;
	int err;

	memset(out, 0, sizeof(*out));
	run = malloc(sizeof(*run)); /* the sysctls hold an 8 KiB bitmap */
	if (!run)
		return -ENOMEM;
	run->link_fd = link_fd;
	run->out = out;
	err = kw_netns_each(netns, n, census_here, run, &skipped);
	out->skipped = skipped;
	free(run);
	if (err)
		kw_census_free(out);
	return err;
}
