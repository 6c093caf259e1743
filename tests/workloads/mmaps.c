// SPDX-License-Identifier: GPL-2.0
/*
 * mmap-family workload: after a line on stdin, maps, unmaps, remaps and
 * touches anonymous memory through libc and through raw syscalls, then
 * prints "done <net anonymous bytes still mapped> <pages touched>"; then,
 * after a line "brk", moves the break up and touches the new pages
 * ("brk <bytes>"); then waits for EOF.  It calls no allocator, so those
 * numbers are exact.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE), net = 0, touched = 0;
	char buf[128], c, *a, *b, *r, *f;
	int i, n;

	if (write(1, "ready\n", 6) != 6)
		return 1;
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	a = mmap(NULL, 10 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	net += 10 * pg;
	munmap(a + 3 * pg, 3 * pg);			/* a hole */
	net -= 3 * pg;
	/* a raw syscall, not libc's mmap wrapper */
	b = (char *)syscall(SYS_mmap, NULL, 4 * pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	net += 4 * pg;
	r = mremap(b, 4 * pg, 9 * pg, MREMAP_MAYMOVE);	/* grows by 5 */
	net += 5 * pg;
	for (i = 0; i < 9; i++, touched++)
		r[i * pg] = 1;
	for (i = 0; i < 3; i++, touched++)
		a[i * pg] = 1;
	/* a file-backed mapping is not anonymous memory */
	f = mmap(NULL, pg, PROT_READ, MAP_PRIVATE,
		 open("/proc/self/exe", O_RDONLY), 0);
	(void)f;
	n = snprintf(buf, sizeof(buf), "done %ld %ld\n", net, touched);
	if (write(1, buf, n) != n)
		return 1;
	n = 0;
	while (read(0, &c, 1) == 1 && c != '\n')
		buf[n < 8 ? n++ : n] = c;
	if (n == 3 && !memcmp(buf, "brk", 3)) {
		char *h = sbrk(0);

		if (sbrk(16 * pg) != h)
			return 1;
		for (i = 0; i < 16; i++)
			h[i * pg] = 1;
		n = snprintf(buf, sizeof(buf), "brk %ld\n", 16 * pg);
		if (write(1, buf, n) != n)
			return 1;
	}
	while (read(0, &c, 1) == 1)
		;
	return 0;
}
