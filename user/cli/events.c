// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Lines of `keepwatch events` from the agent's JSON. Times arrive in UTC (ISO 8601) and
 * are shown in local time to the millisecond; durations in the unit that keeps them short.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/events.h"

int kw_ev_doc_parse(const json_t *doc, __u64 *next, const json_t **events)
{
	const json_t *version = json_object_get(doc, "version");
	const json_t *n = json_object_get(doc, "next");
	const json_t *ev = json_object_get(doc, "events");

	if (!json_is_integer(version))
		return -EPROTO;
	if (json_integer_value(version) != 1)
		return -EPROTONOSUPPORT;
	if (!json_is_integer(n) || json_integer_value(n) < 0 || !json_is_array(ev))
		return -EPROTO;
	*next = (__u64)json_integer_value(n);
	*events = ev;
	return 0;
}

int kw_ev_local_time(const char *iso, char *out, size_t len)
{
	int y, mo, d, h, mi, s, ms, end = 0;
	struct tm tm = { 0 };
	time_t t;

	if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &s, &ms, &end) !=
		    7 ||
	    !end || iso[end] || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    s > 60 || ms < 0 || ms > 999)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = timegm(&tm);
	if (t == (time_t)-1 || !localtime_r(&t, &tm))
		return -EINVAL;
	if ((size_t)snprintf(out, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ms) >= len)
		return -ENOSPC;
	return 0;
}

void kw_ev_format_seconds(double s, char *out, size_t len)
{
	/* each unit up to where its rounded text would need the next one */
	if (s <= 0)
		snprintf(out, len, "0s");
	else if (s * 1e6 < 999.5)
		snprintf(out, len, "%.0fus", s * 1e6);
	else if (s * 1e3 < 999.5)
		snprintf(out, len, "%.3gms", s * 1e3);
	else if (s < 99.9995)
		snprintf(out, len, "%.3fs", s);
	else
		snprintf(out, len, "%.1fs", s);
}

static const char *what(const char *type)
{
	static const struct {
		const char *type, *text;
	} names[] = {
		{ "race", "race" },
		{ "reset_sent", "reset sent" },
		{ "reset_received", "reset received" },
		{ "idle_close", "idle close" },
		{ "unused_close", "unused close" },
		{ "abort_unread", "abort unread" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(type, names[i].type))
			return names[i].text;
	return type;
}

/* A member that must be a string, or a number, or either may be null. */
static int get_str(const json_t *ev, const char *key, const char **out)
{
	const json_t *v = json_object_get(ev, key);

	*out = json_string_value(v);
	return *out ? 0 : -EPROTO;
}

static int get_num(const json_t *ev, const char *key, double *out)
{
	const json_t *v = json_object_get(ev, key);

	*out = NAN;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0)
		return -EPROTO;
	*out = json_number_value(v);
	return 0;
}

/*
 * A line snprintf cut at len - 1 bytes ends with '~' instead, on a UTF-8 character's
 * boundary (the agent's texts may hold any character). -ENOSPC without room for '~'.
 */
static int cut_line(char *out, size_t len)
{
	size_t end = len - 2; /* where '~' goes */

	if (len < 2)
		return -ENOSPC;
	/* back over a character cut short: its continuation bytes, then its lead byte */
	while (end > 0 && ((unsigned char)out[end] & 0xc0) == 0x80)
		end--;
	out[end] = '~';
	out[end + 1] = '\0';
	return 0;
}

int kw_ev_format(const json_t *ev, char *out, size_t len)
{
	const char *time, *type, *dir, *local, *peer, *reason;
	const json_t *r = json_object_get(ev, "reason");
	char hms[32], idle_s[24], gap_s[24];
	double idle, gap;
	int err, n;

	err = get_str(ev, "time", &time);
	err = err ?: get_str(ev, "type", &type);
	err = err ?: get_str(ev, "direction", &dir);
	err = err ?: get_str(ev, "local", &local);
	err = err ?: get_str(ev, "peer", &peer);
	err = err ?: get_num(ev, "idle_seconds", &idle);
	err = err ?: get_num(ev, "gap_seconds", &gap);
	if (err || (r && !json_is_null(r) && !json_is_string(r)))
		return -EPROTO;
	reason = json_string_value(r);
	if (kw_ev_local_time(time, hms, sizeof(hms)))
		snprintf(hms, sizeof(hms), "%.12s", time);
	idle_s[0] = gap_s[0] = '\0';
	/* an idle time of 0 only means something where a close was timed */
	if (!isnan(idle) && (idle > 0 || !strcmp(type, "race") || !strcmp(type, "idle_close") ||
			     !strcmp(type, "unused_close"))) {
		memcpy(idle_s, " idle ", 7);
		kw_ev_format_seconds(idle, idle_s + 6, sizeof(idle_s) - 6);
	}
	if (!isnan(gap)) {
		memcpy(gap_s, " gap ", 6);
		kw_ev_format_seconds(gap, gap_s + 5, sizeof(gap_s) - 5);
	}
	n = snprintf(out, len, "%s %-3s %s -> %s %s%s%s%s%s", hms,
		     !strcmp(dir, "outbound") ? "out" :
		     !strcmp(dir, "inbound")  ? "in" :
						"?",
		     local, peer, what(type), idle_s, gap_s, reason ? " " : "",
		     reason ? reason : "");
	if (n < 0)
		return -EINVAL;
	return (size_t)n < len ? 0 : cut_line(out, len);
}
