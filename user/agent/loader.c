// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * Skeleton lifecycle: open, check the kernel, set rodata and map sizes, choose pins,
 * load, fill the filter maps and overflow upstreams, attach. One destroy on every path.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/census.h"
#include "keepwatch.h"
#include "keepwatch.skel.h"
#include "agent/loader.h"
#include "agent/netns.h"
#include "lib/log.h"

struct kw_bpf {
	struct keepwatch_bpf *skel;
	size_t conns_len; /* kw_conns, mapped while it is read */
	__u32 n_conns;
	__u64 created_unix;
	struct bpf_link *tcp_iter_link; /* kw_iter_tcp: the TIME_WAIT census (census.h) */
	struct bpf_link *adopt_link;	/* kw_iter_adopt: connections open before the start */
	__u32 capacity;
	int pin_lock; /* the pin directory, flock'ed while this agent uses its maps, or -1 */
	struct kw_bpf_job jobs[KW_MAX_JOBS]; /* what serves each job, see choose_programs() */
	unsigned int njobs;
	int fentry;			  /* fentry programs were chosen */
	struct bpf_link *fentry_links[2]; /* and attached: kw_v4_send_reset, kw_v6_send_reset */
	const char *pin_dir;		  /* or NULL: --no-pin */
	__u64 events_base[2];		  /* events received, dropped by the earlier runs */
	struct kw_prog_total *prog_base;  /* [KW_PROG_TOTALS]: earlier loads', then names taken */
};

_Static_assert(sizeof(struct kw_key) == 24, "kw_key layout");
_Static_assert(sizeof(struct kw_event) == 64, "kw_event layout");
_Static_assert(sizeof(struct kw_conn) == 64, "kw_conn: one cache line");
_Static_assert(sizeof(struct kw_prog_total) == 48, "kw_prog_total layout");
_Static_assert(sizeof(struct kw_counters) % 64 == 0, "kw_counters: whole cache lines");

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf's own chatter only at -vv */
	if (level != LIBBPF_WARN && kw_log_level() <= KW_LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/*
 * What the agent needs of the kernel and of its own privileges, said the same way in every
 * message and in the README's Requirements.
 */
#define KW_KERNEL_NEEDED "Linux 6.1 or later with BTF (CONFIG_DEBUG_INFO_BTF=y)"
#define KW_CAPS_NEEDED	 "root, or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN"

/* The running kernel's release, for messages that say why it does not do. */
static const char *release(void)
{
	static struct utsname u;

	return u.release[0] || !uname(&u) ? u.release : "?";
}

static int check_kernel(void)
{
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		kw_err("kernel BTF not found at /sys/kernel/btf/vmlinux (running Linux %s): "
		       "keepwatch needs " KW_KERNEL_NEEDED,
		       release());
		return -ENOENT;
	}
	return 0;
}

/* Parameters of a tracepoint's BTF prototype (its void *ctx included), or -1 if absent. */
static int tracepoint_params(const struct btf *btf, const char *name)
{
	char tname[128];
	const struct btf_type *t;
	int id;

	snprintf(tname, sizeof(tname), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, tname, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	t = btf__type_by_id(btf, id);
	t = btf__type_by_id(btf, t->type); /* pointer */
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type); /* prototype */
	return t && btf_is_func_proto(t) ? btf_vlen(t) : -1;
}

/* A function of the kernel (fentry target) in its BTF. */
static int kernel_has_func(const struct btf *btf, const char *name)
{
	return btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
}

unsigned int kw_fallback_parse(const char *job)
{
	if (!strcmp(job, "requests"))
		return KW_FALLBACK_REQUESTS;
	if (!strcmp(job, "reset_reasons"))
		return KW_FALLBACK_RESET_REASONS;
	if (!strcmp(job, "tcp_sock"))
		return KW_FALLBACK_TCP_SOCK;
	return 0;
}

static void job(struct kw_bpf *b, const char *name, const char *program)
{
	if (b->njobs < KW_MAX_JOBS)
		b->jobs[b->njobs++] = (struct kw_bpf_job){ name, program };
}

static void autoload(struct bpf_program *p, bool on)
{
	bpf_program__set_autoload(p, on);
}

/*
 * Chooses, for each job of the kernel side, the program this kernel can run, by what its
 * BTF has (never by version number: distributions backport). The states tracepoint and
 * one of the receive hooks are essential; the rest degrade with a warning. fentry is
 * asked for only where no tracepoint serves (resets without a socket before 6.10);
 * with_fentry 0 leaves it out (it failed to load).
 */
static int choose_programs(struct kw_bpf *b, unsigned int fallback, int with_fentry)
{
	struct keepwatch_bpf *sk = b->skel;
	struct btf *btf = btf__load_vmlinux_btf();
	int reasons, cast, v4, v6, err = 0;

	if (!btf) {
		kw_err("read kernel BTF: %s", strerror(errno));
		return -errno;
	}
	b->njobs = 0;
	b->fentry = 0;
	if (tracepoint_params(btf, "inet_sock_set_state") < 0) {
		kw_err("this kernel (Linux %s) has no inet_sock_set_state tracepoint: keepwatch "
		       "needs " KW_KERNEL_NEEDED,
		       release());
		err = -EOPNOTSUPP;
		goto out;
	}
	job(b, "connections", "tp_btf/inet_sock_set_state");

	/* Requests: sock_recv_length (6.3), else tcp_rcv_space_adjust (4.16). */
	if (tracepoint_params(btf, "sock_recv_length") >= 0 && !(fallback & KW_FALLBACK_REQUESTS)) {
		autoload(sk->progs.kw_recv_rcvspace, false);
		job(b, "requests", "tp_btf/sock_recv_length");
	} else if (tracepoint_params(btf, "tcp_rcv_space_adjust") >= 0) {
		autoload(sk->progs.kw_recv, false);
		job(b, "requests", "tp_btf/tcp_rcv_space_adjust");
	} else {
		kw_err("this kernel (Linux %s) has neither the sock_recv_length nor the "
		       "tcp_rcv_space_adjust tracepoint: keepwatch needs " KW_KERNEL_NEEDED,
		       release());
		err = -EOPNOTSUPP;
		goto out;
	}

	job(b, "resets_received", "tp_btf/tcp_receive_reset");

	/*
	 * Resets sent: with the reason argument (6.10) the tracepoint gives the kernel's
	 * reason and fires for every reset, timewait and no-socket ones included; before, it
	 * has two arguments, fires for full sockets only, and the reason is inferred.
	 */
	reasons = tracepoint_params(btf, "tcp_send_reset");
	if (reasons < 0) {
		kw_warn("this kernel has no tcp_send_reset tracepoint: resets sent and server-side "
			"keep-alive races are not counted");
		autoload(sk->progs.kw_send_reset, false);
		autoload(sk->progs.kw_send_reset_noreason, false);
		job(b, "resets_sent", "none");
	} else if (reasons >= 4 && !(fallback & KW_FALLBACK_RESET_REASONS)) {
		autoload(sk->progs.kw_send_reset_noreason, false);
		job(b, "resets_sent", "tp_btf/tcp_send_reset");
		job(b, "reset_reasons", "kernel");
	} else {
		autoload(sk->progs.kw_send_reset, false);
		job(b, "resets_sent", "tp_btf/tcp_send_reset");
		job(b, "reset_reasons", "inferred");
	}
	v4 = reasons == 3 && with_fentry && kernel_has_func(btf, "tcp_v4_send_reset");
	v6 = reasons == 3 && with_fentry && kernel_has_func(btf, "tcp_v6_send_reset");
	autoload(sk->progs.kw_v4_send_reset, v4);
	autoload(sk->progs.kw_v6_send_reset, v6);
	b->fentry = v4 || v6;
	sk->rodata->cfg_bare_resets_fentry = b->fentry;
	if (reasons >= 4)
		job(b, "resets_without_socket", "tp_btf/tcp_send_reset");
	else if (v4 && v6)
		job(b, "resets_without_socket",
		    "fentry/tcp_v4_send_reset,fentry/tcp_v6_send_reset");
	else if (v4 || v6)
		job(b, "resets_without_socket",
		    v4 ? "fentry/tcp_v4_send_reset" : "fentry/tcp_v6_send_reset");
	else if (reasons >= 0) {
		kw_warn("resets sent by timewait sockets or for no socket are not seen on this kernel "
			"(no tcp_send_reset reason argument, no fentry): server-side keep-alive races "
			"whose request comes after the connection's socket is gone are missed");
		job(b, "resets_without_socket", "none");
	}

	/* tcp_sock casts: the bpf_rdonly_cast kfunc (6.2), else bpf_skc_to_tcp_sock (5.9). */
	cast = kernel_has_func(btf, "bpf_rdonly_cast") && !(fallback & KW_FALLBACK_TCP_SOCK);
	sk->rodata->cfg_use_rdonly_cast = cast;
	job(b, "tcp_sock", cast ? "kfunc/bpf_rdonly_cast" : "helper/bpf_skc_to_tcp_sock");
	job(b, "census", "iter/tcp");
out:
	btf__free(btf);
	return err;
}

/* The jobs as one line for the log: "requests=tp_btf/sock_recv_length ...". */
static void log_jobs(const struct kw_bpf *b)
{
	char line[512];
	size_t n = 0;
	unsigned int i;

	line[0] = '\0';
	for (i = 0; i < b->njobs && n < sizeof(line); i++)
		n += snprintf(line + n, sizeof(line) - n, "%s%s=%s", i ? " " : "", b->jobs[i].job,
			      b->jobs[i].program);
	kw_info("attached: %s", line);
}

static int check_bpffs(const char *dir)
{
	char parent[256];
	struct statfs st;
	char *slash;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (statfs(parent, &st) || st.f_type != BPF_FS_MAGIC) {
		kw_err("%s is not a bpf filesystem: mount it with 'mount -t bpf bpf %s', or run "
		       "with --no-pin",
		       parent, parent);
		return -ENOTDIR;
	}
	if (mkdir(dir, 0700)) {
		int err = -errno;

		if (errno == EEXIST)
			return 0;
		kw_err("create pin directory %s: %s%s", dir, strerror(errno),
		       errno == EPERM && strchr(strrchr(dir, '/'), '.') ?
			       " (the bpf filesystem takes no dot in a name)" :
			       "");
		return err;
	}
	return 1; /* created: removed again if the start fails (rmdir_created) */
}

/* A pin directory this start created, left empty by a failed start, goes again. */
static void rmdir_created(const char *dir, int created)
{
	if (created == 1 && rmdir(dir) && errno != ENOTEMPTY)
		kw_dbg("remove pin directory %s: %s", dir, strerror(errno));
}

/*
 * One agent per pin directory: a second one would attach its programs to the same maps
 * and count every event twice. The lock goes with the process, however it ends.
 */
static int lock_pins(struct kw_bpf *b, const char *dir)
{
	int err;

	b->pin_lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->pin_lock < 0) {
		err = -errno;
		kw_err("open pin directory %s: %s", dir, strerror(errno));
		return err;
	}
	if (flock(b->pin_lock, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK) {
		kw_err("another keepwatchd uses the maps pinned in %s (two would count every "
		       "event twice): stop it, or start this one with another --pin-dir or with "
		       "--no-pin",
		       dir);
		return -EBUSY;
	}
	err = -errno;
	kw_err("lock pin directory %s: %s", dir, strerror(-err));
	return err;
}

/* Does the map pinned at path have the layout this build wants? */
static int pin_fits(struct bpf_map *map, const char *path)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return -ENOENT;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	return !err && info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	       info.value_size == bpf_map__value_size(map) &&
	       info.max_entries == bpf_map__max_entries(map) &&
	       info.map_flags == bpf_map__map_flags(map);
}

/*
 * Pinned maps from an earlier run are reused only all together and only if each has
 * the layout this build wants (another version or another --max-upstreams makes other
 * maps, and slots of one map index another): otherwise they are all unpinned, said so,
 * and created afresh.
 */
static int pin_maps(struct kw_bpf *b, const char *dir)
{
	struct bpf_map *maps[] = {
		b->skel->maps.kw_conns,	      b->skel->maps.kw_socks,
		b->skel->maps.kw_upstreams,   b->skel->maps.kw_counters,
		b->skel->maps.kw_free_slots,  b->skel->maps.kw_meta,
		b->skel->maps.kw_errors,      b->skel->maps.kw_globals,
		b->skel->maps.kw_prog_totals,
	};
	unsigned int i, n = sizeof(maps) / sizeof(maps[0]), found = 0, fit = 0;
	char path[256];
	int err, r;

	for (i = 0; i < n; i++) {
		if (!dir)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(maps[i]));
		r = pin_fits(maps[i], path);
		found += r != -ENOENT;
		fit += r == 1;
	}
	for (i = 0; i < n; i++) {
		if (!dir) {
			err = bpf_map__set_pin_path(maps[i], NULL);
			if (err)
				return err;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(maps[i]));
		if (found && fit != n && unlink(path) && errno != ENOENT) {
			err = -errno;
			kw_err("unpin %s: %s", path, strerror(errno));
			return err;
		}
		err = bpf_map__set_pin_path(maps[i], path);
		if (err)
			return err;
	}
	if (found && fit != n)
		kw_warn("maps pinned in %s have another layout (another version or "
			"--max-upstreams, --conn-table): starting the counts afresh",
			dir);
	else if (found)
		kw_info("reusing the maps pinned in %s: counts go on from the last run", dir);
	return 0;
}

/*
 * The overflow upstreams own slots 0 and 1 and take the counts of connections the full
 * map has no room for; fresh slots start after them. Pinned maps keep theirs.
 */
static int init_slots(struct kw_bpf *b)
{
	int ufd = bpf_map__fd(b->skel->maps.kw_upstreams);
	int mfd = bpf_map__fd(b->skel->maps.kw_meta);
	struct kw_meta meta;
	struct kw_key key;
	__u32 zero = 0, dir;

	if (bpf_map_lookup_elem(mfd, &zero, &meta))
		return -errno;
	if (!meta.next_slot) {
		meta.next_slot = KW_DIR_MAX;
		meta.created_unix = time(NULL);
		if (bpf_map_update_elem(mfd, &zero, &meta, BPF_ANY))
			return -errno;
	}
	b->created_unix = meta.created_unix;
	b->prog_base = calloc(KW_PROG_TOTALS, sizeof(*b->prog_base));
	if (!b->prog_base)
		return -ENOMEM;
	for (dir = 0; dir < KW_PROG_TOTALS; dir++)
		if (bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.kw_prog_totals), &dir,
					&b->prog_base[dir]))
			return -errno;
	for (dir = 0; dir < 2; dir++) {
		__u32 g = dir ? KW_GLOBAL_EVENTS_DROPPED : KW_GLOBAL_EVENTS;

		if (bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.kw_globals), &g,
					&b->events_base[dir]))
			return -errno;
	}
	for (dir = 0; dir < KW_DIR_MAX; dir++) {
		memset(&key, 0, sizeof(key));
		key.direction = dir;
		if (bpf_map_update_elem(ufd, &key, &dir, BPF_NOEXIST) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* The bytes of the first slots slots (at least one, at most all), in whole pages. */
static size_t counters_len(const struct kw_bpf *b, __u32 slots)
{
	size_t page = sysconf(_SC_PAGESIZE), len;

	if (slots > b->capacity)
		slots = b->capacity;
	if (!slots)
		slots = 1;
	len = (size_t)slots * sizeof(struct kw_counters);
	return (len + page - 1) / page * page;
}

/*
 * The counters array, read (and zeroed on eviction) through memory, not syscalls. It
 * is mapped only while it is used, and only as far as asked: a mapped BPF array counts
 * in the agent's RSS (24 MiB at --max-upstreams 16384), and the kernel sets up every
 * page at mmap() and tears it down at munmap(): both cost per page.
 */
struct kw_counters *kw_bpf_counters_map(const struct kw_bpf *b, __u32 slots)
{
	void *p = mmap(NULL, counters_len(b, slots), PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(b->skel->maps.kw_counters), 0);

	return p == MAP_FAILED ? NULL : p;
}

void kw_bpf_counters_unmap(const struct kw_bpf *b, struct kw_counters *c, __u32 slots)
{
	if (c)
		munmap(c, counters_len(b, slots));
}

/* Checked once at start: a kernel that cannot map the counters fails here, not later. */
static int check_counters_map(struct kw_bpf *b)
{
	struct kw_counters *c;

	c = kw_bpf_counters_map(b, b->capacity);
	if (!c)
		return -errno;
	kw_bpf_counters_unmap(b, c, b->capacity);
	return 0;
}

/*
 * The kernel moves a connection's requests into its upstream's counters when it
 * closes; it marks the entry folded first. Reading the counters before the table, a
 * connection is counted once, or (folded meanwhile) not at all this time: never twice.
 * Within an entry, its flags are read before what they vouch for and checked again
 * after: an entry taken over by a new connection meanwhile is skipped.
 */
int kw_bpf_open_requests(const struct kw_bpf *b, __u64 *req, __u64 *used)
{
	const struct kw_conn *conns;
	__u32 i;

	/* Mapped for the scan only: its pages count in the agent's RSS while mapped. */
	conns = mmap(NULL, b->conns_len, PROT_READ, MAP_SHARED, bpf_map__fd(b->skel->maps.kw_conns),
		     0);
	if (conns == MAP_FAILED)
		return -errno;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (i = 0; i < b->n_conns; i++) {
		const struct kw_conn *e = &conns[i];
		__u64 owner = __atomic_load_n(&e->owner, __ATOMIC_ACQUIRE);
		__u8 flags;
		__u32 idx, n;

		if (!owner)
			continue;
		flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		if (flags & (KW_CONN_FOLDED | KW_CONN_STORAGE))
			continue;
		idx = __atomic_load_n(&e->idx, __ATOMIC_RELAXED);
		n = __atomic_load_n(&e->requests, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!n || idx >= b->capacity ||
		    __atomic_load_n(&e->owner, __ATOMIC_RELAXED) != owner ||
		    __atomic_load_n(&e->flags, __ATOMIC_RELAXED) != flags)
			continue;
		req[idx] += n;
		if (!(flags & KW_CONN_PRIOR)) /* used before the agent started: all reuses */
			used[idx]++;
	}
	munmap((void *)conns, b->conns_len);
	return 0;
}

/* What serves the job now: the fentry programs may be chosen, load, and not attach. */
static void job_set(struct kw_bpf *b, const char *name, const char *program)
{
	unsigned int i;

	for (i = 0; i < b->njobs; i++)
		if (!strcmp(b->jobs[i].job, name))
			b->jobs[i].program = program;
}

/*
 * The fentry programs, attached by hand: a kernel whose BPF trampolines cannot attach to a
 * kernel function (arm64 without ftrace direct calls: Debian's 6.1) loads them and then
 * refuses the attach with ENOTSUPP. Then the agent goes on without them, and says so.
 */
static void attach_fentry(struct kw_bpf *b)
{
	struct bpf_program *progs[] = { b->skel->progs.kw_v4_send_reset,
					b->skel->progs.kw_v6_send_reset };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		if (bpf_program__fd(progs[i]) < 0)
			continue;
		b->fentry_links[i] = bpf_program__attach(progs[i]);
		if (b->fentry_links[i])
			continue;
		kw_warn("attach %s: %s: resets sent by timewait sockets or for no socket are not "
			"seen (server-side keep-alive races whose request comes after the "
			"connection's socket is gone are missed)",
			bpf_program__section_name(progs[i]), strerror(errno));
		for (i = 0; i < 2; i++) {
			bpf_link__destroy(b->fentry_links[i]);
			b->fentry_links[i] = NULL;
		}
		job_set(b, "resets_without_socket", "none");
		return;
	}
}

static int attach(struct kw_bpf *b)
{
	int err;

	err = keepwatch_bpf__attach(b->skel);
	if (err) {
		kw_err("attach tracepoints: %s", strerror(-err));
		return err;
	}
	attach_fentry(b);
	/* Attached once; each bpf_iter_create() takes the namespace of the thread calling it. */
	b->tcp_iter_link = bpf_program__attach_iter(b->skel->progs.kw_iter_tcp, NULL);
	b->adopt_link = bpf_program__attach_iter(b->skel->progs.kw_iter_adopt, NULL);
	if (!b->tcp_iter_link || !b->adopt_link) {
		err = -errno;
		kw_err("attach iter/tcp: %s", strerror(errno));
		return err;
	}
	return 0;
}

/* The agent's own HTTP server, which the programs leave out (see filter.bpf.h). */
static int set_self(struct kw_bpf *b, const struct kw_loader_opts *o)
{
	struct stat st;

	if (!o->self_port)
		return 0;
	if (stat("/proc/self/ns/net", &st)) {
		int err = -errno;

		kw_err("read the agent's network namespace: %s", strerror(errno));
		return err;
	}
	b->skel->rodata->cfg_self_netns = st.st_ino;
	b->skel->rodata->cfg_self_port = o->self_port;
	memcpy((void *)b->skel->rodata->cfg_self_addr, o->self_addr, 16);
	b->skel->rodata->cfg_self_any = o->self_any;
	return 0;
}

/*
 * The generation of the programs counting into the pinned maps now (KW_GLOBAL_ACTIVE), 0
 * with none: this load's programs take the next.
 */
static __u64 pinned_gen(const char *dir)
{
	__u32 key = KW_GLOBAL_ACTIVE;
	char path[256];
	__u64 gen = 0;
	int fd;

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/kw_globals", dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_map_lookup_elem(fd, &key, &gen))
		gen = 0;
	close(fd);
	return gen;
}

#define LINK_PREFIX "link_"

/* Removes the link pins of dir (and so detaches the programs no agent holds). */
static int unpin_links(const char *dir)
{
	char path[512];
	struct dirent *d;
	int err = 0;
	DIR *dh;

	dh = opendir(dir);
	if (!dh)
		return errno == ENOENT ? 0 : -errno;
	while ((d = readdir(dh))) {
		if (strncmp(d->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	closedir(dh);
	return err;
}

/*
 * The hand-over: this load's programs, attached and idle, start counting, and the last
 * run's, whose pinned links kept them counting while no agent ran, stop (one store of
 * KW_GLOBAL_ACTIVE), then go (their pins removed). This load's links are pinned in turn,
 * so that the programs count on while the agent restarts. Another build or other options
 * (other rodata) need no detection: every start replaces the programs.
 */
static int hand_over(struct kw_bpf *b)
{
	struct bpf_object_skeleton *s = b->skel->skeleton;
	int fd = bpf_map__fd(b->skel->maps.kw_globals), err, i;
	__u64 gen = b->skel->rodata->cfg_gen;
	__u32 key = KW_GLOBAL_ACTIVE;
	char path[512];

	if (bpf_map_update_elem(fd, &key, &gen, BPF_ANY)) {
		err = -errno;
		kw_err("hand the counting over to the new programs: %s", strerror(errno));
		return err;
	}
	if (!b->pin_dir)
		return 0;
	err = unpin_links(b->pin_dir);
	if (err)
		kw_warn("remove the last run's link pins in %s: %s", b->pin_dir, strerror(-err));
	for (i = 0; i < s->prog_cnt; i++) {
		struct bpf_link *l = *s->progs[i].link;

		if (!l)
			continue;
		snprintf(path, sizeof(path), "%s/" LINK_PREFIX "%s", b->pin_dir, s->progs[i].name);
		err = bpf_link__pin(l, path);
		if (err) {
			kw_warn("pin link %s: %s: its program stops while the agent restarts", path,
				strerror(-err));
			continue;
		}
	}
	for (i = 0; i < 2; i++) {
		if (!b->fentry_links[i])
			continue;
		snprintf(path, sizeof(path), "%s/" LINK_PREFIX "fentry%d", b->pin_dir, i);
		if (bpf_link__pin(b->fentry_links[i], path))
			kw_warn("pin link %s: its program stops while the agent restarts", path);
	}
	return 0;
}

int kw_bpf_unpin(const char *dir)
{
	struct kw_bpf b = { .pin_lock = -1 };
	char path[512];
	struct dirent *d;
	int err = 0;
	DIR *dh;

	if (access(dir, F_OK))
		return -errno;
	err = lock_pins(&b, dir);
	if (err)
		return err;
	dh = opendir(dir);
	if (!dh) {
		err = -errno;
		goto unlock;
	}
	while ((d = readdir(dh))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if (unlink(path) && !err)
			err = -errno;
	}
	closedir(dh);
	if (!err && rmdir(dir))
		err = -errno;
unlock:
	close(b.pin_lock);
	return err;
}

/*
 * Opens the object, chooses its programs, sizes its maps, pins them and loads it. -EAGAIN
 * if the fentry programs made the load fail: try again with_fentry 0.
 */
static int open_and_load(struct kw_bpf *b, const struct kw_loader_opts *o, int with_fentry)
{
	unsigned int i;
	int err;

	b->skel = keepwatch_bpf__open();
	if (!b->skel) {
		err = -errno;
		kw_err("open BPF object: %s", strerror(errno));
		return err;
	}
	err = choose_programs(b, o->fallback, with_fentry);
	if (err)
		goto destroy_skel;
	/* The iterators and the fentry programs are attached by hand, see attach(). */
	bpf_program__set_autoattach(b->skel->progs.kw_iter_tcp, false);
	bpf_program__set_autoattach(b->skel->progs.kw_iter_adopt, false);
	bpf_program__set_autoattach(b->skel->progs.kw_v4_send_reset, false);
	bpf_program__set_autoattach(b->skel->progs.kw_v6_send_reset, false);
	_Static_assert(sizeof(b->skel->rodata->cfg_netns) / sizeof(__u32) == KW_MAX_FILTERS,
		       "filters: BPF and loader agree");
	memcpy((void *)b->skel->rodata->cfg_netns, o->netns, o->n_netns * sizeof(__u32));
	b->skel->rodata->cfg_n_netns = o->n_netns;
	for (i = 0; i < o->n_ports; i++)
		((__u32 *)b->skel->rodata->cfg_ports)[i] = o->ports[i];
	b->skel->rodata->cfg_n_ports = o->n_ports;
	err = set_self(b, o);
	if (err)
		goto destroy_skel;
	b->capacity = o->max_upstreams + KW_DIR_MAX;
	b->skel->rodata->cfg_capacity = b->capacity;
	err = bpf_map__set_max_entries(b->skel->maps.kw_upstreams, b->capacity);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.kw_counters, b->capacity);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.kw_free_slots, b->capacity);
	b->skel->rodata->cfg_conns_mask = o->conn_table - 1;
	b->n_conns = o->conn_table;
	b->conns_len = (size_t)o->conn_table * sizeof(struct kw_conn);
	if (!err)
		err = bpf_map__set_max_entries(b->skel->maps.kw_conns, o->conn_table);
	if (!err) /* indexed as kw_conns is */
		err = bpf_map__set_max_entries(b->skel->maps.kw_syns, o->conn_table);
	if (!err)
		err = pin_maps(b, o->pin_dir);
	if (err) {
		kw_err("prepare maps: %s", strerror(-err));
		goto destroy_skel;
	}
	b->skel->rodata->cfg_gen = pinned_gen(o->pin_dir) + 1;
	err = keepwatch_bpf__load(b->skel);
	if (err && b->fentry) {
		err = -EAGAIN; /* the caller tries again without */
		goto destroy_skel;
	}
	if (err) {
		kw_err("load BPF programs: %s%s", strerror(-err),
		       err == -EPERM ? " (keepwatchd needs " KW_CAPS_NEEDED ")" : "");
		goto destroy_skel;
	}
	return 0;

destroy_skel:
	keepwatch_bpf__destroy(b->skel);
	b->skel = NULL;
	return err;
}

struct kw_bpf *kw_bpf_start(const struct kw_loader_opts *o)
{
	struct kw_bpf *b;
	int err, created = 0;

	libbpf_set_print(libbpf_print);
	err = check_kernel();
	if (err)
		goto fail;
	if (o->pin_dir) {
		created = err = check_bpffs(o->pin_dir);
		if (err < 0)
			goto fail;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		err = -ENOMEM;
		goto fail;
	}
	b->pin_lock = -1;
	b->pin_dir = o->pin_dir;
	if (o->pin_dir) {
		err = lock_pins(b, o->pin_dir);
		if (err)
			goto free_b;
	}
	err = open_and_load(b, o, 1);
	if (err == -EAGAIN) {
		kw_warn("fentry programs do not load here: resets sent by timewait sockets or for "
			"no socket are not seen (server-side keep-alive races whose request comes "
			"after the connection's socket is gone are missed)");
		err = open_and_load(b, o, 0);
	}
	if (err)
		goto free_b;
	err = init_slots(b);
	if (!err)
		err = check_counters_map(b);
	if (err) {
		kw_err("initialise maps: %s", strerror(-err));
		goto destroy_skel;
	}
	err = attach(b);
	if (!err)
		err = hand_over(b);
	if (err)
		goto destroy_skel;
	log_jobs(b);
	return b;

destroy_skel:
	bpf_link__destroy(b->fentry_links[0]);
	bpf_link__destroy(b->fentry_links[1]);
	bpf_link__destroy(b->adopt_link);
	bpf_link__destroy(b->tcp_iter_link);
	keepwatch_bpf__destroy(b->skel);
free_b:
	if (b->pin_lock >= 0)
		close(b->pin_lock);
	free(b->prog_base);
	free(b);
fail:
	if (o->pin_dir)
		rmdir_created(o->pin_dir, created);
	errno = -err;
	return NULL;
}

void kw_bpf_destroy(struct kw_bpf *b)
{
	if (!b)
		return;
	bpf_link__destroy(b->fentry_links[0]);
	bpf_link__destroy(b->fentry_links[1]);
	bpf_link__destroy(b->adopt_link);
	bpf_link__destroy(b->tcp_iter_link);
	keepwatch_bpf__destroy(b->skel);
	if (b->pin_lock >= 0)
		close(b->pin_lock);
	free(b->prog_base);
	free(b);
}

int kw_bpf_events_totals(const struct kw_bpf *b, __u64 *received, __u64 *dropped)
{
	int fd = bpf_map__fd(b->skel->maps.kw_globals);
	__u32 k[2] = { KW_GLOBAL_EVENTS, KW_GLOBAL_EVENTS_DROPPED };

	*received += b->events_base[0];
	*dropped += b->events_base[1];
	if (bpf_map_update_elem(fd, &k[0], received, BPF_ANY) ||
	    bpf_map_update_elem(fd, &k[1], dropped, BPF_ANY))
		return -errno;
	return 0;
}

int kw_bpf_upstreams_fd(const struct kw_bpf *b)
{
	return bpf_map__fd(b->skel->maps.kw_upstreams);
}

int kw_bpf_errors_fd(const struct kw_bpf *b)
{
	return bpf_map__fd(b->skel->maps.kw_errors);
}

int kw_bpf_events_fd(const struct kw_bpf *b)
{
	return bpf_map__fd(b->skel->maps.kw_events);
}

__u32 kw_bpf_upstreams_capacity(const struct kw_bpf *b)
{
	return b->capacity;
}

int kw_bpf_bump_generation(const struct kw_bpf *b)
{
	int fd = bpf_map__fd(b->skel->maps.kw_globals);
	__u32 key = KW_GLOBAL_GEN;
	__u64 gen = 0;

	if (bpf_map_lookup_elem(fd, &key, &gen))
		return -errno;
	gen++;
	if (bpf_map_update_elem(fd, &key, &gen, BPF_ANY))
		return -errno;
	return 0;
}

int kw_bpf_free_slots_fd(const struct kw_bpf *b)
{
	return bpf_map__fd(b->skel->maps.kw_free_slots);
}

__u64 kw_bpf_created_unix(const struct kw_bpf *b)
{
	return b->created_unix;
}

int kw_bpf_tcp_iter_link_fd(const struct kw_bpf *b)
{
	return bpf_link__fd(b->tcp_iter_link);
}

struct adopt {
	const struct kw_bpf *b;
	void *zero; /* the listening-ports bitmap, cleared */
	struct kw_adopted *out;
	__u32 *walked; /* the namespaces walked whole */
	unsigned int n_walked;
};

/*
 * The word of a kw_conn that holds its flags and seen bytes: the start-up sweep claims
 * an entry with one compare-and-swap of it.
 */
#define CONN_WORD     56
#define CONN_FLAGS(w) ((__u8)((w) >> 48))
#define CONN_SEEN(w)  ((__u8)((w) >> 56))
_Static_assert(offsetof(struct kw_conn, flags) == CONN_WORD + 6 &&
		       offsetof(struct kw_conn, seen) == CONN_WORD + 7,
	       "kw_conn: flags and seen in the last word");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the sweep reads bytes of a word");

static __u64 *conn_word(struct kw_conn *e)
{
	return (__u64 *)((char *)e + CONN_WORD);
}

/* Before the walk: no entry open in the table is seen yet. */
static void clear_seen(struct kw_conn *conns, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if (__atomic_load_n(&conns[i].owner, __ATOMIC_RELAXED) &&
		    !(__atomic_load_n(&conns[i].flags, __ATOMIC_RELAXED) & KW_CONN_FOLDED))
			__atomic_store_n(&conns[i].seen, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static int listed_u32(const __u32 *list, unsigned int n, __u32 v)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (list[i] == v)
			return 1;
	return 0;
}

/*
 * After the walk: an entry still open, of a namespace walked whole or gone, that the walk
 * did not see belongs to a socket that closed while no agent ran (its close was never
 * seen). Fold it as lost, with the requests it kept, so that active comes right.
 */
static void sweep(const struct adopt *a, struct kw_conn *conns, __u32 n, const __u32 *all,
		  int n_all)
{
	const struct kw_bpf *b = a->b;
	struct kw_counters *c;
	__u32 i;

	c = kw_bpf_counters_map(b, b->capacity);
	if (!c) {
		kw_warn("sweep the connection table: map the counters: %s", strerror(errno));
		return;
	}
	for (i = 0; i < n; i++) {
		struct kw_conn *e = &conns[i];
		__u64 w = __atomic_load_n(conn_word(e), __ATOMIC_ACQUIRE);
		__u32 netns, idx, reqs;

		if (!__atomic_load_n(&e->owner, __ATOMIC_RELAXED) || CONN_SEEN(w) ||
		    (CONN_FLAGS(w) & (KW_CONN_FOLDED | KW_CONN_STORAGE)))
			continue;
		netns = e->key.netns;
		if (!listed_u32(a->walked, a->n_walked, netns) &&
		    (n_all < 0 || listed_u32(all, n_all, netns)))
			continue; /* its namespace was not walked and still exists */
		idx = e->idx;
		reqs = e->requests;
		/*
		 * A new connection at the same socket address takes an entry whose owner is
		 * its own, folded or not, setting seen before anything else: if seen is still
		 * 0 here, nothing read above is its.
		 */
		if (!__atomic_compare_exchange_n(conn_word(e), &w, w | (__u64)KW_CONN_FOLDED << 48,
						 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		if (idx >= b->capacity)
			continue;
		if (reqs)
			__atomic_fetch_add(&c[idx].requests, reqs, __ATOMIC_RELAXED);
		if (reqs && !(CONN_FLAGS(w) & KW_CONN_PRIOR))
			__atomic_fetch_add(&c[idx].used, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&c[idx].lost, 1, __ATOMIC_RELAXED);
		a->out->lost++;
	}
	kw_bpf_counters_unmap(b, c, b->capacity);
}

/* The adoption walk of the namespace this thread is in now. */
static int adopt_here(void *arg, __u32 netns)
{
	struct adopt *a = arg;
	__u32 key = 0, inode[1024];
	size_t bytes = 0;
	int fd;
	ssize_t r;

	/* The ports of the namespace walked before must not make this one's inbound. */
	if (bpf_map__update_elem(a->b->skel->maps.kw_listening, &key, sizeof(key), a->zero,
				 bpf_map__value_size(a->b->skel->maps.kw_listening), BPF_ANY))
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(a->b->adopt_link));
	if (fd < 0) {
		kw_dbg("adopt in netns %u: %s", netns, strerror(errno));
		a->out->failed++;
		return 0;
	}
	/* The program writes the namespace's inode per connection it adopted. */
	while ((r = read(fd, inode, sizeof(inode))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			kw_dbg("adopt in netns %u: read: %s", netns, strerror(errno));
			a->out->failed++;
			break;
		}
		if (r > 0)
			bytes += r;
	}
	close(fd);
	a->out->connections += bytes / sizeof(inode[0]);
	a->out->namespaces++;
	if (r == 0)
		a->walked[a->n_walked++] = netns;
	return 0;
}

#define SWEEP_MAX_NETNS 1024

int kw_bpf_adopt(const struct kw_bpf *b, const __u32 *netns, unsigned int n, struct kw_adopted *out)
{
	struct adopt a = { .b = b, .out = out };
	struct kw_conn *conns;
	__u32 *all = NULL;
	int err = -ENOMEM, n_all;

	memset(out, 0, sizeof(*out));
	conns = mmap(NULL, b->conns_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		     bpf_map__fd(b->skel->maps.kw_conns), 0);
	if (conns == MAP_FAILED)
		return -errno;
	all = malloc(SWEEP_MAX_NETNS * sizeof(*all));
	n_all = all ? kw_netns_all(all, SWEEP_MAX_NETNS) : -ENOMEM;
	if (n_all < 0) {
		err = n_all;
		goto free_mem;
	}
	if (!n) { /* no filter: every namespace in reach */
		netns = all;
		n = n_all;
	}
	err = -ENOMEM;
	a.zero = calloc(1, bpf_map__value_size(b->skel->maps.kw_listening));
	a.walked = calloc(n ? n : 1, sizeof(*a.walked));
	if (!a.zero || !a.walked)
		goto free_mem;
	clear_seen(conns, b->n_conns);
	err = kw_netns_each(netns, n, adopt_here, &a, &out->skipped);
	if (err)
		goto free_mem;
	/* A namespace out of reach is gone, with its sockets (if all of them were listed). */
	sweep(&a, conns, b->n_conns, all, n_all == SWEEP_MAX_NETNS ? -1 : n_all);
free_mem:
	free(all);
	free(a.walked);
	free(a.zero);
	munmap(conns, b->conns_len);
	return err;
}

/*
 * A program's statistics over every load on these maps: the earlier loads' (read at the
 * start) plus this one's, stored back so that what was exposed never goes backwards.
 */
static void prog_total(const struct kw_bpf *b, struct kw_prog_stat *s)
{
	int fd = bpf_map__fd(b->skel->maps.kw_prog_totals);
	struct kw_prog_total t = {};
	__u32 i, free = KW_PROG_TOTALS;

	for (i = 0; i < KW_PROG_TOTALS; i++) {
		if (!b->prog_base[i].name[0] && free == KW_PROG_TOTALS)
			free = i;
		if (!strncmp(b->prog_base[i].name, s->name, sizeof(t.name)))
			break;
	}
	if (i == KW_PROG_TOTALS) {
		if (free == KW_PROG_TOTALS)
			return; /* no room: this load's own */
		i = free;	/* a program new to these maps takes a free entry, from 0 */
		snprintf(b->prog_base[i].name, sizeof(t.name), "%s", s->name);
	}
	snprintf(t.name, sizeof(t.name), "%s", s->name);
	s->run_cnt += b->prog_base[i].run_cnt;
	s->run_time_ns += b->prog_base[i].run_time_ns;
	t.run_cnt = s->run_cnt;
	t.run_time_ns = s->run_time_ns;
	if (bpf_map_update_elem(fd, &i, &t, BPF_ANY))
		kw_dbg("store the statistics of %s: %s", s->name, strerror(errno));
}

unsigned int kw_bpf_prog_stats(const struct kw_bpf *b, struct kw_prog_stat *out, unsigned int max)
{
	struct bpf_program *prog;
	unsigned int n = 0;

	bpf_object__for_each_program(prog, b->skel->obj)
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		if (n >= max)
			break;
		if (bpf_program__fd(prog) < 0) /* not loaded: not this kernel's choice */
			continue;
		if (bpf_program__type(prog) == BPF_PROG_TYPE_TRACING &&
		    bpf_program__expected_attach_type(prog) == BPF_TRACE_ITER)
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", bpf_program__name(prog));
		out[n].run_cnt = info.run_cnt;
		out[n].run_time_ns = info.run_time_ns;
		prog_total(b, &out[n]);
		n++;
	}
	return n;
}

const struct kw_bpf_job *kw_bpf_jobs(const struct kw_bpf *b, unsigned int *n)
{
	*n = b->njobs;
	return b->jobs;
}
