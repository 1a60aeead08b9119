/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * The pure logic of `keepwatch events`: one line per event of the agent's /api/v1/events
 * document (local time, direction, local and peer endpoints, what happened, idle time,
 * gap, reason). No I/O here, so the unit tests feed it literal JSON.
 */
#ifndef KW_CLI_EVENTS_H
#define KW_CLI_EVENTS_H

#include <stddef.h>
#include <jansson.h>
#include <linux/types.h>

/*
 * The document's "next" and its events array. -EPROTONOSUPPORT for a version other than
 * 1, -EPROTO for a document of the wrong shape.
 */
int kw_ev_doc_parse(const json_t *doc, __u64 *next, const json_t **events);

/*
 * One event as "13:05:01.123 in  10.77.1.2:80 -> 10.77.1.1:50312 race idle 1.004s
 * gap 200us abort_on_data" in local time, without newline. Absent parts are left out;
 * a line longer than len - 1 bytes is cut and ends with '~'. 0, -EPROTO for an event of
 * the wrong shape, -ENOSPC if len < 2.
 */
int kw_ev_format(const json_t *ev, char *out, size_t len);

/* "13:05:01.123" in local time from "2026-11-23T13:05:01.123Z"; 0 or -EINVAL. */
int kw_ev_local_time(const char *iso, char *out, size_t len);

/* "0s", "200us", "1.5ms", "1.004s", "65.0s" */
void kw_ev_format_seconds(double s, char *out, size_t len);

#endif /* KW_CLI_EVENTS_H */
