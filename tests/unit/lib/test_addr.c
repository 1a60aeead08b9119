// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Peer addresses: v4-mapped addresses print as dotted quads, everything else as IPv6
 * text; too small buffers fail with -ENOSPC; parsing and formatting round-trip.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "lib/addr.h"

static void check_format(const __u8 a[16], const char *want)
{
	char out[KW_ADDR_STRLEN];

	assert_int_equal(kw_addr_format(a, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_format_v4mapped(void **state)
{
	__u8 a[16];

	(void)state;
	kw_addr_v4mapped(htonl(0x0a000002), a); /* 10.0.0.2 */
	check_format(a, "10.0.0.2");
	kw_addr_v4mapped(0, a);
	check_format(a, "0.0.0.0");
	kw_addr_v4mapped(htonl(0xffffffff), a);
	check_format(a, "255.255.255.255");
	/* the mapping itself: ::ffff:a.b.c.d with the address in network order */
	kw_addr_v4mapped(htonl(0xc0a80001), a);
	assert_int_equal(a[10], 0xff);
	assert_int_equal(a[11], 0xff);
	assert_int_equal(a[12], 192);
	assert_int_equal(a[15], 1);
}

/* Every octet value in every position, against inet_ntop. */
static void test_format_v4_octets(void **state)
{
	char want[INET_ADDRSTRLEN];
	unsigned int v, i;
	__u8 a[16];

	(void)state;
	for (v = 0; v < 256; v++) {
		for (i = 0; i < 4; i++) {
			__u8 q[4] = { 255 - v, v / 2, v * 7, 9 };

			q[i] = v;
			kw_addr_v4mapped(0, a);
			memcpy(a + 12, q, 4);
			assert_non_null(inet_ntop(AF_INET, q, want, sizeof(want)));
			check_format(a, want);
		}
	}
}

static void test_format_v6(void **state)
{
	__u8 a[16] = { 0 };

	(void)state;
	check_format(a, "::");
	a[15] = 1;
	check_format(a, "::1");
	memset(a, 0, sizeof(a));
	a[0] = 0xfd;
	a[1] = 0x77;
	a[15] = 2;
	check_format(a, "fd77::2");
	/* v4-compatible (::a.b.c.d) and ::fffe:... are not v4-mapped */
	memset(a, 0, sizeof(a));
	a[10] = 0xff;
	a[11] = 0xfe;
	a[12] = 10;
	a[15] = 2;
	check_format(a, "::fffe:a00:2");
	memset(a, 0xff, sizeof(a));
	check_format(a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_format_nospace(void **state)
{
	char out[KW_ADDR_STRLEN];
	__u8 a[16];

	(void)state;
	kw_addr_v4mapped(htonl(0x0a000002), a);
	/* "10.0.0.2" needs 9 bytes with its NUL */
	assert_int_equal(kw_addr_format(a, out, 9), 0);
	assert_string_equal(out, "10.0.0.2");
	assert_int_equal(kw_addr_format(a, out, 8), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(kw_addr_format(a, out, 0), -ENOSPC);
	memset(a, 0xff, sizeof(a));
	assert_int_equal(kw_addr_format(a, out, 39), -ENOSPC);
	assert_int_equal(kw_addr_format(a, out, 40), 0);
}

static void round_trip(const char *s, const char *want)
{
	char out[KW_ADDR_STRLEN];
	__u8 a[16];

	assert_int_equal(kw_addr_parse(s, a), 0);
	assert_int_equal(kw_addr_format(a, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_parse(void **state)
{
	static const __u8 mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2 };
	__u8 a[16];

	(void)state;
	assert_int_equal(kw_addr_parse("10.0.0.2", a), 0);
	assert_memory_equal(a, mapped, 16);
	round_trip("10.0.0.2", "10.0.0.2");
	round_trip("0.0.0.0", "0.0.0.0");
	round_trip("::ffff:10.0.0.2", "10.0.0.2");
	round_trip("::1", "::1");
	round_trip("fd77::2", "fd77::2");
	round_trip("FD77:0:0::2", "fd77::2");
	round_trip("::", "::");
	assert_int_equal(kw_addr_parse("", a), -EINVAL);
	assert_int_equal(kw_addr_parse(NULL, a), -EINVAL);
	assert_int_equal(kw_addr_parse("10.0.0", a), -EINVAL);
	assert_int_equal(kw_addr_parse("10.0.0.256", a), -EINVAL);
	assert_int_equal(kw_addr_parse(" 10.0.0.2", a), -EINVAL);
	assert_int_equal(kw_addr_parse("[::1]", a), -EINVAL);
	assert_int_equal(kw_addr_parse("localhost", a), -EINVAL);
}

static void test_endpoint(void **state)
{
	char out[KW_ENDPOINT_STRLEN];
	__u8 a[16];

	(void)state;
	kw_addr_parse("10.77.1.2", a);
	assert_int_equal(kw_addr_format_endpoint(a, 80, out, sizeof(out)), 0);
	assert_string_equal(out, "10.77.1.2:80");
	assert_int_equal(kw_addr_format_endpoint(a, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "10.77.1.2:0");
	kw_addr_parse("::ffff:10.77.1.2", a);
	assert_int_equal(kw_addr_format_endpoint(a, 65535, out, sizeof(out)), 0);
	assert_string_equal(out, "10.77.1.2:65535");
	kw_addr_parse("fd77::2", a);
	assert_int_equal(kw_addr_format_endpoint(a, 8080, out, sizeof(out)), 0);
	assert_string_equal(out, "[fd77::2]:8080");
	/* the longest address text inet_ntop writes, with brackets and port */
	kw_addr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", a);
	assert_int_equal(kw_addr_format_endpoint(a, 65535, out, sizeof(out)), 0);
	assert_string_equal(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
	assert_int_equal(kw_addr_format_endpoint(a, 65535, out, 47), -ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(kw_addr_format_endpoint(a, 65535, out, 48), 0);
	kw_addr_parse("10.77.1.2", a);
	assert_int_equal(kw_addr_format_endpoint(a, 80, out, 12), -ENOSPC);
	assert_int_equal(kw_addr_format_endpoint(a, 80, out, 13), 0);
}

static void test_parse_peer(void **state)
{
	__u8 a[16], want[16];
	__u16 port = 7;

	(void)state;
	kw_addr_parse("10.0.0.2", want);
	assert_int_equal(kw_addr_parse_peer("10.0.0.2", a, &port), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(port, 0);
	assert_int_equal(kw_addr_parse_peer("10.0.0.2:80", a, &port), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(port, 80);
	kw_addr_parse("fd77::2", want);
	assert_int_equal(kw_addr_parse_peer("fd77::2", a, &port), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(port, 0);
	assert_int_equal(kw_addr_parse_peer("[fd77::2]:8080", a, &port), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(port, 8080);
	/* nothing written on failure */
	port = 7;
	memset(a, 0xaa, sizeof(a));
	memcpy(want, a, 16);
	assert_int_equal(kw_addr_parse_peer("", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer(NULL, a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer(":80", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("10.0.0.2:0", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("10.0.0.2:65536", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("10.0.0.2:", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("[fd77::2]", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("[10.0.0.2]:80", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("localhost:80", a, &port), -EINVAL);
	assert_int_equal(kw_addr_parse_peer("example.com", a, &port), -EINVAL);
	assert_memory_equal(a, want, 16);
	assert_int_equal(port, 7);
}

/* getifaddrs' addresses as stored; fe80::/10 is link-local, fec0:: and IPv4 are not. */
static void test_sockaddr(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr un = { .sa_family = AF_UNIX };
	__u8 a[16], want[16];

	(void)state;
	inet_pton(AF_INET, "10.0.0.2", &in.sin_addr);
	assert_int_equal(kw_addr_from_sockaddr((struct sockaddr *)&in, a), 0);
	assert_int_equal(kw_addr_parse("10.0.0.2", want), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(kw_addr_is_link_local(a), 0);
	inet_pton(AF_INET6, "fd77::2", &in6.sin6_addr);
	assert_int_equal(kw_addr_from_sockaddr((struct sockaddr *)&in6, a), 0);
	assert_int_equal(kw_addr_parse("fd77::2", want), 0);
	assert_memory_equal(a, want, 16);
	assert_int_equal(kw_addr_from_sockaddr(&un, a), -EAFNOSUPPORT);
	assert_int_equal(kw_addr_parse("fe80::1", a), 0);
	assert_int_equal(kw_addr_is_link_local(a), 1);
	assert_int_equal(kw_addr_parse("febf::1", a), 0);
	assert_int_equal(kw_addr_is_link_local(a), 1);
	assert_int_equal(kw_addr_parse("fec0::1", a), 0);
	assert_int_equal(kw_addr_is_link_local(a), 0);
	assert_int_equal(kw_addr_parse("254.128.0.1", a), 0);
	assert_int_equal(kw_addr_is_link_local(a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_v4mapped), cmocka_unit_test(test_format_v4_octets),
		cmocka_unit_test(test_format_v6),	cmocka_unit_test(test_format_nospace),
		cmocka_unit_test(test_parse),		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_parse_peer),	cmocka_unit_test(test_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
