// SPDX-License-Identifier: GPL-2.0
/*
 * memtrace: where every process keeps its memory, live.
 *
 * Lifecycle: parse options -> open the BPF skeleton and size its maps ->
 * load -> attach tracepoints -> attach allocator probes for the chosen
 * processes -> poll the ring buffer and refresh the view -> detach.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <poll.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "app.h"
#include "attach.h"
#include "collect.h"
#include "dump.h"
#include "goheap.h"
#include "memtrace.skel.h"
#include "budget.h"
#include "follow.h"
#include "outq.h"
#include "watchdog.h"
#include "sites.h"
#include "syms.h"
#include "unwind.h"
#include "cfi.h"
#include "procfs.h"
#include "tui.h"
#include "util.h"

#define MT_VERSION "0.1.0"

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	exiting = sig;
}

/*
 * The signals memtrace handles or ignores for itself, and how they were
 * when it started: the -- CMD child gets those back before exec, so the
 * command runs as it would without memtrace (an ignored SIGPIPE would
 * make `yes | head -1` print "Broken pipe").
 */
static const int own_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
static struct sigaction orig_sa[ARRAY_SIZE(own_sigs)];
static sigset_t orig_mask;

static void signals__save(void)
{
	size_t i;

	sigprocmask(SIG_SETMASK, NULL, &orig_mask);
	for (i = 0; i < ARRAY_SIZE(own_sigs); i++)
		sigaction(own_sigs[i], NULL, &orig_sa[i]);
}

/* In the child, before exec: async-signal-safe calls only. */
static void signals__restore(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(own_sigs); i++)
		sigaction(own_sigs[i], &orig_sa[i], NULL);
	sigprocmask(SIG_SETMASK, &orig_mask, NULL);
}

static const char usage[] =
"Usage: memtrace [OPTIONS] [-p PID[,PID...]] [-- CMD [ARGS...]]\n"
"Show, live and exactly, where processes keep their heap memory.\n"
"\n"
"What to trace (default: the node view, every process, no allocator probe:\n"
"RSS by kind, heap/mmap growth, page faults, cgroup limits; growth sites\n"
"are estimates from user stacks sampled at page faults):\n"
"  -p, --pid PID[,PID...]   trace these processes exactly (every malloc/free),\n"
"                           with the children they forked already and later\n"
"      --cgroup DIR         trace every process of this cgroup exactly, now\n"
"                           and as they join (e.g. /sys/fs/cgroup/memory/X)\n"
"  -- CMD [ARGS...]         run CMD and trace it (and its children) from its\n"
"                           first allocation; print what it still holds when\n"
"                           it exits and exit with its status\n"
"\n"
"      --max-overhead PCT   stop exact tracing of a process whose probes cost\n"
"                           more than PCT% of its CPU time (estimated: probe\n"
"                           hits x the uprobe cost measured at start)\n"
"      --watchdog SECS      if memtrace stops checking in for SECS (hung,\n"
"                           stopped), a watchdog kills it and its probes go\n"
"                           (default 5, 0 = off)\n"
"      --exact              node-wide exact tracing: probes every malloc and\n"
"                           free of every process (costly: ~1-10 us per call)\n"
"\n"
"Views (default: the live table on a terminal, batch otherwise):\n"
"  -b, --batch              plain-text table every refresh, like top -b\n"
"  -j, --json               one JSON object per refresh (JSON Lines)\n"
"  -d, --delay SECS         refresh interval (default 1)\n"
"  -n, --iterations N       stop after N refreshes\n"
"  -o, --output FILE        write the batch/JSON view to FILE\n"
"      --top-sites N        allocation sites per process in JSON (default 5,\n"
"                           0 = none)\n"
"\n"
"Profiles written on exit:\n"
"      --pprof FILE         gzipped pprof heap profile (go tool pprof)\n"
"      --folded FILE        folded stacks weighted by live bytes (flame graphs)\n"
"\n"
"Pre-OOM evidence (see memtrace(8), PRE-OOM CAPTURE):\n"
"      --dump-at PCT%|BYTES  capture a process when its memory cgroup reaches\n"
"                           PCT% of memory.high (else the hard limit), or\n"
"                           BYTES (K/M/G suffixes) of usage\n"
"      --dump-dir DIR       where captures and OOM post-mortems go\n"
"                           (default /var/lib/memtrace)\n"
"      --no-core            skip the gcore core dump, keep the rest\n"
"      --dump-max N         captures per process (default 1)\n"
"      --dump-cooldown SECS between captures of one process (default 60)\n"
"      --gcore-timeout SECS give up on gcore after SECS (default 60)\n"
"      --slow-down          cgroup v2: lower memory.high a little below\n"
"                           memory.max to buy time for the dump (risky)\n"
"  memtrace dump [--dump-dir DIR] [--no-core] PID\n"
"                           capture PID now and exit\n"
"\n"
"Tracing:\n"
"      --no-stacks          do not record allocation stacks (cheaper)\n"
"      --sample-bytes N     sample allocations, one per N bytes on average\n"
"                           (Poisson; estimates are unbiased); 0 = exact\n"
"      --max-blocks N       live blocks tracked at once (default 1048576)\n"
"      --hot-blocks N       slots of the bucket table tried first (65536)\n"
"      --ringbuf-mb N       ring-buffer size in MiB (default 8)\n"
"      --no-session         uprobe + uretprobe even where the kernel has\n"
"                           session uprobes\n"
"      --no-cfi             walk stacks by frame pointer only (no .eh_frame\n"
"                           unwinding of code built without them)\n"
"      --entry-probes       probe function entries (no probe-site shifting)\n"
"      --bench-floor        empty programs at the same probe sites: the\n"
"                           kernel's own cost, for make bench\n"
"\n"
"Go programs (their runtime's own heap profile is read; see memtrace(8)):\n"
"      --go-enable-profiling[=RATE]  where a Go program keeps no heap\n"
"                           profile (MemProfileRate 0), WRITE RATE (default\n"
"                           524288) into its runtime.MemProfileRate\n"
"  -v, --verbose            say where each probe went and why\n"
"  -h, --help               this text\n"
"  -V, --version            version\n"
"\n"
"Needs root (CAP_BPF, CAP_PERFMON) and a kernel with BTF.  See memtrace(8).\n";

enum {
	OPT_TOP_SITES = 256, OPT_PPROF, OPT_FOLDED, OPT_NO_STACKS,
	OPT_SAMPLE, OPT_MAX_BLOCKS, OPT_RINGBUF, OPT_DUMP_AT, OPT_DUMP_DIR,
	OPT_NO_CORE, OPT_DUMP_MAX, OPT_DUMP_COOLDOWN, OPT_GCORE_TIMEOUT,
	OPT_SLOW_DOWN, OPT_FLOOR, OPT_ENTRY_PROBES, OPT_NO_SESSION,
	OPT_HOT_BLOCKS, OPT_GO_ENABLE,
	OPT_EXACT, OPT_WATCHDOG, OPT_CGROUP, OPT_MAX_OVERHEAD,
	OPT_NO_CFI,
};

static const struct option long_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "batch", no_argument, NULL, 'b' },
	{ "json", no_argument, NULL, 'j' },
	{ "delay", required_argument, NULL, 'd' },
	{ "iterations", required_argument, NULL, 'n' },
	{ "output", required_argument, NULL, 'o' },
	{ "top-sites", required_argument, NULL, OPT_TOP_SITES },
	{ "pprof", required_argument, NULL, OPT_PPROF },
	{ "folded", required_argument, NULL, OPT_FOLDED },
	{ "no-stacks", no_argument, NULL, OPT_NO_STACKS },
	{ "sample-bytes", required_argument, NULL, OPT_SAMPLE },
	{ "max-blocks", required_argument, NULL, OPT_MAX_BLOCKS },
	{ "hot-blocks", required_argument, NULL, OPT_HOT_BLOCKS },
	{ "ringbuf-mb", required_argument, NULL, OPT_RINGBUF },
	{ "dump-at", required_argument, NULL, OPT_DUMP_AT },
	{ "dump-dir", required_argument, NULL, OPT_DUMP_DIR },
	{ "no-core", no_argument, NULL, OPT_NO_CORE },
	{ "dump-max", required_argument, NULL, OPT_DUMP_MAX },
	{ "dump-cooldown", required_argument, NULL, OPT_DUMP_COOLDOWN },
	{ "gcore-timeout", required_argument, NULL, OPT_GCORE_TIMEOUT },
	{ "slow-down", no_argument, NULL, OPT_SLOW_DOWN },
	{ "bench-floor", no_argument, NULL, OPT_FLOOR },
	{ "entry-probes", no_argument, NULL, OPT_ENTRY_PROBES },
	{ "no-session", no_argument, NULL, OPT_NO_SESSION },
	{ "go-enable-profiling", optional_argument, NULL, OPT_GO_ENABLE },
	{ "exact", no_argument, NULL, OPT_EXACT },
	{ "watchdog", required_argument, NULL, OPT_WATCHDOG },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "max-overhead", required_argument, NULL, OPT_MAX_OVERHEAD },
	{ "no-cfi", no_argument, NULL, OPT_NO_CFI },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{},
};

/*
 * Every option value is parsed here, by range: a number that wraps,
 * overflows or is not finite is refused with its range in the message,
 * never clamped into something else (a huge --max-blocks that wrapped
 * looped forever; --dump-at inf never fired).
 */
static int opt_uint(const char *opt, const char *s, uint64_t lo,
		    uint64_t hi, uint64_t *out)
{
	int err = parse_uint(s, lo, hi, out);

	if (err == -ERANGE)
		fprintf(stderr, "memtrace: %s: want %llu..%llu, got '%s'\n",
			opt, (unsigned long long)lo, (unsigned long long)hi, s);
	else if (err)
		fprintf(stderr, "memtrace: %s: not a number: '%s'\n", opt, s);
	return err;
}

static int opt_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	uint64_t v;
	int err = opt_uint(opt, s, lo, hi, &v);

	if (!err)
		*out = v;
	return err;
}

static int opt_secs(const char *opt, const char *s, double lo, double hi,
		    double *out)
{
	int err = parse_real(s, lo, hi, out);

	if (err)
		fprintf(stderr, "memtrace: %s: want seconds from %g to %g, "
			"got '%s'\n", opt, lo, hi, s);
	return err;
}

/*
 * "80%" or "512M" / "2G" / "1048576".  A percentage below 1 or a size
 * below a page could never be told from "no threshold"; above 100% or
 * 2^60 bytes it could never be reached.
 */
static int parse_dump_at(struct env *env, const char *s)
{
	size_t n = strlen(s);
	char pct[64];

	if (n && n < sizeof(pct) && s[n - 1] == '%') {
		memcpy(pct, s, n - 1);
		pct[n - 1] = '\0';
		if (parse_real(pct, 1, 100, &env->dump_at_pct))
			goto bad;
		return 0;
	}
	if (parse_size(s, 4096, 1ull << 60, &env->dump_at_bytes))
		goto bad;
	return 0;
bad:
	fprintf(stderr, "memtrace: --dump-at: want PCT%% (1-100) or a size "
		"of at least 4096 bytes (whole bytes, optional K/M/G/T "
		"suffix, at most 1024P), got '%s'\n", s);
	return -EINVAL;
}

static int parse_pids(struct env *env, const char *arg)
{
	const char *p = arg, *e;
	char tok[32];
	uint64_t v;

	do {
		e = strchrnul(p, ',');
		if (e == p || e - p >= (long)sizeof(tok)) {
			fprintf(stderr, "memtrace: -p: want PID[,PID...], got "
				"'%s'\n", arg);
			return -EINVAL;
		}
		memcpy(tok, p, e - p);
		tok[e - p] = '\0';
		if (opt_uint("-p", tok, 1, INT_MAX, &v))
			return -EINVAL;
		if (env->npids == MT_MAX_PIDS) {
			fprintf(stderr, "memtrace: -p: at most %d pids\n",
				MT_MAX_PIDS);
			return -E2BIG;
		}
		env->pids[env->npids++] = v;
		p = *e ? e + 1 : e;
	} while (*e);
	return 0;
}

static int parse_args(int argc, char **argv, struct env *env)
{
	bool view_chosen = false;
	uint64_t v;
	int c;

	env->delay = 1.0;
	env->stacks = true;
	env->top_sites = 5;
	env->ringbuf_bytes = 8 << 20;
	env->max_blocks = 1 << 20;
	env->hot_blocks = 1 << 16;
	env->view = isatty(STDOUT_FILENO) ? VIEW_TUI : VIEW_BATCH;
	env->dump_core = true;
	env->dump_max = 1;
	env->dump_cooldown = 60;
	env->gcore_timeout = 60;
	env->fault_sample = 64 << 10;
	env->watchdog = 5;

	/* memtrace dump [OPTIONS] PID: a one-shot capture */
	if (argc >= 2 && !strcmp(argv[1], "dump")) {
		env->mode = MODE_DUMP;
		argv++;
		argc--;
	}

	while ((c = getopt_long(argc, argv, "+p:bjd:n:o:vhV", long_opts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pids(env, optarg))
				return -EINVAL;
			env->mode = MODE_PIDS;
			break;
		case 'b':
			env->view = VIEW_BATCH;
			view_chosen = true;
			break;
		case 'j':
			env->view = VIEW_JSON;
			view_chosen = true;
			break;
		case 'd':
			if (opt_secs("-d", optarg, 0.05, 86400, &env->delay))
				return -EINVAL;
			break;
		case 'n':
			/* "stop after 0 refreshes" cannot mean "never stop" */
			if (!parse_uint(optarg, 0, 0, &v)) {
				fprintf(stderr, "memtrace: -n: want 1 or more "
					"refreshes (leave -n out to run until "
					"interrupted), got '%s'\n", optarg);
				return -EINVAL;
			}
			if (opt_uint("-n", optarg, 1, LONG_MAX, &v))
				return -EINVAL;
			env->iterations = v;
			break;
		case 'o':
			env->output_path = optarg;
			break;
		case OPT_TOP_SITES:
			if (opt_int("--top-sites", optarg, 0, 1000,
				    &env->top_sites))
				return -EINVAL;
			break;
		case OPT_PPROF:
			env->pprof_path = optarg;
			break;
		case OPT_FOLDED:
			env->folded_path = optarg;
			break;
		case OPT_NO_STACKS:
			env->stacks = false;
			break;
		case OPT_SAMPLE:
			if (opt_uint("--sample-bytes", optarg, 0, 1ull << 40,
				     &env->sample_bytes))
				return -EINVAL;
			break;
		case OPT_MAX_BLOCKS:
			/* a BPF map's size is 32 bits; 2^28 blocks is ~20G */
			if (opt_uint("--max-blocks", optarg, 1024, 1u << 28,
				     &env->max_blocks))
				return -EINVAL;
			break;
		case OPT_HOT_BLOCKS:
			if (opt_uint("--hot-blocks", optarg, 1, 1u << 28,
				     &env->hot_blocks))
				return -EINVAL;
			break;
		case OPT_RINGBUF:
			if (opt_uint("--ringbuf-mb", optarg, 1, 1024, &v))
				return -EINVAL;
			/* a ring buffer must be a power of two pages */
			env->ringbuf_bytes = 1 << 20;
			while (env->ringbuf_bytes < (v << 20))
				env->ringbuf_bytes <<= 1;
			break;
		case OPT_DUMP_AT:
			if (parse_dump_at(env, optarg))
				return -EINVAL;
			break;
		case OPT_DUMP_DIR:
			env->dump_dir = optarg;
			break;
		case OPT_NO_CORE:
			env->dump_core = false;
			break;
		case OPT_DUMP_MAX:
			if (opt_int("--dump-max", optarg, 0, 1000,
				    &env->dump_max))
				return -EINVAL;
			break;
		case OPT_DUMP_COOLDOWN:
			if (opt_secs("--dump-cooldown", optarg, 0, 86400 * 7,
				     &env->dump_cooldown))
				return -EINVAL;
			break;
		case OPT_GCORE_TIMEOUT:
			if (opt_secs("--gcore-timeout", optarg, 0.1, 86400,
				     &env->gcore_timeout))
				return -EINVAL;
			break;
		case OPT_SLOW_DOWN:
			env->dump_slow_down = true;
			break;
		case OPT_FLOOR:
			env->floor = true;
			break;
		case OPT_ENTRY_PROBES:
			env->entry_probes = true;
			break;
		case OPT_NO_SESSION:
			env->no_session = true;
			break;
		case OPT_GO_ENABLE:
			v = 512 * 1024;	/* the runtime's default */
			if (optarg && opt_uint("--go-enable-profiling", optarg,
					       1, INT32_MAX, &v))
				return -EINVAL;
			env->go_enable_rate = v;
			break;
		case OPT_EXACT:
			env->exact = true;
			break;
		case OPT_CGROUP:
			env->cgroup_path = optarg;
			if (env->mode != MODE_DUMP)
				env->mode = MODE_PIDS;
			break;
		case OPT_MAX_OVERHEAD:
			if (parse_real(optarg, 0.1, 100, &env->max_overhead)) {
				fprintf(stderr, "memtrace: --max-overhead: want a "
					"percentage from 0.1 to 100, got '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_WATCHDOG:
			if (opt_secs("--watchdog", optarg, 0, 3600,
				     &env->watchdog))
				return -EINVAL;
			break;
		case OPT_NO_CFI:
			env->no_cfi = true;
			break;
		case 'v':
			env->verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		case 'V':
			printf("memtrace %s\n", MT_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'memtrace --help'.\n");
			return -EINVAL;
		}
	}
	if (env->mode == MODE_DUMP) {
		if (optind != argc - 1 || env->npids || env->cgroup_path ||
		    parse_pids(env, argv[optind])) {
			fprintf(stderr, "memtrace: usage: memtrace dump "
				"[--dump-dir DIR] [--no-core] "
				"[--gcore-timeout SECS] PID\n");
			return -EINVAL;
		}
		env->view = VIEW_BATCH;
		return 0;
	}
	if (optind < argc) {
		if (env->mode == MODE_PIDS) {
			fprintf(stderr, "memtrace: -p or --cgroup and a command "
				"exclude each other\n");
			return -EINVAL;
		}
		env->mode = MODE_CMD;
		env->cmd = &argv[optind];
	}
	if (env->exact && env->mode == MODE_NODE)
		fprintf(stderr, "memtrace: warning: --exact probes every malloc "
			"and free on the node: each call pays a kernel trap "
			"(~1-10 us); use -p PID to trace one process\n");
	if (env->view == VIEW_TUI && env->output_path)
		env->view = VIEW_BATCH;
	if (!view_chosen && env->view == VIEW_BATCH && !env->output_path &&
	    !isatty(STDOUT_FILENO))
		fprintf(stderr, "memtrace: stdout is not a terminal: printing "
			"the batch view (-b) instead of the live table\n");
	return 0;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && !getenv("MEMTRACE_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Sample gaps: -ln(U) * N, so gaps are exponential with mean N. */
static int fill_sampling(struct app *app)
{
	int gaps = bpf_map__fd(app->skel->maps.sample_gaps);
	int w = bpf_map__fd(app->skel->maps.sample_w);
	double n = app->env.sample_bytes;
	uint32_t i, max_w = bpf_map__max_entries(app->skel->maps.sample_w);

	srand48(now_ns());
	for (i = 0; i < bpf_map__max_entries(app->skel->maps.sample_gaps); i++) {
		uint64_t v = -log(1.0 - drand48()) * n;

		if (!v)
			v = 1;
		if (bpf_map_update_elem(gaps, &i, &v, BPF_ANY))
			return -errno;
	}
	/* weight(s) = s / (1 - exp(-s/N)) at s = i * N / 64 */
	for (i = 0; i < max_w; i++) {
		double s = i * n / 64;
		uint64_t v = i ? s / -expm1(-s / n) : n;

		if (bpf_map_update_elem(w, &i, &v, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int open_and_load(struct app *app)
{
	struct memtrace_bpf *skel;
	struct env *env = &app->env;
	uint64_t hot, nbuckets = 1;
	int err;

	skel = memtrace_bpf__open();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "memtrace: cannot open BPF object: %s\n",
			strerror(-err));
		return err;
	}
	app->skel = skel;
	skel->rodata->trace_all = env->mode == MODE_NODE;
	skel->rodata->want_stacks = env->stacks;
	skel->rodata->sample_bytes = env->sample_bytes;
	skel->rodata->self_tgid = getpid();
	skel->rodata->ringbuf_wake_bytes = env->ringbuf_bytes / 8;
	if (app__growth_view(app))
		skel->rodata->fault_sample_bytes = env->fault_sample;
	/*
	 * No syscall tracepoint in the node view: with one on, every
	 * syscall on the node pays the slow path (see mm_syscalls).
	 */
	skel->rodata->mm_syscalls = !app__growth_view(app);
	bpf_program__set_autoload(skel->progs.on_sys_exit,
				  !app__growth_view(app));
	bpf_program__set_autoload(skel->progs.on_unmapped_area,
				  app__growth_view(app));
	bpf_program__set_autoload(skel->progs.mm_iter, app__growth_view(app));
	skel->rodata->stale_ns = env->mode == MODE_DUMP ? 0 :
				 env->watchdog * 1e9;
	/*
	 * Session uprobes when the kernel has them (6.13+): filtered,
	 * nested and unsampled calls then skip the return probe.
	 */
	app->session = !env->no_session && attach__session_supported();
	bpf_program__set_autoload(skel->progs.alloc_session, app->session);
	bpf_program__set_autoload(skel->progs.floor_session, app->session);
	if (app->session) {
		bpf_program__set_expected_attach_type(skel->progs.alloc_session,
			MT_BPF_TRACE_UPROBE_SESSION);
		bpf_program__set_expected_attach_type(skel->progs.floor_session,
			MT_BPF_TRACE_UPROBE_SESSION);
	}
	/*
	 * The floor is the uprobes alone: none of memtrace's tracepoint
	 * programs (which also run on the uretprobe syscall) is part of it.
	 */
	if (env->floor) {
		struct bpf_program *prog;

		bpf_object__for_each_program(prog, skel->obj)
			if (!strncmp(bpf_program__section_name(prog), "tp_btf/",
				     7))
				bpf_program__set_autoload(prog, false);
	}
	if (env->verbose)
		fprintf(stderr, "memtrace: %s\n", app->session ?
			"session uprobes for allocators" :
			"uprobe + uretprobe for allocators");
	bpf_map__set_max_entries(skel->maps.events, env->ringbuf_bytes);
	/* the small table: a power of two of buckets, --hot-blocks slots */
	hot = env->hot_blocks < env->max_blocks ? env->hot_blocks :
						  env->max_blocks;
	while (nbuckets * MT_BUCKET_SLOTS < hot)
		nbuckets <<= 1;
	bpf_map__set_max_entries(skel->maps.hot, nbuckets);
	skel->rodata->hot_mask = nbuckets - 1;
	bpf_map__set_max_entries(skel->maps.blocks, env->max_blocks);
	if (!env->stacks)
		bpf_map__set_max_entries(skel->maps.stacks, 1);
	/* CFI unwinding: the row table is the one big fixed cost (16 MiB) */
	skel->rodata->cfi_on = env->stacks && !env->no_cfi && !env->floor;
	if (!skel->rodata->cfi_on) {
		bpf_map__set_max_entries(skel->maps.cfi_rows, 1);
		bpf_map__set_max_entries(skel->maps.cfi_procs, 1);
	}
	err = memtrace_bpf__load(skel);
	if (err) {
		fprintf(stderr, "memtrace: cannot load BPF programs: %s%s\n",
			strerror(-err), err == -EPERM ? " (are you root?)" :
			err == -ENOMEM || err == -E2BIG ? " (--max-blocks or "
			"--ringbuf-mb too large for this machine?)" : "");
		return err;
	}
	/* checked in from now on; the programs idle while it is stale */
	watchdog__bpf((volatile uint64_t *)&skel->bss->heartbeat_ns);
	if (env->sample_bytes) {
		err = fill_sampling(app);
		if (err)
			return err;
	}
	err = memtrace_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "memtrace: cannot attach tracepoints: %s\n",
			strerror(-err));
		return err;
	}
	return 0;
}

/*
 * --pprof and --folded are written at exit, after the whole trace: a
 * directory they cannot be written to is said now, not then.  The probe
 * file is created and removed as the real one will be (tmpfile_beside).
 */
static int profiles_writable(const struct env *env)
{
	const char *paths[] = { env->pprof_path, env->folded_path };
	char tmp[PATH_MAX + 16];
	size_t i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		if (!paths[i])
			continue;
		fd = tmpfile_beside(paths[i], tmp, sizeof(tmp));
		if (fd < 0) {
			fprintf(stderr, "memtrace: %s: cannot be written: %s\n",
				paths[i], strerror(-fd));
			return fd;
		}
		close(fd);
		unlink(tmp);
	}
	return 0;
}

static int check_env(void)
{
	struct btf *btf;

	if (geteuid() != 0) {
		fprintf(stderr, "memtrace: must run as root (loads BPF "
			"programs and uprobes)\n");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "memtrace: kernel has no BTF "
			"(/sys/kernel/btf/vmlinux missing): needs a kernel "
			"built with CONFIG_DEBUG_INFO_BTF=y\n");
		return -ENOTSUP;
	}
	/*
	 * Parse it once here: libbpf's own failure on a damaged BTF is an
	 * errno from deep inside CO-RE relocation ("No such process").
	 */
	btf = btf__parse_raw("/sys/kernel/btf/vmlinux");
	if (!btf) {
		char why[128];

		libbpf_strerror(-errno, why, sizeof(why));
		fprintf(stderr, "memtrace: kernel BTF /sys/kernel/btf/vmlinux "
			"cannot be parsed (%s): it is damaged or not BTF; "
			"CO-RE relocation needs it\n", why);
		return -EINVAL;
	}
	btf__free(btf);
	return 0;
}

/*
 * A thread id given to -p means its process: probes, counters and rows
 * are per process (thread group).
 */
static int tgid_of(int pid)
{
	struct procfs_status s;
	int tgid;

	if (procfs__read_status(pid, &s))
		return pid;
	tgid = s.tgid;
	if (tgid <= 0 || tgid == pid)
		return pid;
	fprintf(stderr, "memtrace: pid %d is a thread of process %d: tracing "
		"%d\n", pid, tgid, tgid);
	return tgid;
}

/*
 * What -p and --cgroup mean beyond the pids given: workers forked before
 * memtrace started (nginx, postgres), and the cgroup's members.
 */
static int start_followers(struct app *app)
{
	int *pids, n, i, err, nkids;

	err = follow__descendants(app->env.pids, app->env.npids, &pids, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		if (app__trace_pid(app, pids[i]) == -ENOMEM)
			err = -ENOMEM;
	nkids = n;
	free(pids);
	if (nkids)
		fprintf(stderr, "memtrace: also tracing %d processes the given "
			"ones forked before memtrace started\n", nkids);
	if (err || !app->env.cgroup_path)
		return err;
	err = follow__cgroup_pids(app->env.cgroup_path, &pids, &n);
	if (err) {
		fprintf(stderr, "memtrace: --cgroup %s: %s\n",
			app->env.cgroup_path, strerror(-err));
		return err;
	}
	for (i = 0; i < n && !err; i++)
		if (app__trace_pid(app, pids[i]) == -ENOMEM)
			err = -ENOMEM;
	free(pids);
	fprintf(stderr, "memtrace: cgroup %s: tracing its %d processes and "
		"those that join it\n", app->env.cgroup_path, n);
	return err;
}

static int start_pids(struct app *app)
{
	struct procfs_maps *maps;
	int i, err;

	for (i = 0; i < app->env.npids; i++) {
		int pid = app->env.pids[i];
		struct mt_row *r;

		if (kill(pid, 0) && errno == ESRCH) {
			fprintf(stderr, "memtrace: pid %d: no such process\n",
				pid);
			return -ESRCH;
		}
		pid = tgid_of(pid);
		app->env.pids[i] = pid;
		r = table__add(app->table, pid);
		if (!r)
			return -ENOMEM;
		procfs__read_comm(pid, r->comm, sizeof(r->comm));
		/* its mappings, read once for symbols, unwinding and CFI */
		if (procfs__read_maps(pid, &maps))
			maps = NULL;
		err = app__prepare_exact(app, pid, maps);
		procfs__maps_put(maps);
		if (err)
			return err;
		err = attach__pid(app->attach, pid, r->id);
		if (err == -ENOENT) {
			app__warn_no_libc(app, r);
			continue;
		}
		if (err == -ESRCH) {
			fprintf(stderr, "memtrace: pid %d: exited before it "
				"could be traced\n", pid);
			return err;
		}
		if (err) {
			fprintf(stderr, "memtrace: pid %d: cannot attach: %s\n",
				pid, strerror(-err));
			return err;
		}
		r->probed = true;
	}
	return start_followers(app);
}

static int start_node(struct app *app)
{
	int i, *pids, npids, err = procfs__pids(&pids, &npids);

	if (err)
		return err;
	for (i = 0; i < npids; i++) {
		int pid = pids[i];

		if (pid == getpid())
			continue;
		watchdog__beat();
		/* the node view: every process, nothing to attach */
		if (app__growth_view(app)) {
			collect__track(app->collect, pid, 0);
			/* fault stacks are walked too: their code's CFI */
			cfi__scan_pid(app->cfi, pid, NULL);
			continue;
		}
		/*
		 * Every process with a C library gets a row, and every Go
		 * program (its runtime's heap is read), once the attach
		 * thread has probed it (events.c): the first table comes at
		 * once, the header counts what is left.
		 */
		if (attach__queue(app->attach, ATTACH_OP_NODE_LIB, pid, 0,
				  NULL, 0))
			break;
	}
	free(pids);
	return 0;
}

/* Where execvp would find cmd: the first executable match in PATH. */
static const char *resolve_cmd(const char *cmd, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	char *dup, *dir, *save = NULL;

	if (strchr(cmd, '/') || !path)
		return cmd;
	dup = strdup(path);
	if (!dup)
		return cmd;
	for (dir = strtok_r(dup, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/%s", *dir ? dir : ".", cmd);
		if (!access(buf, X_OK)) {
			free(dup);
			return buf;
		}
	}
	free(dup);
	return cmd;
}

/*
 * Fork the command stopped before exec, probe the allocators it will
 * use (its C library, found as the loader will, and whatever else
 * defines malloc: the executable itself when static, preloaded or
 * linked-in allocators), then let it exec, so its very first allocation
 * is seen.  Anything else is probed when its mmap shows up.
 *
 * The probes are node-wide, filtered in BPF by the traced-process map:
 * the kernel adds each child to that map at fork, so children are traced
 * from their first allocation, with no window that a per-pid attach from
 * user space would leave.  Other processes using that libc pay a probe
 * hit that finds nothing to do (~1 us per call) while the command runs.
 */
static int start_cmd(struct app *app)
{
	char libc[PATH_MAX], exe[PATH_MAX];
	int go[2], err, log_fd = -1;
	const char *path;
	pid_t pid;
	struct mt_row *r;

	if (pipe2(go, O_CLOEXEC))
		return -errno;
	/*
	 * The live view owns the terminal: the command's output would tear
	 * the table and its reads would steal our keys.  Its output goes to
	 * a file (named now and at exit), its input is /dev/null.
	 */
	if (app->env.view == VIEW_TUI) {
		snprintf(app->cmd_log, sizeof(app->cmd_log),
			 "/tmp/memtrace-cmd.XXXXXX");
		log_fd = mkostemp(app->cmd_log, O_CLOEXEC);
		if (log_fd < 0) {
			err = -errno;
			fprintf(stderr, "memtrace: cannot create a file for the "
				"command's output: %s\n", strerror(-err));
			app->cmd_log[0] = '\0';
			close(go[0]);
			close(go[1]);
			return err;
		}
		fprintf(stderr, "memtrace: output of %s goes to %s\n",
			app->env.cmd[0], app->cmd_log);
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char c;

		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(127);
		if (log_fd >= 0) {
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

			if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
			    dup2(log_fd, STDOUT_FILENO) < 0 ||
			    dup2(log_fd, STDERR_FILENO) < 0)
				_exit(127);
		}
		signals__restore();
		execvp(app->env.cmd[0], app->env.cmd);
		fprintf(stderr, "memtrace: %s: %s\n", app->env.cmd[0],
			strerror(errno));
		_exit(127);
	}
	close(go[0]);
	if (log_fd >= 0)
		close(log_fd);
	app->child = pid;
	r = table__add(app->table, pid);
	if (!r) {
		err = -ENOMEM;
		goto out;
	}
	snprintf(r->comm, sizeof(r->comm), "%s", app->env.cmd[0]);
	err = collect__track(app->collect, pid, app->env.sample_bytes);
	if (err)
		goto out;
	path = resolve_cmd(app->env.cmd[0], exe, sizeof(exe));
	snprintf(r->exe, sizeof(r->exe), "%.*s", (int)sizeof(r->exe) - 1, path);
	err = attach__cmd(app->attach, path, getpid(), libc, sizeof(libc));
	/* its first allocations come before its mappings can be read */
	if (!err && app->unwind)
		unwind__scan_exe(app->unwind, path, libc[0] ? libc : NULL);
	/*
	 * Its code's CFI before it runs (the view has not started yet):
	 * its first stacks are then whole.  Waited for a second at most
	 * (libc takes ~20 ms, node seconds): a big program's first frames
	 * are walked by frame pointer meanwhile, and counted.
	 */
	if (!err && app->cfi) {
		char dir[PATH_MAX];
		const char *slash = strrchr(libc, '/');

		snprintf(dir, sizeof(dir), "%.*s", slash && libc[0] ?
			 (int)(slash - libc) : 0, libc);
		cfi__scan_exe(app->cfi, path, dir[0] ? dir : NULL);
		cfi__wait(app->cfi, 1000);
	}
	if (err == -ENOENT) {
		/* a stripped static binary: the rest is still traced */
		app__warn_no_libc(app, r);
		err = 0;
	} else if (err) {
		fprintf(stderr, "memtrace: cannot probe the allocator: %s\n",
			strerror(-err));
		goto out;
	} else {
		r->probed = true;
	}
out:
	if (err) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		app->child = 0;
	} else if (write(go[1], "g", 1) != 1) {
		err = -errno;
	}
	close(go[1]);
	return err;
}

/* Queue up to this much output for a stalled reader, then drop refreshes. */
#define OUTQ_CAP	(4 << 20)

/*
 * The batch and JSON views write through a bounded queue: a reader that
 * stalls (a pipe into a pager nobody scrolls, a hung ssh) costs dropped
 * refreshes, counted and reported at exit, never a blocked memtrace with
 * its probes still attached.
 */
static int out_open(struct app *app)
{
	int err = outq__new(fileno(app->out_file), OUTQ_CAP, &app->outq,
			    &app->out);

	if (err)
		fprintf(stderr, "memtrace: output queue: %s\n", strerror(-err));
	return err;
}

/*
 * A write that fails (full disk, closed pipe) ends the run with an
 * error: a report that silently stops growing would be worse.
 */
static int out_check(struct app *app)
{
	int err = outq__pump(app->outq);

	if (!err && ferror(app->out))
		err = -EIO;
	if (err)
		fprintf(stderr, "memtrace: %s: write error: %s\n",
			app->env.output_path ? app->env.output_path : "stdout",
			strerror(-err));
	return err;
}

/* At exit, after the probes are gone: the rest, and what was dropped. */
static void out_close(struct app *app)
{
	size_t left;

	if (!app->outq)
		return;
	/* a write error was said already */
	if (outq__drain(app->outq, 2000))
		goto out;
	left = outq__queued(app->outq);
	if (outq__dropped(app->outq) || left)
		fprintf(stderr, "memtrace: the reader of %s did not keep up: "
			"%llu refreshes dropped, %zu bytes not written\n",
			app->env.output_path ? app->env.output_path : "stdout",
			(unsigned long long)outq__dropped(app->outq), left);
out:
	outq__free(app->outq);
	app->outq = NULL;
}

/*
 * One refresh of the batch or JSON view.  A write that fails (full disk,
 * closed pipe) ends the run with an error: a report that silently stops
 * growing would be worse.
 */
static int refresh(struct app *app, bool final)
{
	/*
	 * The last report (and the profiles written after it) names what
	 * it can: debug files still coming from debuginfod get a moment.
	 */
	if (final)
		syms__wait_debug(app->syms, 3000);
	app__refresh_model(app);
	table__sort(app->table, app__growth_view(app) ? SORT_RSS : SORT_LIVE,
		    false);
	if (app->env.view == VIEW_JSON)
		output__json(app, final);
	else
		output__batch(app, final);
	outq__commit(app->outq, final);
	return out_check(app);
}

/* The batch and JSON views in the one loop: their output each turn. */
static int batch_turn(void *ctx)
{
	/* a stalled reader takes what it can between refreshes */
	return out_check(ctx) ? 1 : 0;
}

static int batch_refresh(void *ctx)
{
	struct app *app = ctx;

	if (refresh(app, false))
		return 1;	/* said by out_check */
	app__expire_rows(app);
	return 0;
}

static int run_loop(struct app *app, struct ring_buffer *rb)
{
	const struct app_view v = {
		.ctx = app,
		.input_fd = -1,
		.last_is_final = true,
		.turn = batch_turn,
		.refresh = batch_refresh,
	};
	int err = app__run(app, rb, &v);

	if (err < 0)
		fprintf(stderr, "memtrace: ring buffer: %s\n", strerror(-err));
	return err ? -EIO : 0;
}

int main(int argc, char **argv)
{
	struct app app = {};
	struct ring_buffer *rb = NULL;
	int err, exit_code = 1;

	if (parse_args(argc, argv, &app.env))
		return 2;
	libbpf_set_print(libbpf_print);
	if (check_env())
		return 1;
	/* first, so that it holds no BPF object or link of ours */
	if (app.env.mode != MODE_DUMP && watchdog__start(app.env.watchdog))
		fprintf(stderr, "memtrace: warning: no watchdog: %s\n",
			strerror(errno));
	app.out_file = stdout;
	if (app.env.output_path) {
		/* root writes here: never through a symlink someone left */
		int fd = open(app.env.output_path, O_WRONLY | O_CREAT |
			      O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);

		app.out_file = fd < 0 ? NULL : fdopen(fd, "w");
		if (!app.out_file) {
			fprintf(stderr, "memtrace: %s: %s\n",
				app.env.output_path, errno == ELOOP ?
				"is a symbolic link: give its target" :
				strerror(errno));
			return 1;
		}
	}
	if (profiles_writable(&app.env))
		return 1;
	if (out_open(&app))
		goto cleanup;
	app.exiting = &exiting;
	app.table = table__new();
	app.syms = syms__new();
	app.start_ns = now_ns();
	app.start_wall = now_wall();
	if (!app.table || !app.syms)
		goto cleanup;
	table__set_interval(app.table, app.env.delay * 1e9);

	signals__save();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);

	err = open_and_load(&app);
	if (err)
		goto cleanup;
	/* what one probe hit costs here: each row's cost is counted in it */
	if (app.env.mode != MODE_DUMP)
		app.floor_s = budget__calibrate(app.skel);
	if (app.env.verbose)
		fprintf(stderr, "memtrace: a uprobe hit costs %.2f us here\n",
			app.floor_s * 1e6);
	if (collect__new(app.skel, &app.collect) ||
	    attach__new(app.skel, (app.env.verbose ? ATTACH_VERBOSE : 0) |
			(app.env.floor ? ATTACH_FLOOR : 0) |
			(app.env.entry_probes ? ATTACH_ENTRY : 0) |
			(app.session ? ATTACH_SESSION : 0), &app.attach) ||
	    /* the frameless-call-site table serves the frame-pointer walk */
	    (app.env.stacks && !app.env.floor && !app.skel->rodata->cfi_on &&
	     unwind__new(app.skel, &app.unwind)) ||
	    (app.skel->rodata->cfi_on &&
	     cfi__new(app.skel, app.env.verbose, &app.cfi)))
		goto cleanup;
	rb = ring_buffer__new(bpf_map__fd(app.skel->maps.events),
			      events__handle, &app, NULL);
	if (!rb) {
		fprintf(stderr, "memtrace: ring buffer: %s\n", strerror(errno));
		goto cleanup;
	}
	err = dump__new(&app, &app.dump);
	if (err) {
		fprintf(stderr, "memtrace: pre-OOM capture: %s\n",
			strerror(-err));
		goto cleanup;
	}
	switch (app.env.mode) {
	case MODE_PIDS:
		err = start_pids(&app);
		break;
	case MODE_DUMP:
		err = start_pids(&app);
		if (err)
			break;
		app__refresh_model(&app);
		err = dump__now(app.dump, app.env.pids[0], "on demand");
		exit_code = err ? 1 : 0;
		goto cleanup;
	case MODE_CMD:
		err = start_cmd(&app);
		break;
	default:
		err = start_node(&app);
		break;
	}
	if (err)
		goto cleanup;
	if (app.env.verbose)
		fprintf(stderr, "memtrace: %d probes on %d libraries\n",
			attach__nr_links(app.attach),
			attach__nr_libs(app.attach));
	if (app.env.verbose && app.unwind)
		fprintf(stderr, "memtrace: %zu frameless allocator call sites "
			"in %d files so far\n", unwind__nr_sites(app.unwind),
			unwind__nr_files(app.unwind));

	if (app.env.view == VIEW_TUI) {
		err = tui__run(&app, rb);
		if (err == TUI_FALLBACK) {
			app.env.view = VIEW_BATCH;
			err = run_loop(&app, rb);
		}
	} else {
		err = run_loop(&app, rb);
	}
	if (err)
		goto cleanup;

	if (app.child && !app.child_done) {
		/*
		 * Interrupted while running the command: pass the signal on
		 * and wait, so what it held at exit can still be reported.
		 */
		kill(app.child, exiting ? exiting : SIGTERM);
		if (waitpid(app.child, &app.child_status, 0) == app.child)
			app.child_done = true;
	}
	/* drain what the kernel still holds, e.g. the command's exit record */
	app__drain(&app, rb, 2000);
	app__work_settle(&app, 2000);
	if ((app.env.mode == MODE_CMD || app.env.view != VIEW_TUI) &&
	    refresh(&app, true))
		goto cleanup;
	exit_code = 0;
	if (app.env.mode == MODE_CMD && app.child_done) {
		if (WIFEXITED(app.child_status))
			exit_code = WEXITSTATUS(app.child_status);
		else if (WIFSIGNALED(app.child_status))
			exit_code = 128 + WTERMSIG(app.child_status);
	}
	/* a profile that could not be written is an error, even after a
	 * command that succeeded: nobody should find it missing later */
	watchdog__beat();
	if (sites__write_profiles(&app))
		exit_code = 1;
cleanup:
	/* a capture held is let go first: its target must not wait */
	if (dump__stop(app.dump) && !exit_code)
		exit_code = 1;
	/* probes go first, so no traced process pays for them any longer */
	attach__free(app.attach);
	if (app.child && !app.child_done) {
		/* the command was ours: it goes with us, never left behind */
		kill(app.child, SIGTERM);
		waitpid(app.child, NULL, 0);
	}
	dump__free(app.dump);
	ring_buffer__free(rb);
	cfi__free(app.cfi);
	memtrace_bpf__destroy(app.skel);
	collect__free(app.collect);
	syms__free(app.syms);
	unwind__free(app.unwind);
	if (app.cmd_log[0])
		fprintf(stderr, "memtrace: output of %s is in %s\n",
			app.env.cmd[0], app.cmd_log);
	table__free(app.table);
	free(app.work);
	free(app.ooms);
	free(app.pollfds);
	out_close(&app);
	watchdog__stop();
	if (app.out_file && app.out_file != stdout)
		fclose(app.out_file);
	return exit_code;
}
