/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Loads keepwatch's BPF programs: probes the kernel, sets the filters and map sizes,
 * reuses or creates the pinned maps, attaches, and gives the collector what it reads
 * (map fds, the mmapped counters, the census iterator, per-program statistics).
 */
#ifndef KW_LOADER_H
#define KW_LOADER_H

#include <linux/types.h>
#include "agent/snapshot.h" /* struct kw_prog_stat */

#define KW_PIN_DIR_DEFAULT "/sys/fs/bpf/keepwatch"

struct kw_loader_opts {
	const char *pin_dir; /* NULL: nothing pinned, every start is from zero */
	__u32 netns[KW_MAX_FILTERS];
	unsigned int n_netns; /* 0: every network namespace */
	__u16 ports[KW_MAX_FILTERS];
	unsigned int n_ports; /* 0: every service port */
	__u32 max_upstreams;
	__u32 conn_table;      /* kw_conns entries, a power of two */
	unsigned int fallback; /* KW_FALLBACK_*: use these fallbacks where not needed (tests) */
	/*
	 * The agent's own HTTP server, left out of the upstreams: its port (0: counted like
	 * any other), its address (v4-mapped) or self_any for every address; in the agent's
	 * own namespace.
	 */
	__u16 self_port;
	__u8 self_addr[16];
	int self_any;
};

/* Jobs whose fallback can be chosen on a kernel that has the preferred program. */
#define KW_FALLBACK_REQUESTS	  0x1 /* tp_btf/tcp_rcv_space_adjust, not sock_recv_length */
#define KW_FALLBACK_RESET_REASONS 0x2 /* reasons inferred, not the tracepoint's argument */
#define KW_FALLBACK_TCP_SOCK	  0x4 /* bpf_skc_to_tcp_sock, not the bpf_rdonly_cast kfunc */

/* "requests", "reset_reasons" or "tcp_sock" to its KW_FALLBACK_* bit; 0 if unknown. */
unsigned int kw_fallback_parse(const char *job);

struct kw_bpf;

/* Opens, loads and attaches; NULL with errno set, having logged why. */
struct kw_bpf *kw_bpf_start(const struct kw_loader_opts *opts);
void kw_bpf_destroy(struct kw_bpf *b);

int kw_bpf_upstreams_fd(const struct kw_bpf *b);
int kw_bpf_errors_fd(const struct kw_bpf *b);
/* The ring buffer of struct kw_event, for ring_buffer__new(). */
int kw_bpf_events_fd(const struct kw_bpf *b);
__u32 kw_bpf_upstreams_capacity(const struct kw_bpf *b);
/*
 * The first slots slots of the kw_counters array (at most its capacity), mapped into
 * memory, readable and writable, until kw_bpf_counters_unmap() with the same slots;
 * NULL with errno set. Mapping costs per page, and the pages count in the RSS while
 * mapped: map the slots in use.
 */
struct kw_counters *kw_bpf_counters_map(const struct kw_bpf *b, __u32 slots);
void kw_bpf_counters_unmap(const struct kw_bpf *b, struct kw_counters *c, __u32 slots);
/*
 * Adds the requests of open connections not yet in their upstreams' counters (the
 * kernel moves them there at close) to req[slot], and those connections to used[slot]:
 * arrays of kw_bpf_upstreams_capacity() entries. Read the counters first. 0 or -errno.
 */
int kw_bpf_open_requests(const struct kw_bpf *b, __u64 *req, __u64 *used);
/*
 * Before evicting upstreams: the BPF side's per-CPU cache of upstream slots must not
 * hand out slots that are about to be freed.
 */
int kw_bpf_bump_generation(const struct kw_bpf *b);
/* The queue of freed slots: the collector pushes the slots it evicts. */
int kw_bpf_free_slots_fd(const struct kw_bpf *b);
/* When the counters started (s since the epoch): this run, or the pinned maps' first. */
__u64 kw_bpf_created_unix(const struct kw_bpf *b);
/*
 * The link of the tcp iterator (struct kw_census per socket) for kw_census_run(): each
 * bpf_iter_create() on it walks the namespace of the calling thread.
 */
int kw_bpf_tcp_iter_link_fd(const struct kw_bpf *b);
/* What kw_bpf_adopt() found. */
struct kw_adopted {
	unsigned long connections; /* adopted */
	unsigned int namespaces;   /* walked */
	unsigned int skipped;	   /* not found or not entered */
	unsigned int failed;	   /* walks that failed (a debug line each) */
	unsigned long lost; /* tracked by the last agent, closed while none ran (pinned maps) */
};

/*
 * Adopts the connections of the namespaces netns[] (inode numbers; n 0: every namespace
 * in reach, kw_netns_all()) that were established
 * before the programs were attached, which the tracepoints never saw open: from now on
 * their requests, closes and races count as if they had been opened under the agent.
 * Then folds, as lost, the connections in the table (pinned from the last agent) whose
 * sockets the walk did not find in their namespace, or whose namespace is gone: they
 * closed while no agent ran. Call once, after kw_bpf_start(), before serving.
 * 0 or -errno (out of memory, no thread).
 */
int kw_bpf_adopt(const struct kw_bpf *b, const __u32 *netns, unsigned int n,
		 struct kw_adopted *out);
/*
 * Turns this run's event counts into totals over every run on these maps (pinned) and
 * stores them there, so that what was once exposed never goes backwards. 0 or -errno.
 */
int kw_bpf_events_totals(const struct kw_bpf *b, __u64 *received, __u64 *dropped);
/*
 * Removes the pin directory dir and everything in it: the maps (the counts) and the
 * links, which detaches the programs. Refuses (-EBUSY, said) while an agent uses it.
 */
int kw_bpf_unpin(const char *dir);
/* Fills up to max program statistics; returns how many. */
unsigned int kw_bpf_prog_stats(const struct kw_bpf *b, struct kw_prog_stat *out, unsigned int max);
/* What serves each job on this kernel, for the log and keepwatch_bpf_attach_info. */
const struct kw_bpf_job *kw_bpf_jobs(const struct kw_bpf *b, unsigned int *n);

#endif /* KW_LOADER_H */
