// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Namespace names for labels: "host" for our own namespace, the inode number for one
 * with no name under /var/run/netns, cut to the buffer as snprintf would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "agent/netns.h"

static __u32 own_inode(void)
{
	struct stat st;

	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	return st.st_ino;
}

static void test_host(void **state)
{
	char out[KW_NETNS_NAMELEN];

	(void)state;
	kw_netns_name(own_inode(), out, sizeof(out));
	assert_string_equal(out, "host");
}

/* Inodes 1 and 2^32 - 1 are no namespace's (procfs numbers them up from 0xf0000000). */
static void test_unnamed(void **state)
{
	char out[KW_NETNS_NAMELEN];

	(void)state;
	kw_netns_name(1, out, sizeof(out));
	assert_string_equal(out, "1");
	kw_netns_name(4294967295u, out, sizeof(out));
	assert_string_equal(out, "4294967295");
}

static void test_cut(void **state)
{
	char out[8];

	(void)state;
	kw_netns_name(own_inode(), out, 3);
	assert_string_equal(out, "ho");
	kw_netns_name(4294967295u, out, sizeof(out));
	assert_string_equal(out, "4294967");
	memcpy(out, "xyz", 4);
	kw_netns_name(4294967295u, out, 0); /* room for nothing: nothing written */
	assert_string_equal(out, "xyz");
	kw_netns_name(4294967295u, out, 1);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_unnamed),
		cmocka_unit_test(test_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
