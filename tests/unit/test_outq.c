// SPDX-License-Identifier: GPL-2.0
/*
 * The bounded output queue (user/outq.c) on a real pipe: a stalled
 * reader costs whole refreshes, counted, never half a record, never a
 * blocked writer -- and never the final report.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../user/outq.h"
#include "test.h"

#define CAP	(64 << 10)

/* One "refresh": n bytes of tag, then a newline. */
static void record(FILE *f, char tag, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fputc(tag, f);
	fputc('\n', f);
}

/*
 * The lines the pipe holds now, each checked whole; a partial last line
 * waits in buf for the rest.  -1: a line mixes records.
 */
static char buf[8 << 20];
static size_t buf_len;

static int read_lines(int fd, char *tags, int max)
{
	ssize_t n;
	int nl = 0;
	char *p, *line;

	while (buf_len < sizeof(buf) &&
	       (n = read(fd, buf + buf_len, sizeof(buf) - buf_len)) > 0)
		buf_len += n;
	for (line = p = buf; p < buf + buf_len; p++) {
		if (*p != '\n')
			continue;
		/* a line is one tag repeated: no record was cut or mixed */
		for (char *c = line; c < p; c++)
			if (*c != *line)
				return -1;
		if (nl < max)
			tags[nl] = *line;
		nl++;
		line = p + 1;
	}
	buf_len -= line - buf;
	memmove(buf, line, buf_len);
	return nl;
}

static void test_stalled_reader_drops_whole_refreshes(void)
{
	struct outq *q;
	FILE *f;
	int fds[2], i, n;
	char tags[64];

	if (!ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0))
		return;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETPIPE_SZ, 4096);
	if (!ASSERT_EQ(outq__new(fds[1], CAP, &q, &f), 0))
		return;
	/* nobody reads: 20 refreshes of 16 KiB each, never blocking */
	for (i = 0; i < 20; i++) {
		record(f, 'a' + i, 16 << 10);
		outq__commit(q, false);
	}
	ASSERT_TRUE(outq__dropped(q) > 0);
	ASSERT_TRUE(outq__queued(q) <= CAP + (16 << 10));
	/* the final report is kept, though the queue is still full */
	record(f, 'Z', 16 << 10);
	outq__commit(q, true);
	n = 0;
	for (i = 0; i < 200 && outq__queued(q); i++) {
		int got = read_lines(fds[0], tags + n, 64 - n);

		if (!ASSERT_TRUE(got >= 0))
			break;
		n += got;
		outq__pump(q);
	}
	n += read_lines(fds[0], tags + n, 64 - n);
	ASSERT_EQ(outq__queued(q), 0);
	/* what came is in order, whole, and ends with the final report */
	ASSERT_EQ(n + outq__dropped(q), 21);
	ASSERT_TRUE(n > 1 && tags[n - 1] == 'Z');
	for (i = 1; i < n - 1; i++)
		ASSERT_TRUE(tags[i] > tags[i - 1]);
	outq__free(q);
	close(fds[0]);
	close(fds[1]);
}

static void test_reader_keeping_up_loses_nothing(void)
{
	struct outq *q;
	FILE *f;
	int fds[2], i, n = 0;
	char tags[64];

	if (!ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0))
		return;
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	if (!ASSERT_EQ(outq__new(fds[1], CAP, &q, &f), 0))
		return;
	/* a record bigger than the whole queue still goes when it is alone */
	for (i = 0; i < 10; i++) {
		record(f, 'a' + i, 3 * CAP);
		outq__commit(q, false);
		while (outq__queued(q)) {
			n += read_lines(fds[0], tags + n, 64 - n);
			outq__pump(q);
		}
	}
	n += read_lines(fds[0], tags + n, 64 - n);
	ASSERT_EQ(outq__dropped(q), 0);
	ASSERT_EQ(n, 10);
	outq__free(q);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	RUN_TEST(test_stalled_reader_drops_whole_refreshes);
	RUN_TEST(test_reader_keeping_up_loses_nothing);
	return test__finish();
}
