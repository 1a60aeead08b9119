// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Turns the BPF maps into snapshots: the upstream map gives each upstream's slot, the
 * counters array (mapped into memory) its counts. The kernel keeps every counter
 * monotonic itself, requests included, so a snapshot is a plain copy.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/collector.h"
#include "agent/netns.h"
#include "lib/clock.h"
#include "lib/log.h"

int kw_collector_init(struct kw_collector *c, const struct kw_bpf *bpf, const __u32 *netns,
		      unsigned int n_netns)
{
	memset(c, 0, sizeof(*c));
	c->bpf = bpf;
	c->netns = netns;
	c->n_netns = n_netns;
	c->census_at = -1e9;
	c->started = kw_now();
	c->evict_idle = 600;
	return -pthread_mutex_init(&c->lock, NULL);
}

void kw_collector_fini(struct kw_collector *c)
{
	kw_census_free(&c->census);
	free(c->prev);
	free(c->open_req);
	free(c->floor);
	pthread_mutex_destroy(&c->lock);
}

/* KW_RST_* to its field; the table lists them in its own order. */
static const enum kw_field_id rst_sent_field[KW_RST_MAX] = {
	[KW_RST_NOT_SPECIFIED] = KW_F_RST_SENT_NOT_SPECIFIED,
	[KW_RST_NO_SOCKET] = KW_F_RST_SENT_NO_SOCKET,
	[KW_RST_TCP_FLAGS] = KW_F_RST_SENT_TCP_FLAGS,
	[KW_RST_ABORT_ON_DATA] = KW_F_RST_SENT_ABORT_ON_DATA,
	[KW_RST_TIMEWAIT_SOCKET] = KW_F_RST_SENT_TIMEWAIT_SOCKET,
	[KW_RST_ABORT_ON_CLOSE] = KW_F_RST_SENT_ABORT_ON_CLOSE,
	[KW_RST_ABORT_ON_LINGER] = KW_F_RST_SENT_ABORT_ON_LINGER,
	[KW_RST_ABORT_ON_MEMORY] = KW_F_RST_SENT_ABORT_ON_MEMORY,
	[KW_RST_TCP_STATE] = KW_F_RST_SENT_TCP_STATE,
	[KW_RST_KEEPALIVE_TIMEOUT] = KW_F_RST_SENT_KEEPALIVE_TIMEOUT,
	[KW_RST_DISCONNECT_WITH_DATA] = KW_F_RST_SENT_DISCONNECT_WITH_DATA,
	[KW_RST_INVALID_SYN] = KW_F_RST_SENT_INVALID_SYN,
	[KW_RST_OTHER] = KW_F_RST_SENT_OTHER,
};

static void from_counters(struct kw_upstream *u, const struct kw_counters *k)
{
	__u64 closed = 0, opened, adopted, used, requests, in;
	unsigned int i, j;

	/*
	 * The kernel counts a connection in opened (or adopted) before it counts its close
	 * (or the agent its loss): read the closes first, then those, and active is never
	 * negative.
	 */
	for (i = 0; i < KW_BY_MAX; i++)
		for (j = 0; j < KW_HOW_MAX; j++)
			closed += __atomic_load_n(&k->closed[i][j], __ATOMIC_RELAXED);
	closed += __atomic_load_n(&k->lost, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	opened = __atomic_load_n(&k->opened, __ATOMIC_RELAXED);
	adopted = __atomic_load_n(&k->adopted, __ATOMIC_RELAXED);
	u->val[KW_F_CONN] = opened;
	u->val[KW_F_ADOPTED] = adopted;
	u->val[KW_F_LOST] = k->lost;
	in = opened + adopted;
	u->val[KW_F_ACTIVE] = in > closed ? in - closed : 0;
	/* A connection's first request is counted before it is counted as used. */
	used = __atomic_load_n(&k->used, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	requests = __atomic_load_n(&k->requests, __ATOMIC_RELAXED);
	u->val[KW_F_REQ] = requests;
	u->val[KW_F_REUSE] = requests > used ? requests - used : 0;
	u->val[KW_F_CLOSED_LOCAL_FIN] = k->closed[KW_BY_LOCAL][KW_HOW_FIN];
	u->val[KW_F_CLOSED_LOCAL_RST] = k->closed[KW_BY_LOCAL][KW_HOW_RST];
	u->val[KW_F_CLOSED_PEER_FIN] = k->closed[KW_BY_PEER][KW_HOW_FIN];
	u->val[KW_F_CLOSED_PEER_RST] = k->closed[KW_BY_PEER][KW_HOW_RST];
	u->val[KW_F_UNUSED_LOCAL] = k->reqs_hist[KW_BY_LOCAL][0];
	u->val[KW_F_UNUSED_PEER] = k->reqs_hist[KW_BY_PEER][0];
	u->val[u->key.direction == KW_DIR_OUTBOUND ? KW_F_RACE_CLIENT : KW_F_RACE_SERVER] =
		k->races;
	u->val[KW_F_ABORTED_UNREAD] = k->aborted_unread;
	for (i = 0; i < KW_RST_MAX; i++)
		u->val[rst_sent_field[i]] = k->resets_sent[i];
	for (i = 0; i < KW_RSTATE_MAX; i++)
		u->val[KW_F_RST_RCVD_ESTABLISHED + i] = k->resets_rcvd[i];
	for (i = 0; i < KW_IDLE_SLOTS; i++) {
		u->hist[KW_H_IDLE_LOCAL][i] = k->idle_hist[KW_BY_LOCAL][i];
		u->hist[KW_H_IDLE_PEER][i] = k->idle_hist[KW_BY_PEER][i];
	}
	u->hist_sum[KW_H_IDLE_LOCAL] = k->idle_ms_sum[KW_BY_LOCAL] / 1000.0;
	u->hist_sum[KW_H_IDLE_PEER] = k->idle_ms_sum[KW_BY_PEER] / 1000.0;
	for (i = 0; i < KW_REQS_SLOTS; i++) {
		u->hist[KW_H_REQS_LOCAL][i] = k->reqs_hist[KW_BY_LOCAL][i];
		u->hist[KW_H_REQS_PEER][i] = k->reqs_hist[KW_BY_PEER][i];
	}
	u->hist_sum[KW_H_REQS_LOCAL] = k->reqs_sum[KW_BY_LOCAL];
	u->hist_sum[KW_H_REQS_PEER] = k->reqs_sum[KW_BY_PEER];
	u->single_idle_sum[KW_BY_LOCAL] = k->single_idle_ms_sum[KW_BY_LOCAL] / 1000.0;
	u->single_idle_sum[KW_BY_PEER] = k->single_idle_ms_sum[KW_BY_PEER] / 1000.0;
	u->val[KW_F_TIME_WAIT_ENTERED] = k->time_wait_entered;
	for (i = 0; i < KW_CF_MAX; i++)
		u->val[KW_F_CF_EADDRNOTAVAIL + i] = k->connect_failures[i];
	for (i = 0; i < KW_IDLE_SLOTS; i++)
		u->hist[KW_H_RACE_IDLE][i] = k->race_idle_hist[i];
	u->hist_sum[KW_H_RACE_IDLE] = k->race_idle_ms_sum / 1000.0;
	for (i = 0; i < KW_GAP_SLOTS; i++)
		u->hist[KW_H_RACE_GAP][i] = k->race_gap_hist[i];
	u->hist_sum[KW_H_RACE_GAP] = k->race_gap_us_sum / 1e6;
	u->val[KW_F_BYTES_SENT] = k->bytes_sent;
	u->val[KW_F_BYTES_RECEIVED] = k->bytes_received;
	u->val[KW_F_RETRANSMITS] = k->retransmits;
	for (i = 0; i < KW_LIFETIME_SLOTS; i++)
		u->hist[KW_H_LIFETIME][i] = k->lifetime_hist[i];
	u->hist_sum[KW_H_LIFETIME] = k->lifetime_ms_sum / 1000.0;
	for (i = 0; i < KW_CONNECT_SLOTS; i++)
		u->hist[KW_H_CONNECT][i] = k->connect_hist[i];
	u->hist_sum[KW_H_CONNECT] = k->connect_us_sum / 1e6;
	for (i = 0; i < KW_RTT_SLOTS; i++)
		u->hist[KW_H_RTT][i] = k->rtt_hist[i];
	u->hist_sum[KW_H_RTT] = k->rtt_us_sum / 1e6;
}

/* An upstream's key and its slot in the counters array, as the upstream map has them. */
struct slot_ref {
	struct kw_key key;
	__u32 slot;
};

static int ref_cmp(const void *a, const void *b)
{
	return kw_key_cmp(&((const struct slot_ref *)a)->key, &((const struct slot_ref *)b)->key);
}

/*
 * The upstream map's entries in a few BPF_MAP_LOOKUP_BATCH calls (kernel 5.6) instead of
 * two syscalls per upstream: at 10k upstreams those were a sixth of a scrape. 0, or
 * -errno when the caller should read one key at a time (no batch support, more entries
 * than max while the map changed).
 */
static int refs_batch(int fd, __u32 capacity, struct slot_ref *refs, size_t max, size_t *n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct kw_key *keys = calloc(max, sizeof(*keys));
	__u32 *slots = calloc(max, sizeof(*slots));
	struct kw_key in, out; /* the kernel's cursor: a u32 for hash maps, key-sized at most */
	size_t got = 0, i;
	int err = -ENOMEM;

	if (!keys || !slots)
		goto free_arrays;
	for (;;) {
		__u32 count = max - got > UINT32_MAX ? UINT32_MAX : max - got;

		if (!count) {
			err = -ENOSPC;
			break;
		}
		err = bpf_map_lookup_batch(fd, got ? &in : NULL, &out, keys + got, slots + got,
					   &count, &opts);
		if (err && err != -ENOENT)
			break;
		got += count;
		if (err == -ENOENT) {
			err = 0; /* the last batch */
			break;
		}
		in = out;
	}
	*n = 0;
	for (i = 0; !err && i < got; i++)
		if (slots[i] < capacity)
			refs[(*n)++] = (struct slot_ref){ keys[i], slots[i] };
free_arrays:
	free(keys);
	free(slots);
	return err;
}

/* The same one key at a time; entries past max (the map changing under us) are left out. */
static void refs_one_by_one(int fd, __u32 capacity, struct slot_ref *refs, size_t max, size_t *n)
{
	struct kw_key key, next, *prev = NULL;
	__u32 slot;

	*n = 0;
	while (*n < max && !bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &slot) || slot >= capacity)
			continue; /* deleted meanwhile */
		refs[(*n)++] = (struct slot_ref){ key, slot };
	}
}

/*
 * The keys are sorted before the counters are read, so that the 2 KB records of the
 * snapshot are written once, in order, and never moved by a sort.
 */
static int read_upstreams(const struct kw_bpf *bpf, struct kw_snapshot *s)
{
	__u32 capacity = kw_bpf_upstreams_capacity(bpf), top = 0;
	int fd = kw_bpf_upstreams_fd(bpf), err;
	size_t max = (size_t)capacity + 64, n = 0, i;
	struct kw_counters *counters = NULL;
	struct slot_ref *refs;

	refs = calloc(max, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	if (refs_batch(fd, capacity, refs, max, &n))
		refs_one_by_one(fd, capacity, refs, max, &n);
	qsort(refs, n, sizeof(*refs), ref_cmp);
	/* slots are handed out from the bottom up: map up to the highest in use */
	for (i = 0; i < n; i++)
		if (refs[i].slot >= top)
			top = refs[i].slot + 1;
	err = kw_snapshot_alloc(s, n);
	if (!err && top) {
		counters = kw_bpf_counters_map(bpf, top);
		if (!counters) {
			err = -errno;
			kw_err("map the counters: %s", strerror(errno));
		}
	}
	for (i = 0; !err && i < n; i++) {
		struct kw_upstream *u = &s->u[s->n];

		if (i && !kw_key_cmp(&refs[i].key, &refs[i - 1].key))
			continue; /* met twice while the map changed */
		u->key = refs[i].key;
		u->slot = refs[i].slot;
		from_counters(u, &counters[u->slot]);
		s->live_sockets += u->val[KW_F_ACTIVE];
		s->n++;
	}
	kw_bpf_counters_unmap(bpf, counters, top);
	free(refs);
	return err;
}

/*
 * Requests of open connections: the kernel moves them into the counters when they
 * close, until then they are added here. A connection closing while we read may be
 * missed this once, never counted twice: a floor per slot keeps the counts from ever
 * going back.
 */
static int add_open_requests(struct kw_collector *c, struct kw_snapshot *s)
{
	size_t i, cap = kw_bpf_upstreams_capacity(c->bpf);
	__u64 *req, *used;
	int err;

	if (!c->open_req)
		c->open_req = calloc(2 * cap, sizeof(*c->open_req));
	if (!c->floor)
		c->floor = calloc(2 * cap, sizeof(*c->floor));
	if (!c->open_req || !c->floor)
		return -ENOMEM;
	req = c->open_req;
	used = c->open_req + cap;
	memset(req, 0, 2 * cap * sizeof(*req));
	err = kw_bpf_open_requests(c->bpf, req, used);
	if (err) {
		kw_err("read the connection table: %s", strerror(-err));
		return err;
	}
	for (i = 0; i < s->n; i++) {
		struct kw_upstream *u = &s->u[i];
		__u64 *floor = &c->floor[2 * (size_t)u->slot];

		u->val[KW_F_REQ] += req[u->slot];
		u->val[KW_F_REUSE] += req[u->slot] - used[u->slot];
		if (u->val[KW_F_REQ] < floor[0])
			u->val[KW_F_REQ] = floor[0];
		floor[0] = u->val[KW_F_REQ];
		if (u->val[KW_F_REUSE] < floor[1])
			u->val[KW_F_REUSE] = floor[1];
		floor[1] = u->val[KW_F_REUSE];
	}
	return 0;
}

static void read_errors(int fd, struct kw_snapshot *s)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *v;
	__u32 i;
	int c;

	if (ncpu <= 0)
		return;
	v = calloc(ncpu, sizeof(*v));
	if (!v)
		return;
	for (i = 0; i < KW_ERR_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, v))
			continue;
		for (c = 0; c < ncpu; c++)
			s->errors[i] += v[c];
	}
	free(v);
}

static int read_bpf_stats_enabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* splitmix64's finalizer: a bijection that spreads every input bit over the output */
static __u64 mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * A digest of an upstream's figures, to tell whether they moved since the last snapshot
 * without keeping a copy of them. Two different sets of figures give the same digest
 * with a chance of about 2^-64, and then only delay noticing a change by one snapshot.
 * Each figure is mixed with its index on its own, so that the CPU overlaps the mixes
 * (a chain of them serialises every multiply).
 */
static __u64 val_digest(const struct kw_upstream *u)
{
	__u64 h = 0;
	unsigned int i;

	for (i = 0; i < KW_F_MAX; i++)
		h += mix64(u->val[i] ^ (i * 0x9e3779b97f4a7c15ull));
	return h;
}

/* The lines of an upstream's figures: val_digest reads them all, from far apart records. */
static void prefetch_vals(const struct kw_upstream *u)
{
	const char *p = (const char *)u->val;
	size_t off;

	for (off = 0; off < sizeof(u->val); off += 64)
		__builtin_prefetch(p + off);
	__builtin_prefetch(p + sizeof(u->val) - 1);
}

/*
 * When each upstream last changed, for eviction: counts that moved, open connections,
 * or a new slot (the key came back after an eviction). Then the snapshot's upstreams
 * become the previous ones. Both lists are sorted by key: one walk through the two.
 */
static int track_changes(struct kw_collector *c, struct kw_snapshot *s, double now)
{
	struct kw_seen *seen = calloc(s->n ? s->n : 1, sizeof(*seen));
	size_t i, j = 0;

	if (!seen)
		return -ENOMEM;
	for (i = 0; i < s->n; i++) {
		struct kw_upstream *u = &s->u[i];
		const struct kw_seen *p = NULL;
		__u64 digest;

		if (i + 4 < s->n)
			prefetch_vals(&s->u[i + 4]);
		digest = val_digest(u);

		while (j < c->nprev && kw_key_cmp(&c->prev[j].key, &u->key) < 0)
			j++;
		if (j < c->nprev && !kw_key_cmp(&c->prev[j].key, &u->key))
			p = &c->prev[j];
		if (!p || u->val[KW_F_ACTIVE] || p->slot != u->slot || p->digest != digest)
			u->last_change = now;
		else
			u->last_change = p->last_change;
		seen[i] = (struct kw_seen){ .key = u->key,
					    .slot = u->slot,
					    .digest = digest,
					    .last_change = u->last_change };
	}
	free(c->prev);
	c->prev = seen;
	c->nprev = s->n;
	return 0;
}

#define CENSUS_MAX_NETNS    1024
#define CENSUS_MIN_INTERVAL 1.0 /* s: scrapes in between share the last census */

/*
 * The TCP census of the watched namespaces (TIME_WAIT per upstream, port headroom), at
 * most once a second: it walks every socket of every watched namespace.
 */
static void refresh_census(struct kw_collector *c, double now)
{
	__u32 all[CENSUS_MAX_NETNS];
	const __u32 *list = c->netns;
	struct kw_census_result cur = {};
	unsigned int n = c->n_netns;
	int found;

	if (now - c->census_at < CENSUS_MIN_INTERVAL)
		return;
	if (!n) {
		found = kw_netns_all(all, CENSUS_MAX_NETNS);
		if (found < 0)
			return;
		list = all;
		n = found;
	}
	if (kw_census_run(kw_bpf_tcp_iter_link_fd(c->bpf), list, n, &cur)) {
		kw_census_free(&cur);
		return;
	}
	if (!c->n_netns) {
		cur.unreadable = kw_netns_unreadable();
		if (cur.unreadable && !c->census.unreadable)
			kw_warn("census: the network namespace of %llu processes may not be read "
				"(no CAP_SYS_PTRACE?): namespaces only they hold are left out",
				(unsigned long long)cur.unreadable);
	}
	kw_census_diff(&c->census, &cur, now - c->census_at);
	kw_census_free(&c->census);
	c->census = cur;
	c->census_seconds = kw_now() - now;
	c->census_at = now;
}

/* TIME_WAIT per upstream: the census's counts are sorted by key too, one walk for both. */
static void add_census(struct kw_collector *c, struct kw_snapshot *s)
{
	const struct kw_census_tw *tw = c->census.tw;
	size_t i, j = 0, n = c->census.n_tw;

	for (i = 0; i < s->n; i++) {
		struct kw_upstream *u = &s->u[i];

		while (j < n && kw_key_cmp(&tw[j].key, &u->key) < 0)
			j++;
		u->val[KW_F_TIME_WAIT] = 0;
		if (j < n && !kw_key_cmp(&tw[j].key, &u->key))
			u->val[KW_F_TIME_WAIT] = tw[j].count;
	}
	s->census = &c->census;
	s->census_seconds = c->census_seconds;
}

static int collect_locked(struct kw_collector *c, struct kw_snapshot *s, int census)
{
	double now = kw_now();
	int err;

	memset(s, 0, sizeof(*s));
	err = read_upstreams(c->bpf, s);
	if (!err)
		err = add_open_requests(c, s);
	if (err) {
		kw_snapshot_free(s);
		return err;
	}
	read_errors(kw_bpf_errors_fd(c->bpf), s);
	if (census)
		refresh_census(c, now);
	add_census(c, s);
	err = track_changes(c, s, now);
	if (err) {
		kw_snapshot_free(s);
		return err;
	}
	s->capacity = kw_bpf_upstreams_capacity(c->bpf);
	s->evicted = c->evicted;
	s->uptime = now - c->started;
	s->nprogs = kw_bpf_prog_stats(c->bpf, s->progs, KW_MAX_PROGS);
	s->bpf_stats_enabled = read_bpf_stats_enabled();
	s->jobs = kw_bpf_jobs(c->bpf, &s->njobs);
	s->counters_since = kw_bpf_created_unix(c->bpf);
	return 0;
}

int kw_collect(struct kw_collector *c, struct kw_snapshot *s)
{
	int err;

	pthread_mutex_lock(&c->lock);
	err = collect_locked(c, s, 1);
	pthread_mutex_unlock(&c->lock);
	return err;
}

static int by_last_change(const void *a, const void *b)
{
	double x = (*(struct kw_upstream *const *)a)->last_change;
	double y = (*(struct kw_upstream *const *)b)->last_change;

	return (x > y) - (x < y);
}

/*
 * Gives an upstream's slot back: the key goes first, so that new connections of that
 * upstream take a new slot, then the zeroed slot joins the queue the kernel takes from.
 */
static int free_slot(struct kw_collector *c, struct kw_counters *counters,
		     const struct kw_upstream *u)
{
	int ufd = kw_bpf_upstreams_fd(c->bpf);

	if (bpf_map_delete_elem(ufd, &u->key))
		return -errno;
	memset(&counters[u->slot], 0, sizeof(struct kw_counters));
	if (c->floor)
		c->floor[2 * (size_t)u->slot] = c->floor[2 * (size_t)u->slot + 1] = 0;
	if (bpf_map_update_elem(kw_bpf_free_slots_fd(c->bpf), NULL, &u->slot, BPF_ANY))
		return -errno;
	return 0;
}

static int evict_locked(struct kw_collector *c, kw_evicted_fn *gone, void *ctx)
{
	struct kw_counters *counters = NULL;
	struct kw_upstream **cand = NULL;
	struct kw_snapshot s;
	size_t i, n = 0, high, low;
	double now = kw_now();
	int err, evicted = 0;

	/* No census here: a snapshot being served may still point at the current one. */
	err = collect_locked(c, &s, 0);
	if (err)
		return err;
	high = s.capacity * 9 / 10;
	low = s.capacity * 8 / 10;
	if (s.n <= high)
		goto out;
	cand = calloc(s.n, sizeof(*cand));
	if (!cand) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < s.n; i++)
		if (!kw_key_is_overflow(&s.u[i].key) && !s.u[i].val[KW_F_ACTIVE] &&
		    now - s.u[i].last_change >= c->evict_idle)
			cand[n++] = &s.u[i];
	qsort(cand, n, sizeof(*cand), by_last_change);
	if (n) {
		err = kw_bpf_bump_generation(c->bpf);
		if (err) {
			kw_err("eviction: bump the slot cache generation: %s", strerror(-err));
			goto out;
		}
		counters = kw_bpf_counters_map(c->bpf, kw_bpf_upstreams_capacity(c->bpf));
		if (!counters) {
			err = -errno;
			kw_err("eviction: map the counters: %s", strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < n && s.n - evicted > low; i++)
		if (!free_slot(c, counters, cand[i])) {
			if (gone)
				gone(ctx, cand[i]);
			evicted++;
		}
	kw_bpf_counters_unmap(c->bpf, counters, kw_bpf_upstreams_capacity(c->bpf));
	c->evicted += evicted;
	if (evicted) {
		/* Forget them, or a new upstream with the same key would be held to old values. */
		kw_snapshot_free(&s);
		err = collect_locked(c, &s, 0);
		kw_info("evicted %d idle upstreams (map %zu of %llu)", evicted, s.n,
			(unsigned long long)s.capacity);
	}
out:
	free(cand);
	kw_snapshot_free(&s);
	return err ? err : evicted;
}

int kw_collector_evict(struct kw_collector *c, kw_evicted_fn *gone, void *ctx)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = evict_locked(c, gone, ctx);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
