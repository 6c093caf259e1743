// SPDX-License-Identifier: GPL-2.0
/*
 * Holding a capture's target still: ptrace while memtrace writes the
 * small artifact, then a watchdog in its own session while gcore runs.
 * The rules and the reasons are in hold.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hold.h"
#include "procfs.h"
#include "util.h"

#define HOLD_RESUME_WAIT_NS	3000000000ULL
#define HOLD_CANCEL_WAIT_MS	5000
#define PF_KTHREAD		0x00200000

struct hold {
	int pid;
	int pidfd;		/* not ours: the capture's */
	int *tids, *sigs;	/* threads under ptrace, signal to give back */
	int ntids, captids;
	bool traced;		/* the tids are ours under ptrace */
	bool stopped;		/* we SIGSTOPped it: we owe it a SIGCONT */
	pid_t wd;		/* the watchdog, 0 if none */
	int sock;		/* to the watchdog */
	int32_t pgid;		/* gcore's process group */
	enum hold_end end;
	int status;
};

/* Watchdog <-> memtrace, one message per datagram. */
struct wd_msg {
	char op;		/* 'g' go, 'c' cancel; 'p' pgid, 'r' result */
	int32_t val;
	int32_t status;
};

char hold__proc_state(int pid)
{
	struct procfs_stat st;

	if (procfs__read_stat(pid, &st))
		return 0;
	return st.state == 'Z' || st.state == 'X' ? 0 : st.state;
}

static bool is_kthread(int pid)
{
	struct procfs_stat st;

	return !procfs__read_stat(pid, &st) && (st.flags & PF_KTHREAD);
}

static int tracer_of(int pid)
{
	struct procfs_status s;

	return procfs__read_status(pid, &s) ? 0 : s.tracer_pid;
}

/*
 * SIGCONT until the process no longer shows as stopped.  A dying tracer
 * (gdb being killed) keeps it in a trace stop ('t') until the kernel
 * detaches it, and a SIGSTOP that gdb's attach queued can surface right
 * after: keep checking for a moment.
 */
static void resume_target(int pidfd, int pid)
{
	uint64_t deadline = now_ns() + HOLD_RESUME_WAIT_NS;
	int calm = 0;
	char st;

	while (calm < 3 && now_ns() < deadline) {
		if (pidfd_send_signal(pidfd, SIGCONT, NULL, 0) &&
		    errno == ESRCH)
			return;
		st = hold__proc_state(pid);
		if (!st)
			return;
		calm = st == 'T' || st == 't' ? 0 : calm + 1;
		usleep(calm ? 1000 : 5000);
	}
}

/* ---- ptrace hold ---------------------------------------------------- */

static bool have_tid(const struct hold *h, int tid)
{
	int i;

	for (i = 0; i < h->ntids; i++)
		if (h->tids[i] == tid)
			return true;
	return false;
}

/* Wait for the stop PTRACE_INTERRUPT asked for; a signal that came first
 * is a stop too, and is given back at detach. */
static int wait_stop(struct hold *h, int i)
{
	int st, r;

	for (;;) {
		r = waitpid(h->tids[i], &st, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!WIFSTOPPED(st)) {
			h->tids[i] = 0;		/* the thread exited */
			return 0;
		}
		if (st >> 16 != PTRACE_EVENT_STOP)
			h->sigs[i] = WSTOPSIG(st);
		return 0;
	}
}

static void detach_all(struct hold *h)
{
	int i;

	for (i = 0; i < h->ntids; i++)
		if (h->tids[i])
			ptrace(PTRACE_DETACH, h->tids[i], NULL,
			       (void *)(long)h->sigs[i]);
	h->ntids = 0;
	h->traced = false;
}

/* sigs[] as long as tids[] */
static int grow_sigs(struct hold *h)
{
	int *n = realloc(h->sigs, h->captids * sizeof(int));

	if (!n)
		return -ENOMEM;
	h->sigs = n;
	return 0;
}

/* Seize threads until a pass over /proc/PID/task finds no new one: a
 * thread not yet interrupted may have cloned meanwhile. */
static int seize_all(struct hold *h)
{
	char path[64];
	struct dirent *de;
	bool added = true;
	int err = 0, tid;
	DIR *d;

	if (procfs__path(path, sizeof(path), h->pid, "task"))
		return -ENAMETOOLONG;
	while (added && !err) {
		added = false;
		d = opendir(path);
		if (!d)
			return h->ntids ? 0 : -ESRCH;
		while (!err && (de = readdir(d))) {
			tid = atoi(de->d_name);
			if (tid <= 0 || have_tid(h, tid))
				continue;
			if (array_grow(&h->tids, &h->captids, h->ntids,
				       sizeof(int)) ||
			    grow_sigs(h)) {
				err = -ENOMEM;
				break;
			}
			if (ptrace(PTRACE_SEIZE, tid, NULL, NULL)) {
				if (errno != ESRCH)
					err = -errno;
				continue;
			}
			h->traced = true;
			h->tids[h->ntids] = tid;
			h->sigs[h->ntids] = 0;
			h->ntids++;
			added = true;
			if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) &&
			    errno != ESRCH)
				err = -errno;
			else
				err = wait_stop(h, h->ntids - 1);
		}
		closedir(d);
	}
	return err;
}

static struct hold *hold_new(int pid, int pidfd)
{
	struct hold *h = calloc(1, sizeof(*h));

	if (h) {
		h->pid = pid;
		h->pidfd = pidfd;
		h->sock = -1;
	}
	return h;
}

int hold__freeze(int pid, int pidfd, struct hold **out, char *why,
		 size_t whylen)
{
	struct hold *h;
	int err, tracer;

	*out = NULL;
	why[0] = '\0';
	if (pid == getpid()) {
		snprintf(why, whylen, "it is memtrace itself");
		return -EPERM;
	}
	h = hold_new(pid, pidfd);
	if (!h)
		return -ENOMEM;
	err = seize_all(h);
	if (!err && !h->ntids)
		err = -ESRCH;
	if (err) {
		detach_all(h);
		if (err == -EPERM && is_kthread(pid))
			snprintf(why, whylen, "it is a kernel thread, with no "
				 "user memory (ptrace: %s)", strerror(-err));
		else if (err == -EPERM && (tracer = tracer_of(pid)))
			snprintf(why, whylen, "pid %d already traces it (a "
				 "debugger?) (ptrace: %s)", tracer,
				 strerror(-err));
		else if (err == -EPERM)
			snprintf(why, whylen, "ptrace: %s (Yama ptrace_scope or "
				 "a security module?)", strerror(-err));
		else
			snprintf(why, whylen, "ptrace: %s", strerror(-err));
		free(h->tids);
		free(h->sigs);
		free(h);
		return err;
	}
	*out = h;
	return 0;
}

/* ---- the watchdog --------------------------------------------------- */

struct wd_args {
	int pid, pidfd, mtfd, sock, artfd, logfd;
	bool stopped;
	const char *prefix, *partial, *logname;
	double timeout_s;
};

static void wd_send(int sock, char op, int val, int status)
{
	struct wd_msg m = { .op = op, .val = val, .status = status };

	/* memtrace may be gone: nothing to do about a failed send */
	if (send(sock, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		return;
}

static pid_t wd_spawn_gcore(const struct wd_args *a)
{
	char pidstr[16];
	pid_t self = getpid(), g;
	int null;

	snprintf(pidstr, sizeof(pidstr), "%d", a->pid);
	g = fork();
	if (g)
		return g;
	/* own group: killed as one with the gdb it starts */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != self)
		_exit(127);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null >= 0)
		dup2(null, 0);
	dup2(a->logfd, 1);
	dup2(a->logfd, 2);
	close_range(3, ~0U, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	umask(077);
	/*
	 * Default gcore honours /proc/PID/coredump_filter (gdb's
	 * use-coredump-filter is on); -a would dump everything.
	 */
	execlp("gcore", "gcore", "-o", a->prefix, pidstr, (char *)NULL);
	fprintf(stderr, "memtrace: exec gcore: %s\n", strerror(errno));
	_exit(127);
}

static void __attribute__((noreturn)) wd_main(const struct wd_args *a)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE };
	enum hold_end end = HOLD_CANCELLED;
	struct pollfd pfd[4];
	uint64_t deadline;
	bool mt_dead = false, go = false;
	struct wd_msg m;
	int status = 0, gfd = -1, st, n, i;
	pid_t g = 0, r;

	/* out of memtrace's session and group: a kill -PGID misses us */
	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_NAME, "memtrace-hold");
	for (i = 0; i < (int)ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_IGN);
	/* wait for "go": memtrace stops and detaches the target first */
	while (!go && !mt_dead) {
		pfd[0] = (struct pollfd){ .fd = a->sock, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = a->mtfd, .events = POLLIN };
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			mt_dead = true;
		if (pfd[0].revents) {
			n = recv(a->sock, &m, sizeof(m), 0);
			if (n <= 0)
				mt_dead = true;
			else if (m.op == 'g')
				go = true;
			else if (m.op == 'c')
				break;
		}
	}
	if (go && !mt_dead) {
		g = wd_spawn_gcore(a);
		if (g > 0) {
			setpgid(g, g);
			gfd = pidfd_open(g, 0);
			wd_send(a->sock, 'p', g, 0);
		}
	}
	deadline = now_ns() + a->timeout_s * 1e9;
	while (g > 0 && !mt_dead) {
		uint64_t now = now_ns();
		int ms = now >= deadline ? 0 : (deadline - now) / 1000000 + 1;

		pfd[0] = (struct pollfd){ .fd = a->sock, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = a->mtfd, .events = POLLIN };
		pfd[2] = (struct pollfd){ .fd = gfd, .events = POLLIN };
		pfd[3] = (struct pollfd){ .fd = a->pidfd, .events = POLLIN };
		n = poll(pfd, 4, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			end = HOLD_TIMEOUT;
			break;
		}
		if (pfd[2].revents) {
			if (waitpid(g, &status, 0) == g)
				g = -g;	/* reaped: its group may live on */
			end = HOLD_GCORE_EXITED;
			break;
		}
		if (pfd[1].revents) {
			mt_dead = true;
			break;
		}
		if (pfd[0].revents) {
			n = recv(a->sock, &m, sizeof(m), 0);
			mt_dead = n <= 0;
			if (n <= 0 || m.op == 'c')
				break;
		}
		if (pfd[3].revents) {
			end = HOLD_TARGET_EXITED;
			break;
		}
	}
	/* gdb is in gcore's group; a dead gdb lets its tracee go */
	if (g)
		kill(-(g > 0 ? g : -g), SIGKILL);
	/* as the subreaper, gdb is ours even if the gcore script died */
	for (;;) {
		r = waitpid(-1, &st, __WALL);
		if (r == g && end != HOLD_GCORE_EXITED)
			status = st;
		if (r > 0 || errno == EINTR)
			continue;
		break;
	}
	if (a->stopped)
		resume_target(a->pidfd, a->pid);
	if (end != HOLD_GCORE_EXITED || mt_dead) {
		unlinkat(a->artfd, a->partial, 0);
	} else {
		/*
		 * A core of gigabytes can take seconds to reach the disk:
		 * here, with the target already running, rather than in
		 * memtrace's loop (whose dead-man switch watches it turn).
		 */
		int fd = openat(a->artfd, a->partial, O_RDONLY | O_NOFOLLOW |
				O_CLOEXEC);

		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	/* nobody else will: the log under its name, the core's reason */
	if (mt_dead && a->logname)
		renameat(a->artfd, a->logname, a->artfd, "gcore.log");
	if (mt_dead && a->stopped)
		fprintf(stderr, "memtrace-hold: memtrace died during the dump "
			"of pid %d; resumed it\n", a->pid);
	wd_send(a->sock, 'r', end, status);
	_exit(0);
}

/* The fds the watchdog keeps, at 3.. in this order; everything else
 * (BPF links, the ring buffer) would outlive memtrace in it. */
static void wd_fds(struct wd_args *a)
{
	int *fds[] = { &a->pidfd, &a->mtfd, &a->sock, &a->artfd, &a->logfd };
	int i, n = ARRAY_SIZE(fds), moved[ARRAY_SIZE(fds)];

	/* first out of the way of 3..7, then into place */
	for (i = 0; i < n; i++)
		moved[i] = *fds[i] >= 0 ? fcntl(*fds[i], F_DUPFD_CLOEXEC, 64) :
			   -1;
	for (i = 0; i < n; i++) {
		*fds[i] = moved[i] >= 0 ? dup3(moved[i], 3 + i, O_CLOEXEC) : -1;
	}
	close_range(3 + n, ~0U, 0);
}

int hold__gcore(struct hold **hp, int pid, int pidfd, int artfd, int logfd,
		const char *logname, const char *prefix, const char *partial,
		double timeout_s)
{
	struct hold *h = *hp;
	struct wd_args a = {
		.pid = pid, .pidfd = pidfd, .artfd = artfd, .logfd = logfd,
		.logname = logname, .prefix = prefix, .partial = partial,
		.timeout_s = timeout_s,
	};
	struct wd_msg m = { .op = 'g' };
	int sv[2], err;
	pid_t wd;

	if (!h) {
		/* already stopped by someone else: run gcore, stop nothing */
		h = hold_new(pid, pidfd);
		if (!h)
			return -ENOMEM;
		*hp = h;
	}
	a.stopped = h->traced;
	a.mtfd = pidfd_open(getpid(), 0);
	if (a.mtfd < 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		close(a.mtfd);
		return err;
	}
	a.sock = sv[1];
	wd = fork();
	if (wd < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		close(a.mtfd);
		return err;
	}
	if (!wd) {
		wd_fds(&a);
		wd_main(&a);
	}
	close(sv[1]);
	close(a.mtfd);
	h->wd = wd;
	h->sock = sv[0];
	/*
	 * The watchdog exists: now stop the process for gdb and let go of
	 * it.  Each thread takes the queued SIGSTOP as it leaves the trace
	 * stop, so the process moves from one hold to the other.
	 */
	if (h->traced) {
		if (!pidfd_send_signal(pidfd, SIGSTOP, NULL, 0))
			h->stopped = true;
		detach_all(h);
	}
	if (send(h->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

int hold__fd(const struct hold *h)
{
	return h ? h->sock : -1;
}

void hold__cancel(struct hold *h)
{
	struct wd_msg m = { .op = 'c' };

	if (h && h->sock >= 0 && h->end == HOLD_RUNNING &&
	    send(h->sock, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;		/* gone: hold__poll() says so */
}

enum hold_end hold__poll(struct hold *h, int *status)
{
	struct wd_msg m;
	ssize_t n;

	while (h->end == HOLD_RUNNING && h->sock >= 0) {
		n = recv(h->sock, &m, sizeof(m), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;		/* nothing more for now */
		if (n == 0) {
			h->end = HOLD_WATCHDOG_DIED;
			break;
		}
		if (m.op == 'p')
			h->pgid = m.val;
		else if (m.op == 'r') {
			h->end = m.val;
			h->status = m.status;
		}
	}
	*status = h->status;
	return h->end;
}

void hold__release(struct hold *h)
{
	struct pollfd pfd;
	int status;

	if (!h)
		return;
	if (h->wd > 0) {
		hold__cancel(h);
		pfd = (struct pollfd){ .fd = h->sock, .events = POLLIN };
		while (hold__poll(h, &status) == HOLD_RUNNING &&
		       poll(&pfd, 1, HOLD_CANCEL_WAIT_MS) > 0)
			;
		if (h->end != HOLD_RUNNING && h->end != HOLD_WATCHDOG_DIED)
			h->pgid = 0;	/* the watchdog cleaned up */
		else
			kill(h->wd, SIGKILL);
		waitpid(h->wd, NULL, 0);
		/* a dead watchdog's gdb: killing it lets the target go */
		if (h->pgid > 0)
			kill(-h->pgid, SIGKILL);
	}
	if (h->traced)
		detach_all(h);
	if (h->stopped)
		resume_target(h->pidfd, h->pid);
	if (h->sock >= 0)
		close(h->sock);
	free(h->tids);
	free(h->sigs);
	free(h);
}
