// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The CLI's reading of the agent's answers: any bytes as the body, parsed as JSON as
 * keepwatch does (json_loadb), then given to the pure part of every command, as each
 * would use it: stat (sums, the line, -j), upstreams (rows, sort, widths, lines, -n with
 * -j), events (the envelope, one line each) and doctor (the report). A document of the
 * wrong shape must be refused, never crash; a line must fit its buffer.
 */
#include <errno.h>
#include <jansson.h>
#include "fuzz.h"
#include "cli/doctor.h"
#include "cli/events.h"
#include "cli/stat.h"
#include "cli/upstreams.h"
#include "lib/text.h"

static void check_stat(const json_t *doc)
{
	struct kw_globs g;
	struct kw_stat st;
	char line[256];
	unsigned int i, width;
	json_t *out;

	if (kw_stat_from_json(doc, &st))
		return;
	kw_globs_init(&g);
	FUZZ_CHECK(!kw_globs_add(&g, "backend_*,client_req"));
	width = kw_stat_name_width(&st, &g);
	for (i = 0; i < KW_STAT_ROWS; i++)
		if (!kw_stat_format(&st.rows[i], width, line, sizeof(line)))
			FUZZ_CHECK(strlen(line) < sizeof(line));
	out = kw_stat_to_json(&st, &g);
	FUZZ_CHECK(out);
	json_decref(out);
	kw_globs_free(&g);
}

static void check_upstreams(const json_t *doc)
{
	struct kw_up_row *rows = NULL;
	struct kw_up_widths w;
	char line[512];
	json_t *sel;
	size_t n, i;

	if (kw_up_rows_from_json(doc, &rows, &n))
		return;
	kw_up_sort(rows, n);
	kw_up_widths(rows, n, &w);
	if (!kw_up_format_header(&w, line, sizeof(line)))
		kw_text_safe(line, 0);
	for (i = 0; i < n; i++)
		if (!kw_up_format_row(&rows[i], &w, line, sizeof(line)))
			kw_text_safe(line, 0);
	sel = kw_up_select_json(doc, rows, n > 3 ? 3 : n); /* -n 3 -j */
	FUZZ_CHECK(sel);
	json_decref(sel);
	free(rows);
}

static void check_events(const json_t *doc)
{
	const json_t *evs, *ev;
	char line[512];
	__u64 next;
	size_t i;
	int err;

	if (kw_ev_doc_parse(doc, &next, &evs))
		return;
	json_array_foreach(evs, i, ev) {
		err = kw_ev_format(ev, line, sizeof(line));
		FUZZ_CHECK(err == 0 || err == -EPROTO);
		if (!err)
			FUZZ_CHECK(strlen(kw_text_safe(line, 0)) < sizeof(line));
	}
}

static void check_doctor(const json_t *doc)
{
	struct kw_buf text;
	int err;

	kw_buf_init(&text);
	err = kw_doctor_text(doc, &text);
	FUZZ_CHECK(err == 0 || err == -EPROTO || err == -EPROTONOSUPPORT);
	if (!err)
		kw_text_safe(text.data, 1);
	kw_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);

	if (!doc)
		return 0;
	check_stat(doc);
	check_upstreams(doc);
	check_events(doc);
	check_doctor(doc);
	json_decref(doc);
	return 0;
}
