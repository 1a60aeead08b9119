// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The TIME_WAIT census, from records built by hand: the sysctl parsers at their edges,
 * TIME_WAIT per upstream (inbound when our port listens, outbound otherwise, v4-mapped
 * peers as INET), outbound ports per destination, the usable range (reserved and listening
 * ports taken out once), tcp_tw_reuse 0/1/2 with loopback on either side, headroom at 0,
 * growth and time to exhaustion, and results of several namespaces kept sorted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "lib/addr.h"
#include "agent/census.h"
#include "agent/netns.h"

#define NS_A 4026531840U
#define NS_B 4026532000U

#define ESTABLISHED 1
#define FIN_WAIT2   5

static struct kw_census rec(const char *laddr, __u16 lport, const char *raddr, __u16 rport,
			    __u8 state)
{
	struct kw_census r = { .lport = lport, .rport = rport, .state = state };

	assert_int_equal(kw_addr_parse(laddr, r.laddr), 0);
	assert_int_equal(kw_addr_parse(raddr, r.raddr), 0);
	r.family = strchr(raddr, ':') ? KW_AF_INET6 : KW_AF_INET;
	return r;
}

static struct kw_census listener(const char *laddr, __u16 lport)
{
	return rec(laddr, lport, strchr(laddr, ':') ? "::" : "0.0.0.0", 0, KW_TCP_LISTEN);
}

static void sysctl(struct kw_census_sysctl *s, __u32 lo, __u32 hi, const char *reserved,
		   __u32 tw_reuse)
{
	memset(s, 0, sizeof(*s));
	s->port_lo = lo;
	s->port_hi = hi;
	s->tw_reuse = tw_reuse;
	assert_int_equal(kw_census_parse_reserved(reserved, s->reserved), 0);
}

static struct kw_key key(__u32 netns, int dir, const char *peer, __u16 port)
{
	struct kw_key k = { .netns = netns, .port = port, .direction = dir };

	assert_int_equal(kw_addr_parse(peer, k.addr), 0);
	k.family = strchr(peer, ':') && strncmp(peer, "::ffff:", 7) ? KW_AF_INET6 : KW_AF_INET;
	return k;
}

static const struct kw_census_dest *dest(const struct kw_census_result *r, __u32 netns,
					 const char *laddr, const char *raddr, __u16 rport)
{
	__u8 l[16], a[16];
	size_t i;

	assert_int_equal(kw_addr_parse(laddr, l), 0);
	assert_int_equal(kw_addr_parse(raddr, a), 0);
	for (i = 0; i < r->n_dest; i++)
		if (r->dest[i].netns == netns && !memcmp(r->dest[i].laddr, l, 16) &&
		    !memcmp(r->dest[i].raddr, a, 16) && r->dest[i].rport == rport)
			return &r->dest[i];
	fail_msg("no destination %s -> %s:%u in netns %u", laddr, raddr, rport, netns);
	return NULL;
}

static void test_parse_port_range(void **state)
{
	__u32 lo = 7, hi = 7;

	(void)state;
	assert_int_equal(kw_census_parse_port_range("32768\t60999\n", &lo, &hi), 0);
	assert_int_equal(lo, 32768);
	assert_int_equal(hi, 60999);
	assert_int_equal(kw_census_parse_port_range("1 65535", &lo, &hi), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 65535);
	assert_int_equal(kw_census_parse_port_range("40000\t40000\n", &lo, &hi), 0);
	assert_int_equal(lo, 40000);
	assert_int_equal(hi, 40000);
	lo = hi = 7;
	assert_int_equal(kw_census_parse_port_range("0\t10", &lo, &hi), -ERANGE);
	assert_int_equal(kw_census_parse_port_range("10\t9", &lo, &hi), -ERANGE);
	assert_int_equal(kw_census_parse_port_range("1\t65536", &lo, &hi), -ERANGE);
	assert_int_equal(kw_census_parse_port_range("1\t999999", &lo, &hi), -ERANGE);
	assert_int_equal(kw_census_parse_port_range("", &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range(NULL, &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range("1", &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range("1\t", &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range("1\t2x", &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range("1\t2\n\n", &lo, &hi), -EINVAL);
	assert_int_equal(kw_census_parse_port_range("-1\t2", &lo, &hi), -EINVAL);
	assert_int_equal(lo, 7); /* untouched on error */
	assert_int_equal(hi, 7);
}

static int bit(const __u8 *b, unsigned int p)
{
	return b[p / 8] >> (p % 8) & 1;
}

static unsigned int bits_set(const __u8 *b)
{
	unsigned int p, n = 0;

	for (p = 0; p < 65536; p++)
		n += bit(b, p);
	return n;
}

static void test_parse_reserved(void **state)
{
	static __u8 b[65536 / 8];

	(void)state;
	memset(b, 0xa5, sizeof(b));
	assert_int_equal(kw_census_parse_reserved("", b), 0);
	assert_int_equal(bits_set(b), 0);
	memset(b, 0xa5, sizeof(b));
	assert_int_equal(kw_census_parse_reserved("\n", b), 0);
	assert_int_equal(bits_set(b), 0);
	assert_int_equal(kw_census_parse_reserved("8080,9000-9010\n", b), 0);
	assert_int_equal(bits_set(b), 12);
	assert_int_equal(bit(b, 8079), 0);
	assert_int_equal(bit(b, 8080), 1);
	assert_int_equal(bit(b, 8081), 0);
	assert_int_equal(bit(b, 8999), 0);
	assert_int_equal(bit(b, 9000), 1);
	assert_int_equal(bit(b, 9010), 1);
	assert_int_equal(bit(b, 9011), 0);
	assert_int_equal(kw_census_parse_reserved("0,65535", b), 0);
	assert_int_equal(bits_set(b), 2);
	assert_int_equal(bit(b, 0), 1);
	assert_int_equal(bit(b, 65535), 1);
	assert_int_equal(kw_census_parse_reserved("0-65535", b), 0);
	assert_int_equal(bits_set(b), 65536);
	assert_int_equal(kw_census_parse_reserved("7-7", b), 0);
	assert_int_equal(bits_set(b), 1);
	/* errors leave the bitmap as it was */
	assert_int_equal(kw_census_parse_reserved("65536", b), -ERANGE);
	assert_int_equal(kw_census_parse_reserved("5-3", b), -ERANGE);
	assert_int_equal(kw_census_parse_reserved("1,", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved(",1", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved("1,,2", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved("1-", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved("1;2", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved("a", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved(" 1", b), -EINVAL);
	assert_int_equal(kw_census_parse_reserved(NULL, b), -EINVAL);
	assert_int_equal(bits_set(b), 1);
	assert_int_equal(bit(b, 7), 1);
}

static void test_parse_tw_reuse(void **state)
{
	__u32 v = 7;

	(void)state;
	assert_int_equal(kw_census_parse_tw_reuse("0\n", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(kw_census_parse_tw_reuse("1", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(kw_census_parse_tw_reuse("2\n", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(kw_census_parse_tw_reuse("3", &v), -ERANGE);
	assert_int_equal(kw_census_parse_tw_reuse("", &v), -EINVAL);
	assert_int_equal(kw_census_parse_tw_reuse("-1", &v), -EINVAL);
	assert_int_equal(kw_census_parse_tw_reuse("1 ", &v), -EINVAL);
	assert_int_equal(kw_census_parse_tw_reuse(NULL, &v), -EINVAL);
	assert_int_equal(v, 2);
}

/* TIME_WAIT per upstream: the direction follows whether our port is a listening port. */
static void test_time_wait_per_upstream(void **state)
{
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;
	struct kw_key k;
	struct kw_census recs[] = {
		listener("0.0.0.0", 80),
		listener("::", 8080),
		/* inbound: we closed first, the TIME_WAIT is on our listening port */
		rec("10.0.0.1", 80, "10.0.0.5", 40001, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 80, "10.0.0.5", 40002, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 80, "10.0.0.6", 40001, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 80, "10.0.0.5", 40003, ESTABLISHED),
		/* a dual-stack listener: v4 clients arrive v4-mapped, their family is INET */
		rec("::ffff:10.0.0.1", 8080, "::ffff:10.0.0.7", 41000, KW_TCP_TIME_WAIT),
		/* outbound */
		rec("10.0.0.1", 50000, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 50001, "10.0.0.9", 80, FIN_WAIT2), /* a full socket: not TW */
		rec("10.0.0.1", 50002, "10.0.0.9", 80, ESTABLISHED),
		rec("2001:db8::2", 50000, "2001:db8::1", 443, KW_TCP_TIME_WAIT),
		rec("2001:db8::2", 50001, "2001:db8::1", 443, KW_TCP_TIME_WAIT),
		/* the listener on 81 is gone: our port outside the range, the peer's inside */
		rec("10.0.0.1", 81, "10.0.0.5", 40001, KW_TCP_TIME_WAIT),
		/* ... but with both ports in the range, nothing says it was accepted */
		rec("10.0.0.1", 33000, "10.0.0.5", 40001, KW_TCP_TIME_WAIT),
	};

	(void)state;
	sysctl(&sys, 32768, 60999, "", 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, sizeof(recs) / sizeof(recs[0])), 0);
	assert_int_equal(r.n_ns, 1);
	assert_int_equal(r.ns[0].inode, NS_A);
	assert_int_equal(r.ns[0].sockets, 14);
	assert_int_equal(r.ns[0].time_wait, 9);
	assert_int_equal(r.n_tw, 7);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.5", 80);
	assert_int_equal(k.family, KW_AF_INET);
	assert_int_equal(kw_census_time_wait(&r, &k), 2);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.6", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.7", 8080);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	k = key(NS_A, KW_DIR_OUTBOUND, "10.0.0.9", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	k = key(NS_A, KW_DIR_OUTBOUND, "2001:db8::1", 443);
	assert_int_equal(k.family, KW_AF_INET6);
	assert_int_equal(kw_census_time_wait(&r, &k), 2);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.5", 81);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	k = key(NS_A, KW_DIR_OUTBOUND, "10.0.0.5", 40001);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	/* absent: another direction, namespace, port or family */
	k = key(NS_A, KW_DIR_OUTBOUND, "10.0.0.5", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	k = key(NS_B, KW_DIR_INBOUND, "10.0.0.5", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.5", 82);
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	k = key(NS_A, KW_DIR_INBOUND, "10.0.0.5", 80);
	k.family = KW_AF_INET6;
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	kw_census_free(&r);
	assert_null(r.tw);
	assert_int_equal(r.n_tw, 0);
}

/*
 * Outbound destinations: accepted connections and listeners stay out; the range loses
 * its reserved ports and listening ports once each; sockets outside the range or on a
 * reserved port hold no ephemeral port.
 */
static void test_destinations(void **state)
{
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;
	const struct kw_census_dest *d;
	struct kw_census recs[] = {
		listener("0.0.0.0", 40050), /* in the range: connect() skips it */
		listener("0.0.0.0", 40010), /* in the range but reserved: counted once */
		listener("0.0.0.0", 80),    /* outside the range */
		rec("10.0.0.1", 40050, "10.0.0.8", 33333, ESTABLISHED),	  /* accepted */
		rec("10.0.0.1", 80, "10.0.0.8", 40001, KW_TCP_TIME_WAIT), /* accepted */
		rec("10.0.0.1", 22, "10.0.0.8", 40002, ESTABLISHED), /* accepted, listener gone */
		rec("10.0.0.1", 40000, "10.0.0.9", 80, ESTABLISHED),
		rec("10.0.0.1", 40001, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40002, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40003, "10.0.0.9", 80, 2 /* SYN_SENT */),
		rec("10.0.0.1", 40020, "10.0.0.9", 80, ESTABLISHED), /* reserved: bound by hand */
		rec("10.0.0.1", 39999, "10.0.0.9", 80, KW_TCP_TIME_WAIT), /* below the range */
		rec("10.0.0.2", 40000, "10.0.0.9", 80, ESTABLISHED), /* another local address */
		rec("10.0.0.1", 40000, "10.0.0.9", 81, ESTABLISHED), /* another port */
	};

	(void)state;
	sysctl(&sys, 40000, 40099, "40010,40020-40029\n", 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, sizeof(recs) / sizeof(recs[0])), 0);
	assert_int_equal(r.ns[0].port_lo, 40000);
	assert_int_equal(r.ns[0].port_hi, 40099);
	assert_int_equal(r.ns[0].reserved, 11);
	assert_int_equal(r.ns[0].listening, 1);
	assert_int_equal(r.ns[0].range, 88);
	assert_int_equal(r.ns[0].tw_reuse, 0);
	assert_int_equal(r.n_dest, 3);
	d = dest(&r, NS_A, "10.0.0.1", "10.0.0.9", 80);
	assert_int_equal(d->family, KW_AF_INET);
	assert_int_equal(d->in_use, 6);
	assert_int_equal(d->time_wait, 3);
	assert_int_equal(d->held, 4); /* 40000-40003 */
	assert_int_equal(d->range, 88);
	assert_int_equal(d->headroom, 84);
	assert_true(d->growth_per_s == 0);
	assert_true(isinf(d->exhaustion_s));
	d = dest(&r, NS_A, "10.0.0.2", "10.0.0.9", 80);
	assert_int_equal(d->in_use, 1);
	assert_int_equal(d->held, 1);
	assert_int_equal(d->headroom, 87);
	d = dest(&r, NS_A, "10.0.0.1", "10.0.0.9", 81);
	assert_int_equal(d->in_use, 1);
	assert_int_equal(d->time_wait, 0);
	kw_census_free(&r);
}

/* tcp_tw_reuse: 0 never, 1 always, 2 when either end is loopback (127/8, ::1). */
static void tw_reuse_case(__u32 reuse, const char *laddr, const char *raddr, __u64 want_held)
{
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;
	const struct kw_census_dest *d;
	struct kw_census recs[] = {
		rec(laddr, 40000, raddr, 80, ESTABLISHED),
		rec(laddr, 40001, raddr, 80, KW_TCP_TIME_WAIT),
		rec(laddr, 40002, raddr, 80, KW_TCP_TIME_WAIT),
	};

	sysctl(&sys, 40000, 40009, "", reuse);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 3), 0);
	d = dest(&r, NS_A, laddr, raddr, 80);
	assert_int_equal(d->in_use, 3);
	assert_int_equal(d->time_wait, 2);
	assert_int_equal(d->held, want_held);
	assert_int_equal(d->headroom, 10 - want_held);
	kw_census_free(&r);
}

static void test_tw_reuse(void **state)
{
	(void)state;
	tw_reuse_case(0, "10.0.0.1", "10.0.0.9", 3);
	tw_reuse_case(0, "127.0.0.1", "127.0.0.1", 3);
	tw_reuse_case(1, "10.0.0.1", "10.0.0.9", 1);
	tw_reuse_case(1, "2001:db8::2", "2001:db8::1", 1);
	tw_reuse_case(2, "10.0.0.1", "10.0.0.9", 3);
	tw_reuse_case(2, "127.0.0.1", "127.0.0.1", 1);
	tw_reuse_case(2, "127.1.2.3", "10.0.0.9", 1);  /* local end loopback */
	tw_reuse_case(2, "10.0.0.1", "127.0.0.53", 1); /* peer end loopback */
	tw_reuse_case(2, "128.0.0.1", "126.0.0.1", 3); /* the neighbours of 127/8 */
	tw_reuse_case(2, "::1", "::1", 1);
	tw_reuse_case(2, "::2", "::1", 1);
	tw_reuse_case(2, "2001:db8::2", "2001:db8::1", 3);
	tw_reuse_case(2, "::ffff:127.0.0.1", "::ffff:127.0.0.1", 1);
	tw_reuse_case(2, "::127.0.0.1", "::", 3); /* not v4-mapped: not loopback */
}

/* Headroom reaches 0 and never goes below it; exhausted means exhaustion_s 0. */
static void test_headroom_zero(void **state)
{
	struct kw_census recs[24];
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;
	const struct kw_census_dest *d;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		recs[i] = rec("10.79.0.1", 40000 + i, "10.79.0.2", 80, KW_TCP_TIME_WAIT);
	sysctl(&sys, 40000, 40009, "", 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 10), 0);
	d = dest(&r, NS_A, "10.79.0.1", "10.79.0.2", 80);
	assert_int_equal(d->held, 10);
	assert_int_equal(d->headroom, 0);
	assert_true(d->exhaustion_s == 0);
	kw_census_free(&r);
	/* one short of full */
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 9), 0);
	assert_int_equal(r.dest[0].headroom, 1);
	assert_true(isinf(r.dest[0].exhaustion_s));
	kw_census_free(&r);
	/* a socket seen twice (the iterator under churn) must not wrap the headroom */
	for (i = 0; i < 10; i++)
		recs[10 + i] = recs[i];
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 20), 0);
	assert_int_equal(r.dest[0].held, 20);
	assert_int_equal(r.dest[0].headroom, 0);
	kw_census_free(&r);
	/* the whole range reserved, or a range of one port */
	sysctl(&sys, 40000, 40009, "40000-40009", 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 1), 0);
	assert_int_equal(r.ns[0].range, 0);
	assert_int_equal(r.dest[0].held, 0);
	assert_int_equal(r.dest[0].headroom, 0);
	kw_census_free(&r);
	sysctl(&sys, 40000, 40000, "", 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 1), 0);
	assert_int_equal(r.ns[0].range, 1);
	assert_int_equal(r.dest[0].headroom, 0);
	kw_census_free(&r);
}

/*
 * connect() scans an even number of ports: of an odd range, one port (the first or the
 * last) may never be given. The range counts it out, a socket on it still holds a port.
 */
static void test_odd_range(void **state)
{
	struct kw_census recs[] = {
		rec("10.0.0.1", 40000, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40001, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40100, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
	};
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;

	(void)state;
	sysctl(&sys, 40000, 40100, "", 0); /* 101 ports */
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 3), 0);
	assert_int_equal(r.ns[0].range, 100);
	assert_int_equal(r.dest[0].in_use, 3);
	assert_int_equal(r.dest[0].held, 3);
	assert_int_equal(r.dest[0].headroom, 97);
	kw_census_free(&r);
	sysctl(&sys, 40000, 40099, "", 0); /* 100 ports: all of them */
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 3), 0);
	assert_int_equal(r.ns[0].range, 100);
	assert_int_equal(r.dest[0].held, 2);
	kw_census_free(&r);
	sysctl(&sys, 40000, 40002, "40000", 0); /* 3 ports scanned as 2, one reserved */
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 3), 0);
	assert_int_equal(r.ns[0].reserved, 1);
	assert_int_equal(r.ns[0].range, 1);
	assert_int_equal(r.dest[0].held, 1);
	assert_int_equal(r.dest[0].headroom, 0);
	kw_census_free(&r);
	sysctl(&sys, 40000, 40002, "40000-40002", 0); /* never below 0 */
	assert_int_equal(kw_census_add(&r, NS_A, &sys, recs, 3), 0);
	assert_int_equal(r.ns[0].range, 0);
	kw_census_free(&r);
}

/* n sockets to 10.0.0.9:80 from ports 40000.., in a range of 100. */
static void census_of(struct kw_census_result *r, __u32 netns, int n, const char *peer)
{
	struct kw_census recs[100];
	struct kw_census_sysctl sys;
	int i;

	for (i = 0; i < n; i++)
		recs[i] = rec("10.0.0.1", 40000 + i, peer, 80, ESTABLISHED);
	sysctl(&sys, 40000, 40099, "", 0);
	assert_int_equal(kw_census_add(r, netns, &sys, recs, n), 0);
}

static void test_diff(void **state)
{
	struct kw_census_result prev = {}, cur = {};
	const struct kw_census_dest *d;

	(void)state;
	census_of(&prev, NS_A, 10, "10.0.0.9");
	census_of(&prev, NS_A + 1, 50, "10.0.0.9");
	census_of(&cur, NS_A, 30, "10.0.0.9");
	census_of(&cur, NS_A + 1, 40, "10.0.0.9"); /* shrinking */
	census_of(&cur, NS_A + 2, 5, "10.0.0.9");  /* a namespace prev did not read */

	/* before any diff, and with no previous census: no growth */
	kw_census_diff(NULL, &cur, 10);
	d = dest(&cur, NS_A, "10.0.0.1", "10.0.0.9", 80);
	assert_true(d->growth_per_s == 0);
	assert_true(isinf(d->exhaustion_s));
	kw_census_diff(&prev, &cur, 0);
	assert_true(d->growth_per_s == 0);
	kw_census_diff(&prev, &cur, -1);
	assert_true(d->growth_per_s == 0);

	kw_census_diff(&prev, &cur, 10);
	assert_int_equal(d->headroom, 70);
	assert_true(d->growth_per_s == 2.0);  /* (30 - 10) / 10 s */
	assert_true(d->exhaustion_s == 35.0); /* 70 / 2 */
	d = dest(&cur, NS_A + 1, "10.0.0.1", "10.0.0.9", 80);
	assert_true(d->growth_per_s == -1.0);
	assert_true(isinf(d->exhaustion_s));
	d = dest(&cur, NS_A + 2, "10.0.0.1", "10.0.0.9", 80);
	assert_true(d->growth_per_s == 0);
	assert_true(isinf(d->exhaustion_s));
	kw_census_free(&cur);

	/* new destination in a namespace prev read */
	census_of(&cur, NS_A, 20, "10.0.0.10");
	kw_census_diff(&prev, &cur, 4);
	d = dest(&cur, NS_A, "10.0.0.1", "10.0.0.10", 80);
	assert_true(d->growth_per_s == 5.0);
	assert_true(d->exhaustion_s == 16.0); /* 80 / 5 */
	kw_census_free(&cur);

	/* exhausted: 0 whatever the growth */
	census_of(&cur, NS_A, 100, "10.0.0.9");
	kw_census_diff(&prev, &cur, 1);
	d = dest(&cur, NS_A, "10.0.0.1", "10.0.0.9", 80);
	assert_int_equal(d->headroom, 0);
	assert_true(d->growth_per_s == 90.0);
	assert_true(d->exhaustion_s == 0);
	kw_census_free(&cur);
	kw_census_free(&prev);
}

/* Namespaces added in any order come out sorted; a second add of one is refused. */
static void test_several_namespaces(void **state)
{
	struct kw_census_result r = {};
	struct kw_census_sysctl sys;
	struct kw_census tw_b[] = {
		rec("10.0.0.1", 40000, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40001, "10.0.0.3", 80, KW_TCP_TIME_WAIT),
	};
	struct kw_census tw_a[] = {
		rec("10.0.0.1", 40000, "10.0.0.9", 80, KW_TCP_TIME_WAIT),
		rec("10.0.0.1", 40000, "10.0.0.2", 443, KW_TCP_TIME_WAIT),
	};
	struct kw_key k;
	size_t i;

	(void)state;
	sysctl(&sys, 40000, 40099, "", 0);
	assert_int_equal(kw_census_add(&r, NS_B, &sys, tw_b, 2), 0);
	assert_int_equal(kw_census_add(&r, NS_A, &sys, tw_a, 2), 0);
	assert_int_equal(kw_census_add(&r, NS_A + 7, &sys, NULL, 0), 0); /* empty */
	assert_int_equal(r.n_ns, 3);
	assert_int_equal(r.ns[0].inode, NS_A);
	assert_int_equal(r.ns[1].inode, NS_A + 7);
	assert_int_equal(r.ns[1].sockets, 0);
	assert_int_equal(r.ns[1].range, 100);
	assert_int_equal(r.ns[2].inode, NS_B);
	assert_int_equal(r.n_tw, 4);
	for (i = 1; i < r.n_tw; i++)
		assert_true(memcmp(&r.tw[i - 1].key, &r.tw[i].key, sizeof(struct kw_key)) < 0);
	assert_int_equal(r.n_dest, 4);
	for (i = 1; i < r.n_dest; i++)
		assert_true(r.dest[i - 1].netns <= r.dest[i].netns);
	assert_int_equal(r.dest[0].netns, NS_A);
	assert_int_equal(r.dest[3].netns, NS_B);
	k = key(NS_A, KW_DIR_OUTBOUND, "10.0.0.9", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);
	k = key(NS_B, KW_DIR_OUTBOUND, "10.0.0.3", 80);
	assert_int_equal(kw_census_time_wait(&r, &k), 1);

	/* refused, and r unchanged */
	assert_int_equal(kw_census_add(&r, NS_B, &sys, tw_b, 2), -EEXIST);
	sys.port_lo = 40100;
	assert_int_equal(kw_census_add(&r, NS_B + 1, &sys, tw_b, 2), -EINVAL);
	sys.port_lo = 40000;
	sys.tw_reuse = 3;
	assert_int_equal(kw_census_add(&r, NS_B + 1, &sys, tw_b, 2), -EINVAL);
	assert_int_equal(r.n_ns, 3);
	assert_int_equal(r.n_tw, 4);
	assert_int_equal(r.n_dest, 4);
	kw_census_free(&r);
}

/* An empty result answers like one without TIME_WAIT sockets. */
static void test_empty(void **state)
{
	struct kw_census_result r = {}, prev = {};
	struct kw_key k = key(NS_A, KW_DIR_INBOUND, "10.0.0.5", 80);

	(void)state;
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	kw_census_diff(&prev, &r, 1);
	census_of(&r, NS_A, 3, "10.0.0.9");
	kw_census_diff(&prev, &r, 1);
	assert_true(r.dest[0].growth_per_s == 0); /* prev did not read NS_A */
	assert_int_equal(kw_census_time_wait(&r, &k), 0);
	kw_census_free(&r);
	kw_census_free(&r);
}

/*
 * The runner without BPF: the agent's own namespace is found (entered as root, refused
 * otherwise), but the iterator link is no link; an unknown inode is skipped; a duplicate
 * counts once. Nothing is read, nothing fails as a whole.
 */
static void test_run_without_bpf(void **state)
{
	struct kw_census_result r;
	struct stat st;
	__u32 all[64], ns[3];
	int i, n, found = 0;

	(void)state;
	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	n = kw_netns_all(all, 64);
	assert_true(n >= 1);
	for (i = 0; i < n; i++) {
		found |= all[i] == st.st_ino;
		if (i)
			assert_true(all[i - 1] < all[i]);
	}
	assert_true(found);
	ns[0] = st.st_ino;
	ns[1] = 1; /* no namespace has inode 1 */
	ns[2] = st.st_ino;
	assert_int_equal(kw_census_run(-1, ns, 3, &r), 0);
	assert_int_equal(r.n_ns, 0);
	assert_int_equal(r.n_tw, 0);
	assert_int_equal(r.skipped + r.errors, 2);
	assert_true(r.skipped >= 1);
	kw_census_free(&r);
	assert_int_equal(kw_census_run(-1, NULL, 0, &r), 0);
	assert_int_equal(r.skipped + r.errors, 0);
	kw_census_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_port_range),
		cmocka_unit_test(test_parse_reserved),
		cmocka_unit_test(test_parse_tw_reuse),
		cmocka_unit_test(test_time_wait_per_upstream),
		cmocka_unit_test(test_destinations),
		cmocka_unit_test(test_tw_reuse),
		cmocka_unit_test(test_headroom_zero),
		cmocka_unit_test(test_odd_range),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_several_namespaces),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_run_without_bpf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
