// SPDX-License-Identifier: GPL-2.0
/*
 * The bounded output queue (outq.h).  The views print through a stdio
 * stream made with fopencookie(), whose writes land here; nothing is
 * sent before a record is complete, so a dropped refresh never leaves
 * half a JSON line behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outq.h"
#include "util.h"

struct outq {
	int fd;
	int own_fd;		/* a private description of the pipe, or -1 */
	int old_flags;		/* to restore; -1: left alone */
	/*
	 * [off, off + len): queued, then pend bytes of the record being
	 * written.  What was sent is dropped from the front by moving off;
	 * the rest is moved down only when room is needed: moving megabytes
	 * after each 64 KiB write was quadratic in the size of a refresh.
	 */
	char *buf;
	size_t off, len, pend, cap, size;
	uint64_t dropped;
	int err;		/* first write error, negative errno */
	FILE *file;
};

static ssize_t cookie_write(void *c, const char *data, size_t n)
{
	struct outq *q = c;
	size_t need = q->len + q->pend + n;

	if (q->off && q->off + need > q->size) {
		memmove(q->buf, q->buf + q->off, q->len + q->pend);
		q->off = 0;
	}
	if (need > q->size) {
		size_t size = q->size ? q->size : 65536;
		char *b;

		while (size < need)
			size *= 2;
		b = realloc(q->buf, size);
		if (!b)
			return -1;	/* stdio sets the error flag */
		q->buf = b;
		q->size = size;
	}
	memcpy(q->buf + q->off + q->len + q->pend, data, n);
	q->pend += n;
	return n;
}

int outq__new(int fd, size_t cap, struct outq **out, FILE **file)
{
	cookie_io_functions_t io = { .write = cookie_write };
	struct outq *q = calloc(1, sizeof(*q));
	struct stat st;

	if (!q)
		return -ENOMEM;
	q->fd = fd;
	q->own_fd = -1;
	q->cap = cap;
	q->old_flags = -1;
	/*
	 * Pipes, FIFOs and sockets can stall; a regular file cannot (a full
	 * disk fails instead).  A terminal is left alone: its flags are the
	 * shell's too.  A pipe is reopened (/proc/self/fd) so that only our
	 * own description of it is non-blocking: -- CMD's command shares
	 * the original one, and would see EAGAIN on a full pipe.
	 */
	if (!fstat(fd, &st) && S_ISFIFO(st.st_mode)) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		q->own_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (q->own_fd >= 0)
			q->fd = q->own_fd;
	}
	if (q->own_fd < 0 && !fstat(fd, &st) &&
	    (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		q->old_flags = fcntl(fd, F_GETFL);
		if (q->old_flags >= 0)
			fcntl(fd, F_SETFL, q->old_flags | O_NONBLOCK);
	}
	q->file = fopencookie(q, "w", io);
	if (!q->file) {
		outq__free(q);
		return -ENOMEM;
	}
	*out = q;
	*file = q->file;
	return 0;
}

void outq__free(struct outq *q)
{
	if (!q)
		return;
	if (q->file)
		fclose(q->file);
	if (q->old_flags >= 0)
		fcntl(q->fd, F_SETFL, q->old_flags);
	if (q->own_fd >= 0)
		close(q->own_fd);
	free(q->buf);
	free(q);
}

void outq__commit(struct outq *q, bool keep)
{
	fflush(q->file);
	if (!keep && q->len && q->len + q->pend > q->cap) {
		/* the reader is that far behind: this refresh goes */
		q->dropped++;
		q->pend = 0;
	} else {
		q->len += q->pend;
		q->pend = 0;
	}
	outq__pump(q);
}

int outq__pump(struct outq *q)
{
	while (q->len && !q->err) {
		ssize_t n = write(q->fd, q->buf + q->off, q->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			q->err = n < 0 ? -errno : -EIO;
			break;
		}
		q->off += n;
		q->len -= n;
	}
	if (!q->len && !q->pend)
		q->off = 0;
	return q->err;
}

int outq__drain(struct outq *q, int timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;

	outq__commit(q, true);
	while (q->len && !q->err && now_ns() < end) {
		struct pollfd p = { .fd = q->fd, .events = POLLOUT };

		poll(&p, 1, (end - now_ns()) / 1000000 + 1);
		outq__pump(q);
	}
	return q->err;
}

uint64_t outq__dropped(const struct outq *q)
{
	return q ? q->dropped : 0;
}

size_t outq__queued(const struct outq *q)
{
	return q ? q->len : 0;
}

int outq__fd(const struct outq *q)
{
	return q ? q->fd : -1;
}
