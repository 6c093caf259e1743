/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ground truth a workload writes for the tests: one JSON line to
 * path.  No stdio, so writing it allocates nothing behind the test's back.
 */
#ifndef MT_TRUTH_H
#define MT_TRUTH_H

#include <fcntl.h>
#include <unistd.h>

static inline int write_truth(const char *path, const char *buf, int n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok = fd >= 0 && write(fd, buf, n) == n;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

#endif /* MT_TRUTH_H */
