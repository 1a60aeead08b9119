/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Network namespaces: resolve a --netns argument to its inode number, name an inode for
 * labels ("host" for the agent's own namespace, the name under /var/run/netns where there
 * is one, the inode number otherwise), list the namespaces in reach and run work inside
 * each (the census and the start-up walk).
 */
#ifndef KW_NETNS_H
#define KW_NETNS_H

#include <stddef.h>
#include <linux/types.h>

#define KW_NETNS_DIR	 "/var/run/netns"
#define KW_NETNS_NAMELEN 64

/* NAME (under /var/run/netns) or a path; 0 or -errno. */
int kw_netns_resolve(const char *arg, __u32 *inode);
/*
 * Writes the label for inode into out; thread-safe, names cached for a few seconds. A
 * name is written as kw_text_escape_name() makes it (bytes of invalid UTF-8 and control
 * characters as \xNN); one longer than KW_NETNS_NAMELEN - 1 bytes so escaped is not
 * used.
 */
void kw_netns_name(__u32 inode, char *out, size_t len);

/*
 * Calls fn(arg, inode) in each namespace of netns[] (duplicates once), from a thread of
 * its own that has entered it. A namespace that cannot be found or entered is skipped and
 * counted in *skipped (if not NULL). 0, or what stopped the walk: a non-zero return of
 * fn, or -errno (no thread, no memory).
 */
int kw_netns_each(const __u32 *netns, unsigned int n, int (*fn)(void *arg, __u32 netns), void *arg,
		  unsigned int *skipped);

/*
 * Every network namespace in reach: the agent's own, those bound under /var/run/netns and
 * those of running processes; up to max inode numbers, sorted. Returns how many, or -errno.
 */
int kw_netns_all(__u32 *out, unsigned int max);

/*
 * Processes whose /proc/PID/ns/net the last kw_netns_all() (or a search of the paths) may
 * not read (EACCES, EPERM: another user's, without CAP_SYS_PTRACE). Their namespaces are
 * missing from what it found, unless another path reaches them.
 */
unsigned int kw_netns_unreadable(void);

#endif /* KW_NETNS_H */
