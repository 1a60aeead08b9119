/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The terminal side of `keepwatch top`: a full screen refreshed every interval (ncurses)
 * with keys to sort, filter, scroll and quit, or, when stdout is no terminal, one plain
 * block of lines per interval. The caller fetches the agent's answers.
 */
#ifndef KW_CLI_TOP_TERM_H
#define KW_CLI_TOP_TERM_H

#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>
#include "cli/top.h"

/* The agent's /api/v1/upstreams document into *doc; or non-zero, the reason in err. */
typedef int (*kw_top_fetch_fn)(void *ctx, json_t **doc, char *err, size_t len);

struct kw_top_opts {
	double interval;  /* s between samples */
	__u32 iterations; /* samples with rates before exiting; 0: until quit */
	struct kw_top_order order;
	const char *filter; /* the --filter text, or NULL */
	kw_top_fetch_fn fetch;
	void *ctx;
};

/* Plain blocks on stdout; 0, or 1 when the agent fails or the output cannot be written. */
int kw_top_run_plain(const struct kw_top_opts *o);

/*
 * The full screen on the terminal of stdout; 0 when quit (q, SIGINT, SIGTERM or after
 * the iterations), 1 when the terminal cannot be used or memory runs out. The agent's
 * failures show on the last line and the next interval tries again.
 */
int kw_top_run_screen(const struct kw_top_opts *o);

#endif /* KW_CLI_TOP_TERM_H */
