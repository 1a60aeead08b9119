// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The text report of `keepwatch doctor`, from the agent's JSON. Each upstream gets a
 * heading, the idle timeout each side showed (named for what it is in that direction: our
 * keep-alive and the balancer's idle timeout inbound, our pool's idle timeout and the
 * backend's keep-alive outbound), how its connections are reused, then its findings as the
 * agent ordered them, worst first.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>
#include "kw_limits.h"
#include "cli/doctor.h"
#include "lib/duration.h"

int kw_wrap(struct kw_buf *out, const char *prefix, const char *text, int indent, int width)
{
	int col = strlen(prefix), start = col;
	const char *p = text;

	kw_buf_puts(out, prefix);
	while (*p) {
		int n;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		n = strcspn(p, " ");
		if (col > start && col + 1 + n > width) {
			kw_buf_printf(out, "\n%*s", indent, "");
			col = start = indent;
		}
		if (col > start)
			kw_buf_puts(out, " "), col++;
		kw_buf_append(out, p, n);
		col += n;
		p += n;
	}
	kw_buf_puts(out, "\n");
	return out->err;
}

/* "5 s (high confidence: 40 of 40 idle closes)"; what "null" means is in side_lines(). */
static int timeout_text(const json_t *t, char *out, size_t len)
{
	const json_t *range = json_object_get(t, "range");
	const json_t *lo = json_array_get(range, 0), *hi = json_array_get(range, 1);
	const json_t *secs = json_object_get(t, "seconds");
	const char *conf = json_string_value(json_object_get(t, "confidence"));
	json_int_t samples = json_integer_value(json_object_get(t, "samples"));
	json_int_t idle = json_integer_value(json_object_get(t, "idle_closes"));
	char what[96];

	if (!json_is_number(secs) || !json_is_number(lo) || !conf)
		return -EPROTO;
	if (json_is_true(json_object_get(t, "exact")))
		snprintf(what, sizeof(what), "%g s", json_number_value(secs));
	else if (json_is_number(hi))
		snprintf(what, sizeof(what), "between %g and %g s (about %.3g s)",
			 json_number_value(lo), json_number_value(hi), json_number_value(secs));
	else
		snprintf(what, sizeof(what), "over %g s (about %.4g s)", json_number_value(lo),
			 json_number_value(secs));
	snprintf(out, len, "%s (%s confidence: %lld of %lld idle closes)", what, conf,
		 (long long)samples, (long long)idle);
	return 0;
}

static int side_lines(const json_t *up, int outbound, struct kw_buf *out)
{
	const json_t *ts = json_object_get(up, "timeouts");
	static const char *const role[2][2] = {
		{ "our keep-alive timeout: ", "the peer's idle timeout: " },
		{ "our pool's idle timeout: ", "the backend's keep-alive timeout: " },
	};
	static const char *const unseen[2][2] = {
		{ "not seen (we closed no connection idle over %g s)",
		  "not seen (the client or balancer never closed an idle connection)" },
		{ "not seen (our pool never closed an idle connection)",
		  "not seen (the backend never closed an idle connection)" },
	};
	static const char *const side[2] = { "local", "peer" };
	char prefix[64], text[256];
	unsigned int i;

	if (!json_is_object(ts))
		return -EPROTO;
	for (i = 0; i < 2; i++) {
		const json_t *t = json_object_get(ts, side[i]);

		if (t && !json_is_null(t)) {
			if (!json_is_object(t) || timeout_text(t, text, sizeof(text)))
				return -EPROTO;
		} else {
			/* the one with a %g: the quiet a race needs (kw_limits.h) */
			snprintf(text, sizeof(text), unseen[outbound][i],
				 KW_RACE_MIN_QUIET_MS / 1e3);
		}
		snprintf(prefix, sizeof(prefix), "  %s", role[outbound][i]);
		kw_wrap(out, prefix, text, 6, KW_DOCTOR_WIDTH);
	}
	return 0;
}

/* "48 by us (0.001 s after the response on average)" */
static void single_text(const json_t *n, const json_t *idle, const char *who, char *out, size_t len)
{
	long long count = json_integer_value(n);

	if (count && json_is_number(idle))
		snprintf(out, len, "%lld by %s (%g s after the response on average)", count, who,
			 json_number_value(idle));
	else
		snprintf(out, len, "%lld by %s", count, who);
}

/*
 * "reuse: 50 connections, 50 requests, 1 per connection" and the connections closed after
 * one request, by who closed them. Documents without a reuse block (older agents) get none.
 */
static int reuse_lines(const json_t *up, int outbound, struct kw_buf *out)
{
	const json_t *r = json_object_get(up, "reuse");
	const json_t *conns, *reqs, *per, *closed, *single, *share, *by, *idle;
	char text[320], local[96], peer[96];

	if (!r)
		return 0;
	conns = json_object_get(r, "connections");
	reqs = json_object_get(r, "requests");
	per = json_object_get(r, "requests_per_connection");
	closed = json_object_get(r, "closed");
	single = json_object_get(r, "single_use");
	share = json_object_get(r, "single_use_share");
	by = json_object_get(r, "single_use_closed_by");
	idle = json_object_get(r, "single_use_idle_seconds");
	if (!json_is_integer(conns) || !json_is_integer(reqs) || !json_is_integer(closed) ||
	    !json_is_integer(single) || !json_is_object(by) || !json_is_object(idle))
		return -EPROTO;
	snprintf(text, sizeof(text), "%lld connections, %lld requests",
		 (long long)json_integer_value(conns), (long long)json_integer_value(reqs));
	if (json_is_number(per))
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ", %g per connection",
			 json_number_value(per));
	kw_wrap(out, "  reuse: ", text, 6, KW_DOCTOR_WIDTH);
	if (!json_integer_value(closed))
		return 0;
	single_text(json_object_get(by, "local"), json_object_get(idle, "local"), "us", local,
		    sizeof(local));
	single_text(json_object_get(by, "peer"), json_object_get(idle, "peer"),
		    outbound ? "the backend" : "the client or balancer", peer, sizeof(peer));
	snprintf(text, sizeof(text), "%lld of %lld closed connections (%.0f%%) carried one request",
		 (long long)json_integer_value(single), (long long)json_integer_value(closed),
		 json_is_number(share) ? 100 * json_number_value(share) : 0.0);
	if (json_integer_value(single))
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ", closed %s, %s", local,
			 peer);
	kw_wrap(out, "  single-use: ", text, 6, KW_DOCTOR_WIDTH);
	return 0;
}

static int finding_lines(const json_t *f, struct kw_buf *out)
{
	const char *sev = json_string_value(json_object_get(f, "severity"));
	const char *summary = json_string_value(json_object_get(f, "summary"));
	const char *evidence = json_string_value(json_object_get(f, "evidence"));
	const char *failure = json_string_value(json_object_get(f, "failure"));
	const char *fix = json_string_value(json_object_get(f, "fix"));
	char prefix[32], text[512];
	size_t i;

	if (!sev || !summary || !evidence || !failure || !fix)
		return -EPROTO;
	for (i = 0; sev[i] && i < 16; i++)
		prefix[i] = sev[i] >= 'a' && sev[i] <= 'z' ? sev[i] - 'a' + 'A' : sev[i];
	snprintf(prefix + i, sizeof(prefix) - i, ": ");
	snprintf(text, sizeof(text), "%s (%s)", summary, failure);
	kw_buf_puts(out, "  ");
	kw_wrap(out, prefix, text, 4, KW_DOCTOR_WIDTH - 2);
	kw_wrap(out, "    evidence: ", evidence, 6, KW_DOCTOR_WIDTH);
	kw_wrap(out, "    fix: ", fix, 6, KW_DOCTOR_WIDTH);
	return 0;
}

static int upstream_block(const json_t *up, struct kw_buf *out)
{
	const char *dir = json_string_value(json_object_get(up, "direction"));
	const char *peer = json_string_value(json_object_get(up, "peer"));
	const char *netns = json_string_value(json_object_get(up, "netns"));
	const json_t *port = json_object_get(up, "port");
	const json_t *findings = json_object_get(up, "findings"), *f;
	int outbound, err;
	size_t i;

	if (!dir || !peer || !json_is_integer(port) || !json_is_array(findings))
		return -EPROTO;
	outbound = !strcmp(dir, "outbound");
	if (outbound)
		kw_buf_printf(out, "outbound to %s%s%s:%lld", strchr(peer, ':') ? "[" : "", peer,
			      strchr(peer, ':') ? "]" : "", (long long)json_integer_value(port));
	else
		kw_buf_printf(out, "%s from %s to port %lld", dir, peer,
			      (long long)json_integer_value(port));
	kw_buf_printf(out, " (netns %s)\n", netns ? netns : "?");
	err = side_lines(up, outbound, out);
	err = err ?: reuse_lines(up, outbound, out);
	if (err)
		return err;
	if (!json_array_size(findings))
		kw_buf_puts(out, "  no findings: keep-alive timeouts look aligned\n");
	json_array_foreach(findings, i, f) {
		err = finding_lines(f, out);
		if (err)
			return err;
	}
	return 0;
}

static void header(const json_t *doc, size_t nups, struct kw_buf *out)
{
	const json_t *lb = json_object_get(doc, "lb_idle_timeout");
	char ago[32];

	kw_format_duration(json_number_value(json_object_get(doc, "uptime_seconds")), ago,
			   sizeof(ago));
	kw_buf_printf(out, "%zu upstream%s diagnosed from counts since the counts started %s ago\n",
		      nups, nups == 1 ? "" : "s", ago);
	if (json_is_number(lb))
		kw_buf_printf(out, "balancer idle timeout: %g s\n", json_number_value(lb));
	else
		kw_buf_puts(out, "balancer idle timeout: unknown (start the agent with "
				 "--lb-idle-timeout)\n");
}

int kw_doctor_text(const json_t *doc, struct kw_buf *out)
{
	const json_t *version = json_object_get(doc, "version");
	const json_t *ups = json_object_get(doc, "upstreams"), *up;
	size_t i;
	int err;

	if (!json_is_integer(version))
		return -EPROTO;
	if (json_integer_value(version) != 1)
		return -EPROTONOSUPPORT;
	if (!json_is_array(ups))
		return -EPROTO;
	header(doc, json_array_size(ups), out);
	if (!json_array_size(ups))
		kw_buf_puts(out,
			    "\nno upstream has closed a connection yet: nothing to diagnose\n");
	json_array_foreach(ups, i, up) {
		kw_buf_puts(out, "\n");
		err = upstream_block(up, out);
		if (err)
			return err;
	}
	return out->err;
}
