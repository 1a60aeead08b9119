// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The logging module: "prog: " prefix, "warning: " and "debug: " markers, the level filter
 * (INFO by default) and one line per message; stderr is redirected to a temporary file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"

static char captured[4096];

/* Run fn with stderr going to a temporary file, and read what it wrote. */
static const char *capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved;
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
	return captured;
}

static void log_all(void)
{
	kw_err("error %d", 1);
	kw_warn("warn %s", "two");
	kw_info("info");
	kw_dbg("debug");
}

static void test_default_level(void **state)
{
	(void)state;
	kw_log_set_prog("kwtest");
	assert_int_equal(kw_log_level(), KW_LOG_INFO);
	assert_string_equal(capture(log_all), "kwtest: error 1\n"
					      "kwtest: warning: warn two\n"
					      "kwtest: info\n");
}

static void test_levels(void **state)
{
	(void)state;
	kw_log_set_prog("kwtest");
	kw_log_set_level(KW_LOG_DEBUG);
	assert_string_equal(capture(log_all), "kwtest: error 1\n"
					      "kwtest: warning: warn two\n"
					      "kwtest: info\n"
					      "kwtest: debug: debug\n");
	kw_log_set_level(KW_LOG_ERROR);
	assert_string_equal(capture(log_all), "kwtest: error 1\n");
	kw_log_set_level(KW_LOG_INFO);
}

static void newline_msg(void)
{
	kw_info("ends with a newline\n");
}

static void test_trailing_newline(void **state)
{
	(void)state;
	kw_log_set_prog("kwtest");
	assert_string_equal(capture(newline_msg), "kwtest: ends with a newline\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_level),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_trailing_newline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
