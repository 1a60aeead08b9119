// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The growable string buffer: NUL termination from the first append, growth across many
 * appends and long printf output, reset, and steal's empty-string and reuse behaviour.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"

static void test_append(void **state)
{
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	assert_null(b.data);
	assert_int_equal(kw_buf_append(&b, "", 0), 0);
	assert_non_null(b.data); /* NUL-terminated once anything was appended */
	assert_string_equal(b.data, "");
	assert_int_equal(kw_buf_append(&b, "abcdef", 3), 0);
	assert_int_equal(kw_buf_puts(&b, "-x"), 0);
	assert_string_equal(b.data, "abc-x");
	assert_int_equal(b.len, 5);
	assert_true(b.cap > b.len);
	kw_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void test_growth(void **state)
{
	struct kw_buf b;
	unsigned int i;

	(void)state;
	kw_buf_init(&b);
	for (i = 0; i < 10000; i++)
		assert_int_equal(kw_buf_puts(&b, "0123456789"), 0);
	assert_int_equal(b.len, 100000);
	assert_int_equal(strlen(b.data), 100000);
	assert_memory_equal(b.data + 99990, "0123456789", 11);
	kw_buf_free(&b);
}

static void test_printf(void **state)
{
	char big[1000];
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	assert_int_equal(kw_buf_printf(&b, "%s=%d", "a", 1), 0);
	assert_int_equal(kw_buf_printf(&b, "%s", ""), 0);
	assert_string_equal(b.data, "a=1");
	/* longer than the spare room: formatted again after growing */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kw_buf_printf(&b, ",%s,%u", big, 42u), 0);
	assert_int_equal(b.len, 3 + 1 + 999 + 3);
	assert_int_equal(strlen(b.data), b.len);
	assert_string_equal(b.data + b.len - 4, "z,42");
	kw_buf_free(&b);
}

static void test_reset(void **state)
{
	struct kw_buf b;
	size_t cap;

	(void)state;
	kw_buf_init(&b);
	kw_buf_puts(&b, "hello");
	cap = b.cap;
	kw_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(b.cap, cap); /* memory kept */
	b.err = -ENOMEM;
	kw_buf_reset(&b);
	assert_int_equal(b.err, 0);
	kw_buf_free(&b);
}

static void test_sticky_error(void **state)
{
	struct kw_buf b;

	(void)state;
	kw_buf_init(&b);
	kw_buf_puts(&b, "partial");
	b.err = -ENOMEM; /* as after a failed realloc */
	assert_int_equal(kw_buf_puts(&b, "more"), -ENOMEM);
	assert_int_equal(kw_buf_printf(&b, "%d", 1), -ENOMEM);
	assert_string_equal(b.data, "partial");
	errno = 0;
	assert_null(kw_buf_steal(&b)); /* truncated text is never handed out */
	assert_int_equal(errno, ENOMEM);
	assert_null(b.data);
	assert_int_equal(b.err, 0);
}

static void test_steal(void **state)
{
	struct kw_buf b;
	char *s;

	(void)state;
	kw_buf_init(&b);
	s = kw_buf_steal(&b); /* never appended to: "" */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	kw_buf_puts(&b, "text");
	s = kw_buf_steal(&b);
	assert_string_equal(s, "text");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* b is reusable */
	kw_buf_puts(&b, "again");
	assert_string_equal(b.data, "again");
	free(s);
	kw_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append),	     cmocka_unit_test(test_growth),
		cmocka_unit_test(test_printf),	     cmocka_unit_test(test_reset),
		cmocka_unit_test(test_sticky_error), cmocka_unit_test(test_steal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
