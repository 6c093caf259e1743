// SPDX-License-Identifier: GPL-2.0
/*
 * The Go executable reader (user/gobin.c) against the Go toolchain's own
 * answers.  tests/unit/go/gobinprog.go is built at test time with every
 * toolchain found (Go 1.19 as `go`, Go 1.23 in /usr/lib/go-1.23), each
 * normal, stripped (-ldflags='-s -w') and PIE, in a private temp dir with
 * its own build cache, offline.  Ground truth:
 *  - the program's own runtime.CallersFrames of a stack through two
 *    inlined calls (every build, PIE via the bias it reports);
 *  - `go tool nm` / `go tool addr2line` of the unstripped builds;
 *  - the runtime variables found in the code equal .symtab's, and the
 *    stripped build finds the unstripped build's addresses.
 * A missing toolchain is a visible "skip" line, not a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "gobin.h"
#include "pprof.h"
#include "syms.h"

static char tmp[256];
static char src[4096];

/* Output of a shell command (malloc'd, NUL-terminated), NULL on failure. */
static char *run(const char *fmt, ...)
{
	char cmd[8192], *buf = NULL;
	size_t len = 0, cap = 0, n;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (!n)
			break;
		len += n;
	}
	buf[len] = 0;
	st = pclose(f);
	if (st) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct rtframe {
	uint64_t pc;
	char func[128], file[512];
	int line;
};

struct build {
	const char *tag;	/* "1.19 normal" */
	char path[1024];
	char gover[32];		/* "go1.19.8" from `go version` */
	struct rtframe fr[16];
	int nfr;
	uint64_t leaf;		/* runtime address of main.leaf */
};

/* Env for go commands: private caches, no network, no toolchain switch. */
static const char *goenv(void)
{
	static char env[1024];

	snprintf(env, sizeof(env),
		 "env HOME=%s GOCACHE=%s/cache GOPATH=%s/gopath GO111MODULE=off "
		 "GOFLAGS= GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0",
		 tmp, tmp, tmp);
	return env;
}

/* The program's report of its own stack into b; false if incomplete. */
static bool parse_report(char *out, struct build *b)
{
	char *line, *save;

	b->nfr = 0;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct rtframe *f = &b->fr[b->nfr];

		if (sscanf(line, "entry main.leaf %" SCNx64, &b->leaf) == 1)
			continue;
		if (b->nfr < 16 &&
		    sscanf(line, "frame %" SCNx64 " %127s %511s %d", &f->pc,
			   f->func, f->file, &f->line) == 4)
			b->nfr++;
	}
	return ASSERT_TRUE(b->nfr >= 6 && b->leaf);
}

static bool build_one(const char *go, const char *flags, struct build *b)
{
	char *out;
	bool ok;

	out = run("%s %s build %s -o %s %s 2>&1 >/dev/null && %s", goenv(), go,
		  flags, b->path, src, b->path);
	if (!out) {
		printf("not ok %s: go build %s failed\n", b->tag, flags);
		test__failed++;
		return false;
	}
	ok = parse_report(out, b);
	free(out);
	return ok;
}

/* Each logical frame the runtime printed, and the inline chain. */
static void check_frames(struct gobin *g, struct build *b)
{
	struct gobin_frame out[8];
	uint64_t bias, entry;
	int i, n;

	entry = gobin__func(g, "main.leaf", NULL);
	if (!ASSERT_TRUE(entry))
		return;
	bias = b->leaf - entry;
	if (!gobin__pie(g))
		ASSERT_EQ(bias, 0);
	for (i = 0; i < b->nfr; i++) {
		n = gobin__frames(g, b->fr[i].pc - bias, true, out, 8);
		if (!ASSERT_TRUE(n >= 1))
			continue;
		ASSERT_STREQ(out[0].func, b->fr[i].func);
		ASSERT_STREQ(out[0].file, b->fr[i].file);
		ASSERT_EQ(out[0].line, b->fr[i].line);
	}
	/* fr[2] is in main.outer's code, inside inlA inlined via inlB */
	n = gobin__frames(g, b->fr[2].pc - bias, true, out, 8);
	if (!ASSERT_EQ(n, 3))
		return;
	/* the runtime's extra return PC per inlined call is mark + 1 */
	ASSERT_EQ(out[1].pc + 1 + bias, b->fr[3].pc);
	ASSERT_EQ(out[2].pc + 1 + bias, b->fr[4].pc);
	for (i = 0; i < 3; i++) {
		ASSERT_STREQ(out[i].func, b->fr[2 + i].func);
		ASSERT_EQ(out[i].line, b->fr[2 + i].line);
		ASSERT_EQ(out[i].inlined, i < 2);
		ASSERT_EQ(out[i].entry, gobin__func(g, "main.outer", NULL));
	}
	/* only room for one: the outermost, real function wins */
	n = gobin__frames(g, b->fr[2].pc - bias, true, out, 1);
	ASSERT_EQ(n, 1);
	ASSERT_EQ(gobin__frames(g, 0, true, out, 8), 0);
	ASSERT_EQ(gobin__frames(g, ~0ull, false, out, 8), 0);
}

/* Functions and pcs against go tool nm / addr2line (unstripped only). */
static void check_nm_addr2line(struct gobin *g, struct build *b,
			       const char *go)
{
	char *nm, *line, *save, *q, *a2l;
	char pcs[64 * 24] = "";
	int nq = 0, k = 0, good = 0, checked = 0, unknown = 0;
	uint64_t want[64];
	struct gobin_frame out[8];

	nm = run("%s %s tool nm -size -sort address %s", goenv(), go, b->path);
	if (!ASSERT_TRUE(nm))
		return;
	for (line = strtok_r(nm, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		uint64_t addr, size, got, gsize;
		char type, name[512], *abi;

		if (sscanf(line, "%" SCNx64 " %" SCNu64 " %c %511[^\n]", &addr,
			   &size, &type, name) != 4 || type != 'T' ||
		    !strchr(name, '.') || size < 4)
			continue;
		/* every 40th function: entry, size, and a pc in its middle */
		if (k++ % 40)
			continue;
		/*
		 * nm names assembly functions by ABI, pclntab does not,
		 * and a Go function may share the plain name: skip them.
		 */
		abi = strstr(name, ".abi0");
		if (abi && !abi[5])
			continue;
		got = gobin__func(g, name, &gsize);
		checked++;
		if (got == addr && gsize >= size)
			good++;
		else
			printf("    %s: gobin %#" PRIx64 "+%" PRIu64 ", nm %#"
			       PRIx64 "+%" PRIu64 "\n", name, got, gsize,
			       addr, size);
		if (nq < 64) {
			want[nq] = addr + size / 2;
			snprintf(pcs + strlen(pcs), 24, "%#" PRIx64 "\n",
				 want[nq]);
			nq++;
		}
	}
	free(nm);
	ASSERT_TRUE(checked > 20);
	ASSERT_EQ(good, checked);
	a2l = run("printf '%s' | %s %s tool addr2line %s", pcs, goenv(), go,
		  b->path);
	if (!ASSERT_TRUE(a2l))
		return;
	/* two lines per pc: the (outermost) function, then file:line */
	q = a2l;
	good = 0;
	for (k = 0; k < nq; k++) {
		char *fn = strsep(&q, "\n"), *fl = q ? strsep(&q, "\n") : NULL;
		char where[600];
		int n;

		if (!fn || !fl)
			break;
		if (!strcmp(fn, "?"))
			unknown++;
		n = gobin__frames(g, want[k], false, out, 8);
		snprintf(where, sizeof(where), "%s:%d", n ? out[0].file : "",
			 n ? out[0].line : 0);
		if (n && !strcmp(out[n - 1].func, fn) && !strcmp(where, fl))
			good++;
		else if (strcmp(fn, "?"))
			printf("    pc %#" PRIx64 ": gobin %s %s, addr2line %s %s\n",
			       want[k], n ? out[n - 1].func : "-", where, fn, fl);
	}
	free(a2l);
	if (unknown == nq) {
		/* Go 1.19's own reader misses PIE's relocated textStart */
		printf("skip addr2line check of %s: addr2line answers ?\n",
		       b->tag);
		return;
	}
	ASSERT_EQ(good, nq);
}

static void check_runtime(struct gobin *g, const struct gobin_runtime *ref)
{
	struct gobin_runtime sym, code;

	ASSERT_EQ(gobin__runtime(g, &sym), 0);
	ASSERT_EQ(gobin__runtime_code(g, &code), 0);
	ASSERT_TRUE(code.mbuckets && code.mprof_cycle &&
		    code.mem_profile_rate && code.gc_controller);
	ASSERT_TRUE(!code.from_symtab);
	ASSERT_EQ(code.mbuckets, ref->mbuckets);
	ASSERT_EQ(code.mprof_cycle, ref->mprof_cycle);
	ASSERT_EQ(code.mem_profile_rate, ref->mem_profile_rate);
	ASSERT_EQ(code.gc_controller, ref->gc_controller);
	ASSERT_EQ(code.disable_memprof, ref->disable_memprof);
	ASSERT_EQ(sym.mbuckets, ref->mbuckets);
}

/*
 * The symbolizer and pprof on the running program: its own stack, in
 * process addresses (PIE: wherever ASLR put it), must read as the Go
 * runtime read it, and as pprof prints a Go heap profile: runtime.Callers
 * hidden, inlA and inlB inlined into main.outer's location, no goexit.
 */
static void check_live(const struct build *bb, const char *go)
{
	static const char *const want_folded =
		"gobinprog;runtime.main;main.main;main.outer;main.inlB;"
		"main.inlA;main.leaf 7\n";
	struct build b = *bb;
	struct syms_frame fr[8];
	int in[2], out[2], i, n, st;
	uint64_t pcs[16];
	char buf[8192], prof[600], *traces, *fold = NULL;
	size_t len = 0, foldlen = 0;
	struct pprof *pp;
	struct syms *s;
	FILE *mem;
	pid_t pid;

	if (pipe(in) || pipe(out))
		return;
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(b.path, b.path, "wait", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	while (len < sizeof(buf) - 1 && !strstr(buf, "done\n")) {
		ssize_t r = read(out[0], buf + len, sizeof(buf) - 1 - len);

		if (r <= 0)
			break;
		len += r;
		buf[len] = 0;
	}
	s = syms__new();
	if (!parse_report(buf, &b) || !ASSERT_TRUE(s))
		goto out;
	for (i = 0; i < b.nfr; i++) {
		n = syms__resolve_ret(s, pid, b.fr[i].pc, fr, 8);
		pcs[i] = b.fr[i].pc;
		if (!ASSERT_TRUE(n >= 1))
			continue;
		ASSERT_TRUE(fr[0].go);
		ASSERT_STREQ(fr[0].func, b.fr[i].func);
		ASSERT_STREQ(fr[0].file, b.fr[i].file);
		ASSERT_EQ(fr[0].line, b.fr[i].line);
	}
	n = syms__resolve_ret(s, pid, b.fr[2].pc, fr, 8);
	ASSERT_EQ(n, 3);
	ASSERT_TRUE(fr[0].inlined && fr[1].inlined && !fr[2].inlined);

	mem = open_memstream(&fold, &foldlen);
	ASSERT_EQ(folded__write(s, mem, pid, "gobinprog", pcs, b.nfr, 7), 0);
	fclose(mem);
	ASSERT_STREQ(fold, want_folded);
	free(fold);

	pp = pprof__new(s);
	snprintf(prof, sizeof(prof), "%s/live.pb.gz", tmp);
	ASSERT_EQ(pprof__add(pp, pid, pcs, b.nfr, 1, 4096, 1, 4096), 0);
	ASSERT_EQ(pprof__write(pp, prof), 0);
	pprof__free(pp);
	/* pprof's own rendering: one location, the inlined calls marked */
	traces = run("%s %s tool pprof -traces %s 2>/dev/null", goenv(), go, prof);
	if (getenv("GOBIN_DEBUG") && traces)
		printf("%s", traces);
	if (ASSERT_TRUE(traces)) {
		char *t = strstr(traces, "main.leaf");

		ASSERT_TRUE(t && !strstr(traces, "runtime.Callers") &&
			    !strstr(traces, "runtime.goexit"));
		if (t)
			t = strstr(t, "main.inlA (inline)");
		if (t)
			t = strstr(t, "main.inlB (inline)");
		if (t)
			t = strstr(t, "main.outer\n");
		if (t)
			t = strstr(t, "main.main\n");
		if (!ASSERT_TRUE(t))
			printf("%s", traces);
		free(traces);
	}
out:
	syms__free(s);
	close(in[1]);
	close(out[0]);
	waitpid(pid, &st, 0);
}

/* A copy of path with its section headers zeroed from the ELF header. */
static bool copy_without_shdrs(const char *path, const char *to)
{
	static const uint8_t zero[8];
	char *out;
	int fd;
	bool ok;

	out = run("cp %s %s && echo ok", path, to);
	if (!out)
		return false;
	free(out);
	fd = open(to, O_WRONLY);
	/* e_shoff at 0x28, e_shnum and e_shstrndx at 0x3c */
	ok = fd >= 0 && pwrite(fd, zero, 8, 0x28) == 8 &&
	     pwrite(fd, zero, 4, 0x3c) == 4;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * Without section headers (sstrip, some packers) buildinfo and pclntab
 * are found by their magic in the loaded segments; the answers must not
 * change.
 */
static void check_no_shdrs(struct gobin *orig, const struct build *b)
{
	struct gobin_frame x[8], y[8];
	struct gobin_runtime r1, r2;
	char path[1100];
	struct gobin *g;
	int i, n;

	snprintf(path, sizeof(path), "%s-noshdr", b->path);
	if (!ASSERT_TRUE(copy_without_shdrs(b->path, path)) ||
	    !ASSERT_EQ(gobin__open(path, &g), 0))
		return;
	ASSERT_STREQ(gobin__version(g), gobin__version(orig));
	ASSERT_EQ(gobin__nr_funcs(g), gobin__nr_funcs(orig));
	for (i = 0; i < b->nfr; i++) {
		uint64_t pc = b->fr[i].pc - (b->leaf -
				gobin__func(orig, "main.leaf", NULL));

		n = gobin__frames(g, pc, true, x, 8);
		ASSERT_EQ(n, gobin__frames(orig, pc, true, y, 8));
		if (n > 0) {
			ASSERT_STREQ(x[0].func, y[0].func);
			ASSERT_EQ(x[n - 1].line, y[n - 1].line);
		}
	}
	ASSERT_EQ(gobin__runtime_code(g, &r1), 0);
	ASSERT_EQ(gobin__runtime_code(orig, &r2), 0);
	ASSERT_EQ(r1.mbuckets, r2.mbuckets);
	ASSERT_EQ(r1.gc_controller, r2.gc_controller);
	gobin__free(g);
	unlink(path);
}

/*
 * Truncated and bit-flipped copies must open or fail cleanly and answer
 * lookups without crashing (a crash fails the whole binary).
 */
static void check_hostile(const char *path, const struct build *b)
{
	char bad[512];
	struct stat st;
	uint8_t *buf;
	int fd, i, opened = 0;
	unsigned seed = 12345;

	snprintf(bad, sizeof(bad), "%s/hostile", tmp);
	fd = open(path, O_RDONLY);
	if (!ASSERT_TRUE(fd >= 0) || fstat(fd, &st)) {
		close(fd);
		return;
	}
	buf = malloc(st.st_size);
	if (read(fd, buf, st.st_size) != st.st_size) {
		close(fd);
		free(buf);
		return;
	}
	close(fd);
	for (i = 0; i < 60; i++) {
		struct gobin_frame out[8];
		struct gobin_runtime rt;
		struct gobin *g;
		off_t len = st.st_size;
		int j, k;

		if (i < 20) {
			len = (off_t)((double)st.st_size * (i + 1) / 21);
		} else {
			/* flip bytes in the first 40%: headers and pclntab */
			for (j = 0; j < 200; j++) {
				seed = seed * 1103515245 + 12345;
				k = (seed >> 8) % (st.st_size * 2 / 5);
				buf[k] ^= (uint8_t)(seed >> 3) | 1;
			}
		}
		fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, buf, len) != len) {
			close(fd);
			break;
		}
		close(fd);
		if (gobin__open(bad, &g))
			continue;
		opened++;
		for (j = 0; j < b->nfr; j++)
			gobin__frames(g, b->fr[j].pc, true, out, 8);
		for (j = 0; j < 200; j++) {
			seed = seed * 1103515245 + 12345;
			gobin__frames(g, 0x401000 + seed % 0x200000, true, out, 8);
		}
		gobin__func(g, "runtime.mallocgc", NULL);
		gobin__runtime(g, &rt);
		gobin__free(g);
	}
	free(buf);
	unlink(bad);
	printf("ok hostile copies of %s survived (%d opened)\n", b->tag, opened);
	test__passed++;
}

static void test_toolchain(const char *go, const char *name)
{
	struct gobin_runtime ref = { 0 };
	struct build b[3];
	static const char *const modes[3] = { "normal", "stripped", "pie" };
	static const char *const flags[3] = { "", "-ldflags='-s -w'",
					      "-buildmode=pie" };
	char *ver;
	int m;

	ver = run("%s %s version 2>/dev/null", goenv(), go);
	if (!ver) {
		printf("skip test_gobin %s: no toolchain at %s\n", name, go);
		return;
	}
	for (m = 0; m < 3; m++) {
		struct gobin *g;
		char tag[64];

		snprintf(tag, sizeof(tag), "go%s %s", name, modes[m]);
		b[m].tag = strdup(tag);
		sscanf(ver, "go version %31s", b[m].gover);
		snprintf(b[m].path, sizeof(b[m].path), "%s/prog-%s-%s", tmp,
			 name, modes[m]);
		if (!build_one(go, flags[m], &b[m]))
			continue;
		if (!ASSERT_EQ(gobin__open(b[m].path, &g), 0))
			continue;
		printf("# %s: %s, %d functions\n", tag, gobin__version(g),
		       gobin__nr_funcs(g));
		ASSERT_STREQ(gobin__version(g), b[m].gover);
		ASSERT_EQ(gobin__pie(g), m == 2);
		check_frames(g, &b[m]);
		check_live(&b[m], go);
		check_no_shdrs(g, &b[m]);
		if (m == 0) {
			struct gobin_runtime rt;

			ASSERT_EQ(gobin__runtime(g, &ref), 0);
			ASSERT_TRUE(ref.from_symtab && ref.mbuckets &&
				    ref.disable_memprof && ref.memstats);
			check_nm_addr2line(g, &b[m], go);
			check_runtime(g, &ref);
			(void)rt;
		} else if (m == 1) {
			/*
			 * The stripped build against a twin whose build
			 * flags (recorded in buildinfo, so they move the
			 * data) have the same length but keep .symtab.
			 */
			struct gobin_runtime rt;
			struct build twin = b[m];
			struct gobin *tg;

			snprintf(twin.path, sizeof(twin.path), "%.900s-twin",
				 b[m].path);
			if (build_one(go, "-ldflags='-w -w'", &twin) &&
			    ASSERT_EQ(gobin__open(twin.path, &tg), 0)) {
				ASSERT_EQ(gobin__runtime(tg, &ref), 0);
				ASSERT_TRUE(ref.from_symtab);
				gobin__free(tg);
			}
			ASSERT_EQ(gobin__runtime(g, &rt), 0);
			ASSERT_TRUE(!rt.from_symtab);
			ASSERT_EQ(rt.mbuckets, ref.mbuckets);
			ASSERT_EQ(rt.mprof_cycle, ref.mprof_cycle);
			ASSERT_EQ(rt.mem_profile_rate, ref.mem_profile_rate);
			ASSERT_EQ(rt.gc_controller, ref.gc_controller);
			ASSERT_EQ(rt.disable_memprof, ref.disable_memprof);
			check_hostile(b[m].path, &b[m]);
		} else {
			struct gobin_runtime pref;

			ASSERT_EQ(gobin__runtime(g, &pref), 0);
			ASSERT_TRUE(pref.from_symtab);
			check_nm_addr2line(g, &b[m], go);
			check_runtime(g, &pref);
		}
		gobin__free(g);
	}
	free(ver);
	printf("ok test_gobin %s\n", name);
}

/*
 * The Go 1.2-1.15 layout, from the toolchain's own test data: debug/gosym's
 * testdata/pcln115.gz is the raw pclntab of a Go 1.15 hello world
 * (/tmp/hello.go, main.main at line 3 at 0x105c280, its test says).  It
 * is wrapped here in a minimal ELF with no section headers: one PT_LOAD.
 */
static void test_go115_layout(void)
{
	static const char *const gz[] = {
		"/usr/lib/go-1.19/src/debug/gosym/testdata/pcln115.gz",
		"/usr/lib/go-1.23/src/debug/gosym/testdata/pcln115.gz",
	};
	unsigned char hdr[0x1000] = { 0 };
	struct gobin_frame fr[4];
	char blob[600], elf[600], *out;
	uint64_t size = 0, v;
	struct stat st;
	struct gobin *g;
	unsigned i;
	int fd, n;

	for (i = 0; i < 2 && access(gz[i], R_OK); i++)
		;
	if (i == 2) {
		printf("skip test_go115_layout: no Go source tree with pcln115.gz\n");
		return;
	}
	snprintf(blob, sizeof(blob), "%s/pcln115", tmp);
	snprintf(elf, sizeof(elf), "%s/pcln115.elf", tmp);
	out = run("zcat %s > %s && echo ok", gz[i], blob);
	if (!ASSERT_TRUE(out) || stat(blob, &st)) {
		free(out);
		return;
	}
	free(out);
	/* Elf64_Ehdr: x86-64 executable, program headers at 64 */
	memcpy(hdr, "\x7f" "ELF\x02\x01\x01", 7);
	hdr[16] = 2;			/* e_type ET_EXEC */
	hdr[18] = 62;			/* e_machine EM_X86_64 */
	hdr[20] = 1;			/* e_version */
	v = 64;
	memcpy(hdr + 32, &v, 8);	/* e_phoff */
	hdr[52] = 64;			/* e_ehsize */
	hdr[54] = 56;			/* e_phentsize */
	hdr[56] = 1;			/* e_phnum */
	/* Elf64_Phdr PT_LOAD R: the blob at file 0x1000, vaddr 0x2000000 */
	hdr[64] = 1;
	hdr[68] = 4;
	v = 0x1000;
	memcpy(hdr + 72, &v, 8);
	v = 0x2000000;
	memcpy(hdr + 80, &v, 8);
	memcpy(hdr + 88, &v, 8);
	size = st.st_size;
	memcpy(hdr + 96, &size, 8);
	memcpy(hdr + 104, &size, 8);
	fd = open(elf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		ASSERT_EQ(write(fd, hdr, sizeof(hdr)), (long)sizeof(hdr));
		close(fd);
	}
	out = run("cat %s >> %s && echo ok", blob, elf);
	free(out);
	if (!ASSERT_EQ(gobin__open(elf, &g), 0))
		return;
	ASSERT_TRUE(gobin__nr_funcs(g) > 100);
	ASSERT_EQ(gobin__func(g, "main.main", NULL), 0x105c280);
	n = gobin__frames(g, 0x105c280, false, fr, 4);
	if (ASSERT_EQ(n, 1)) {
		ASSERT_STREQ(fr[0].func, "main.main");
		ASSERT_STREQ(fr[0].file, "/tmp/hello.go");
		ASSERT_EQ(fr[0].line, 3);
	}
	ASSERT_TRUE(gobin__func(g, "runtime.mallocgc", NULL) != 0);
	gobin__free(g);
}

static void test_not_go(void)
{
	struct gobin *g;

	ASSERT_EQ(gobin__open("/bin/sh", &g), -ENOEXEC);
	ASSERT_EQ(gobin__open("/nonexistent", &g), -ENOENT);
	ASSERT_EQ(gobin__open("/dev/null", &g), -ENOEXEC);
}

int main(void)
{
	char cwd[2048];

	if (!getcwd(cwd, sizeof(cwd)))
		return 1;
	snprintf(src, sizeof(src), "%s/tests/unit/go/gobinprog.go", cwd);
	snprintf(tmp, sizeof(tmp), "/tmp/mt-gobin-XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	RUN_TEST(test_not_go);
	RUN_TEST(test_go115_layout);
	test_toolchain("go", "1.19");
	test_toolchain("/usr/lib/go-1.23/bin/go", "1.23");
	free(run("chmod -R u+w %s; rm -rf %s", tmp, tmp));
	return test__finish();
}
