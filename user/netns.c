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
#include "numfmt.h"

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

/* As snprintf(out, len, "%s", s), which showed at one call per upstream per scrape. */
static void copy_name(char *out, size_t len, const char *s, size_t n)
{
	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

void kw_netns_name(__u32 inode, char *out, size_t len)
{
	double now = kw_now();
	char num[KW_NUM_MAX];
	unsigned int i;
	size_t n;

	pthread_mutex_lock(&cache.lock);
	if (now - cache.loaded > CACHE_TTL) {
		reload();
		cache.loaded = now;
	}
	if (inode == cache.self) {
		copy_name(out, len, "host", 4);
		goto out;
	}
	for (i = 0; i < cache.n; i++) {
		if (cache.e[i].inode == inode) {
			copy_name(out, len, cache.e[i].name, strlen(cache.e[i].name));
			goto out;
		}
	}
	n = kw_fmt_u64(num, inode);
	copy_name(out, len, num, n);
out:
	pthread_mutex_unlock(&cache.lock);
}
