// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Network namespace names and inode numbers; see netns.h. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "collector.h"
#include "netns.h"

#define CACHE_MAX 256
#define CACHE_TTL 5.0

static struct {
	pthread_mutex_t lock;
	double loaded;
	__u32 self;
	unsigned int n;
	struct {
		__u32 inode;
		char name[KW_NETNS_NAMELEN];
	} e[CACHE_MAX];
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER, .loaded = -1e9 };

int kw_netns_resolve(const char *arg, __u32 *inode)
{
	char path[512];
	struct statfs fs;
	struct stat st;

	if (!*arg)
		return -EINVAL;
	if (strchr(arg, '/'))
		snprintf(path, sizeof(path), "%s", arg);
	else
		snprintf(path, sizeof(path), "%s/%s", KW_NETNS_DIR, arg);
	if (stat(path, &st) || statfs(path, &fs))
		return -errno;
	/* A bound namespace is an nsfs file; a plain file or directory is a mistake. */
	if (fs.f_type != NSFS_MAGIC && fs.f_type != PROC_SUPER_MAGIC)
		return -ENOTSUP;
	*inode = st.st_ino;
	return 0;
}

static void reload(void)
{
	struct dirent *d;
	struct stat st;
	DIR *dir;

	cache.n = 0;
	if (!stat("/proc/self/ns/net", &st))
		cache.self = st.st_ino;
	dir = opendir(KW_NETNS_DIR);
	if (!dir)
		return;
	while ((d = readdir(dir)) && cache.n < CACHE_MAX) {
		__u32 ino;

		if (d->d_name[0] == '.' || strlen(d->d_name) >= KW_NETNS_NAMELEN)
			continue;
		if (kw_netns_resolve(d->d_name, &ino))
			continue;
		cache.e[cache.n].inode = ino;
		snprintf(cache.e[cache.n].name, KW_NETNS_NAMELEN, "%s", d->d_name);
		cache.n++;
	}
	closedir(dir);
}

void kw_netns_name(__u32 inode, char *out, size_t len)
{
	double now = kw_now();
	unsigned int i;

	pthread_mutex_lock(&cache.lock);
	if (now - cache.loaded > CACHE_TTL) {
		reload();
		cache.loaded = now;
	}
	if (inode == cache.self) {
		snprintf(out, len, "host");
		goto out;
	}
	for (i = 0; i < cache.n; i++) {
		if (cache.e[i].inode == inode) {
			snprintf(out, len, "%s", cache.e[i].name);
			goto out;
		}
	}
	snprintf(out, len, "%u", inode);
out:
	pthread_mutex_unlock(&cache.lock);
}
