// SPDX-License-Identifier: GPL-2.0
/*
 * Artifact files: the dump directory and each capture's directory.
 *
 * Cores hold secrets (keys, tokens, user data), and root writes here:
 * the directory must be root's alone, every file is created through a
 * directory fd with O_NOFOLLOW|O_EXCL under a ".tmp-MEMTRACEPID-" name
 * and renamed only once written whole and fsynced.  ".tmp-" names of a
 * memtrace that died are removed when the directory is next opened.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"
#include "util.h"

#define ARTIFACT_STAT_MAX	(64 << 10)	/* a copied cgroup file */

struct artdir {
	char dir[PATH_MAX];
	char shown[PATH_MAX];	/* escaped, for messages */
	int fd;			/* -1 until first needed */
};

struct artifact {
	struct artdir *ad;
	int fd;
	char name[256];		/* final name */
	char tmp[300];		/* while incomplete */
	char lost[256];		/* files that were not written */
	int lost_err;
	int written;		/* files that were */
};

/* Prefix of everything not yet complete: whose it is, for the cleanup. */
void artifact__tmp_name(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, ".tmp-%d-%s", (int)getpid(), name);
}

/* Keep [A-Za-z0-9._-] and make the rest '_': names go into file names. */
static void file_safe(const char *in, size_t inlen, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < inlen && in[i] && o + 1 < outlen; i++) {
		unsigned char c = in[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    (c == '.' && o))
			out[o++] = c;
		else
			out[o++] = '_';
	}
	out[o] = '\0';
	if (!o)
		snprintf(out, outlen, "_");
}

/* ---- the dump directory --------------------------------------------- */

/* A file or a directory of files (one level: artifacts have no more). */
static void remove_tree(int dirfd, const char *name)
{
	struct dirent *de;
	DIR *dir;
	int fd;

	if (!unlinkat(dirfd, name, 0) || errno != EISDIR)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(fd, de->d_name, 0);
	closedir(dir);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* ".tmp-PID-..." of a memtrace that is gone (SIGKILLed mid-capture). */
static bool stale_tmp(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, ".tmp-", 5))
		return false;
	pid = strtol(name + 5, &end, 10);
	if (end == name + 5 || *end != '-' || pid <= 0 || pid > INT_MAX)
		return false;
	return kill(pid, 0) && errno == ESRCH;
}

/* Partial captures and cores of dead memtraces, in the dir and one down. */
static void clean_stale(struct artdir *ad)
{
	struct dirent *de, *de2;
	DIR *dir, *sub;
	int fd, n = 0;

	fd = openat(ad->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		if (stale_tmp(de->d_name)) {
			remove_tree(ad->fd, de->d_name);
			n++;
			continue;
		}
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		fd = openat(ad->fd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		sub = fd >= 0 ? fdopendir(fd) : NULL;
		if (!sub) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((de2 = readdir(sub)))
			if (stale_tmp(de2->d_name) &&
			    !unlinkat(fd, de2->d_name, 0))
				n++;
		closedir(sub);
	}
	closedir(dir);
	if (n)
		fprintf(stderr, "memtrace: %s: removed %d partial file%s of "
			"captures whose memtrace died\n", ad->shown, n,
			n == 1 ? "" : "s");
}

int artdir__new(const char *path, struct artdir **out)
{
	struct artdir *ad = calloc(1, sizeof(*ad));
	size_t n;

	*out = NULL;
	if (!ad)
		return -ENOMEM;
	ad->fd = -1;
	snprintf(ad->dir, sizeof(ad->dir), "%s", path);
	/* "dir/" would make lstat() follow a symlink */
	n = strlen(ad->dir);
	while (n > 1 && ad->dir[n - 1] == '/')
		ad->dir[--n] = '\0';
	sanitize(ad->dir, n, ad->shown, sizeof(ad->shown));
	*out = ad;
	return 0;
}

void artdir__free(struct artdir *ad)
{
	if (!ad)
		return;
	if (ad->fd >= 0)
		close(ad->fd);
	free(ad);
}

const char *artdir__shown(const struct artdir *ad)
{
	return ad->shown;
}

int artdir__avail(const struct artdir *ad, uint64_t *bytes)
{
	struct statvfs sv;

	if (ad->fd < 0)
		return -EBADF;
	if (fstatvfs(ad->fd, &sv))
		return -errno;
	*bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/*
 * A directory that others can write or swap for a symlink would let
 * them read the cores or aim root's writes at any file.
 */
int artdir__open(struct artdir *ad)
{
	struct stat st;
	int fd, err;

	if (ad->fd >= 0)
		return 0;
	if (lstat(ad->dir, &st) && errno == ENOENT &&
	    mkdir(ad->dir, 0700) && errno != EEXIST) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: cannot create: %s\n",
			ad->shown, strerror(errno));
		return err;
	}
	if (lstat(ad->dir, &st)) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: %s\n", ad->shown,
			strerror(errno));
		return err;
	}
	if (S_ISLNK(st.st_mode)) {
		fprintf(stderr, "memtrace: dump dir %s is a symlink; refusing "
			"(give the real directory)\n", ad->shown);
		return -ELOOP;
	}
	fd = open(ad->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		fprintf(stderr, "memtrace: dump dir %s: %s\n", ad->shown,
			strerror(errno));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (st.st_uid != 0 || (st.st_mode & 022)) {
		fprintf(stderr, "memtrace: dump dir %s is %s; refusing (cores "
			"hold secrets: use a root-owned directory, mode 0700)\n",
			ad->shown, st.st_uid ? "not owned by root"
					     : "writable by group or others");
		err = -EPERM;
		goto fail;
	}
	ad->fd = fd;
	clean_stale(ad);
	return 0;
fail:
	close(fd);
	return err;
}

/* ---- one capture's directory ---------------------------------------- */

int artifact__new(struct artdir *ad, int pid, const char *comm,
		  const char *container, bool oom, struct artifact **out)
{
	char ts[32], safe_comm[40], cont[80], base[200];
	time_t now = time(NULL);
	struct artifact *a;
	struct tm tm;
	int i, err = -EEXIST;

	*out = NULL;
	if (ad->fd < 0)
		return -EBADF;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->ad = ad;
	a->fd = -1;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	file_safe(comm, strlen(comm), safe_comm, sizeof(safe_comm));
	file_safe(container, strlen(container), cont, sizeof(cont));
	snprintf(base, sizeof(base), "%s-%d-%s-%s%s", ts, pid, safe_comm,
		 cont, oom ? "-oom" : "");
	for (i = 0; i < 100; i++) {
		struct stat st;

		if (i)
			snprintf(a->name, sizeof(a->name), "%s.%d", base, i);
		else
			snprintf(a->name, sizeof(a->name), "%s", base);
		artifact__tmp_name(a->tmp, sizeof(a->tmp), a->name);
		if (!fstatat(ad->fd, a->name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (mkdirat(ad->fd, a->tmp, 0700)) {
			if (errno == EEXIST)
				continue;
			err = -errno;
			break;
		}
		a->fd = openat(ad->fd, a->tmp, O_RDONLY | O_DIRECTORY |
			       O_NOFOLLOW | O_CLOEXEC);
		err = a->fd < 0 ? -errno : 0;
		break;
	}
	if (err) {
		free(a);
		return err;
	}
	*out = a;
	return 0;
}

void artifact__free(struct artifact *a)
{
	if (!a)
		return;
	if (a->fd >= 0) {
		fsync(a->fd);
		close(a->fd);
	}
	free(a);
}

int artifact__publish(struct artifact *a)
{
	int dirfd = a->ad->fd;

	if (fsync(a->fd) || renameat(dirfd, a->tmp, dirfd, a->name))
		return -errno;
	fsync(dirfd);
	return 0;
}

void artifact__discard(struct artifact *a)
{
	remove_tree(a->ad->fd, a->tmp);
}

int artifact__fd(const struct artifact *a)
{
	return a->fd;
}

const char *artifact__name(const struct artifact *a)
{
	return a->name;
}

void artifact__lost(struct artifact *a, const char *name, int err)
{
	size_t n = strlen(a->lost);

	snprintf(a->lost + n, sizeof(a->lost) - n, "%s%s", n ? ", " : "",
		 name);
	if (!a->lost_err)
		a->lost_err = err;
}

const char *artifact__lost_names(const struct artifact *a)
{
	return a->lost;
}

int artifact__lost_err(const struct artifact *a)
{
	return a->lost_err;
}

void artifact__forget_lost(struct artifact *a)
{
	a->lost[0] = '\0';
}

void artifact__count(struct artifact *a)
{
	a->written++;
}

int artifact__written(const struct artifact *a)
{
	return a->written;
}

int afile__open(struct afile *f, struct artifact *a, const char *name)
{
	int fd, err;

	f->art = a;
	f->f = NULL;
	snprintf(f->name, sizeof(f->name), "%s", name);
	artifact__tmp_name(f->tmp, sizeof(f->tmp), name);
	fd = openat(a->fd, f->tmp, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		artifact__lost(a, name, err);
		return err;
	}
	f->f = fdopen(fd, "w");
	if (!f->f) {
		close(fd);
		unlinkat(a->fd, f->tmp, 0);
		artifact__lost(a, name, -ENOMEM);
		return -ENOMEM;
	}
	return 0;
}

int afile__commit(struct afile *f)
{
	int err = 0, dirfd = f->art->fd;

	errno = 0;
	if (fflush(f->f) || ferror(f->f))
		err = errno ? -errno : -EIO;
	if (!err && fsync(fileno(f->f)))
		err = -errno;
	if (fclose(f->f) && !err)
		err = -errno;
	f->f = NULL;
	if (!err && renameat(dirfd, f->tmp, dirfd, f->name))
		err = -errno;
	if (err) {
		unlinkat(dirfd, f->tmp, 0);
		artifact__lost(f->art, f->name, err);
	} else {
		f->art->written++;
	}
	return err;
}

int artifact__write(struct artifact *a, const char *name, const char *buf,
		    size_t len)
{
	struct afile f;
	int err = afile__open(&f, a, name);

	if (err)
		return err;
	fwrite(buf, 1, len, f.f);	/* a short write sets ferror() */
	return afile__commit(&f);
}

/* 1 if src cannot be read (not a loss: v1 has no memory.pressure). */
int artifact__copy(struct artifact *a, const char *src, const char *name)
{
	char *buf = malloc(ARTIFACT_STAT_MAX);
	int n, err;

	if (!buf) {
		artifact__lost(a, name, -ENOMEM);
		return -ENOMEM;
	}
	n = read_file(src, buf, ARTIFACT_STAT_MAX);
	err = n < 0 ? 1 : artifact__write(a, name, buf, n);
	free(buf);
	return err;
}
