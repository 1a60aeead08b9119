// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The checked parsers: integers at 0, at their maximum and one past it, 2^64, signs,
 * spaces, base prefixes and trailing junk; host:port in its accepted and rejected forms;
 * floating-point numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <float.h>
#include <string.h>
#include <cmocka.h>

#include "lib/parse.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static void u64_ok(const char *s, __u64 want)
{
	__u64 v = SENTINEL;

	assert_int_equal(kw_parse_u64(s, 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, want);
}

static void u64_err(const char *s, __u64 min, __u64 max, int err)
{
	__u64 v = SENTINEL;

	assert_int_equal(kw_parse_u64(s, min, max, &v), err);
	assert_int_equal(v, SENTINEL); /* untouched on error */
}

static void test_u64(void **state)
{
	(void)state;
	u64_ok("0", 0);
	u64_ok("1", 1);
	u64_ok("007", 7);
	u64_ok("18446744073709551615", UINT64_MAX);
	u64_err("18446744073709551616", 0, UINT64_MAX, -ERANGE); /* 2^64 */
	u64_err("18446744073709551620", 0, UINT64_MAX, -ERANGE);
	u64_err("99999999999999999999999999", 0, UINT64_MAX, -ERANGE);
	u64_err("", 0, UINT64_MAX, -EINVAL);
	u64_err(NULL, 0, UINT64_MAX, -EINVAL);
	u64_err("-1", 0, UINT64_MAX, -EINVAL);
	u64_err("+1", 0, UINT64_MAX, -EINVAL);
	u64_err(" 1", 0, UINT64_MAX, -EINVAL);
	u64_err("1 ", 0, UINT64_MAX, -EINVAL);
	u64_err("0x10", 0, UINT64_MAX, -EINVAL);
	u64_err("12a", 0, UINT64_MAX, -EINVAL);
	u64_err("1.5", 0, UINT64_MAX, -EINVAL);
	u64_err("1e3", 0, UINT64_MAX, -EINVAL);
	/* range */
	u64_err("0", 1, 10, -ERANGE);
	u64_err("11", 1, 10, -ERANGE);
	{
		__u64 v;

		assert_int_equal(kw_parse_u64("1", 1, 10, &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(kw_parse_u64("10", 1, 10, &v), 0);
		assert_int_equal(v, 10);
	}
}

static void test_u32(void **state)
{
	__u32 v = 7;

	(void)state;
	assert_int_equal(kw_parse_u32("0", 0, UINT32_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(kw_parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	v = 7;
	assert_int_equal(kw_parse_u32("4294967296", 0, UINT32_MAX, &v), -ERANGE);
	assert_int_equal(kw_parse_u32("18446744073709551616", 0, UINT32_MAX, &v), -ERANGE);
	assert_int_equal(kw_parse_u32("-1", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("+1", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32(" 1", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("1 ", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("0x10", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("12a", 0, UINT32_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u32("5", 6, 9, &v), -ERANGE);
	assert_int_equal(v, 7);
}

static void test_u16(void **state)
{
	__u16 v = 7;

	(void)state;
	assert_int_equal(kw_parse_u16("0", 0, UINT16_MAX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(kw_parse_u16("65535", 0, UINT16_MAX, &v), 0);
	assert_int_equal(v, 65535);
	v = 7;
	assert_int_equal(kw_parse_u16("65536", 0, UINT16_MAX, &v), -ERANGE);
	assert_int_equal(kw_parse_u16("18446744073709551616", 0, UINT16_MAX, &v), -ERANGE);
	assert_int_equal(kw_parse_u16("-1", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("+1", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16(" 1", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("1 ", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("0x10", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("12a", 0, UINT16_MAX, &v), -EINVAL);
	assert_int_equal(kw_parse_u16("0", 1, UINT16_MAX, &v), -ERANGE);
	assert_int_equal(v, 7);
}

static void hp_ok(const char *s, const char *host, __u16 port)
{
	char h[64];
	__u16 p = 0;

	memset(h, 'X', sizeof(h));
	assert_int_equal(kw_parse_hostport(s, h, sizeof(h), &p), 0);
	assert_string_equal(h, host);
	assert_int_equal(p, port);
}

static void hp_err(const char *s, int err)
{
	char h[64] = "untouched";
	__u16 p = 42;

	assert_int_equal(kw_parse_hostport(s, h, sizeof(h), &p), err);
	assert_string_equal(h, "untouched");
	assert_int_equal(p, 42);
}

static void test_hostport(void **state)
{
	char small[10];
	__u16 p;

	(void)state;
	hp_ok("127.0.0.1:9479", "127.0.0.1", 9479);
	hp_ok("[::1]:9479", "::1", 9479);
	hp_ok("[fd77::2]:80", "fd77::2", 80);
	hp_ok("localhost:9479", "localhost", 9479);
	hp_ok(":9479", "", 9479);
	hp_ok("0.0.0.0:1", "0.0.0.0", 1);
	hp_ok("host:65535", "host", 65535);

	hp_err("::1:9479", -EINVAL); /* bracketless IPv6 */
	hp_err("fd77::2", -EINVAL);
	hp_err("127.0.0.1", -EINVAL); /* no port */
	hp_err("127.0.0.1:", -EINVAL);
	hp_err("[::1]", -EINVAL);
	hp_err("[::1]9479", -EINVAL);
	hp_err("[::1:9479", -EINVAL);
	hp_err("[]:9479", -EINVAL);
	hp_err("[localhost]:9479", -EINVAL); /* brackets are for IPv6 */
	hp_err("", -EINVAL);
	hp_err(NULL, -EINVAL);
	hp_err("bad host:9479", -EINVAL);
	hp_err("host:http", -EINVAL);
	hp_err("host:+80", -EINVAL);
	hp_err("host:80 ", -EINVAL);
	hp_err("host:0", -ERANGE);
	hp_err("host:65536", -ERANGE);
	hp_err("[::1]:0", -ERANGE);
	hp_err("host:18446744073709551616", -ERANGE);

	/* "123456789" and its NUL fill 10 bytes exactly; one more does not fit */
	assert_int_equal(kw_parse_hostport("123456789:1", small, sizeof(small), &p), 0);
	assert_string_equal(small, "123456789");
	assert_int_equal(kw_parse_hostport("1234567890:1", small, sizeof(small), &p),
			 -ENAMETOOLONG);
	assert_int_equal(kw_parse_hostport("[1234:5678::9]:1", small, sizeof(small), &p),
			 -ENAMETOOLONG);
	assert_int_equal(kw_parse_hostport(":1", small, 0, &p), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_u16),
		cmocka_unit_test(test_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
