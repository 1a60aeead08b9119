// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatch, the command-line client of keepwatchd: fetches the agent's JSON API over
 * HTTP and prints counters (stat, varnishstat-style), the upstream table (upstreams), the
 * notable events (events, optionally following them), the doctor's diagnosis (doctor) or
 * a live view of the upstreams (top), as text under 80 columns or as JSON with -j. Commands are rows of one table, each with
 * its options; one parser reads them all. Exit status: 0 done, 1 failed (agent unreachable
 * or answering wrongly), 2 usage error. In JSON mode errors go to stdout as {"error": "..."}.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include "lib/addr.h"
#include "lib/buf.h"
#include "cli/doctor.h"
#include "cli/events.h"
#include "cli/fleet.h"
#include "cli/stat.h"
#include "cli/top.h"
#include "cli/top_term.h"
#include "cli/upstreams.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/text.h"

#ifndef KW_VERSION
#define KW_VERSION "unknown"
#endif

#define DEFAULT_AGENT	"http://127.0.0.1:9479"
#define UPSTREAMS_PATH	"/api/v1/upstreams"
#define EVENTS_PATH	"/api/v1/events"
#define DOCTOR_PATH	"/api/v1/doctor"
#define EVENTS_DEFAULT	20	    /* events -n */
#define EVENTS_MAX	10000	    /* the agent's largest limit */
#define FOLLOW_SECONDS	1	    /* events -f: poll interval */
#define MAX_BODY	(64u << 20) /* bytes; the agent caps its upstreams well below this */
#define CONNECT_TIMEOUT 3000L	    /* ms */
#define TOTAL_TIMEOUT	10000L	    /* ms */
#define JSON_FLAGS	(JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Everything the options set. */
struct cli {
	const char *agent;	   /* base URL */
	const struct command *cmd; /* the command running */
	int json;		   /* -j: JSON on stdout, errors included */
	int one;		   /* stat -1 */
	struct kw_globs globs;	   /* stat -f */
	__u32 limit;		   /* upstreams -n, 0 for all; events -n, 0 for the default */
	int follow;		   /* events -f */
	const char *peer;	   /* doctor PEER, or NULL */
	const char *prometheus;	   /* doctor --prometheus URL, or NULL */
	const char *selector;	   /* doctor --selector, or NULL */
	struct kw_top_opts top;	   /* top's options */
	char top_filter[256];	   /* top -f, every one given, comma-separated */
	int plain;		   /* top -p */
	char *errbuf;		   /* non-NULL: errors go here, not to the terminal */
	size_t errlen;
};

/*
 * One option of a command: set() reads it (arg is NULL without an argument) and returns an
 * exit status when the program should stop (help printed, usage error), or -1 to go on.
 */
struct cli_option {
	int letter;
	const char *name; /* the long name, or NULL */
	int has_arg;	  /* no_argument or required_argument */
	int (*set)(struct cli *c, const char *arg);
};

/* The most options a command has besides -j and -h, which all have: raise it for more. */
#define CMD_OPTIONS 7

struct command {
	const char *name;
	const char *args;
	const char *help;
	const struct cli_option (*options)[CMD_OPTIONS]; /* unused rows are 0; NULL: none */
	/* the words after the options, as set(); NULL: there must be none */
	int (*operands)(struct cli *c, int argc, char **argv);
	int (*run)(struct cli *c); /* after the options: returns an exit status */
};

static int opt_json(struct cli *c, const char *arg);
static int opt_help(struct cli *c, const char *arg);
static int opt_one(struct cli *c, const char *arg);
static int opt_filter(struct cli *c, const char *arg);
static int opt_rows(struct cli *c, const char *arg);
static int opt_follow(struct cli *c, const char *arg);
static int opt_events(struct cli *c, const char *arg);
static int opt_prometheus(struct cli *c, const char *arg);
static int opt_selector(struct cli *c, const char *arg);
static int opt_interval(struct cli *c, const char *arg);
static int opt_sort(struct cli *c, const char *arg);
static int opt_top_filter(struct cli *c, const char *arg);
static int opt_iterations(struct cli *c, const char *arg);
static int opt_totals(struct cli *c, const char *arg);
static int opt_reverse(struct cli *c, const char *arg);
static int opt_plain(struct cli *c, const char *arg);
static int doctor_operands(struct cli *c, int argc, char **argv);
static int cmd_stat(struct cli *c);
static int cmd_upstreams(struct cli *c);
static int cmd_events(struct cli *c);
static int cmd_doctor(struct cli *c);
static int cmd_top(struct cli *c);

/* The options of every command. */
static const struct cli_option common_options[] = {
	{ 'j', "json", no_argument, opt_json },
	{ 'h', "help", no_argument, opt_help },
};

#define COMMON_OPTIONS (sizeof(common_options) / sizeof(common_options[0]))
#define MAX_OPTIONS    (COMMON_OPTIONS + CMD_OPTIONS)

static const struct cli_option stat_options[CMD_OPTIONS] = {
	{ '1', NULL, no_argument, opt_one },
	{ 'f', "filter", required_argument, opt_filter },
};

static const struct cli_option upstreams_options[CMD_OPTIONS] = {
	{ 'n', "limit", required_argument, opt_rows },
};

static const struct cli_option events_options[CMD_OPTIONS] = {
	{ 'f', "follow", no_argument, opt_follow },
	{ 'n', "limit", required_argument, opt_events },
};

static const struct cli_option doctor_options[CMD_OPTIONS] = {
	{ 'P', "prometheus", required_argument, opt_prometheus },
	{ 's', "selector", required_argument, opt_selector },
};

static const struct cli_option top_options[CMD_OPTIONS] = {
	{ 'i', "interval", required_argument, opt_interval },
	{ 's', "sort", required_argument, opt_sort },
	{ 'f', "filter", required_argument, opt_top_filter },
	{ 'n', "iterations", required_argument, opt_iterations },
	{ 't', "totals", no_argument, opt_totals },
	{ 'r', "reverse", no_argument, opt_reverse },
	{ 'p', "plain", no_argument, opt_plain },
};

/*
 * Adding a command is a row here, its options above and its functions below; adding an
 * option is a row of its command's options and a function.
 */
static const struct command commands[] = {
	{ "stat", "[-1] [-f GLOB[,GLOB...]] [-j]", "counters summed per direction", &stat_options,
	  NULL, cmd_stat },
	{ "upstreams", "[-j] [-n N]", "one row per upstream, busiest first", &upstreams_options,
	  NULL, cmd_upstreams },
	{ "events", "[-f] [-n N] [-j]", "races, resets and idle closes", &events_options, NULL,
	  cmd_events },
	{ "doctor", "[PEER] [-j] [-P URL [-s SEL]]", "keep-alive timeouts and what to fix",
	  &doctor_options, doctor_operands, cmd_doctor },
	{ "top", "[-trp] [-i S] [-s C] [-f GLOB]", "live view, one row per upstream", &top_options,
	  NULL, cmd_top },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};

/* Report an error: {"error": msg} on stdout in JSON mode, "keepwatch: msg" otherwise. */
static void __attribute__((format(printf, 2, 3)))
cli_error(const struct cli *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *doc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kw_text_safe(msg, 0); /* it may quote the agent's answer */
	if (c->errbuf) {
		snprintf(c->errbuf, c->errlen, "%s", msg);
		return;
	}
	if (!c->json) {
		kw_err("%s", msg);
		return;
	}
	doc = json_pack("{s:s}", "error", msg);
	if (doc && !json_dumpf(doc, stdout, JSON_FLAGS))
		putchar('\n');
	else
		kw_err("%s", msg);
	json_decref(doc);
}

/* A usage error: the message, a hint on stderr, exit status 2. */
static int __attribute__((format(printf, 2, 3)))
usage_error(const struct cli *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error(c, "%s", msg);
	fprintf(stderr, "try 'keepwatch --help' for usage\n");
	return EXIT_USAGE;
}

static void print_usage(FILE *f)
{
	const struct command *cmd;

	fprintf(f, "usage: keepwatch [--agent URL] [-h|--help] [-V|--version] COMMAND [ARGS]\n\n"
		   "commands:\n");
	for (cmd = commands; cmd->name; cmd++)
		fprintf(f, "  %-10s %-30s %s\n", cmd->name, cmd->args, cmd->help);
	fprintf(f,
		"\noptions:\n"
		"  --agent URL    the agent's base URL (default: $KEEPWATCH_AGENT, else\n"
		"                 %s); https:// for an agent with TLS\n"
		"  -h, --help     this help\n"
		"  -V, --version  print the version\n"
		"\ncommand options:\n"
		"  -j             JSON output (errors too, as {\"error\": ...})\n"
		"  -1             stat: one counter a line (name value rate/s description)\n"
		"  -f GLOB[,...]  stat: only counters matching a glob (repeatable)\n"
		"  -n N           upstreams: only the N busiest (with -j too);\n"
		"                 events: the last N (default 20, at most 10000)\n"
		"  -f             events: follow, printing new events until Ctrl-C\n"
		"  PEER           doctor: only this peer, ADDR, ADDR:PORT or [IPV6]:PORT\n"
		"                 (PORT: our listening port inbound, the peer's outbound)\n"
		"  -P, --prometheus URL  doctor: every host a Prometheus server scrapes,\n"
		"                 diagnosed by the same rules, proxies paired with backends\n"
		"  -s, --selector SEL    doctor -P: only series matching SEL, e.g.\n"
		"                 '{job=\"keepwatch\"}'\n"
		"  -i S           top: seconds between samples (default 1, 0.1 to 3600)\n"
		"  -s COL         top: sort by peer, conn, req (default), reuse, race, rst,\n"
		"                 tw or active\n"
		"  -f GLOB[,...]  top: only upstreams whose peer, PEER:PORT, [IPV6]:PORT,\n"
		"                 namespace or direction (out, in) matches (repeatable)\n"
		"  -n N           top: exit after N samples (default: until q or Ctrl-C)\n"
		"  -t             top: totals since the agent started instead of rates/s\n"
		"  -r             top: reverse the order\n"
		"  -p             top: plain blocks of lines even on a terminal (the\n"
		"                 default when stdin or stdout is not one)\n"
		"\nenvironment:\n"
		"  KEEPWATCH_CACERT  CA file to check an https agent's certificate with\n"
		"  KEEPWATCH_USER    USER:PASSWORD for an agent with basic authentication\n"
		"\nexit status: 0 done, 1 failed, 2 usage error\n",
		DEFAULT_AGENT);
}

/* Turn getopt's complaint into ours; opterr is 0 and optstring starts with ':'. */
static int bad_option(const struct cli *c, int opt, char **argv)
{
	const char *arg = argv[optind - 1];

	if (opt == ':')
		return usage_error(c, "option '%s' needs a value", arg);
	if (optopt)
		return usage_error(c, "unknown option '-%c'", optopt);
	return usage_error(c, "unknown option '%s'", arg);
}

/* Let errors in JSON mode be JSON even before the command's options are parsed. */
static int wants_json(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			return 1;
	return 0;
}

/* Option i of a command, -j and -h first; NULL after its last. */
static const struct cli_option *option_row(const struct command *cmd, unsigned int i)
{
	if (i < COMMON_OPTIONS)
		return &common_options[i];
	i -= COMMON_OPTIONS;
	if (!cmd->options || i >= CMD_OPTIONS || !(*cmd->options)[i].letter)
		return NULL;
	return &(*cmd->options)[i];
}

/* The row of a command's option `letter`, or NULL: getopt's ':' and '?' have none. */
static const struct cli_option *find_option(const struct command *cmd, int letter)
{
	const struct cli_option *o;
	unsigned int i;

	for (i = 0; (o = option_row(cmd, i)); i++)
		if (o->letter == letter)
			return o;
	return NULL;
}

/* getopt_long's optstring and longopts for a command's options. */
static void getopt_spec(const struct command *cmd, char *shortopts, struct option *longopts)
{
	const struct cli_option *o;
	unsigned int i;

	/* ':': a missing argument is told apart from an unknown option (see bad_option) */
	*shortopts++ = ':';
	for (i = 0; (o = option_row(cmd, i)); i++) {
		*shortopts++ = o->letter;
		if (o->has_arg == required_argument)
			*shortopts++ = ':';
		if (o->name)
			*longopts++ = (struct option){ o->name, o->has_arg, NULL, o->letter };
	}
	*shortopts = '\0';
	*longopts = (struct option){ NULL, 0, NULL, 0 };
}

/*
 * The running command's options and operands (argv[0] is its name). Returns an exit status
 * when the program should stop (help printed, usage error), or -1 to go on.
 */
static int command_options(struct cli *c, int argc, char **argv)
{
	const struct command *cmd = c->cmd;
	struct option longopts[MAX_OPTIONS + 1];
	char shortopts[2 * MAX_OPTIONS + 2];
	const struct cli_option *o;
	int opt, ret;

	getopt_spec(cmd, shortopts, longopts);
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		o = find_option(cmd, opt);
		if (!o)
			return bad_option(c, opt, argv);
		ret = o->set(c, optarg);
		if (ret >= 0)
			return ret;
	}
	if (cmd->operands)
		return cmd->operands(c, argc - optind, argv + optind);
	if (optind < argc)
		return usage_error(c, "unexpected argument '%s'", argv[optind]);
	return -1;
}

static int opt_json(struct cli *c, const char *arg)
{
	(void)arg;
	c->json = 1;
	return -1;
}

static int opt_help(struct cli *c, const char *arg)
{
	(void)arg;
	printf("usage: keepwatch %s %s\n", c->cmd->name, c->cmd->args);
	return EXIT_OK;
}

/* A line of text built from the agent's answer, made safe for the terminal first. */
static void print_line(char *line)
{
	puts(kw_text_safe(line, 0));
}

/* ---- talking to the agent ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct kw_buf *body = ctx;
	size_t n = size * nmemb;

	if (body->len + n > MAX_BODY || kw_buf_append(body, data, n))
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	return n;
}

/* What an answer said besides its body. */
struct answer {
	long status;	     /* HTTP status, 0 if none came */
	double connect_time; /* s; 0: no connection was made */
	char location[256];  /* a redirect's target, or "" */
};

/*
 * GET url into body (at most MAX_BODY bytes), with the agent's credentials only if it is
 * the agent that is asked (to_agent), never Prometheus. A transfer's error is in errbuf.
 */
static CURLcode http_get(const char *url, int to_agent, struct kw_buf *body, char *errbuf,
			 struct answer *a)
{
	char *redirect = NULL;
	CURL *h = curl_easy_init();
	CURLcode rc;

	memset(a, 0, sizeof(*a));
	if (!h) {
		snprintf(errbuf, CURL_ERROR_SIZE, "out of memory");
		return CURLE_OUT_OF_MEMORY;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "keepwatch/" KW_VERSION);
	/* the agent is asked directly: $http_proxy and friends are for the web, not for it */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* an agent with --web.config.file: from the environment, so that no password is
	 * in the command line for ps to show */
	if (to_agent && getenv("KEEPWATCH_CACERT") && *getenv("KEEPWATCH_CACERT"))
		curl_easy_setopt(h, CURLOPT_CAINFO, getenv("KEEPWATCH_CACERT"));
	if (to_agent && getenv("KEEPWATCH_USER") && *getenv("KEEPWATCH_USER")) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, getenv("KEEPWATCH_USER"));
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_getinfo(h, CURLINFO_CONNECT_TIME, &a->connect_time);
	if (!curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redirect) && redirect)
		snprintf(a->location, sizeof(a->location), "%s", redirect);
	curl_easy_cleanup(h);
	return rc;
}

/* The "error" member of an agent's error answer, or "". */
static const char *agent_error_text(const struct kw_buf *body)
{
	static char text[256];
	json_t *doc;

	text[0] = '\0';
	doc = body->data ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	if (json_is_string(json_object_get(doc, "error")))
		snprintf(text, sizeof(text), ": %s",
			 json_string_value(json_object_get(doc, "error")));
	json_decref(doc);
	return text;
}

/*
 * Why a request to the agent failed; the hint to start it only where none answered.
 * connected: whether the connection was made (a time-out before it is the connect one).
 */
static void transfer_error(const struct cli *c, CURLcode rc, const char *errbuf, int connected)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		cli_error(c, "cannot reach the agent at %s: %s", c->agent, why);
		if (!c->errbuf)
			fprintf(stderr,
				"start it with 'make run' or 'build/keepwatchd' (needs root)\n");
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (!connected)
			cli_error(c, "cannot connect to the agent at %s within %ld s: %s", c->agent,
				  CONNECT_TIMEOUT / 1000, why);
		else
			cli_error(c, "the agent at %s did not answer within %ld s: %s", c->agent,
				  TOTAL_TIMEOUT / 1000, why);
		break;
	case CURLE_WRITE_ERROR:
		cli_error(c, "the agent at %s sent more than %u MiB: not read", c->agent,
			  MAX_BODY >> 20);
		break;
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
		cli_error(c, "the agent at %s cut its answer short: %s", c->agent, why);
		break;
	case CURLE_RECV_ERROR: /* a reset, or an encoding curl cannot read */
		cli_error(c, "cannot read the answer of the agent at %s: %s", c->agent, why);
		break;
	default:
		cli_error(c, "request to the agent at %s failed: %s", c->agent, why);
	}
}

/* GET agent + path and parse the JSON answer into *doc; returns an exit status. */
static int agent_get(const struct cli *c, const char *path, json_t **doc)
{
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	size_t alen = strlen(c->agent);
	struct answer a;
	struct kw_buf body;
	json_error_t jerr;
	CURLcode rc;
	char *nul;

	while (alen && c->agent[alen - 1] == '/')
		alen--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)alen, c->agent, path) >= sizeof(url))
		return usage_error(c, "agent URL too long");
	kw_buf_init(&body);
	rc = http_get(url, 1, &body, errbuf, &a);
	if (rc != CURLE_OK) {
		transfer_error(c, rc, errbuf, a.connect_time > 0);
		goto fail;
	}
	/*
	 * The agent never redirects: one that does is not the agent, or --agent names a
	 * proxy in front of it. Following could take the request anywhere; it is not done.
	 */
	if (a.status >= 300 && a.status < 400) {
		cli_error(
			c,
			"the agent at %s answered HTTP %ld for %s, a redirect%s%s, which keepwatch "
			"does not follow: give --agent the URL of the agent itself",
			c->agent, a.status, path, a.location[0] ? " to " : "", a.location);
		goto fail;
	}
	if (a.status != 200) {
		cli_error(c, "the agent at %s answered HTTP %ld for %s%s", c->agent, a.status, path,
			  agent_error_text(&body));
		goto fail;
	}
	/* jansson reads a NUL outside strings as white space; JSON has none */
	nul = body.data ? memchr(body.data, '\0', body.len) : NULL;
	if (nul) {
		cli_error(c, "bad JSON from the agent at %s: a NUL byte at offset %zu", c->agent,
			  (size_t)(nul - body.data));
		goto fail;
	}
	*doc = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
	if (!*doc) {
		cli_error(c, "bad JSON from the agent at %s: %s (line %d)", c->agent, jerr.text,
			  jerr.line);
		goto fail;
	}
	kw_buf_free(&body);
	return EXIT_OK;
fail:
	kw_buf_free(&body);
	return EXIT_FAIL;
}

/* Say why the agent's document could not be used. */
static int bad_document(const struct cli *c, int err)
{
	if (err == -EPROTONOSUPPORT)
		cli_error(c, "the agent at %s speaks another API version; update keepwatch",
			  c->agent);
	else if (err == -EPROTO)
		cli_error(c,
			  "unexpected answer from the agent at %s: JSON of the wrong shape for "
			  "'keepwatch %s' (a member missing, or of another type)",
			  c->agent, c->cmd->name);
	else
		cli_error(c, "unexpected answer from the agent at %s: %s", c->agent,
			  strerror(-err));
	return EXIT_FAIL;
}

static int print_json(const struct cli *c, const json_t *doc)
{
	if (json_dumpf(doc, stdout, JSON_FLAGS)) {
		cli_error(c, "cannot write JSON: %s", strerror(errno));
		return EXIT_FAIL;
	}
	putchar('\n');
	return EXIT_OK;
}

/* ---- stat ---- */

static int opt_one(struct cli *c, const char *arg)
{
	(void)arg;
	c->one = 1;
	return -1;
}

static int opt_filter(struct cli *c, const char *arg)
{
	int err = kw_globs_add(&c->globs, arg);

	if (err == -EINVAL)
		return usage_error(c, "empty glob in -f '%s'", arg);
	if (err)
		return usage_error(c, "-f: %s", strerror(-err));
	return -1;
}

static int stat_print(const struct cli *c, const struct kw_stat *st)
{
	unsigned int i, shown = 0, width = kw_stat_name_width(st, &c->globs);
	char line[256];

	for (i = 0; i < KW_STAT_ROWS; i++) {
		if (!kw_globs_match(&c->globs, st->rows[i].name))
			continue;
		if (!kw_stat_format(&st->rows[i], width, line, sizeof(line)))
			print_line(line);
		shown++;
	}
	return shown;
}

static int stat_matches(const struct cli *c, const struct kw_stat *st)
{
	unsigned int i;

	for (i = 0; i < KW_STAT_ROWS; i++)
		if (kw_globs_match(&c->globs, st->rows[i].name))
			return 1;
	return 0;
}

static int cmd_stat(struct cli *c)
{
	struct kw_stat st;
	json_t *doc, *out;
	int ret, err;

	ret = agent_get(c, UPSTREAMS_PATH, &doc);
	if (ret)
		return ret;
	err = kw_stat_from_json(doc, &st);
	json_decref(doc);
	if (err)
		return bad_document(c, err);
	if (!stat_matches(c, &st)) {
		cli_error(c, "no counter matches the -f globs");
		return EXIT_FAIL;
	}
	if (!c->json) {
		/* -1 and the default view print the same lines: there is no curses mode */
		stat_print(c, &st);
		return EXIT_OK;
	}
	out = kw_stat_to_json(&st, &c->globs);
	if (!out) {
		cli_error(c, "cannot build JSON: out of memory");
		return EXIT_FAIL;
	}
	ret = print_json(c, out);
	json_decref(out);
	return ret;
}

/* ---- upstreams ---- */

/* upstreams -n */
static int opt_rows(struct cli *c, const char *arg)
{
	if (kw_parse_u32(arg, 1, UINT32_MAX, &c->limit))
		return usage_error(c, "-n wants a number of rows from 1, not '%s'", arg);
	return -1;
}

static void upstreams_print(const struct kw_up_row *rows, size_t n)
{
	struct kw_up_widths w;
	char line[512];
	size_t i;

	kw_up_widths(rows, n, &w);
	if (!kw_up_format_header(&w, line, sizeof(line)))
		print_line(line);
	for (i = 0; i < n; i++)
		if (!kw_up_format_row(&rows[i], &w, line, sizeof(line)))
			print_line(line);
}

static int cmd_upstreams(struct cli *c)
{
	struct kw_up_row *rows = NULL;
	json_t *doc, *sel;
	size_t n;
	int ret, err;

	ret = agent_get(c, UPSTREAMS_PATH, &doc);
	if (ret)
		return ret;
	err = kw_up_rows_from_json(doc, &rows, &n);
	if (err) {
		json_decref(doc);
		return bad_document(c, err);
	}
	if (c->limit && n > c->limit)
		n = c->limit;
	if (!c->json) {
		upstreams_print(rows, n);
	} else if (!c->limit) {
		ret = print_json(c, doc); /* as received */
	} else {
		sel = kw_up_select_json(doc, rows, n);
		ret = sel ? print_json(c, sel) : EXIT_FAIL;
		if (!sel)
			cli_error(c, "cannot build JSON: out of memory");
		json_decref(sel);
	}
	free(rows);
	json_decref(doc);
	return ret;
}

/* ---- events ---- */

static int opt_follow(struct cli *c, const char *arg)
{
	(void)arg;
	c->follow = 1;
	return -1;
}

/* events -n */
static int opt_events(struct cli *c, const char *arg)
{
	if (kw_parse_u32(arg, 1, EVENTS_MAX, &c->limit))
		return usage_error(c, "-n wants a number of events from 1 to %u, not '%s'",
				   EVENTS_MAX, arg);
	return -1;
}

/* Print one answer's events (or, with -j, the answer on one line); sets *next and *n. */
static int events_print(const struct cli *c, const json_t *doc, int compact, __u64 *next, size_t *n)
{
	const json_t *events, *ev;
	char line[512];
	size_t i;
	int err;

	err = kw_ev_doc_parse(doc, next, &events);
	if (err)
		return bad_document(c, err);
	*n = json_array_size(events);
	if (c->json && !compact)
		return print_json(c, doc);
	if (c->json) {
		if (*n && (json_dumpf(doc, stdout, JSON_COMPACT) || putchar('\n') == EOF))
			return EXIT_FAIL;
		return EXIT_OK;
	}
	json_array_foreach(events, i, ev) {
		err = kw_ev_format(ev, line, sizeof(line));
		if (err)
			return bad_document(c, err);
		print_line(line);
	}
	return EXIT_OK;
}

static volatile sig_atomic_t stop_following;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_following = 1;
}

/* Poll for events after next every second until SIGINT or SIGTERM; an exit status. */
static int events_follow(const struct cli *c, __u64 next)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	struct timespec pause = { .tv_sec = FOLLOW_SECONDS };
	char path[128];
	__u64 seen;
	size_t n = 0;
	json_t *doc;
	int ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: Ctrl-C cuts the pause short */
	sigaction(SIGTERM, &sa, NULL);
	while (!stop_following) {
		fflush(stdout);
		/* a full answer means more are waiting: ask again at once */
		if (n < EVENTS_MAX)
			nanosleep(&pause, NULL);
		if (stop_following)
			break;
		snprintf(path, sizeof(path), EVENTS_PATH "?since=%llu&limit=%u",
			 (unsigned long long)next, EVENTS_MAX);
		ret = agent_get(c, path, &doc);
		if (ret)
			return ret;
		ret = events_print(c, doc, 1, &seen, &n);
		json_decref(doc);
		if (ret)
			return ret;
		if (!n && seen < next) {
			/* the agent restarted and numbers its events from 1 again: take them
			 * all, at once */
			next = 0;
			n = EVENTS_MAX;
			continue;
		}
		next = seen;
	}
	return EXIT_OK;
}

static int cmd_events(struct cli *c)
{
	char path[128];
	__u64 next;
	json_t *doc;
	size_t n;
	int ret;

	snprintf(path, sizeof(path), EVENTS_PATH "?limit=%u", c->limit ?: EVENTS_DEFAULT);
	ret = agent_get(c, path, &doc);
	if (ret)
		return ret;
	ret = events_print(c, doc, c->follow, &next, &n);
	json_decref(doc);
	if (ret || !c->follow)
		return ret;
	return events_follow(c, next);
}

/* ---- doctor ---- */

/* doctor [PEER]: at most one, checked here so that a typo is a usage error */
static int doctor_operands(struct cli *c, int argc, char **argv)
{
	__u8 addr[16];
	__u16 port;

	if (argc > 1)
		return usage_error(c, "unexpected argument '%s'", argv[1]);
	if (!argc)
		return -1;
	c->peer = argv[0];
	if (kw_addr_parse_peer(c->peer, addr, &port))
		return usage_error(c, "'%s' is not a peer: ADDR, ADDR:PORT or [IPV6]:PORT",
				   c->peer);
	return -1;
}

static int opt_prometheus(struct cli *c, const char *arg)
{
	if (!*arg)
		return usage_error(c, "--prometheus wants a URL");
	c->prometheus = arg;
	return -1;
}

static int opt_selector(struct cli *c, const char *arg)
{
	size_t n = strlen(arg);

	if (arg[0] == '{' && (n < 2 || arg[n - 1] != '}'))
		return usage_error(c, "--selector '%s': a '{' without its '}'", arg);
	c->selector = arg;
	return -1;
}

/* The PromQL of every keepwatch series the selector matches. */
static int fleet_query(const struct cli *c, char *q, size_t len)
{
	const char *sel = c->selector ? c->selector : "";
	size_t n = strlen(sel);

	if (n && sel[0] == '{') /* its matchers without the braces */
		sel++, n -= 2;
	while (n && (*sel == ' ' || *sel == ','))
		sel++, n--;
	if ((size_t)snprintf(q, len, "{__name__=~\"keepwatch_.+\"%s%.*s}", n ? "," : "", (int)n,
			     sel) >= len)
		return usage_error(c, "--selector too long");
	return -1;
}

/* Why Prometheus did not answer. */
static void prom_transfer_error(const struct cli *c, CURLcode rc, const char *errbuf)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		cli_error(c, "cannot reach Prometheus at %s: %s", c->prometheus, why);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		cli_error(c, "Prometheus at %s did not answer within %ld s: %s", c->prometheus,
			  TOTAL_TIMEOUT / 1000, why);
	else
		cli_error(c, "query to Prometheus at %s failed: %s", c->prometheus, why);
}

/* An instant query; *result is its data.result. Returns an exit status. */
static int prom_query(const struct cli *c, const char *promql, json_t **doc, const json_t **result)
{
	char url[4096], errbuf[CURL_ERROR_SIZE] = "";
	size_t ulen = strlen(c->prometheus);
	const char *status, *why;
	struct answer a;
	struct kw_buf body;
	json_error_t jerr;
	char *esc;
	CURLcode rc;

	while (ulen && c->prometheus[ulen - 1] == '/')
		ulen--;
	esc = curl_easy_escape(NULL, promql, 0);
	if (!esc) {
		cli_error(c, "cannot build the query: out of memory");
		return EXIT_FAIL;
	}
	rc = (size_t)snprintf(url, sizeof(url), "%.*s/api/v1/query?query=%s", (int)ulen,
			      c->prometheus, esc) >= sizeof(url);
	curl_free(esc);
	if (rc)
		return usage_error(c, "Prometheus URL too long");
	kw_buf_init(&body);
	rc = http_get(url, 0, &body, errbuf, &a);
	*doc = NULL;
	if (rc != CURLE_OK) {
		prom_transfer_error(c, rc, errbuf);
		goto fail;
	}
	*doc = json_loadb(body.data ? body.data : "", body.len, 0, &jerr);
	status = json_string_value(json_object_get(*doc, "status"));
	why = json_string_value(json_object_get(*doc, "error"));
	if (a.status != 200 || !status || strcmp(status, "success")) {
		if (why)
			cli_error(c, "Prometheus at %s answered HTTP %ld: %s", c->prometheus,
				  a.status, why);
		else
			cli_error(c, "Prometheus at %s answered HTTP %ld, not a query result",
				  c->prometheus, a.status);
		goto fail;
	}
	*result = json_object_get(json_object_get(*doc, "data"), "result");
	if (!json_is_array(*result)) {
		cli_error(c, "Prometheus at %s answered with no vector result", c->prometheus);
		goto fail;
	}
	kw_buf_free(&body);
	return EXIT_OK;
fail:
	json_decref(*doc);
	*doc = NULL;
	kw_buf_free(&body);
	return EXIT_FAIL;
}

/* doctor --prometheus: every host Prometheus scrapes, and the pairs between them. */
static int cmd_fleet_doctor(struct cli *c)
{
	struct kw_fleet f = { 0 };
	const json_t *result = NULL;
	struct kw_buf text;
	json_t *doc = NULL, *report;
	char q[1024];
	int ret, err;

	ret = fleet_query(c, q, sizeof(q));
	if (ret >= 0)
		return ret;
	ret = prom_query(c, q, &doc, &result);
	if (ret)
		return ret;
	err = kw_fleet_add(&f, result);
	json_decref(doc);
	err = err ?: kw_fleet_finish(&f);
	if (err) {
		cli_error(c, "cannot read the answer of Prometheus at %s: %s", c->prometheus,
			  strerror(-err));
		kw_fleet_free(&f);
		return EXIT_FAIL;
	}
	if (!f.n) {
		cli_error(c, "no keepwatch series at Prometheus %s match %s", c->prometheus, q);
		kw_fleet_free(&f);
		return EXIT_FAIL;
	}
	report = kw_fleet_json(&f);
	kw_fleet_free(&f);
	if (report && c->json) {
		ret = print_json(c, report);
		json_decref(report);
		return ret;
	}
	kw_buf_init(&text);
	err = report ? kw_fleet_text(report, &text) : -ENOMEM;
	json_decref(report);
	if (err)
		cli_error(c, "cannot format the report: %s", strerror(-err));
	else
		fputs(kw_text_safe(text.data, 1), stdout);
	kw_buf_free(&text);
	return err ? EXIT_FAIL : EXIT_OK;
}

static int cmd_doctor(struct cli *c)
{
	char path[256], *esc = NULL;
	struct kw_buf text;
	json_t *doc;
	int ret, err;

	if (c->selector && !c->prometheus)
		return usage_error(c, "--selector goes with --prometheus");
	if (c->prometheus && c->peer)
		return usage_error(c, "a PEER goes without --prometheus");
	if (c->prometheus)
		return cmd_fleet_doctor(c);
	if (c->peer) {
		esc = curl_easy_escape(NULL, c->peer, 0);
		if (!esc) {
			cli_error(c, "cannot build the request: out of memory");
			return EXIT_FAIL;
		}
	}
	snprintf(path, sizeof(path), "%s%s%s", DOCTOR_PATH, esc ? "?peer=" : "", esc ? esc : "");
	curl_free(esc);
	ret = agent_get(c, path, &doc);
	if (ret)
		return ret;
	if (c->json) {
		ret = print_json(c, doc);
		json_decref(doc);
		return ret;
	}
	kw_buf_init(&text);
	err = kw_doctor_text(doc, &text);
	json_decref(doc);
	if (err == -ENOMEM)
		cli_error(c, "cannot format the report: out of memory");
	else if (err)
		bad_document(c, err);
	else
		fputs(kw_text_safe(text.data, 1), stdout);
	kw_buf_free(&text);
	return err ? EXIT_FAIL : EXIT_OK;
}

/* ---- top ---- */

/* top -i */
static int opt_interval(struct cli *c, const char *arg)
{
	if (kw_top_parse_interval(arg, &c->top.interval))
		return usage_error(
			c, "-i wants seconds from %g to %g with at most 3 decimals, not '%s'",
			KW_TOP_INTERVAL_MIN, KW_TOP_INTERVAL_MAX, arg);
	return -1;
}

/* top -s */
static int opt_sort(struct cli *c, const char *arg)
{
	if (kw_top_parse_sort(arg, &c->top.order.col))
		return usage_error(c,
				   "-s wants peer, conn, req, reuse, race, rst, tw or active, "
				   "not '%s'",
				   arg);
	return -1;
}

/* top -f: checked here, kept as text for the screen to show and edit */
static int opt_top_filter(struct cli *c, const char *arg)
{
	size_t n = strlen(c->top_filter);
	int ret = opt_filter(c, arg);

	if (ret >= 0)
		return ret;
	if (n + 1 + strlen(arg) >= sizeof(c->top_filter))
		return usage_error(c, "-f: the globs are longer than %zu characters in all",
				   sizeof(c->top_filter) - 1);
	snprintf(c->top_filter + n, sizeof(c->top_filter) - n, "%s%s", n ? "," : "", arg);
	return -1;
}

/* top -n */
static int opt_iterations(struct cli *c, const char *arg)
{
	if (kw_parse_u32(arg, 1, UINT32_MAX, &c->top.iterations))
		return usage_error(c, "-n wants a number of samples from 1, not '%s'", arg);
	return -1;
}

static int opt_totals(struct cli *c, const char *arg)
{
	(void)arg;
	c->top.order.totals = 1;
	return -1;
}

static int opt_reverse(struct cli *c, const char *arg)
{
	(void)arg;
	c->top.order.reverse = 1;
	return -1;
}

static int opt_plain(struct cli *c, const char *arg)
{
	(void)arg;
	c->plain = 1;
	return -1;
}

/* The agent's upstreams for top, errors into err rather than onto the screen. */
static int top_fetch(void *ctx, json_t **doc, char *err, size_t len)
{
	struct cli *c = ctx;
	int ret;

	c->errbuf = err;
	c->errlen = len;
	ret = agent_get(c, UPSTREAMS_PATH, doc);
	c->errbuf = NULL;
	return ret;
}

static int cmd_top(struct cli *c)
{
	if (c->json)
		return usage_error(c, "top has no JSON output: use 'keepwatch upstreams -j'");
	if (!c->top.interval)
		c->top.interval = 1;
	c->top.filter = c->top_filter[0] ? c->top_filter : NULL;
	c->top.fetch = top_fetch;
	c->top.ctx = c;
	if (c->plain || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
		return kw_top_run_plain(&c->top);
	return kw_top_run_screen(&c->top);
}

/* ---- main ---- */

/* Global options; returns an exit status, or -1 to go on with the command at optind. */
static int global_options(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;
	/* '+': stop at the command, whose options are its own */
	while ((opt = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			if (!*optarg)
				return usage_error(c, "--agent wants a URL");
			c->agent = optarg;
			break;
		case 'h':
			print_usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("keepwatch %s\n", KW_VERSION);
			return EXIT_OK;
		default:
			return bad_option(c, opt, argv);
		}
	}
	if (optind >= argc)
		return usage_error(c, "no command given");
	return -1;
}

static const struct command *find_command(const char *name)
{
	const struct command *cmd;

	for (cmd = commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, name))
			return cmd;
	return NULL;
}

/* Output that never reached stdout (a full disk, a closed pipe) is a failure. */
static int flush_stdout(int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		kw_err("cannot write the output: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return ret;
}

int main(int argc, char **argv)
{
	const struct command *cmd;
	struct cli c = { 0 };
	int ret;

	kw_log_set_prog("keepwatch");
	c.agent = getenv("KEEPWATCH_AGENT");
	if (!c.agent || !*c.agent)
		c.agent = DEFAULT_AGENT;
	c.json = wants_json(argc, argv);
	kw_globs_init(&c.globs);
	c.top.order.col = KW_TOP_REQ;

	ret = global_options(&c, argc, argv);
	if (ret >= 0)
		goto out;
	cmd = find_command(argv[optind]);
	if (!cmd) {
		ret = usage_error(&c, "unknown command '%s'", argv[optind]);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		cli_error(&c, "cannot initialise libcurl");
		ret = EXIT_FAIL;
		goto out;
	}
	c.cmd = cmd;
	ret = command_options(&c, argc - optind, argv + optind);
	if (ret < 0)
		ret = cmd->run(&c);
	curl_global_cleanup();
out:
	kw_globs_free(&c.globs);
	return flush_stdout(ret);
}
