// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * README.md's metric reference must be exactly what the tables generate: a metric added
 * to user/lib/fields.h without 'make docs' fails here. Runs from the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"
#include "agent/docs.h"

static char *read_file(const char *path)
{
	struct kw_buf b;
	char chunk[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	kw_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		kw_buf_append(&b, chunk, n);
	fclose(f);
	return kw_buf_steal(&b);
}

static void test_readme_matches_tables(void **state)
{
	struct kw_buf gen;
	char *readme, *begin, *end;

	(void)state;
	kw_buf_init(&gen);
	assert_int_equal(kw_metrics_doc(&gen), 0);
	readme = read_file("README.md");
	assert_non_null(readme);
	begin = strstr(readme, "<!-- metrics:begin");
	assert_non_null(begin);
	end = strstr(begin, KW_DOCS_END);
	assert_non_null(end);
	end[strlen(KW_DOCS_END)] = '\0';
	/* On mismatch, cmocka prints both; 'make docs' fixes it. */
	assert_string_equal(begin, gen.data);
	free(readme);
	kw_buf_free(&gen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readme_matches_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
