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

/* shared with the watchdog: the last check-in, and a longer allowance */
struct beat {
	uint64_t hb;
	uint64_t busy_until;
};

static volatile struct beat *shm;
static volatile uint64_t *bpf_hb;	/* the BPF programs' .bss */
static pid_t wd_pid;

void watchdog__beat(void)
{
	uint64_t now = now_ns();

	if (shm) {
		shm->hb = now;
		shm->busy_until = 0;
	}
	if (bpf_hb)
		*bpf_hb = now;
}

void watchdog__busy(double secs)
{
	uint64_t until = now_ns() + secs * 1e9;

	if (shm) {
		shm->hb = now_ns();
		shm->busy_until = until;
	}
	/* the programs compare signed: a heartbeat ahead is a fresh one */
	if (bpf_hb)
		*bpf_hb = until;
}

void watchdog__bpf(volatile uint64_t *hb)
{
	bpf_hb = hb;
	watchdog__beat();
}

/* memtrace's state letter and CPU ticks, from /proc/PID/stat. */
static bool proc_state(pid_t pid, char *state, unsigned long long *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return false;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			 "%*u %llu %llu", state, &ut, &st) != 3)
		return false;
	*ticks = ut + st;
	return true;
}

/*
 * Is memtrace stuck?  Its heartbeat is stale, and it is stopped, or has
 * used no CPU for the last second (blocked in a write, a lock, the
 * kernel).  A memtrace busy with a long refresh (thousands of rows, a
 * big symbol table) is not; past STUCK_HARD times the allowance it is
 * ended anyway.
 */
#define STUCK_HARD	12

static void __attribute__((noreturn)) watch(pid_t mt, uint64_t stale_ns)
{
	unsigned long long ticks = 0, prev = 0;
	uint64_t idle_since = now_ns();
	char state = '?';
	struct timespec tick = { 0, 200 * 1000 * 1000 };
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
		hb = shm->hb;
		if (proc_state(mt, &state, &ticks) && ticks != prev)
			idle_since = now;
		prev = ticks;
		if (now <= hb || now - hb < stale_ns || now < shm->busy_until)
			continue;
		if (state != 'T' && state != 't' &&
		    now - idle_since < 1000000000ull &&
		    now - hb < STUCK_HARD * stale_ns)
			continue;	/* working, not stuck */
		dprintf(STDERR_FILENO, "\nmemtrace: watchdog: pid %d has not "
			"checked in for %.0f s (hung, blocked or stopped): "
			"killed it, so its probes are gone\n", mt,
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
