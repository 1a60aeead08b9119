// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The Prometheus text writer: escaping of HELP text and label values, HELP/TYPE once per
 * grouped family, the refusal to restart a family, value formatting and the exact text of
 * a small histogram with cumulative buckets and +Inf equal to _count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "agent/expo.h"

struct fixture {
	struct kw_buf buf;
	struct kw_expo e;
};

static int setup(void **state)
{
	static struct fixture f;

	kw_buf_init(&f.buf);
	kw_expo_init(&f.e, &f.buf);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kw_buf_free(&f->buf);
	return 0;
}

static const char *text(struct fixture *f)
{
	return f->buf.data ? f->buf.data : "";
}

static void test_label_escaping(void **state)
{
	struct fixture *f = *state;
	const struct kw_label lab[] = {
		{ "a", "back\\slash" },
		{ "b", "say \"hi\"" },
		{ "c", "two\nlines" },
		{ "d", "" },
	};

	assert_int_equal(kw_expo_family(&f->e, "x", "gauge", NULL), 0);
	assert_int_equal(kw_expo_u64(&f->e, "x", lab, 4, 1), 0);
	assert_string_equal(
		text(f),
		"# TYPE x gauge\n"
		"x{a=\"back\\\\slash\",b=\"say \\\"hi\\\"\",c=\"two\\nlines\",d=\"\"} 1\n");
}

static void test_help_escaping(void **state)
{
	struct fixture *f = *state;

	/* HELP escapes backslash and newline, not double quotes */
	assert_int_equal(kw_expo_family(&f->e, "x_total", "counter", "a \\ b\nc \"d\""), 0);
	assert_string_equal(text(f), "# HELP x_total a \\\\ b\\nc \"d\"\n# TYPE x_total counter\n");
}

static void test_family_once(void **state)
{
	struct fixture *f = *state;
	const struct kw_label a = { "peer", "a" }, b = { "peer", "b" };

	assert_int_equal(kw_expo_family(&f->e, "req_total", "counter", "Requests."), 0);
	assert_int_equal(kw_expo_u64(&f->e, "req_total", &a, 1, 3), 0);
	assert_int_equal(kw_expo_family(&f->e, "req_total", "counter", "Requests."), 0);
	assert_int_equal(kw_expo_u64(&f->e, "req_total", &b, 1, 4), 0);
	assert_int_equal(kw_expo_family(&f->e, "up", "gauge", "Up."), 0);
	assert_int_equal(kw_expo_sample(&f->e, "up", NULL, 0, 1), 0);
	assert_string_equal(text(f), "# HELP req_total Requests.\n"
				     "# TYPE req_total counter\n"
				     "req_total{peer=\"a\"} 3\n"
				     "req_total{peer=\"b\"} 4\n"
				     "# HELP up Up.\n"
				     "# TYPE up gauge\n"
				     "up 1\n");
	assert_int_equal(f->e.err, 0);
}

static void test_family_restart(void **state)
{
	struct fixture *f = *state;
	size_t len;

	assert_int_equal(kw_expo_family(&f->e, "a", "gauge", "A."), 0);
	assert_int_equal(kw_expo_family(&f->e, "b", "gauge", "B."), 0);
	len = f->buf.len;
	assert_int_equal(kw_expo_family(&f->e, "a", "gauge", "A."), -EALREADY);
	assert_int_equal(f->e.err, -EALREADY);
	/* sticky: nothing more is written */
	assert_int_equal(kw_expo_sample(&f->e, "b", NULL, 0, 1), -EALREADY);
	assert_int_equal(f->buf.len, len);
}

static void test_family_by_content(void **state)
{
	struct fixture *f = *state;
	char n1[] = "same", n2[] = "same";

	/* names compare by content, not by pointer */
	assert_int_equal(kw_expo_family(&f->e, n1, "gauge", NULL), 0);
	assert_int_equal(kw_expo_family(&f->e, n2, "gauge", NULL), 0);
	assert_string_equal(text(f), "# TYPE same gauge\n");
}

static void test_sample_before_family(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kw_expo_sample(&f->e, "x", NULL, 0, 1), -EINVAL);
	assert_int_equal(f->buf.len, 0);
}

static void test_sample_outside_family(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kw_expo_family(&f->e, "x", "gauge", NULL), 0);
	assert_int_equal(kw_expo_sample(&f->e, "x_sum", NULL, 0, 1), 0);
	/* "xy" is not x's: it would split family xy */
	assert_int_equal(kw_expo_sample(&f->e, "xy", NULL, 0, 1), -EINVAL);
}

static void test_invalid_family_name(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kw_expo_family(&f->e, "9x", "gauge", NULL), -EINVAL);
	assert_int_equal(f->buf.len, 0);
}

static void test_invalid_label(void **state)
{
	struct fixture *f = *state;
	const struct kw_label bad = { "1a", "v" }, null = { "a", NULL };

	assert_int_equal(kw_expo_family(&f->e, "x", "gauge", NULL), 0);
	assert_int_equal(kw_expo_sample(&f->e, "x", &null, 1, 1), -EINVAL);
	f->e.err = 0;
	assert_int_equal(kw_expo_sample(&f->e, "x", &bad, 1, 1), -EINVAL);
	assert_string_equal(text(f), "# TYPE x gauge\n");
}

static void test_no_braces_without_labels(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kw_expo_family(&f->e, "x", "gauge", NULL), 0);
	assert_int_equal(kw_expo_sample(&f->e, "x", NULL, 0, 2.5), 0);
	assert_int_equal(kw_expo_u64(&f->e, "x", NULL, 0, 7), 0);
	assert_string_equal(text(f), "# TYPE x gauge\nx 2.5\nx 7\n");
}

static void check_value(double v, const char *want)
{
	struct kw_buf b;
	struct kw_expo e;
	char line[128];

	kw_buf_init(&b);
	kw_expo_init(&e, &b);
	assert_int_equal(kw_expo_family(&e, "v", NULL, NULL), 0);
	assert_int_equal(kw_expo_sample(&e, "v", NULL, 0, v), 0);
	snprintf(line, sizeof(line), "# TYPE v untyped\nv %s\n", want);
	assert_string_equal(b.data, line);
	kw_buf_free(&b);
}

static void test_values(void **state)
{
	(void)state;
	check_value(0, "0");
	check_value(-0.0, "0");
	check_value(1, "1");
	check_value(-3, "-3");
	check_value(1e15, "1000000000000000");
	check_value(9007199254740992.0, "9007199254740992"); /* 2^53 */
	check_value(18446744073709551616.0, "1.8446744073709552e+19");
	check_value(0.5, "0.5");
	check_value(1.1, "1.1");
	check_value(300.5, "300.5");
	check_value(0.001, "0.001");
	check_value(0.1 + 0.2, "0.30000000000000004");
	check_value(1.0 / 3, "0.3333333333333333");
	check_value(1e300, "1e+300");
	check_value(2.5e-7, "2.5e-07");
	check_value(INFINITY, "+Inf");
	check_value(-INFINITY, "-Inf");
	check_value(NAN, "NaN");
}

static void test_u64_exact(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kw_expo_family(&f->e, "x", "counter", NULL), 0);
	assert_int_equal(kw_expo_u64(&f->e, "x", NULL, 0, UINT64_MAX), 0);
	assert_string_equal(text(f), "# TYPE x counter\nx 18446744073709551615\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_label_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_family_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_family_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_family_by_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_before_family, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sample_outside_family, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_family_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_label, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_braces_without_labels, setup, teardown),
		cmocka_unit_test(test_values),
		cmocka_unit_test_setup_teardown(test_u64_exact, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
