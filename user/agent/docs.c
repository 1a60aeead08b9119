// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Writes the metric reference as Markdown from the same tables the exposition uses, so
 * the README cannot drift from what /metrics serves (a unit test compares them).
 */
#include <string.h>

#include "agent/docs.h"
#include "lib/fields.h"
#include "agent/metrics.h"

static void field_labels(struct kw_buf *out, const struct kw_field *f)
{
	unsigned int j;

	kw_buf_puts(out, "direction, peer, port, netns");
	for (j = 0; j < 2 && f->lname[j]; j++)
		kw_buf_printf(out, ", %s", f->lname[j]);
}

int kw_metrics_doc(struct kw_buf *out)
{
	unsigned int i, j;

	kw_buf_puts(out, KW_DOCS_BEGIN);
	kw_buf_puts(out, "Per upstream (labels `direction` = inbound|outbound, `peer`, `port`, "
			 "`netns`; `peer=\"*\"`: the peers folded, see "
			 "[Cardinality](#cardinality)); histograms per port:\n\n");
	kw_buf_puts(out, "| metric | type | labels | `keepwatch stat` field | meaning |\n");
	kw_buf_puts(out, "|---|---|---|---|---|\n");
	for (i = 0; i < KW_F_MAX; i++) {
		const struct kw_field *f = &kw_fields[i];

		kw_buf_printf(out, "| `%s` | %s | ", f->family, f->type);
		field_labels(out, f);
		kw_buf_printf(out, " | `backend_%s`, `client_%s` | %s", f->field, f->field,
			      f->desc);
		for (j = 0; j < 2 && f->lname[j]; j++)
			kw_buf_printf(out, "%s%s=\"%s\"", j ? ", " : " (", f->lname[j],
				      f->lvalue[j]);
		if (f->lname[0])
			kw_buf_puts(out, ")");
		kw_buf_puts(out, " |\n");
	}
	for (i = 0; i < KW_H_MAX; i++) {
		const struct kw_hist_desc *h = &kw_hists[i];

		if (i > 0 && !strcmp(h->family, kw_hists[i - 1].family))
			continue;
		kw_buf_printf(out,
			      "| `%s` | histogram | direction, port, netns%s%s "
			      "(peer with --per-peer-histograms) | | %s |\n",
			      h->family, h->lname ? ", " : "", h->lname ? h->lname : "", h->help);
	}
	kw_buf_puts(out, "\nThe agent's own:\n\n| metric | type | labels | meaning |\n"
			 "|---|---|---|---|\n");
	for (i = 0; i < KW_S_MAX; i++) {
		const struct kw_self_family *s = &kw_self_families[i];

		kw_buf_printf(out, "| `%s` | %s | %s | %s |\n", s->name, s->type,
			      s->label ? s->label : "", s->help);
	}
	kw_buf_puts(out, KW_DOCS_END);
	return out->err;
}
