// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Histogram slots shared by the BPF programs and user space (include/kw_hist.h): the slot
 * of every bound, its neighbours, 0 and UINT64_MAX, and that the bounds user space exposes
 * (kw_hists[] in user/lib/fields.c) are exactly the kernel's, in the exposed unit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/types.h>
#include "kw_hist.h"
#include "lib/fields.h"

static const __u64 idle_ms[] = { KW_IDLE_BOUNDS_MS(KW_BOUND) };
static const __u64 reqs[] = { KW_REQS_BOUNDS(KW_BOUND) };
static const __u64 gap_us[] = { KW_GAP_BOUNDS_US(KW_BOUND) };
static const __u64 lifetime_ms[] = { KW_LIFETIME_BOUNDS_MS(KW_BOUND) };
static const __u64 connect_us[] = { KW_CONNECT_BOUNDS_US(KW_BOUND) };
static const __u64 rtt_us[] = { KW_RTT_BOUNDS_US(KW_BOUND) };

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The definition, independent of the loop under test: a value's slot is the number of
 * bounds below it (the bounds are strictly increasing; checked first).
 */
static unsigned int slot_by_count(const __u64 *b, unsigned int n, __u64 v)
{
	unsigned int i, below = 0;

	for (i = 0; i < n; i++)
		below += b[i] < v;
	return below;
}

static void check_increasing(const __u64 *b, unsigned int n)
{
	unsigned int i;

	for (i = 1; i < n; i++)
		if (b[i] <= b[i - 1])
			fail_msg("bound %u (%llu) <= bound %u (%llu)", i, (unsigned long long)b[i],
				 i - 1, (unsigned long long)b[i - 1]);
}

static void check_around_bounds(const __u64 *b, unsigned int n, unsigned int (*slot)(__u64 v))
{
	unsigned int i;
	int d;

	for (i = 0; i < n; i++) {
		/* the bound itself belongs to its slot: (b[i-1], b[i]] */
		assert_int_equal(slot(b[i]), i);
		for (d = -1; d <= 1; d += 2) {
			__u64 v = b[i] + d;

			if (d < 0 && b[i] == 0)
				continue;
			assert_int_equal(slot(v), slot_by_count(b, n, v));
		}
	}
}

static unsigned int idle_slot(__u64 v)
{
	return kw_idle_slot(v);
}

static unsigned int reqs_slot(__u64 v)
{
	return kw_reqs_slot(v);
}

static void test_idle_slot(void **state)
{
	(void)state;
	assert_int_equal(ARRAY_SIZE(idle_ms), KW_IDLE_SLOTS - 1);
	check_increasing(idle_ms, ARRAY_SIZE(idle_ms));
	check_around_bounds(idle_ms, ARRAY_SIZE(idle_ms), idle_slot);
	assert_int_equal(kw_idle_slot(0), 0);
	assert_int_equal(kw_idle_slot(1), 0);
	assert_int_equal(kw_idle_slot(2), 1);
	assert_int_equal(kw_idle_slot(10), 1);
	assert_int_equal(kw_idle_slot(11), 2);
	assert_int_equal(kw_idle_slot(1000), 5);   /* a 1 s timeout: (0.9, 1.1] */
	assert_int_equal(kw_idle_slot(60000), 21); /* 60 s: (59.5, 60.5] */
	assert_int_equal(kw_idle_slot(300500), KW_IDLE_SLOTS - 2);
	assert_int_equal(kw_idle_slot(300501), KW_IDLE_SLOTS - 1);
	assert_int_equal(kw_idle_slot(UINT32_MAX + 1ULL), KW_IDLE_SLOTS - 1);
	assert_int_equal(kw_idle_slot(UINT64_MAX), KW_IDLE_SLOTS - 1);
}

static void test_reqs_slot(void **state)
{
	(void)state;
	assert_int_equal(ARRAY_SIZE(reqs), KW_REQS_SLOTS - 1);
	check_increasing(reqs, ARRAY_SIZE(reqs));
	check_around_bounds(reqs, ARRAY_SIZE(reqs), reqs_slot);
	assert_int_equal(kw_reqs_slot(0), 0);
	assert_int_equal(kw_reqs_slot(1), 1);
	assert_int_equal(kw_reqs_slot(6), 6); /* exact: Apache's MaxKeepAliveRequests 5 */
	assert_int_equal(kw_reqs_slot(7), 7);
	assert_int_equal(kw_reqs_slot(98), 10);
	assert_int_equal(kw_reqs_slot(99), 10);
	assert_int_equal(kw_reqs_slot(100), 11);
	assert_int_equal(kw_reqs_slot(101), 12); /* exact: Apache's default, 100 */
	assert_int_equal(kw_reqs_slot(102), 13);
	assert_int_equal(kw_reqs_slot(1001), 16); /* exact */
	assert_int_equal(kw_reqs_slot(10000), KW_REQS_SLOTS - 2);
	assert_int_equal(kw_reqs_slot(10001), KW_REQS_SLOTS - 1);
	assert_int_equal(kw_reqs_slot(UINT64_MAX), KW_REQS_SLOTS - 1);
}

/* Exact double equality on purpose: "le" labels must name the kernel's bounds. */
static void check_bounds(enum kw_hist_id h, const __u64 *b, unsigned int nslots, double div)
{
	const struct kw_hist_desc *hd = &kw_hists[h];
	unsigned int i;

	assert_int_equal(hd->nslots, nslots);
	assert_non_null(hd->bounds);
	for (i = 0; i < nslots - 1; i++)
		if (hd->bounds[i] != b[i] / div)
			fail_msg("%s bound %u: %.17g, expected %.17g", hd->field, i, hd->bounds[i],
				 b[i] / div);
}

static void test_exposed_bounds(void **state)
{
	(void)state;
	check_bounds(KW_H_IDLE_LOCAL, idle_ms, KW_IDLE_SLOTS, 1000.0);
	check_bounds(KW_H_IDLE_PEER, idle_ms, KW_IDLE_SLOTS, 1000.0);
	check_bounds(KW_H_REQS_LOCAL, reqs, KW_REQS_SLOTS, 1.0);
	check_bounds(KW_H_REQS_PEER, reqs, KW_REQS_SLOTS, 1.0);
	check_bounds(KW_H_RACE_IDLE, idle_ms, KW_IDLE_SLOTS, 1000.0);
	check_bounds(KW_H_RACE_GAP, gap_us, KW_GAP_SLOTS, 1e6);
	check_bounds(KW_H_LIFETIME, lifetime_ms, KW_LIFETIME_SLOTS, 1000.0);
	check_bounds(KW_H_CONNECT, connect_us, KW_CONNECT_SLOTS, 1e6);
	check_bounds(KW_H_RTT, rtt_us, KW_RTT_SLOTS, 1e6);
}

/* Lifetime, connect latency, RTT: every bound, its neighbours, 0 and the largest value. */
static void check_slots(const __u64 *b, unsigned int nslots, unsigned int (*slot)(__u64 v))
{
	check_increasing(b, nslots - 1);
	check_around_bounds(b, nslots - 1, slot);
	assert_int_equal(slot(0), 0);
	assert_int_equal(slot(b[nslots - 2] + 1), nslots - 1);
	assert_int_equal(slot(UINT64_MAX), nslots - 1);
}

static void test_transfer_slots(void **state)
{
	(void)state;
	assert_int_equal(ARRAY_SIZE(lifetime_ms), KW_LIFETIME_SLOTS - 1);
	assert_int_equal(ARRAY_SIZE(connect_us), KW_CONNECT_SLOTS - 1);
	assert_int_equal(ARRAY_SIZE(rtt_us), KW_RTT_SLOTS - 1);
	check_slots(lifetime_ms, KW_LIFETIME_SLOTS, kw_lifetime_slot);
	check_slots(connect_us, KW_CONNECT_SLOTS, kw_connect_slot);
	check_slots(rtt_us, KW_RTT_SLOTS, kw_rtt_slot);
	/* a connect whose SYN was sent again once, after the 1 s initial RTO */
	assert_int_equal(kw_connect_slot(1000000 + 300), 14);
}

static void test_gap_slot(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < KW_GAP_SLOTS - 1; i++) {
		assert_int_equal(kw_gap_slot(gap_us[i]), i);
		assert_int_equal(kw_gap_slot(gap_us[i] + 1), i + 1);
		if (gap_us[i] > 0)
			assert_int_equal(kw_gap_slot(gap_us[i] - 1), i);
	}
	assert_int_equal(kw_gap_slot(0), 0);
	assert_int_equal(kw_gap_slot(UINT64_MAX), KW_GAP_SLOTS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_slot),      cmocka_unit_test(test_reqs_slot),
		cmocka_unit_test(test_gap_slot),       cmocka_unit_test(test_exposed_bounds),
		cmocka_unit_test(test_transfer_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
