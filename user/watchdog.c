// SPDX-License-Identifier: GPL-2.0
/* The dead-man switch (watchdog.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "watchdog.h"

/* shared with the watchdog: the last check-in */
static volatile uint64_t *shm;
static volatile uint64_t *bpf_hb;	/* the BPF programs' .bss */
static pid_t wd_pid;

void watchdog__beat(void)
{
	uint64_t now = now_ns();

	if (shm)
		*shm = now;
	if (bpf_hb)
		*bpf_hb = now;
}

void watchdog__bpf(volatile uint64_t *hb)
{
	bpf_hb = hb;
	watchdog__beat();
}

/*
 * memtrace's loop never blocks (attaching is done by a thread of its
 * own, slow work is queued under a time budget), so it checks in at
 * every turn, a few times a second: one that has not for stale_ns is
 * hung, blocked, stopped or spinning, whatever it looks busy with, and
 * is ended.
 */
static void __attribute__((noreturn)) watch(pid_t mt, uint64_t stale_ns)
{
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	int err;

	/*
	 * stderr opened anew: a description of its own, non-blocking, so
	 * a stalled reader of memtrace's stderr cannot stall the watchdog.
	 */
	err = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (err >= 0 && err != STDERR_FILENO) {
		dup2(err, STDERR_FILENO);
		close(err);
	}
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	close_range(3, ~0U, 0);
	for (;;) {
		uint64_t hb, now;

		nanosleep(&tick, NULL);
		if (getppid() != mt)
			_exit(0);	/* memtrace is gone: nothing to watch */
		now = now_ns();
		hb = *shm;
		if (now <= hb || now - hb < stale_ns)
			continue;
		dprintf(STDERR_FILENO, "\nmemtrace: watchdog: pid %d has not "
			"checked in for %.1f s (hung, blocked, stopped or "
			"spinning): killed it, so its probes are gone\n", mt,
			(now - hb) / 1e9);
		kill(mt, SIGKILL);
		_exit(0);
	}
}

int watchdog__start(double secs)
{
	pid_t mt = getpid(), pid;
	void *p;

	if (secs <= 0)
		return 0;
	p = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	shm = p;
	watchdog__beat();
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* own session: a job-control stop of memtrace is not ours */
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "memtrace-wd");
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		if (getppid() != mt)
			_exit(0);
		watch(mt, secs * 1e9);
	}
	wd_pid = pid;
	return 0;
}

void watchdog__stop(void)
{
	if (wd_pid > 0) {
		kill(wd_pid, SIGKILL);
		waitpid(wd_pid, NULL, 0);
	}
	wd_pid = 0;
}
