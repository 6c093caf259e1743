// SPDX-License-Identifier: GPL-2.0
/*
 * procfs: one parser for each /proc/PID file memtrace reads (procfs.h).
 * Files are read whole into memory first (a process's maps can be
 * megabytes; no line has a length limit), then parsed in place.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "procfs.h"
#include "util.h"

static char root[256] = "/proc";

void procfs__set_root(const char *r)
{
	snprintf(root, sizeof(root), "%s", r ? r : "/proc");
}

static int fit(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int procfs__path(char *buf, size_t len, int pid, const char *what)
{
	if (pid)
		return fit(snprintf(buf, len, "%s/%d/%s", root, pid, what),
			   len);
	return fit(snprintf(buf, len, "%s/self/%s", root, what), len);
}

int procfs__map_file(char *buf, size_t len, int pid,
		     const struct procfs_map *m)
{
	return fit(snprintf(buf, len, "%s/%d/map_files/%" PRIx64 "-%" PRIx64,
			    root, pid, m->start, m->end), len);
}

int procfs__root_file(char *buf, size_t len, int pid, const char *path)
{
	return fit(snprintf(buf, len, "%s/%d/root%s", root, pid, path), len);
}

int procfs__pids(int **out, int *n)
{
	int *pids = NULL, cap = 0, nr = 0, pid;
	struct dirent *de;
	char *end;
	DIR *d = opendir(root);

	*out = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		errno = 0;
		pid = (int)strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || errno)
			continue;
		if (array_grow(&pids, &cap, nr, sizeof(*pids))) {
			free(pids);
			closedir(d);
			return -ENOMEM;
		}
		pids[nr++] = pid;
	}
	closedir(d);
	*out = pids;
	*n = nr;
	return 0;
}

/*
 * The whole file, NUL-terminated, in a malloc'd buffer.  A /proc file
 * cannot be sized by stat: read until EOF.  ENOENT of a pid's file means
 * the process is gone: -ESRCH.
 */
static int slurp(const char *path, char **out, size_t *outlen)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *tmp;
	ssize_t n;
	int fd, err = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return errno == ENOENT ? -ESRCH : -errno;
	}
	for (;;) {
		if (cap - len < 2) {
			tmp = realloc(buf, cap * 2);
			if (!tmp) {
				err = -ENOMEM;
				break;
			}
			buf = tmp;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* a process exiting mid-read: what we have is gone */
			err = errno == ESRCH ? -ESRCH : -errno;
			break;
		}
		if (!n)
			break;
		len += n;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*out = buf;
	if (outlen)
		*outlen = len;
	return 0;
}

static int slurp_pid(int pid, const char *what, char **out, size_t *len)
{
	char path[320];
	int err = procfs__path(path, sizeof(path), pid, what);

	return err ? err : slurp(path, out, len);
}

/*
 * A small file into a caller's buffer, no malloc: the watchdogs read
 * stat and status in a child forked from a threaded memtrace, where
 * malloc may hold a lock forever.  What does not fit is cut off.
 */
static int read_small(int pid, const char *what, char *buf, size_t len)
{
	char path[320];
	int n = procfs__path(path, sizeof(path), pid, what);

	buf[0] = '\0';
	if (n)
		return n;
	n = read_file(path, buf, len);
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	return 0;
}

/* ---- maps ------------------------------------------------------------ */

/*
 * In place: the kernel escapes only '\n' in a maps path, as "\012"
 * (a backslash itself is not escaped, so a file really named "a\012b"
 * reads the same; callers that open the path check the inode).
 */
static void unescape_nl(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == '0' && s[2] == '1' && s[3] == '2') {
			*w++ = '\n';
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* A hex field ending at a given separator; false if malformed. */
static bool hex_field(char **p, char sep, uint64_t *v)
{
	char *end;

	if (!isxdigit((unsigned char)**p))
		return false;
	errno = 0;
	*v = strtoull(*p, &end, 16);
	if (errno || *end != sep)
		return false;
	*p = end + 1;
	return true;
}

/*
 * "START-END PERMS PGOFF MAJ:MIN INO   PATH"; line is NUL-terminated and
 * owned by the snapshot (the path points into it).
 */
static bool parse_map_line(char *line, struct procfs_map *m)
{
	uint64_t maj, min, ino;
	char *p = line, *end;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (!hex_field(&p, '-', &m->start) || !hex_field(&p, ' ', &m->end) ||
	    m->end < m->start)
		return false;
	if (strlen(p) < 5 || p[4] != ' ')
		return false;
	memcpy(m->perms, p, 4);
	p += 5;
	if (!hex_field(&p, ' ', &m->pgoff) || !hex_field(&p, ':', &maj) ||
	    !hex_field(&p, ' ', &min) || !isdigit((unsigned char)*p))
		return false;
	errno = 0;
	ino = strtoull(p, &end, 10);
	if (errno || (*end && *end != ' '))
		return false;
	m->dev = makedev(maj, min);
	m->ino = ino;
	/* the path starts after the padding; it may hold spaces itself */
	while (*end == ' ')
		end++;
	n = strlen(end);
	if (n > 10 && !strcmp(end + n - 10, " (deleted)")) {
		end[n - 10] = '\0';
		m->deleted = true;
	}
	unescape_nl(end);
	m->path = end;
	return true;
}

/* Parses buf in place; the snapshot takes buf over. */
static int parse_maps_buf(char *buf, struct procfs_maps **out)
{
	struct procfs_maps *maps;
	char *line, *next;
	int cap = 0;

	maps = calloc(1, sizeof(*maps));
	if (!maps) {
		free(buf);
		return -ENOMEM;
	}
	maps->refs = 1;
	maps->text = buf;
	for (line = buf; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		else
			next = line + strlen(line);
		if (maps->n == cap &&
		    array_grow(&maps->m, &cap, maps->n, sizeof(*maps->m))) {
			procfs__maps_put(maps);
			return -ENOMEM;
		}
		/* a malformed line (truncated, not maps) is skipped */
		if (parse_map_line(line, &maps->m[maps->n]))
			maps->n++;
	}
	maps->read_ns = now_ns();
	*out = maps;
	return 0;
}

int procfs__parse_maps(const char *text, size_t len, struct procfs_maps **out)
{
	char *buf = malloc(len + 1);

	if (!buf)
		return -ENOMEM;
	memcpy(buf, text, len);
	buf[len] = '\0';
	return parse_maps_buf(buf, out);
}

int procfs__read_maps(int pid, struct procfs_maps **out)
{
	/* before the read: what it shows is at least as new as this */
	uint64_t t0 = now_ns();
	char *buf;
	int err = slurp_pid(pid, "maps", &buf, NULL);

	if (err)
		return err;
	err = parse_maps_buf(buf, out);
	if (!err) {
		(*out)->pid = pid;
		(*out)->read_ns = t0;
	}
	return err;
}

struct procfs_maps *procfs__maps_get(struct procfs_maps *maps)
{
	if (maps)
		maps->refs++;
	return maps;
}

void procfs__maps_put(struct procfs_maps *maps)
{
	if (!maps || --maps->refs > 0)
		return;
	free(maps->text);
	free(maps->m);
	free(maps);
}

bool procfs__map_is_code_file(const struct procfs_map *m)
{
	return m->perms[2] == 'x' && m->path[0] == '/';
}

/* ---- stat, statm ----------------------------------------------------- */

int procfs__parse_stat(const char *text, struct procfs_stat *out)
{
	const char *open = strchr(text, '('), *close = strrchr(text, ')');
	const char *p;
	unsigned long long v;
	size_t n;
	char *end;
	int field;

	memset(out, 0, sizeof(*out));
	/* comm may hold anything, ')' and spaces too: up to the last ')' */
	if (!open || !close || close < open || close[1] != ' ' || !close[2])
		return -EINVAL;
	n = close - open - 1;
	if (n >= sizeof(out->comm))
		n = sizeof(out->comm) - 1;
	memcpy(out->comm, open + 1, n);
	out->state = close[2];
	p = close + 3;
	/* fields 4.. are numbers, one space apart */
	for (field = 4; *p == ' '; field++) {
		p++;
		/* a signed field (nice -20) wraps; none of ours is signed */
		v = strtoull(p, &end, 10);
		if (end == p)
			return -EINVAL;
		p = end;
		switch (field) {
		case 4:
			out->ppid = (int)v;
			break;
		case 9:
			out->flags = v;
			break;
		case 14:
			out->utime = v;
			break;
		case 15:
			out->stime = v;
			break;
		case 22:
			out->starttime = v;
			break;
		case 47:
			out->start_brk = v;
			break;
		}
	}
	return field > 15 ? 0 : -EINVAL;
}

int procfs__read_stat(int pid, struct procfs_stat *out)
{
	/* 52 fields of at most 20 digits and a comm of 64 at most */
	char buf[1536];
	int err = read_small(pid, "stat", buf, sizeof(buf));

	if (err) {
		memset(out, 0, sizeof(*out));
		return err;
	}
	return procfs__parse_stat(buf, out);
}

int procfs__read_statm(int pid, struct procfs_statm *out)
{
	unsigned long long size, res, shared;
	long page = sysconf(_SC_PAGESIZE);
	char buf[256];
	int err = read_small(pid, "statm", buf, sizeof(buf));

	memset(out, 0, sizeof(*out));
	if (err)
		return err;
	if (sscanf(buf, "%llu %llu %llu", &size, &res, &shared) != 3)
		return -EINVAL;
	out->size = size * page;
	out->resident = res * page;
	out->shared = shared * page;
	return 0;
}

/* ---- status ---------------------------------------------------------- */

/* Up to max integers after "Key:", tab or space separated. */
static int ints(const char *p, int *v, int max)
{
	char *end;
	int n = 0;

	while (n < max) {
		long x;

		while (*p == ' ' || *p == '\t')
			p++;
		errno = 0;
		x = strtol(p, &end, 10);
		if (end == p || errno)
			break;
		v[n++] = (int)x;
		p = end;
	}
	return n;
}

int procfs__parse_status(const char *text, struct procfs_status *out)
{
	const char *line, *next, *val;
	int one;

	memset(out, 0, sizeof(*out));
	out->tgid = out->ppid = -1;
	memset(out->uid, 0xff, sizeof(out->uid));
	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		val = memchr(line, ':', next - line);
		if (!val)
			continue;
		val++;
#define KEY(k) (val - line == sizeof(k) && !strncmp(line, k ":", sizeof(k)))
		if (KEY("Tgid") && ints(val, &one, 1) == 1)
			out->tgid = one;
		else if (KEY("PPid") && ints(val, &one, 1) == 1)
			out->ppid = one;
		else if (KEY("TracerPid") && ints(val, &one, 1) == 1)
			out->tracer_pid = one;
		else if (KEY("Uid"))
			ints(val, out->uid, 4);
		else if (KEY("NSpid"))
			out->nr_nspid = ints(val, out->nspid,
					     PROCFS_NSPID_MAX);
		else if (KEY("RssAnon"))
			out->rss_anon = strtoull(val, NULL, 10) << 10;
		else if (KEY("RssFile"))
			out->rss_file = strtoull(val, NULL, 10) << 10;
		else if (KEY("RssShmem"))
			out->rss_shmem = strtoull(val, NULL, 10) << 10;
		else if (KEY("VmData"))
			out->vm_data = strtoull(val, NULL, 10) << 10;
		else if (KEY("VmRSS"))
			out->vm_rss = strtoull(val, NULL, 10) << 10;
#undef KEY
	}
	return 0;
}

int procfs__read_status(int pid, struct procfs_status *out)
{
	/* ~1.5K usually; a Groups line of thousands could push the Rss
	 * lines past the end, which then read as absent */
	char buf[16384];
	int err = read_small(pid, "status", buf, sizeof(buf));

	procfs__parse_status(buf, out);
	return err;
}

int procfs__read_comm(int pid, char *buf, size_t len)
{
	char text[256];
	size_t n;
	int err;

	if (!len)
		return -EINVAL;
	buf[0] = '\0';
	err = read_small(pid, "comm", text, sizeof(text));
	if (err)
		return err;
	/* the kernel's newline goes; one the process put in its name stays */
	n = strlen(text);
	if (n && text[n - 1] == '\n')
		text[--n] = '\0';
	snprintf(buf, len, "%s", text);
	return 0;
}

/* ---- cgroup ---------------------------------------------------------- */

static int parse_cgroup(char *text, struct procfs_cgroup *out)
{
	char *line, *next, *ctrl, *path;
	int cap = 0;

	out->text = text;
	for (line = text; *line; line = next) {
		size_t n = strcspn(line, "\n");

		next = line[n] ? line + n + 1 : line + n;
		/* the lines are cut in a copy: text stays as read */
		if (array_grow(&out->lines, &cap, out->n, sizeof(*out->lines)))
			return -ENOMEM;
		line = strndup(line, n);
		if (!line)
			return -ENOMEM;
		ctrl = strchr(line, ':');
		path = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!path) {
			free(line);
			continue;
		}
		/* the path may itself contain ':'; only split twice */
		*ctrl++ = '\0';
		*path++ = '\0';
		out->lines[out->n].id = atoi(line);
		/* controllers and path share the line's allocation */
		memmove(line, ctrl, strlen(ctrl) + 1 + strlen(path) + 1);
		out->lines[out->n].controllers = line;
		out->lines[out->n].path = line + strlen(line) + 1;
		out->n++;
	}
	return 0;
}

static int cgroup_from(char *text, struct procfs_cgroup *out)
{
	int err = parse_cgroup(text, out);

	if (err)
		procfs__cgroup_free(out);
	return err;
}

int procfs__read_cgroup(int pid, struct procfs_cgroup *out)
{
	char *text;
	int err;

	memset(out, 0, sizeof(*out));
	err = slurp_pid(pid, "cgroup", &text, NULL);
	return err ? err : cgroup_from(text, out);
}

int procfs__read_cgroup_file(const char *file, struct procfs_cgroup *out)
{
	char *text;
	int err;

	memset(out, 0, sizeof(*out));
	err = slurp(file, &text, NULL);
	/* a fixture file is no process: keep its own errno */
	if (err == -ESRCH)
		err = -ENOENT;
	return err ? err : cgroup_from(text, out);
}

void procfs__cgroup_free(struct procfs_cgroup *cg)
{
	int i;

	for (i = 0; i < cg->n; i++)
		free(cg->lines[i].controllers);
	free(cg->lines);
	free(cg->text);
	memset(cg, 0, sizeof(*cg));
}

static bool has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	while (*list) {
		size_t l = strcspn(list, ",");

		if (l == n && !strncmp(list, tok, n))
			return true;
		list += l + (list[l] == ',');
	}
	return false;
}

const char *procfs__cgroup_path(const struct procfs_cgroup *cg,
				const char *controller)
{
	int i;

	for (i = 0; i < cg->n; i++) {
		const struct procfs_cgroup_line *l = &cg->lines[i];

		if (!controller && !l->id && !l->controllers[0])
			return l->path;
		if (controller && has_token(l->controllers, controller))
			return l->path;
	}
	return NULL;
}
