/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch doctor`: the agent's /api/v1/doctor document as text, one
 * block per upstream (its inferred timeouts, its connection reuse, then its findings, worst
 * first, with evidence and fix), wrapped to 79 columns. No I/O here, so the unit tests feed
 * it literal JSON.
 */
#ifndef KW_CLI_DOCTOR_H
#define KW_CLI_DOCTOR_H

#include <jansson.h>
#include "lib/buf.h"

#define KW_DOCTOR_WIDTH 79

/*
 * Writes the report; 0, -EPROTONOSUPPORT for a version other than 1, -EPROTO for a
 * document of the wrong shape, -ENOMEM.
 */
int kw_doctor_text(const json_t *doc, struct kw_buf *out);

/*
 * prefix then text, words wrapped so that no line passes width columns (a word longer
 * than a line stays whole), continuation lines indented by indent spaces; ends with a
 * newline. 0 or -ENOMEM.
 */
int kw_wrap(struct kw_buf *out, const char *prefix, const char *text, int indent, int width);

#endif /* KW_CLI_DOCTOR_H */
