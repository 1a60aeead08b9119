// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The table of per-upstream figures (user/lib/fields.h) keeps the rules everything generated
 * from it relies on: complete rows, families grouped with one help and type, unique field
 * names, counters ending in _total, well-formed metric and label names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <linux/types.h>
#include "lib/fields.h"

static int metric_name_ok(const char *s)
{
	const char *p;

	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static void test_rows_complete(void **state)
{
	unsigned int i, j;

	(void)state;
	for (i = 0; i < KW_F_MAX; i++) {
		const struct kw_field *f = &kw_fields[i];

		if (!f->field || !f->family || !f->type || !f->help || !f->desc)
			fail_msg("kw_fields[%u] (%s) has a NULL member", i,
				 f->field ? f->field : "?");
		if (!metric_name_ok(f->field) || !metric_name_ok(f->family))
			fail_msg("kw_fields[%u]: bad name '%s' or family '%s'", i, f->field,
				 f->family);
		if (strcmp(f->type, "counter") && strcmp(f->type, "gauge"))
			fail_msg("kw_fields[%u] (%s): type '%s'", i, f->field, f->type);
		if (!*f->help || !*f->desc)
			fail_msg("kw_fields[%u] (%s): empty help or description", i, f->field);
		for (j = 0; j < 2; j++) {
			if (!f->lname[j] != !f->lvalue[j])
				fail_msg("kw_fields[%u] (%s): label %u has a name xor a value", i,
					 f->field, j);
			if (f->lname[j] && !metric_name_ok(f->lname[j]))
				fail_msg("kw_fields[%u] (%s): bad label name '%s'", i, f->field,
					 f->lname[j]);
		}
		if (!f->lname[0] && f->lname[1])
			fail_msg("kw_fields[%u] (%s): second label without a first", i, f->field);
	}
}

static void test_families_grouped(void **state)
{
	unsigned int i, j;

	(void)state;
	for (i = 1; i < KW_F_MAX; i++) {
		const struct kw_field *prev = &kw_fields[i - 1], *f = &kw_fields[i];

		if (!strcmp(prev->family, f->family)) {
			/* same family: same help, type and label names, other label values */
			assert_string_equal(f->help, prev->help);
			assert_string_equal(f->type, prev->type);
			for (j = 0; j < 2; j++) {
				if (!prev->lname[j] || !f->lname[j]) {
					assert_ptr_equal(prev->lname[j], f->lname[j]);
					continue;
				}
				assert_string_equal(f->lname[j], prev->lname[j]);
			}
			if (!f->lname[0])
				fail_msg("%s: two rows of family %s without labels", f->field,
					 f->family);
			continue;
		}
		/* a new family must not have appeared before */
		for (j = 0; j + 1 < i; j++)
			if (!strcmp(kw_fields[j].family, f->family))
				fail_msg("family %s is split: rows %u and %u, not %u", f->family, j,
					 i, i - 1);
	}
}

/* strcmp that takes NULL as a value of its own */
static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static void test_label_sets_unique(void **state)
{
	unsigned int i, j;

	(void)state;
	for (i = 0; i < KW_F_MAX; i++)
		for (j = i + 1; j < KW_F_MAX; j++) {
			const struct kw_field *a = &kw_fields[i], *b = &kw_fields[j];

			if (strcmp(a->family, b->family) || !a->lvalue[0] || !b->lvalue[0])
				continue;
			if (str_eq(a->lvalue[0], b->lvalue[0]) &&
			    str_eq(a->lvalue[1], b->lvalue[1]))
				fail_msg("%s and %s: same series of %s", a->field, b->field,
					 a->family);
		}
}

static void test_field_names_unique(void **state)
{
	unsigned int i, j;

	(void)state;
	for (i = 0; i < KW_F_MAX; i++) {
		for (j = i + 1; j < KW_F_MAX; j++)
			if (!strcmp(kw_fields[i].field, kw_fields[j].field))
				fail_msg("field '%s' twice: rows %u and %u", kw_fields[i].field, i,
					 j);
		/* figures and histograms share the JSON object of an upstream */
		for (j = 0; j < KW_H_MAX; j++)
			if (!strcmp(kw_fields[i].field, kw_hists[j].field))
				fail_msg("field '%s' is also a histogram's", kw_fields[i].field);
	}
}

static void test_counters_total(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < KW_F_MAX; i++) {
		const struct kw_field *f = &kw_fields[i];
		int total = ends_with(f->family, "_total");

		if (!strcmp(f->type, "counter") && !total)
			fail_msg("counter family %s does not end in _total", f->family);
		if (strcmp(f->type, "counter") && total)
			fail_msg("%s family %s ends in _total", f->type, f->family);
	}
}

static void test_hists_complete(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < KW_H_MAX; i++) {
		const struct kw_hist_desc *h = &kw_hists[i];

		if (!h->field || !h->family || !h->help || !h->bounds || h->nslots < 2)
			fail_msg("kw_hists[%u] is incomplete", i);
		if (!metric_name_ok(h->family) || ends_with(h->family, "_total"))
			fail_msg("kw_hists[%u]: bad family '%s'", i, h->family);
		if (!h->lname != !h->lvalue)
			fail_msg("kw_hists[%u] (%s): label with a name xor a value", i, h->field);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_complete),	  cmocka_unit_test(test_families_grouped),
		cmocka_unit_test(test_label_sets_unique), cmocka_unit_test(test_field_names_unique),
		cmocka_unit_test(test_counters_total),	  cmocka_unit_test(test_hists_complete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
