// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation sites: the user stacks that hold the memory, named with the
 * symbolizer and written out as JSON, pprof and folded stacks.
 *
 * Stacks are captured at the allocator's return, so every frame is a
 * return address (resolved at addr - 1) and frame 0 is already the
 * caller of malloc, unless a wrapper (operator new, strdup) sits between.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "gorow.h"
#include "pprof.h"
#include "sites.h"
#include "syms.h"
#include "util.h"
#include "watchdog.h"
#include "wrapper.h"

#define MAX_INLINE 8

/* Frames that belong to the allocator, not to whoever wanted memory. */
static bool is_alloc_frame(const struct syms_frame *f)
{
	static const char *const libs[] = {
		"libc.so", "libc-", "ld-musl", "libc.musl", "libstdc++.so",
	};
	static const char *const funcs[] = {
		"operator new", "_Zn", "__libc_", "__GI_", "strdup", "strndup",
		"runtime.",	/* Go: the runtime's frames, as pprof hides them */
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(libs); i++)
		if (!strncmp(f->module, libs[i], strlen(libs[i])))
			return true;
	for (i = 0; i < ARRAY_SIZE(funcs); i++)
		if (!strncmp(f->func, funcs[i], strlen(funcs[i])))
			return true;
	return false;
}

/* The node view's estimate: a stack sampled at page faults. */
static bool site_is_growth(const struct mt_site_row *s)
{
	return !s->go && MT_SITE_GROWTH(s->stack_id);
}

/*
 * Verdicts of wrapper__passes_through per call site (object and ELF
 * address), kept for the run: code does not change under a build-id.
 */
#define WRAP_CACHE	4096
static struct wrap_cent {
	uint64_t obj, vaddr;
	int verdict;		/* 0 unknown, 1 wrapper, 2 not */
} wrap_cache[WRAP_CACHE];

struct code_ctx {
	struct app *app;
	int pid;
};

/* The code of the function holding addr in pid, from its ELF file. */
static int read_func(void *vctx, uint64_t addr, uint8_t *buf, size_t len,
		     uint64_t *start)
{
	struct code_ctx *c = vctx;
	uint64_t size;
	int err;

	err = syms__func_range(c->app->syms, c->pid, addr, start, &size);
	if (err)
		return err;
	if (size && size < len)
		len = size;
	return syms__read_code(c->app->syms, c->pid, *start, buf, len);
}

/*
 * The allocator's own API may see a block a wrapper passes through: it
 * asks how big the block really is (redis's zmalloc_usable).
 */
static bool allocator_api(void *vctx, uint64_t addr)
{
	static const char *const names[] = {
		"malloc_usable_size", "malloc_size", "sallocx",
		"je_malloc_usable_size", "tc_malloc_size", "mi_usable_size",
	};
	struct code_ctx *c = vctx;
	struct syms_frame f;
	char name[256];
	size_t i;

	if (syms__plt_name(c->app->syms, c->pid, addr, name, sizeof(name))) {
		if (syms__resolve(c->app->syms, c->pid, addr, &f, 1) <= 0 ||
		    f.offset)
			return false;
		snprintf(name, sizeof(name), "%s", f.func);
	}
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/*
 * Does the function that made the call returning to ra (frame f) only
 * pass the allocation through (see wrapper.h)?
 */
static bool is_wrapper(struct app *app, int pid, uint64_t ra,
		       const struct syms_frame *f)
{
	struct code_ctx c = { .app = app, .pid = pid };
	struct wrapper_src src = {
		.read = read_func, .allows = allocator_api, .ctx = &c,
	};
	struct wrap_cent *e;
	int v;

	if (!f->module[0])
		return false;
	e = &wrap_cache[(f->build_id_hash ^ f->module_offset *
			 0x9e3779b97f4a7c15ULL) % WRAP_CACHE];
	if (e->verdict && e->obj == f->build_id_hash &&
	    e->vaddr == f->module_offset)
		return e->verdict == 1;
	v = wrapper__passes_through(&src, ra);
	e->obj = f->build_id_hash;
	e->vaddr = f->module_offset;
	e->verdict = v == 1 ? 1 : 2;
	return v == 1;
}

static void frame_name(const struct syms_frame *f, char *buf, size_t len)
{
	if (f->func[0])
		snprintf(buf, len, "%s", f->func);
	else
		syms__format(f, buf, len);
}

/*
 * A site is named by the code that asked for the memory: the first frame
 * outside the allocator, or, past the wrappers that only pass the block
 * through, "caller via wrapper" (the wrapper it called).
 */
int sites__first_user_frame(struct app *app, struct mt_row *r,
			    const struct mt_site_row *s, char *buf, size_t len)
{
	struct syms_frame fr[MAX_INLINE], up[MAX_INLINE];
	char inner[256], outer[256];
	int i, j, n, m;

	buf[0] = '\0';
	if (!s->stack_id || !s->nframes) {
		snprintf(buf, len, "[no stack]");
		return 0;
	}
	for (i = 0; i < s->nframes; i++) {
		n = syms__resolve_ret(app->syms, r->pid, s->stack[i], fr,
				      MAX_INLINE);
		if (n <= 0)
			continue;
		/*
		 * The innermost of the inlined frames names the site.  A Go
		 * stack made of runtime frames only is named by its first,
		 * as pprof shows it.
		 */
		if (is_alloc_frame(&fr[n - 1]) && !(s->go && i == s->nframes - 1))
			continue;
		if (s->go && i == s->nframes - 1 && is_alloc_frame(&fr[n - 1]))
			n = syms__resolve_ret(app->syms, r->pid, s->stack[0],
					      fr, MAX_INLINE);
		frame_name(&fr[0], buf, len);
		/*
		 * A wrapper inlined into its caller is no frame of its own;
		 * a page-fault stack (node view) holds no allocator call.
		 */
		for (j = i; j + 1 < s->nframes && j - i < 8 && n == 1 &&
		     !site_is_growth(s) &&
		     is_wrapper(app, r->pid, s->stack[j], &fr[0]); j++) {
			m = syms__resolve_ret(app->syms, r->pid,
					      s->stack[j + 1], up, MAX_INLINE);
			if (m <= 0 || is_alloc_frame(&up[m - 1]))
				break;
			frame_name(&fr[0], inner, sizeof(inner));
			frame_name(&up[0], outer, sizeof(outer));
			snprintf(buf, len, "%s via %s", outer, inner);
			memcpy(fr, up, m * sizeof(*up));
			n = m;
		}
		return 0;
	}
	snprintf(buf, len, "[allocator]");
	return 0;
}

const char *sites__kind(const struct mt_site_row *s)
{
	if (site_is_growth(s))
		return "growth";
	return !s->go && MT_SITE_MAP(s->stack_id) ? "map" : "alloc";
}

void sites__top_names(struct app *app)
{
	int i;

	for (i = 0; i < table__nr(app->table); i++) {
		struct mt_row *r = table__row(app->table, i);
		bool growth = app__growth_view(app) && !r->probed;

		watchdog__beat();	/* symbolizing: progress, not a hang */
		const struct mt_site_row *top = NULL;
		int j;

		/*
		 * An exact row is named by its allocation site, others by
		 * where memory is faulted in (the node view's estimate) or
		 * by the Go heap's own profile.
		 */
		for (j = 0; j < r->nsites && !top; j++)
			if (site_is_growth(&r->sites[j]) ? growth :
			    r->sites[j].go || (!growth &&
			    !MT_SITE_MAP(r->sites[j].stack_id)))
				top = &r->sites[j];
		r->top_site[0] = '\0';
		if (top && top->live_bytes > 0) {
			sites__first_user_frame(app, r, top, r->top_site,
						sizeof(r->top_site));
			/* a cgo program has two heaps: say which one */
			if (gorow__two_heaps(r))
				strncat(r->top_site, top->go ?
					" [go]" : " [c]",
					sizeof(r->top_site) -
					strlen(r->top_site) - 1);
		}
	}
}

int sites__pprof(struct app *app, struct mt_row *const *rows, int nrows,
		 unsigned flags, const char *path)
{
	struct pprof *p = pprof__new(app->syms);
	int i, j, err = 0;

	if (!p)
		return -ENOMEM;
	/* the whole run, not the time it took to write this */
	if (flags & SITES_PPROF_RUN)
		pprof__set_times(p, app->start_wall * 1e9,
				 now_ns() - app->start_ns);
	if (app->env.sample_bytes)
		pprof__set_period(p, app->env.sample_bytes);
	/* a Go heap profile's period is the process's MemProfileRate */
	for (i = 0; i < nrows; i++)
		if (gorow__rate(rows[i])) {
			pprof__set_period(p, gorow__rate(rows[i]));
			break;
		}
	for (i = 0; i < nrows && !err; i++) {
		struct mt_row *r = rows[i];

		if (r->exe[0])
			pprof__set_exe(p, r->pid, r->exe);
		pprof__set_comm(p, r->pid, r->comm);
		if (flags & SITES_PPROF_GO_UNPUBLISHED) {
			err = gorow__pprof_add(p, r, true);
			continue;
		}
		for (j = 0; j < r->nsites && !err; j++) {
			const struct mt_site_row *s = &r->sites[j];

			if (s->go)
				continue;	/* whole stacks from gorow */
			err = pprof__add(p, r->pid, s->stack, s->nframes,
					 s->allocs, s->alloc_bytes,
					 s->live_allocs, s->live_bytes);
		}
		if (!err)
			err = gorow__pprof_add(p, r, false);
	}
	if (!err)
		err = pprof__write(p, path);
	pprof__free(p);
	return err;
}

/* --pprof: every row of the table in one profile. */
static int write_pprof(struct app *app, const char *path)
{
	int i, err, n = table__nr(app->table);
	struct mt_row **rows = calloc(n ? n : 1, sizeof(*rows));

	if (!rows)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		rows[i] = table__row(app->table, i);
	err = sites__pprof(app, rows, n, SITES_PPROF_RUN, path);
	free(rows);
	return err;
}

/* Written under a temporary name and renamed: never a half file. */
static int write_folded(struct app *app, const char *path)
{
	char tmp[4096];
	FILE *f;
	int i, j, fd, err = 0;

	fd = tmpfile_beside(path, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	for (i = 0; i < table__nr(app->table); i++) {
		struct mt_row *r = table__row(app->table, i);

		for (j = 0; j < r->nsites; j++) {
			const struct mt_site_row *s = &r->sites[j];

			if (s->live_bytes > 0)
				folded__write(app->syms, f, r->pid, r->comm,
					      s->stack, s->nframes,
					      s->live_bytes);
		}
	}
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

void sites__print_held(struct app *app, struct mt_row *r, FILE *f, int max)
{
	int i, j, k, n = 0;

	for (i = 0; i < r->nsites && n < max; i++) {
		const struct mt_site_row *s = &r->sites[i];
		char buf[600], clean[1200], h[16];

		if (s->live_bytes <= 0)
			continue;
		if (!n++)
			fprintf(f, "pid %d still held %lld bytes in %lld blocks "
				"at exit; largest sites:\n", r->pid,
				(long long)r->live_bytes,
				(long long)r->live_allocs);
		human_bytes(h, sizeof(h), s->live_bytes);
		fprintf(f, "  %s in %lld blocks (%lld bytes)\n", h,
			(long long)s->live_allocs, (long long)s->live_bytes);
		for (j = 0; j < s->nframes && j < 8; j++) {
			struct syms_frame fr[MAX_INLINE];
			int nf = syms__resolve_ret(app->syms, r->pid,
						   s->stack[j], fr, MAX_INLINE);

			for (k = 0; k < nf; k++) {
				syms__format(&fr[k], buf, sizeof(buf));
				sanitize(buf, sizeof(buf), clean, sizeof(clean));
				fprintf(f, "      %s\n", clean);
			}
		}
		if (!s->nframes)
			fprintf(f, "      [no stack]\n");
	}
}

int sites__write_profiles(struct app *app)
{
	int err, ret = 0;

	/* each output on its own: one failing must not cost the other */
	if (app->env.pprof_path) {
		err = write_pprof(app, app->env.pprof_path);
		if (err) {
			fprintf(stderr, "memtrace: %s: %s\n",
				app->env.pprof_path, strerror(-err));
			ret = err;
		}
	}
	if (app->env.folded_path) {
		err = write_folded(app, app->env.folded_path);
		if (err) {
			fprintf(stderr, "memtrace: %s: %s\n",
				app->env.folded_path, strerror(-err));
			ret = err;
		}
	}
	return ret;
}
