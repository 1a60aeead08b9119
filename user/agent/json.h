/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The JSON API's documents, built from a snapshot. */
#ifndef KW_JSON_H
#define KW_JSON_H

#include <jansson.h>
#include "lib/buf.h"
#include "agent/snapshot.h"

#define KW_JSON_VERSION 1

/* GET /api/v1/upstreams: every upstream with every figure; 0 or -errno. */
int kw_json_upstreams(const struct kw_snapshot *s, struct kw_buf *out);
/* Writes doc compactly, with a newline, and releases it (NULL doc: -ENOMEM). */
int kw_json_dump(json_t *doc, struct kw_buf *out);
/* {"error": msg} */
int kw_json_error(const char *msg, struct kw_buf *out);

#endif /* KW_JSON_H */
