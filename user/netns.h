/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * Network namespaces by name: resolve a --netns argument to its inode number, and name
 * an inode for labels ("host" for the agent's own namespace, the name under
 * /var/run/netns where there is one, the inode number otherwise).
 */
#ifndef KW_NETNS_H
#define KW_NETNS_H

#include <stddef.h>
#include <linux/types.h>

#define KW_NETNS_DIR	 "/var/run/netns"
#define KW_NETNS_NAMELEN 64

/* NAME (under /var/run/netns) or a path; 0 or -errno. */
int kw_netns_resolve(const char *arg, __u32 *inode);
/* Writes the label for inode into out; thread-safe, names cached for a few seconds. */
void kw_netns_name(__u32 inode, char *out, size_t len);

#endif /* KW_NETNS_H */
