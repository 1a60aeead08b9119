// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Snapshot memory: a few upstreams from malloc, many in a mapping of their own aligned
 * to a huge page; zeroed and writable either way, and freed whole by kw_snapshot_free.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "agent/collector.h"

static void check_zeroed(const struct kw_snapshot *s, size_t n)
{
	static const struct kw_upstream zero;
	size_t i;

	for (i = 0; i < n; i++)
		if (memcmp(&s->u[i], &zero, sizeof(zero)))
			fail_msg("upstream %zu of %zu not zeroed", i, n);
}

static void test_small(void **state)
{
	struct kw_snapshot s = { 0 };

	(void)state;
	assert_int_equal(kw_snapshot_alloc(&s, 0), 0);
	assert_non_null(s.u);
	assert_int_equal(s.u_mapped, 0);
	kw_snapshot_free(&s);
	assert_int_equal(kw_snapshot_alloc(&s, 100), 0);
	assert_int_equal(s.u_mapped, 0);
	check_zeroed(&s, 100);
	s.u[99].val[KW_F_CONN] = 1;
	kw_snapshot_free(&s);
	assert_null(s.u);
}

/* 10k upstreams: 20 MB, rounded up to whole 2 MB pages. */
static void test_large(void **state)
{
	struct kw_snapshot s = { 0 };
	size_t n = 10002, len = n * sizeof(struct kw_upstream);

	(void)state;
	assert_int_equal(kw_snapshot_alloc(&s, n), 0);
	assert_non_null(s.u);
	assert_int_equal((uintptr_t)s.u % (2u << 20), 0);
	assert_int_equal(s.u_mapped % (2u << 20), 0);
	assert_true(s.u_mapped >= len);
	assert_true(s.u_mapped < len + (2u << 20));
	check_zeroed(&s, n);
	memset(s.u, 0xab, len);
	s.n = n;
	kw_snapshot_free(&s);
	assert_null(s.u);
	assert_int_equal(s.u_mapped, 0);
	assert_int_equal(s.n, 0);
}

static void test_too_many(void **state)
{
	struct kw_snapshot s = { 0 };

	(void)state;
	assert_int_equal(kw_snapshot_alloc(&s, SIZE_MAX / 16), -ENOMEM);
	assert_int_equal(s.u_mapped, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
