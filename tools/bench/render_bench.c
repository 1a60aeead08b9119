// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Scrape rendering without the kernel: fills a snapshot with N synthetic upstreams, then
 * times kw_metrics_render and kw_json_upstreams on a thread of their own (as
 * libmicrohttpd's) and reports the agent's memory around them, and the series and bytes
 * of /metrics.
 *
 *   build/render_bench [-n UPSTREAMS] [-m MODEL] [-i ITERATIONS] [-p BYTES]
 *                      [-r metrics|json] [-o DIR]
 *
 * -m proxy (the default): a proxy facing clients, 9N/10 client addresses on one inbound
 * port and N/10 backends on one outbound port; mixed: N/2 of each; clients or backends:
 * N of one kind; legacy: the figures used until
 * the cardinality work (tools/bench's many-peers shape, every 16th upstream IPv6 and
 * outbound), to compare with older BENCHMARKS.md sections.
 *
 * /metrics is rendered from the exposition view of the snapshot, made anew each time (on
 * a copy, untimed) by one view kept across iterations, as the agent does: -P per-peer
 * histograms, -k N inbound peers per port, -s N series at most (the agent's defaults
 * otherwise); -B renders the snapshot itself, every peer with its own histograms, as
 * before the view.
 * -r times one route only (both by default); -p reads /metrics in parts of BYTES into
 * one buffer, as the agent streams it.
 * -o writes DIR/metrics.txt and DIR/upstreams.json of the last iteration (with -p, of
 * one more, untimed, read in parts), to compare the output of two versions byte for byte.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "agent/collector.h"
#include "agent/json.h"
#include "agent/metrics.h"
#include "agent/view.h"
#include "lib/parse.h"

struct job {
	const struct kw_snapshot *s;
	int json;
	size_t part; /* /metrics in parts of this size through one reused buffer, or 0 */
	unsigned int iterations;
	const char *dump;     /* file to write the last output to, or NULL */
	struct kw_view *view; /* /metrics of its view, as the agent serves it; NULL: of s */
	double best, total;
	size_t bytes;
	size_t series; /* sample lines of /metrics (not HELP/TYPE) */
	int err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS or VmHWM of this process, KiB; -1 if unreadable. */
static long status_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* -m: which population the snapshot holds. */
enum model { M_PROXY, M_MIXED, M_CLIENTS, M_BACKENDS, M_LEGACY };

static const char *const model_names[] = { "proxy", "mixed", "clients", "backends", "legacy" };

/* Today's figures until this commit: IPv4 clients, every 16th upstream IPv6, outbound. */
static void fill_legacy(struct kw_upstream *u, size_t i)
{
	unsigned int k;

	u->key.direction = KW_DIR_INBOUND;
	u->key.port = 8080;
	u->key.netns = 4026532000u + (i % 3);
	if (i % 16 == 15) {
		u->key.family = KW_AF_INET6;
		u->key.addr[0] = 0xfd;
		u->key.addr[1] = 0x88;
		u->key.addr[14] = i >> 8;
		u->key.addr[15] = i;
		u->key.direction = KW_DIR_OUTBOUND;
		u->key.port = 443;
	} else {
		u->key.family = KW_AF_INET;
		kw_addr_v4mapped(htonl(0x0a580000u + 1 + i), u->key.addr);
	}
	u->val[KW_F_CONN] = 1 + (i % 16 == 15) * 1000;
	u->val[KW_F_REQ] = 1 + (i % 16 == 15) * 123456789;
	u->val[KW_F_REUSE] = (i % 16 == 15) * 123456788;
	u->val[KW_F_CLOSED_PEER_FIN] = 1;
	u->val[KW_F_TIME_WAIT_ENTERED] = i % 2;
	u->val[KW_F_TIME_WAIT] = i % 2;
	u->hist[KW_H_IDLE_PEER][i % 5] = 1;
	u->hist_sum[KW_H_IDLE_PEER] = (i * 7919 % 300000) / 1000.0; /* ms / 1000 */
	u->hist[KW_H_REQS_PEER][1] = 1;
	u->hist_sum[KW_H_REQS_PEER] = 1;
	u->single_idle_sum[KW_BY_PEER] = u->hist_sum[KW_H_IDLE_PEER];
	if (i % 16 == 15) {
		u->val[KW_F_RST_SENT_ABORT_ON_CLOSE] = 3;
		u->val[KW_F_CF_ECONNREFUSED] = 18446744073709551615ull;
		for (k = 0; k < KW_H_MAX; k++) {
			u->hist[k][0] = 7;
			u->hist[k][kw_hists[k].nslots - 1] = 1ull << 40;
			u->hist_sum[k] = 1e15 / 3 + k;
		}
	}
}

/*
 * A proxy's day, as the issue describes it: clients (one address each, IPv4, every 16th
 * IPv6) on one listening port, closing or being closed after a few requests; backends
 * (10.96.0.0/16) on one port, with pooled connections. Both close both ways, so both
 * closers' idle and requests-per-connection histograms have observations, in a few slots.
 */
static void fill_peer(struct kw_upstream *u, size_t i, int outbound)
{
	__u64 conns = outbound ? 40 + i % 50 : 1 + i % 7;

	u->key.direction = outbound ? KW_DIR_OUTBOUND : KW_DIR_INBOUND;
	u->key.port = outbound ? 8080 : 443;
	u->key.netns = 4026532000u;
	if (!outbound && i % 16 == 15) {
		u->key.family = KW_AF_INET6;
		u->key.addr[0] = 0x20;
		u->key.addr[1] = 0x01;
		u->key.addr[13] = i >> 16;
		u->key.addr[14] = i >> 8;
		u->key.addr[15] = i;
	} else {
		u->key.family = KW_AF_INET;
		kw_addr_v4mapped(htonl((outbound ? 0x0a600000u : 0x64400000u) + 1 + i),
				 u->key.addr);
	}
	u->val[KW_F_CONN] = conns;
	u->val[KW_F_REQ] = conns * (outbound ? 120 : 4) + i % 3;
	u->val[KW_F_REUSE] = u->val[KW_F_REQ] - conns;
	u->val[KW_F_CLOSED_PEER_FIN] = conns / 2;
	u->val[KW_F_CLOSED_LOCAL_FIN] = conns - conns / 2 - (i % 4 == 0);
	u->val[KW_F_ACTIVE] = i % 4 == 0;
	u->val[KW_F_TIME_WAIT_ENTERED] = u->val[KW_F_CLOSED_LOCAL_FIN];
	u->val[KW_F_TIME_WAIT] = i % 2;
	if (i % 97 == 0)
		u->val[outbound ? KW_F_RST_RCVD_ESTABLISHED : KW_F_RST_SENT_ABORT_ON_CLOSE] = 1;
	u->hist[KW_H_IDLE_PEER][3 + i % 5] = conns / 2;
	u->hist_sum[KW_H_IDLE_PEER] = conns / 2 * (i * 7919 % 30000) / 1000.0;
	u->hist[KW_H_IDLE_LOCAL][10 + i % 3] = u->val[KW_F_CLOSED_LOCAL_FIN];
	u->hist_sum[KW_H_IDLE_LOCAL] = u->val[KW_F_CLOSED_LOCAL_FIN] * 5.0;
	u->hist[KW_H_REQS_PEER][2 + i % 3] = conns / 2;
	u->hist_sum[KW_H_REQS_PEER] = conns / 2 * 4.0;
	u->hist[KW_H_REQS_LOCAL][4 + i % 4] = u->val[KW_F_CLOSED_LOCAL_FIN];
	u->hist_sum[KW_H_REQS_LOCAL] = u->val[KW_F_CLOSED_LOCAL_FIN] * 8.0;
}

static void fill_upstream(struct kw_upstream *u, size_t i, size_t n, enum model m)
{
	memset(u, 0, sizeof(*u));
	u->slot = i;
	switch (m) {
	case M_LEGACY:
		fill_legacy(u, i);
		break;
	case M_CLIENTS:
		fill_peer(u, i, 0);
		break;
	case M_BACKENDS:
		fill_peer(u, i, 1);
		break;
	case M_MIXED:
		fill_peer(u, i < n / 2 ? i : i - n / 2, i >= n / 2);
		break;
	case M_PROXY:
		fill_peer(u, i < n - n / 10 ? i : i - (n - n / 10), i >= n - n / 10);
		break;
	}
}

static const struct kw_bpf_job bench_jobs[] = { { "requests", "tp_btf/sock_recv_length" } };

static int by_key(const void *a, const void *b)
{
	return kw_key_cmp(&((const struct kw_upstream *)a)->key,
			  &((const struct kw_upstream *)b)->key);
}

/* n upstreams and the two overflow upstreams, sorted by key like a collected snapshot. */
static int fill_snapshot(struct kw_snapshot *s, size_t n, enum model m)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	if (kw_snapshot_alloc(s, n + 2))
		return -ENOMEM;
	for (i = 0; i < n; i++)
		fill_upstream(&s->u[i], i, n, m);
	for (i = 0; i < 2; i++) {
		s->u[n + i].key.direction = i ? KW_DIR_OUTBOUND : KW_DIR_INBOUND;
		s->u[n + i].key.family = KW_AF_INET;
	}
	s->n = n + 2;
	qsort(s->u, s->n, sizeof(*s->u), by_key);
	s->capacity = 16386;
	s->uptime = 12.25;
	s->jobs = bench_jobs;
	s->njobs = sizeof(bench_jobs) / sizeof(bench_jobs[0]);
	s->bpf_stats_enabled = 1;
	s->nprogs = 1;
	snprintf(s->progs[0].name, sizeof(s->progs[0].name), "kw_set_state");
	s->progs[0].run_cnt = 1000;
	s->progs[0].run_time_ns = 123456;
	return 0;
}

/* Sample lines of a page: every line but HELP and TYPE. */
static size_t count_series(const char *p, size_t len)
{
	const char *end = p + len, *nl;
	size_t n = 0;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		n += *p != '#';
	}
	return n;
}

static int dump(const char *path, const struct kw_buf *b)
{
	FILE *f = fopen(path, "w");
	int err = 0;

	if (!f)
		return -errno;
	if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

/*
 * As the agent streams /metrics: a copy of the snapshot (the stream takes it over) read
 * part by part into one buffer of part bytes, as libmicrohttpd's send buffer. *total: the
 * page's size. f: where the page goes too, or NULL.
 */
static int in_parts(const struct kw_snapshot *s, struct kw_view *view, size_t part, char *buf,
		    size_t *total, FILE *f)
{
	struct kw_metrics_stream *m;
	struct kw_snapshot copy = *s;
	ssize_t n;

	if (kw_snapshot_alloc(&copy, s->n))
		return -ENOMEM;
	memcpy(copy.u, s->u, s->n * sizeof(*s->u));
	n = view ? kw_view_apply(view, &copy) : 0;
	if (n) {
		kw_snapshot_free(&copy);
		return n;
	}
	m = kw_metrics_stream_new(&copy); /* frees copy.u, also when it fails */
	if (!m)
		return -errno;
	while ((n = kw_metrics_stream_read(m, buf, part)) > 0) {
		*total += n;
		if (f && fwrite(buf, 1, n, f) != (size_t)n) {
			n = -EIO;
			break;
		}
	}
	if (!n && *total != kw_metrics_stream_size(m))
		n = -EPROTO; /* not the length announced */
	kw_metrics_stream_free(m);
	return n;
}

/* The page read in parts into a file, untimed, to compare with another version's. */
static int dump_parts(const struct kw_snapshot *s, struct kw_view *view, size_t part, char *buf,
		      const char *path)
{
	FILE *f = fopen(path, "w");
	size_t total = 0;
	int err;

	if (!f)
		return -errno;
	err = in_parts(s, view, part, buf, &total, f);
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

/* One route's work: render into a fresh buffer, then free it, as the agent does. */
static void *run(void *arg)
{
	struct job *j = arg;
	char *part = j->part ? malloc(j->part) : NULL;
	struct kw_buf b;
	unsigned int it;

	j->best = 1e9;
	if (j->part && !part)
		j->err = -ENOMEM;
	for (it = 0; it < j->iterations && !j->err; it++) {
		struct kw_snapshot copy = *j->s;
		double t0, dt;

		/* the view works on the snapshot in place: on a copy, made untimed */
		if (!j->json && !j->part && j->view) {
			j->err = kw_snapshot_alloc(&copy, j->s->n);
			if (j->err)
				break;
			memcpy(copy.u, j->s->u, j->s->n * sizeof(*copy.u));
		}
		kw_buf_init(&b);
		j->bytes = 0;
		t0 = now_s();
		if (j->json)
			j->err = kw_json_upstreams(j->s, &b);
		else if (j->part)
			j->err = in_parts(j->s, j->view, j->part, part, &j->bytes, NULL);
		else if (j->view && (j->err = kw_view_apply(j->view, &copy)))
			;
		else
			j->err = kw_metrics_render(&copy, &b);
		dt = now_s() - t0;
		if (!j->json && !j->part && j->view)
			kw_snapshot_free(&copy);
		j->total += dt;
		if (dt < j->best)
			j->best = dt;
		if (!j->part)
			j->bytes = b.len;
		if (!j->json && !j->part)
			j->series = count_series(b.data, b.len);
		if (!j->err && j->dump && !j->part && it + 1 == j->iterations)
			j->err = dump(j->dump, &b);
		kw_buf_free(&b);
	}
	if (!j->err && j->dump && j->part)
		j->err = dump_parts(j->s, j->view, j->part, part, j->dump);
	free(part);
	return NULL;
}

static int time_route(const struct kw_snapshot *s, struct kw_view *view, int json, size_t part,
		      unsigned int iterations, const char *dir)
{
	char path[4096];
	struct job j = {
		.s = s, .view = view, .json = json, .part = part, .iterations = iterations
	};
	pthread_t t;
	int err;

	if (dir) {
		snprintf(path, sizeof(path), "%s/%s", dir, json ? "upstreams.json" : "metrics.txt");
		j.dump = path;
	}
	err = pthread_create(&t, NULL, run, &j);
	if (err)
		return -err;
	pthread_join(t, NULL);
	if (j.err)
		return j.err;
	printf("%-18s %8.1f ms best %8.1f ms mean %10zu bytes  RSS %ld KiB  HWM %ld KiB\n",
	       json ? "/api/v1/upstreams" :
	       part ? "/metrics (parts)" :
		      "/metrics",
	       j.best * 1e3, j.total / iterations * 1e3, j.bytes, status_kb("VmRSS"),
	       status_kb("VmHWM"));
	if (!json && !part)
		printf("%-18s %8zu series, %.1f per upstream, %.0f bytes per series\n", "",
		       j.series, (double)j.series / (s->n - 2),
		       j.series ? (double)j.bytes / j.series : 0);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *route = NULL;
	struct kw_snapshot s;
	__u64 n = 10000, iterations = 5, part = 0, max_series;
	struct kw_view_opts vo = { .max_peers_per_port = KW_VIEW_PEERS_PER_PORT_DEFAULT,
				   .max_series = KW_VIEW_SERIES_DEFAULT };
	enum model model = M_PROXY;
	struct kw_view *view = NULL;
	int c, err, raw = 0;

	while ((c = getopt(argc, argv, "n:i:p:r:o:m:BPk:s:")) != -1) {
		switch (c) {
		case 'B':
			raw = 1;
			break;
		case 'P':
			vo.per_peer_hists = 1;
			break;
		case 'k':
			if (kw_parse_u32(optarg, 0, 1u << 20, &vo.max_peers_per_port))
				goto usage;
			break;
		case 's':
			if (kw_parse_u64(optarg, KW_VIEW_SERIES_MIN, 1000000000, &max_series))
				goto usage;
			vo.max_series = max_series;
			break;
		case 'm':
			for (model = 0; model <= M_LEGACY; model++)
				if (!strcmp(optarg, model_names[model]))
					break;
			if (model > M_LEGACY)
				goto usage;
			break;
		case 'n':
			if (kw_parse_u64(optarg, 0, 10000000, &n))
				goto usage;
			break;
		case 'i':
			if (kw_parse_u64(optarg, 1, 100000, &iterations))
				goto usage;
			break;
		case 'p':
			if (kw_parse_u64(optarg, 1, 1 << 30, &part))
				goto usage;
			break;
		case 'o':
			dir = optarg;
			break;
		case 'r':
			if (strcmp(optarg, "metrics") && strcmp(optarg, "json"))
				goto usage;
			route = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind < argc)
		goto usage;
	err = fill_snapshot(&s, n, model);
	if (err)
		goto fail;
	printf("%llu upstreams (+2 overflow), model %s, %zu bytes each in a snapshot; RSS %ld KiB\n",
	       (unsigned long long)n, model_names[model], sizeof(struct kw_upstream),
	       status_kb("VmRSS"));
	err = 0;
	view = raw ? NULL : kw_view_new(&vo);
	if (!raw && !view)
		err = -errno;
	if (!err && (!route || !strcmp(route, "metrics")))
		err = time_route(&s, view, 0, part, iterations, dir);
	if (!err && (!route || !strcmp(route, "json")))
		err = time_route(&s, NULL, 1, 0, iterations, dir);
	kw_view_free(view);
	kw_snapshot_free(&s);
	if (err)
		goto fail;
	printf("after freeing the snapshot: RSS %ld KiB\n", status_kb("VmRSS"));
	return 0;
fail:
	fprintf(stderr, "render_bench: %s\n", strerror(-err));
	return 1;
usage:
	fprintf(stderr,
		"usage: render_bench [-n UPSTREAMS] [-m MODEL] [-B | -P -k N -s N] [-i ITERATIONS] "
		"[-p BYTES] [-r metrics|json] [-o DIR]\n");
	return 2;
}
