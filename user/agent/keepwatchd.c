// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * keepwatchd, the agent: loads the BPF programs, then serves what they count as
 * Prometheus text on /metrics and JSON under /api/v1/ until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <unistd.h>
#include <stdarg.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/addr.h"
#include "agent/collector.h"
#include "agent/docs.h"
#include "doctor/doctor.h"
#include "agent/events.h"
#include "agent/http.h"
#include "agent/json.h"
#include "agent/loader.h"
#include "lib/log.h"
#include "agent/metrics.h"
#include "agent/netns.h"
#include "agent/privs.h"
#include "agent/view.h"
#include "agent/webcfg.h"
#include "lib/parse.h"

#define DEFAULT_LISTEN	    "127.0.0.1:9479"
#define MIN_MAX_UPSTREAMS   16
#define MAX_MAX_UPSTREAMS   (1U << 20)
#define MIN_CONN_TABLE	    1024
#define MAX_CONN_TABLE	    (1U << 22)
#define MAINTENANCE_SECONDS 10
#define MAX_LB_IDLE_TIMEOUT 86400 /* s */
#define MAX_PEERS_PER_PORT  (1U << 20)
#define MAX_MAX_SERIES	    1000000000

struct options {
	char host[256];
	__u16 port;
	struct kw_loader_opts bpf;
	char pin_dir[200];
	int no_pin;
	__u32 lb_idle_timeout; /* s, 0 when not given */
	__u32 events;	       /* capacity of the event log */
	int watch_self;	       /* --watch-self: count our own HTTP port too */
	const char *user;      /* --user: run as this user once started */
	int unpin;	       /* --unpin: remove the pin directory and exit */
	struct kw_view_opts view;
	const char *web_config; /* --web.config.file, or NULL */
};

/* What the routes read. */
struct agent {
	struct kw_collector col;
	struct kw_events *events;
	const struct options *opts;
	/*
	 * /metrics's view and what it keeps between scrapes. Held from a snapshot's taking
	 * to its view, and around evictions: views are made in the order of the snapshots,
	 * and learn of every eviction between two.
	 */
	pthread_mutex_t view_lock;
	struct kw_view *view;
};

static const char usage_text[] =
	"usage: keepwatchd [OPTIONS]\n"
	"Follows every TCP connection from kernel tracepoints and serves per-upstream\n"
	"connection reuse, closes and idle times as Prometheus metrics and JSON.\n"
	"\n"
	"  -l, --listen HOST:PORT    serve HTTP here (default " DEFAULT_LISTEN ")\n"
	"      --web.config.file FILE\n"
	"                            TLS and basic authentication, in node_exporter's\n"
	"                            YAML (tls_server_config, basic_auth_users)\n"
	"  -n, --netns NAME|PATH     only this network namespace (repeatable; NAME as in\n"
	"                            /var/run/netns); default: every namespace\n"
	"  -p, --port N              only this service port (repeatable): our listening\n"
	"                            port inbound, the peer's port outbound\n"
	"  -m, --max-upstreams N     upstreams kept in the kernel (default %u); beyond it\n"
	"                            counts go to peer=\"other\" and idle ones are evicted\n"
	"      --conn-table N        connections followed in the fast table (a power of two\n"
	"                            from %u to %u, %zu bytes each; default %u);\n"
	"                            more are followed in socket storage, at more cost\n"
	"      --pin-dir DIR         pin maps here so counts survive restarts\n"
	"                            (default " KW_PIN_DIR_DEFAULT ")\n"
	"      --no-pin              pin nothing: counts start from zero at every start\n"
	"      --unpin               remove the pin directory (counts and the programs\n"
	"                            its links keep attached) and exit\n"
	"      --user NAME           once started, run as user NAME (from root), keeping\n"
	"                            only the capabilities later work needs\n"
	"      --lb-idle-timeout S   the balancer's idle timeout in seconds (1-%u), for\n"
	"                            the doctor to check the keep-alive timeouts against\n"
	"      --events N            notable events kept for /api/v1/events (%u-%u,\n"
	"                            default %u)\n"
	"      --watch-self          count the agent's own HTTP port (scrapes, the CLI) as\n"
	"                            an upstream too; by default it is left out\n"
	"      --max-peers-per-port N\n"
	"                            inbound peers of a port /metrics shows on their own\n"
	"                            (default %u); more are summed as peer=\"*\"\n"
	"      --max-series N        per-upstream series of /metrics at most (%u to\n"
	"                            %u, default %u); beyond it more peers\n"
	"                            are summed as peer=\"*\"\n"
	"      --per-peer-histograms\n"
	"                            histograms per peer on /metrics, not per port\n"
	"      --fallback JOB        serve JOB (requests, reset_reasons, tcp_sock) with the\n"
	"                            fallback older kernels use, also where the preferred\n"
	"                            program exists (repeatable; to test the fallbacks)\n"
	"      --metrics-doc         print the metric reference (Markdown) and exit\n"
	"  -v, --verbose             more logging (twice: libbpf debug output)\n"
	"  -V, --version             print the version and exit\n"
	"  -h, --help                print this help and exit\n";

/* The help text's numbers come from where they are defined (kw_limits.h and above). */
static void print_usage(FILE *f)
{
	fprintf(f, usage_text, KW_MAX_UPSTREAMS_DEFAULT, MIN_CONN_TABLE, MAX_CONN_TABLE,
		sizeof(struct kw_conn), KW_CONN_TABLE_DEFAULT, MAX_LB_IDLE_TIMEOUT,
		KW_EVENTS_MIN_CAPACITY, KW_EVENTS_MAX_CAPACITY, KW_EVENTS_DEFAULT_CAPACITY,
		KW_VIEW_PEERS_PER_PORT_DEFAULT, KW_VIEW_SERIES_MIN, MAX_MAX_SERIES,
		KW_VIEW_SERIES_DEFAULT);
}

static void __attribute__((format(printf, 1, 2), noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keepwatchd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'keepwatchd --help' for more information.\n");
	exit(2);
}

static int print_metrics_doc(void)
{
	struct kw_buf b;
	int err;

	kw_buf_init(&b);
	err = kw_metrics_doc(&b);
	if (!err)
		fputs(b.data, stdout);
	kw_buf_free(&b);
	return err ? 1 : 0;
}

/*
 * Leave our own HTTP server out of the upstreams: every scrape and CLI request would be one
 * (and the doctor would blame "our client" for the CLI's single-use connections). A
 * wildcard or a host name listens on more than one address: loopback stands for them.
 */
static void self_filter(struct options *o)
{
	o->bpf.self_port = o->port;
	o->bpf.self_any = !strcmp(o->host, "0.0.0.0") || !strcmp(o->host, "::") ||
			  !strcmp(o->host, "") || kw_addr_parse(o->host, o->bpf.self_addr);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_PIN_DIR = 256,
		OPT_NO_PIN,
		OPT_METRICS_DOC,
		OPT_LB_IDLE_TIMEOUT,
		OPT_EVENTS,
		OPT_CONN_TABLE,
		OPT_FALLBACK,
		OPT_WATCH_SELF,
		OPT_MAX_PEERS_PER_PORT,
		OPT_MAX_SERIES,
		OPT_PER_PEER_HISTOGRAMS,
		OPT_USER,
		OPT_UNPIN,
		OPT_WEB_CONFIG
	};
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "web.config.file", required_argument, NULL, OPT_WEB_CONFIG },
		{ "netns", required_argument, NULL, 'n' },
		{ "port", required_argument, NULL, 'p' },
		{ "max-upstreams", required_argument, NULL, 'm' },
		{ "conn-table", required_argument, NULL, OPT_CONN_TABLE },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
		{ "no-pin", no_argument, NULL, OPT_NO_PIN },
		{ "unpin", no_argument, NULL, OPT_UNPIN },
		{ "user", required_argument, NULL, OPT_USER },
		{ "lb-idle-timeout", required_argument, NULL, OPT_LB_IDLE_TIMEOUT },
		{ "events", required_argument, NULL, OPT_EVENTS },
		{ "fallback", required_argument, NULL, OPT_FALLBACK },
		{ "watch-self", no_argument, NULL, OPT_WATCH_SELF },
		{ "max-peers-per-port", required_argument, NULL, OPT_MAX_PEERS_PER_PORT },
		{ "max-series", required_argument, NULL, OPT_MAX_SERIES },
		{ "per-peer-histograms", no_argument, NULL, OPT_PER_PEER_HISTOGRAMS },
		{ "metrics-doc", no_argument, NULL, OPT_METRICS_DOC },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, verbose = 0, err;
	__u64 v;

	if (kw_parse_hostport(DEFAULT_LISTEN, o->host, sizeof(o->host), &o->port))
		abort();
	o->bpf.max_upstreams = KW_MAX_UPSTREAMS_DEFAULT;
	o->bpf.conn_table = KW_CONN_TABLE_DEFAULT;
	o->events = KW_EVENTS_DEFAULT_CAPACITY;
	o->view.max_peers_per_port = KW_VIEW_PEERS_PER_PORT_DEFAULT;
	o->view.max_series = KW_VIEW_SERIES_DEFAULT;
	snprintf(o->pin_dir, sizeof(o->pin_dir), "%s", KW_PIN_DIR_DEFAULT);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:n:p:m:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			err = kw_parse_hostport(optarg, o->host, sizeof(o->host), &o->port);
			if (err)
				usage_error(
					"--listen: '%s' is not HOST:PORT with a port of 1-65535",
					optarg);
			break;
		case 'n':
			if (o->bpf.n_netns == KW_MAX_FILTERS)
				usage_error("--netns: at most %u namespaces", KW_MAX_FILTERS);
			err = kw_netns_resolve(optarg, &o->bpf.netns[o->bpf.n_netns]);
			if (err) {
				fprintf(stderr, "keepwatchd: --netns %s: %s\n", optarg,
					strerror(-err));
				exit(2);
			}
			o->bpf.n_netns++;
			break;
		case 'p':
			if (o->bpf.n_ports == KW_MAX_FILTERS)
				usage_error("--port: at most %u ports", KW_MAX_FILTERS);
			if (kw_parse_u64(optarg, 1, 65535, &v))
				usage_error("--port: '%s' is not a port number (1-65535)", optarg);
			o->bpf.ports[o->bpf.n_ports++] = v;
			break;
		case 'm':
			if (kw_parse_u64(optarg, MIN_MAX_UPSTREAMS, MAX_MAX_UPSTREAMS, &v))
				usage_error("--max-upstreams: '%s' is not a number from %u to %u",
					    optarg, MIN_MAX_UPSTREAMS, MAX_MAX_UPSTREAMS);
			o->bpf.max_upstreams = v;
			break;
		case OPT_CONN_TABLE:
			if (kw_parse_u32(optarg, MIN_CONN_TABLE, MAX_CONN_TABLE,
					 &o->bpf.conn_table) ||
			    (o->bpf.conn_table & (o->bpf.conn_table - 1)))
				usage_error(
					"--conn-table: '%s' is not a power of two from %u to %u",
					optarg, MIN_CONN_TABLE, MAX_CONN_TABLE);
			break;
		case OPT_PIN_DIR:
			if (optarg[0] != '/')
				usage_error("--pin-dir: '%s' is not an absolute path", optarg);
			if (strlen(optarg) >= sizeof(o->pin_dir))
				usage_error("--pin-dir: '%.40s...' is longer than %zu characters",
					    optarg, sizeof(o->pin_dir) - 1);
			if (strchr(strrchr(optarg, '/'), '.'))
				usage_error("--pin-dir: '%s': the bpf filesystem takes no dot in a "
					    "name",
					    optarg);
			snprintf(o->pin_dir, sizeof(o->pin_dir), "%s", optarg);
			break;
		case OPT_WEB_CONFIG:
			o->web_config = optarg;
			break;
		case OPT_NO_PIN:
			o->no_pin = 1;
			break;
		case OPT_UNPIN:
			o->unpin = 1;
			break;
		case OPT_USER:
			if (!optarg[0])
				usage_error("--user: an empty user name");
			o->user = optarg;
			break;
		case OPT_LB_IDLE_TIMEOUT:
			if (kw_parse_u32(optarg, 1, MAX_LB_IDLE_TIMEOUT, &o->lb_idle_timeout))
				usage_error("--lb-idle-timeout: '%s' is not a number of seconds "
					    "from 1 to %u",
					    optarg, MAX_LB_IDLE_TIMEOUT);
			break;
		case OPT_EVENTS:
			if (kw_parse_u32(optarg, KW_EVENTS_MIN_CAPACITY, KW_EVENTS_MAX_CAPACITY,
					 &o->events))
				usage_error("--events: '%s' is not a number from %u to %u", optarg,
					    KW_EVENTS_MIN_CAPACITY, KW_EVENTS_MAX_CAPACITY);
			break;
		case OPT_FALLBACK:
			if (!kw_fallback_parse(optarg))
				usage_error("--fallback: '%s' is not requests, reset_reasons or "
					    "tcp_sock",
					    optarg);
			o->bpf.fallback |= kw_fallback_parse(optarg);
			break;
		case OPT_WATCH_SELF:
			o->watch_self = 1;
			break;
		case OPT_MAX_PEERS_PER_PORT:
			if (kw_parse_u32(optarg, 0, MAX_PEERS_PER_PORT,
					 &o->view.max_peers_per_port))
				usage_error(
					"--max-peers-per-port: '%s' is not a number from 0 to %u",
					optarg, MAX_PEERS_PER_PORT);
			break;
		case OPT_MAX_SERIES:
			if (kw_parse_u64(optarg, KW_VIEW_SERIES_MIN, MAX_MAX_SERIES, &v))
				usage_error("--max-series: '%s' is not a number from %u to %u",
					    optarg, KW_VIEW_SERIES_MIN, MAX_MAX_SERIES);
			o->view.max_series = v;
			break;
		case OPT_PER_PEER_HISTOGRAMS:
			o->view.per_peer_hists = 1;
			break;
		case OPT_METRICS_DOC:
			exit(print_metrics_doc());
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("keepwatchd %s\n", KW_VERSION);
			exit(0);
		case 'h':
			print_usage(stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (o->unpin && o->no_pin)
		usage_error("--unpin and --no-pin: nothing to remove without a pin directory");
	o->bpf.pin_dir = o->no_pin ? NULL : o->pin_dir;
	if (!o->watch_self)
		self_filter(o);
	kw_log_set_level(KW_LOG_INFO + verbose);
}

static ssize_t metrics_read(void *cls, char *buf, size_t max)
{
	return kw_metrics_stream_read(cls, buf, max);
}

static void metrics_release(void *cls)
{
	kw_metrics_stream_free(cls);
}

/*
 * Streamed: at 10k upstreams the page is 90 MB, which would double the agent's memory
 * for the time of a scrape and cost as much again in page faults to build whole.
 */
static int route_metrics(void *ctx, const struct kw_request *req, struct kw_buf *body,
			 const char **ctype)
{
	struct agent *a = ctx;
	struct kw_metrics_stream *m;
	struct kw_snapshot s;
	int err;

	pthread_mutex_lock(&a->view_lock);
	err = kw_collect(&a->col, &s);
	if (!err) {
		err = kw_view_apply(a->view, &s);
		if (err)
			kw_snapshot_free(&s);
	}
	pthread_mutex_unlock(&a->view_lock);
	if (err) {
		kw_buf_printf(body, "collect: %s\n", strerror(-err));
		return 500;
	}
	if (a->events) {
		kw_events_stats(a->events, &s.events_received, &s.events_dropped);
		err = kw_bpf_events_totals(a->col.bpf, &s.events_received, &s.events_dropped);
		if (err)
			kw_warn("store the event totals: %s", strerror(-err));
	}
	m = kw_metrics_stream_new(&s);
	if (!m) {
		kw_buf_printf(body, "metrics: %s\n", strerror(errno));
		return 500;
	}
	kw_request_stream(req, &(struct kw_stream){ .read = metrics_read,
						    .release = metrics_release,
						    .cls = m,
						    .size = kw_metrics_stream_size(m) });
	*ctype = "text/plain; version=0.0.4; charset=utf-8";
	return 200;
}

static int route_upstreams(void *ctx, const struct kw_request *req, struct kw_buf *body,
			   const char **ctype)
{
	struct agent *a = ctx;
	struct kw_snapshot s;
	int err;

	(void)req;
	*ctype = "application/json";
	err = kw_collect(&a->col, &s);
	if (err) {
		kw_json_error(strerror(-err), body);
		return 500;
	}
	err = kw_json_upstreams(&s, body);
	kw_snapshot_free(&s);
	return err ? 500 : 200;
}

/* GET /api/v1/events?since=N&limit=N */
static int route_events(void *ctx, const struct kw_request *req, struct kw_buf *body,
			const char **ctype)
{
	struct agent *a = ctx;
	struct kw_events_query q;
	const char *why;

	*ctype = "application/json";
	if (kw_events_query_parse(kw_request_arg(req, "since"), kw_request_arg(req, "limit"), &q,
				  &why)) {
		kw_json_error(why, body);
		return 400;
	}
	return kw_events_render(a->events, &q, body) ? 500 : 200;
}

/* The doctor's netns labels, as /metrics writes them. */
static void doctor_netns_name(__u32 inode, char *out, size_t len, void *arg)
{
	(void)arg;
	kw_netns_name(inode, out, len);
}

/* GET /api/v1/doctor?peer=ADDR[:PORT] */
static int route_doctor(void *ctx, const struct kw_request *req, struct kw_buf *body,
			const char **ctype)
{
	struct agent *a = ctx;
	struct kw_doctor_opts o = { .lb_idle_timeout = a->opts->lb_idle_timeout,
				    .netns_name = doctor_netns_name };
	const char *peer = kw_request_arg(req, "peer");
	struct kw_diagnosis *d;
	struct kw_snapshot s;
	size_t n;
	int err;

	*ctype = "application/json";
	if (peer) {
		if (kw_addr_parse_peer(peer, o.peer, &o.port)) {
			kw_json_error("peer: not ADDR, ADDR:PORT or [IPV6]:PORT", body);
			return 400;
		}
		o.match_peer = 1;
	}
	err = kw_collect(&a->col, &s);
	if (err) {
		kw_json_error(strerror(-err), body);
		return 500;
	}
	/* The window of the counts: the pinned maps may be older than this agent. */
	o.uptime = s.counters_since ? difftime(time(NULL), (time_t)s.counters_since) : s.uptime;
	if (o.uptime < 1)
		o.uptime = 1;
	o.census = s.census;
	err = kw_doctor_run(s.u, s.n, &o, &d, &n);
	if (!err) {
		err = kw_doctor_json(d, n, &o, body);
		free(d);
	}
	kw_snapshot_free(&s);
	return err ? 500 : 200;
}

static int route_healthz(void *ctx, const struct kw_request *req, struct kw_buf *body,
			 const char **ctype)
{
	(void)ctx;
	(void)req;
	(void)ctype;
	kw_buf_puts(body, "ok\n");
	return 200;
}

static const struct kw_route routes[] = {
	{ "/metrics", route_metrics, KW_ROUTE_HEAVY, NULL },
	{ "/api/v1/upstreams", route_upstreams, KW_ROUTE_HEAVY, NULL },
	{ "/api/v1/events", route_events, KW_ROUTE_HEAVY, "since,limit" },
	{ "/api/v1/doctor", route_doctor, KW_ROUTE_HEAVY, "peer" },
	{ "/healthz", route_healthz, 0, NULL },
};

static void evicted(void *ctx, const struct kw_upstream *u)
{
	struct agent *a = ctx;

	kw_view_evicted(a->view, u, 1);
}

/* Waits for SIGINT/SIGTERM, evicting idle upstreams from a nearly full map meanwhile. */
static void serve_until_signal(struct agent *a)
{
	struct timespec tick = { .tv_sec = MAINTENANCE_SECONDS };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM) {
			kw_info("%s: stopping", strsignal(sig));
			return;
		}
		if (sig < 0 && errno == EAGAIN) {
			pthread_mutex_lock(&a->view_lock);
			kw_collector_evict(&a->col, evicted, a);
			pthread_mutex_unlock(&a->view_lock);
		}
	}
}

/*
 * A scrape of 10k upstreams allocates a 20 MB snapshot (and /api/v1/upstreams a 20 MB
 * page) and frees them.
 * glibc raises its mmap threshold to the size of each large block freed (up to 32 MB),
 * after which such blocks come from the heap of the HTTP thread's arena and stay in the
 * RSS once freed. A fixed threshold keeps every large block in its own mapping, given
 * back to the kernel at free().
 */
static void malloc_policy(void)
{
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

static int block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any thread starts, so that only sigtimedwait sees them. */
	return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/*
 * Connections established before the programs were attached: adopted, so that a proxy's
 * long-lived upstream pools are seen from the start, not only once they churn.
 */
static void adopt(const struct kw_bpf *bpf, const struct options *o)
{
	struct kw_adopted a;
	int err;

	err = kw_bpf_adopt(bpf, o->bpf.netns, o->bpf.n_netns, &a);
	if (err) {
		kw_warn("adopt the connections open before the start: %s; they stay untracked, "
			"only their replacements",
			strerror(-err));
		return;
	}
	kw_info("adopted %lu connections open before the start (%u namespaces walked, %u not "
		"found, %u failed)",
		a.connections, a.namespaces, a.skipped, a.failed);
	if (a.lost)
		kw_info("%lu connections of the last run closed while no agent ran: counted as lost",
			a.lost);
}

/*
 * Before any thread starts (capabilities are per thread): everything that needed more is
 * done (load, attach, pins, the start-up walk).
 */
static int drop_privileges(const struct options *o)
{
	const char *what = "";
	int err;

	err = kw_privs_drop(o->user, &what);
	if (err) {
		kw_err("%s%s%s: %s", what, o->user ? " " : "", o->user ? o->user : "",
		       strerror(-err));
		return err;
	}
	kw_info("capabilities kept: at most 0x%llx%s%s", (unsigned long long)kw_privs_keep(),
		o->user ? ", running as " : "", o->user ? o->user : "");
	return 0;
}

/* --unpin: the maps (the counts) and the links (the programs) go. */
static int unpin(const char *dir)
{
	int err = kw_bpf_unpin(dir);

	if (err == -EBUSY)
		return 1; /* said */
	if (err && err != -ENOENT) {
		kw_err("remove pin directory %s: %s", dir, strerror(-err));
		return 1;
	}
	kw_info("%s: %s", dir, err ? "nothing pinned" : "removed; the programs are detached");
	return 0;
}

/* The web configuration, read before anything is loaded: a bad one stops the start. */
static int load_web_config(const struct options *o, struct kw_webcfg *web)
{
	char why[512];
	int err;

	if (!o->web_config)
		return 0;
	err = kw_webcfg_load(o->web_config, web, why, sizeof(why));
	if (err) {
		kw_err("--web.config.file %s: %s", o->web_config, why);
		return err;
	}
	kw_info("web config %s: %s, users for basic authentication: %u", o->web_config,
		web->cert_pem ? "TLS" : "no TLS", web->nusers);
	return 0;
}

int main(int argc, char **argv)
{
	struct kw_webcfg web = {};
	struct options opts = {};
	struct agent agent = { .opts = &opts };
	struct kw_http *http;
	struct kw_bpf *bpf;
	int err, listen_fd;

	kw_log_set_prog("keepwatchd");
	malloc_policy();
	parse_options(argc, argv, &opts);
	if (opts.unpin)
		return unpin(opts.pin_dir);
	err = block_signals();
	if (err || load_web_config(&opts, &web))
		return 1;
	/* The port first: one in use stops the start before BPF is loaded or pinned. */
	listen_fd = kw_http_listen(opts.host, opts.port);
	if (listen_fd < 0) {
		kw_err("listen on %s:%u: %s", opts.host, opts.port, strerror(-listen_fd));
		kw_webcfg_free(&web);
		return 1;
	}
	bpf = kw_bpf_start(&opts.bpf);
	if (!bpf) {
		close(listen_fd);
		kw_webcfg_free(&web);
		return 1;
	}
	adopt(bpf, &opts);
	err = drop_privileges(&opts);
	if (err)
		goto destroy_bpf;
	agent.events = kw_events_start(kw_bpf_events_fd(bpf), opts.events);
	if (!agent.events) {
		err = -errno;
		kw_err("start the event log: %s", strerror(errno));
		goto destroy_bpf;
	}
	pthread_mutex_init(&agent.view_lock, NULL);
	agent.view = kw_view_new(&opts.view);
	if (!agent.view) {
		err = -errno;
		kw_err("start the exposition view: %s", strerror(errno));
		goto stop_events;
	}
	err = kw_collector_init(&agent.col, bpf, opts.bpf.netns, opts.bpf.n_netns);
	if (err) {
		kw_err("start collector: %s", strerror(-err));
		goto free_view;
	}
	http = kw_http_serve_web(listen_fd, routes, sizeof(routes) / sizeof(routes[0]), &agent,
				 &web);
	if (!http) {
		err = -errno;
		kw_err("serve on %s:%u: %s", opts.host, opts.port, strerror(errno));
		goto fini_collector;
	}
	listen_fd = -1; /* the server's now */
	kw_info("serving http%s://%s%s%s:%u/metrics (%u namespaces, %u ports filtered; pins %s)",
		web.cert_pem ? "s" : "", strchr(opts.host, ':') ? "[" : "", opts.host,
		strchr(opts.host, ':') ? "]" : "", opts.port, opts.bpf.n_netns, opts.bpf.n_ports,
		opts.bpf.pin_dir ? opts.bpf.pin_dir : "off");
	serve_until_signal(&agent);
	kw_http_stop(http);
fini_collector:
	kw_collector_fini(&agent.col);
free_view:
	kw_view_free(agent.view);
stop_events:
	kw_events_stop(agent.events);
destroy_bpf:
	kw_bpf_destroy(bpf);
	if (listen_fd >= 0)
		close(listen_fd);
	kw_webcfg_free(&web);
	return err ? 1 : 0;
}
