// SPDX-License-Identifier: GPL-2.0
/*
 * pprof writer and folded-stack tests against a live fixture process.
 *
 * The written profile is checked twice: decoded here (zlib + a minimal
 * protobuf reader, so the test needs nothing else), and, when a Go
 * toolchain is installed, by `go tool pprof` itself, which is the
 * consumer that matters.  -unit=B makes pprof print exact byte counts
 * ("4096B" instead of "4kB") and -nodefraction=0 keeps small nodes.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <zlib.h>

#include "test.h"
#include "fixtures/fixture.h"
#include "pprof.h"
#include "syms.h"

/* ---- minimal protobuf reader ------------------------------------------ */

struct pbr {
	const unsigned char *p, *end;
};

static bool pbr_varint(struct pbr *r, uint64_t *v)
{
	int shift = 0;

	*v = 0;
	while (r->p < r->end && shift < 64) {
		unsigned char c = *r->p++;

		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
		shift += 7;
	}
	return false;
}

/*
 * Next field of a message: returns the wire type (0: value in *v,
 * 2: bytes in *sub) or -1 at the end or on anything else.
 */
static int pbr_next(struct pbr *r, int *field, uint64_t *v, struct pbr *sub)
{
	uint64_t key, len;

	if (r->p >= r->end || !pbr_varint(r, &key))
		return -1;
	*field = (int)(key >> 3);
	switch (key & 7) {
	case 0:
		return pbr_varint(r, v) ? 0 : -1;
	case 2:
		if (!pbr_varint(r, &len) || len > (uint64_t)(r->end - r->p))
			return -1;
		sub->p = r->p;
		sub->end = r->p + len;
		r->p += len;
		return 2;
	default:
		return -1;
	}
}

/* Repeated varint field, packed or not; appends to out[*n]. */
static void pbr_ints(int wire, uint64_t v, struct pbr *sub, uint64_t *out,
		     int *n, int max)
{
	if (wire == 0) {
		if (*n < max)
			out[(*n)++] = v;
		return;
	}
	while (sub->p < sub->end && *n < max && pbr_varint(sub, &out[*n]))
		(*n)++;
}

#define MAXN 64

struct dloc {
	uint64_t id, mapping, addr;
	int nlines;
	uint64_t func[8], line[8];
};

struct dfunc {
	uint64_t id, name, sysname, file;
};

struct dmap {
	uint64_t id, start, limit, offset, file, build_id;
	bool has_func, has_file, has_line, has_inline;
};

struct dlabel {
	uint64_t key, str, num;
};

struct dsample {
	int nlocs, nvals, nlabels;
	uint64_t locs[16], vals[8];
	struct dlabel labels[4];
};

struct decoded {
	int nstrs;
	char *strs[MAXN * 4];
	int nst;
	uint64_t st_type[8], st_unit[8];
	int nsamples;
	struct dsample samples[MAXN];
	int nlocs;
	struct dloc locs[MAXN];
	int nfuncs;
	struct dfunc funcs[MAXN];
	int nmaps;
	struct dmap maps[MAXN];
	uint64_t pt_type, pt_unit, dflt, time_ns, period, duration_ns;
};

static void decode_value_type(struct pbr *m, uint64_t *type, uint64_t *unit)
{
	struct pbr sub;
	uint64_t v = 0;
	int f;

	while (pbr_next(m, &f, &v, &sub) >= 0) {
		if (f == 1)
			*type = v;
		else if (f == 2)
			*unit = v;
	}
}

static void decode_sample(struct dsample *s, struct pbr *m)
{
	struct pbr sub, lsub;
	struct dlabel *l;
	uint64_t v = 0;
	int f, g, w;

	memset(s, 0, sizeof(*s));
	while ((w = pbr_next(m, &f, &v, &sub)) >= 0) {
		if (f == 1) {
			pbr_ints(w, v, &sub, s->locs, &s->nlocs, 16);
		} else if (f == 2) {
			pbr_ints(w, v, &sub, s->vals, &s->nvals, 8);
		} else if (f == 3 && w == 2 && s->nlabels < 4) {
			l = &s->labels[s->nlabels++];
			while (pbr_next(&sub, &g, &v, &lsub) >= 0) {
				if (g == 1)
					l->key = v;
				else if (g == 2)
					l->str = v;
				else if (g == 3)
					l->num = v;
			}
		}
	}
}

static void decode_location(struct dloc *l, struct pbr *m)
{
	struct pbr sub, lsub;
	uint64_t v = 0;
	int f, g, w;

	memset(l, 0, sizeof(*l));
	while ((w = pbr_next(m, &f, &v, &sub)) >= 0) {
		if (f == 1)
			l->id = v;
		else if (f == 2)
			l->mapping = v;
		else if (f == 3)
			l->addr = v;
		else if (f == 4 && w == 2 && l->nlines < 8) {
			while (pbr_next(&sub, &g, &v, &lsub) >= 0) {
				if (g == 1)
					l->func[l->nlines] = v;
				else if (g == 2)
					l->line[l->nlines] = v;
			}
			l->nlines++;
		}
	}
}

static void decode_function(struct dfunc *fn, struct pbr *m)
{
	struct pbr sub;
	uint64_t v = 0;
	int f;

	memset(fn, 0, sizeof(*fn));
	while (pbr_next(m, &f, &v, &sub) >= 0) {
		if (f == 1)
			fn->id = v;
		else if (f == 2)
			fn->name = v;
		else if (f == 3)
			fn->sysname = v;
		else if (f == 4)
			fn->file = v;
	}
}

static void decode_mapping(struct dmap *mp, struct pbr *m)
{
	struct pbr sub;
	uint64_t v = 0;
	int f;

	memset(mp, 0, sizeof(*mp));
	while (pbr_next(m, &f, &v, &sub) >= 0) {
		if (f == 1)
			mp->id = v;
		else if (f == 2)
			mp->start = v;
		else if (f == 3)
			mp->limit = v;
		else if (f == 4)
			mp->offset = v;
		else if (f == 5)
			mp->file = v;
		else if (f == 6)
			mp->build_id = v;
		else if (f == 7)
			mp->has_func = v;
		else if (f == 8)
			mp->has_file = v;
		else if (f == 9)
			mp->has_line = v;
		else if (f == 10)
			mp->has_inline = v;
	}
}

static bool decode(struct decoded *d, const unsigned char *buf, size_t len)
{
	struct pbr r = { buf, buf + len }, sub;
	uint64_t v = 0;
	int f, w;

	memset(d, 0, sizeof(*d));
	while ((w = pbr_next(&r, &f, &v, &sub)) >= 0) {
		switch (f) {
		case 1:
			if (d->nst < 8) {
				decode_value_type(&sub, &d->st_type[d->nst],
						  &d->st_unit[d->nst]);
				d->nst++;
			}
			break;
		case 2:
			if (d->nsamples < MAXN)
				decode_sample(&d->samples[d->nsamples++], &sub);
			break;
		case 3:
			if (d->nmaps < MAXN)
				decode_mapping(&d->maps[d->nmaps++], &sub);
			break;
		case 4:
			if (d->nlocs < MAXN)
				decode_location(&d->locs[d->nlocs++], &sub);
			break;
		case 5:
			if (d->nfuncs < MAXN)
				decode_function(&d->funcs[d->nfuncs++], &sub);
			break;
		case 6:
			if (w == 2 && d->nstrs < MAXN * 4)
				d->strs[d->nstrs++] = strndup(
					(const char *)sub.p, sub.end - sub.p);
			break;
		case 9:
			d->time_ns = v;
			break;
		case 10:
			d->duration_ns = v;
			break;
		case 11:
			decode_value_type(&sub, &d->pt_type, &d->pt_unit);
			break;
		case 12:
			d->period = v;
			break;
		case 14:
			d->dflt = v;
			break;
		}
	}
	return r.p == r.end;
}

static void decoded_free(struct decoded *d)
{
	int i;

	for (i = 0; i < d->nstrs; i++)
		free(d->strs[i]);
}

static const char *str(const struct decoded *d, uint64_t i)
{
	return i < (uint64_t)d->nstrs ? d->strs[i] : "(bad index)";
}

static const struct dloc *loc(const struct decoded *d, uint64_t id)
{
	int i;

	for (i = 0; i < d->nlocs; i++)
		if (d->locs[i].id == id)
			return &d->locs[i];
	return NULL;
}

static const struct dfunc *func(const struct decoded *d, uint64_t id)
{
	int i;

	for (i = 0; i < d->nfuncs; i++)
		if (d->funcs[i].id == id)
			return &d->funcs[i];
	return NULL;
}

static const struct dmap *mapping(const struct decoded *d, uint64_t id)
{
	int i;

	for (i = 0; i < d->nmaps; i++)
		if (d->maps[i].id == id)
			return &d->maps[i];
	return NULL;
}

/* Name of line j of location id, "" if missing. */
static const char *loc_func(const struct decoded *d, uint64_t id, int j)
{
	const struct dloc *l = loc(d, id);
	const struct dfunc *fn;

	if (!l || j >= l->nlines)
		return "";
	fn = func(d, l->func[j]);
	return fn ? str(d, fn->name) : "";
}

static const struct dsample *sample_with_leaf(const struct decoded *d,
					      const char *name)
{
	int i;

	for (i = 0; i < d->nsamples; i++)
		if (d->samples[i].nlocs &&
		    !strcmp(loc_func(d, d->samples[i].locs[0], 0), name))
			return &d->samples[i];
	return NULL;
}

static int64_t label_num(const struct decoded *d, const struct dsample *s,
			 const char *key)
{
	int i;

	for (i = 0; i < s->nlabels; i++)
		if (!strcmp(str(d, s->labels[i].key), key))
			return (int64_t)s->labels[i].num;
	return -1;
}

static const char *label_str(const struct decoded *d, const struct dsample *s,
			     const char *key)
{
	int i;

	for (i = 0; i < s->nlabels; i++)
		if (!strcmp(str(d, s->labels[i].key), key))
			return str(d, s->labels[i].str);
	return "";
}

static unsigned char *gunzip_file(const char *path, size_t *len)
{
	unsigned char *buf = NULL, *nb;
	size_t cap = 0;
	gzFile gz;
	int n;

	*len = 0;
	gz = gzopen(path, "rb");
	if (!gz)
		return NULL;
	for (;;) {
		if (*len + 65536 > cap) {
			cap = cap ? cap * 2 : 65536 * 2;
			nb = realloc(buf, cap);
			if (!nb)
				break;
			buf = nb;
		}
		n = gzread(gz, buf + *len, 65536);
		if (n <= 0)
			break;
		*len += n;
	}
	gzclose(gz);
	return buf;
}

static bool is_gzip(const char *path)
{
	unsigned char magic[2] = { 0 };
	FILE *f = fopen(path, "rb");
	bool ok;

	if (!f)
		return false;
	ok = fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f &&
	     magic[1] == 0x8b;
	fclose(f);
	return ok;
}

/* ---- tests ------------------------------------------------------------ */

static struct fixture_proc fp;
static char profile[128];

static void check_stack(const struct decoded *d, const char *leaf,
			const char *fn, const uint64_t *ra, const int *line,
			const int64_t *want)
{
	const struct dsample *s = sample_with_leaf(d, leaf);
	const struct dloc *l0, *l1;
	const struct dmap *m;
	int i;

	if (!ASSERT_TRUE(s))
		return;
	ASSERT_EQ(s->nvals, 4);
	for (i = 0; i < 4; i++)
		ASSERT_EQ((int64_t)s->vals[i], want[i]);
	ASSERT_EQ(label_num(d, s, "pid"), fp.pid);
	ASSERT_STREQ(label_str(d, s, "comm"), "mtfix");
	if (!ASSERT_EQ(s->nlocs, 2))
		return;
	l0 = loc(d, s->locs[0]);
	l1 = loc(d, s->locs[1]);
	if (!ASSERT_TRUE(l0 && l1))
		return;
	/* Inlined frames: one location, innermost line first. */
	ASSERT_EQ(l0->nlines, 2);
	ASSERT_STREQ(loc_func(d, l0->id, 0), leaf);
	ASSERT_EQ(l0->line[0], line[0]);
	ASSERT_STREQ(loc_func(d, l0->id, 1), fn);
	ASSERT_EQ(l0->line[1], line[1]);
	ASSERT_STREQ(loc_func(d, l1->id, 0), "main");
	ASSERT_EQ(l1->line[0], line[2]);
	/* Call-instruction addresses inside the right mapping. */
	ASSERT_EQ(l0->addr, ra[0] - 1);
	ASSERT_EQ(l1->addr, ra[1] - 1);
	m = mapping(d, l0->mapping);
	if (ASSERT_TRUE(m)) {
		ASSERT_TRUE(m->start <= l0->addr && l0->addr < m->limit);
		ASSERT_TRUE(m->has_func && m->has_file && m->has_line);
	}
	m = mapping(d, l1->mapping);
	if (ASSERT_TRUE(m)) {
		ASSERT_TRUE(m->start <= l1->addr && l1->addr < m->limit);
		ASSERT_STREQ(strrchr(str(d, m->file), '/'), "/mtfix");
		ASSERT_EQ(strlen(str(d, m->build_id)), 40);
	}
}

static void test_write_and_decode(void)
{
	static const int64_t exe_want[4] = { 3, 9192, 1, 4096 };
	static const int64_t lib_want[4] = { 5, 500, 3, 300 };
	const uint64_t unknown[1] = { 0x10 };
	struct decoded *d;
	unsigned char *buf;
	struct pprof *p;
	struct syms *s;
	char tmp[160];
	size_t len;
	int i, found;

	s = syms__new();
	p = pprof__new(s);
	if (!ASSERT_TRUE(p))
		return;
	/* Same stack twice: one merged sample. */
	ASSERT_EQ(pprof__add(p, fp.pid, fp.exe_ra, 2, 2, 8192, 1, 4096), 0);
	ASSERT_EQ(pprof__add(p, fp.pid, fp.exe_ra, 2, 1, 1000, 0, 0), 0);
	ASSERT_EQ(pprof__add(p, fp.pid, fp.lib_ra, 2, 5, 500, 3, 300), 0);
	ASSERT_EQ(pprof__add(p, fp.pid, unknown, 1, 1, 7, 1, 7), 0);
	/* Shares its only location with the first stack. */
	ASSERT_EQ(pprof__add(p, fp.pid, &fp.exe_ra[1], 1, 1, 1, 1, 1), 0);
	ASSERT_EQ(pprof__add(p, fp.pid, NULL, -1, 0, 0, 0, 0), -EINVAL);
	ASSERT_EQ(pprof__write(p, profile), 0);
	pprof__free(p);
	syms__free(s);

	snprintf(tmp, sizeof(tmp), "%s.tmp", profile);
	ASSERT_TRUE(access(tmp, F_OK) && errno == ENOENT);
	ASSERT_TRUE(is_gzip(profile));
	buf = gunzip_file(profile, &len);
	if (!ASSERT_TRUE(buf && len > 0))
		return;
	d = calloc(1, sizeof(*d));
	ASSERT_TRUE(decode(d, buf, len));
	free(buf);

	ASSERT_TRUE(d->nstrs > 0);
	ASSERT_STREQ(str(d, 0), "");
	ASSERT_EQ(d->nst, 4);
	ASSERT_STREQ(str(d, d->st_type[0]), "alloc_objects");
	ASSERT_STREQ(str(d, d->st_unit[0]), "count");
	ASSERT_STREQ(str(d, d->st_type[1]), "alloc_space");
	ASSERT_STREQ(str(d, d->st_unit[1]), "bytes");
	ASSERT_STREQ(str(d, d->st_type[2]), "inuse_objects");
	ASSERT_STREQ(str(d, d->st_unit[2]), "count");
	ASSERT_STREQ(str(d, d->st_type[3]), "inuse_space");
	ASSERT_STREQ(str(d, d->st_unit[3]), "bytes");
	ASSERT_STREQ(str(d, d->dflt), "inuse_space");
	ASSERT_STREQ(str(d, d->pt_type), "space");
	ASSERT_STREQ(str(d, d->pt_unit), "bytes");
	ASSERT_EQ(d->period, 1);
	ASSERT_TRUE(d->time_ns > 0);

	ASSERT_EQ(d->nsamples, 4);
	/* 2 + 2 + 1 locations; the last stack reused one. */
	ASSERT_EQ(d->nlocs, 5);
	/* inl_helper outer_fn main lib_inl mtfix_lib_fn */
	ASSERT_EQ(d->nfuncs, 5);
	for (i = 0; i < d->nlocs; i++)
		ASSERT_EQ(d->locs[i].id, i + 1);
	for (i = 0; i < d->nfuncs; i++) {
		ASSERT_EQ(d->funcs[i].id, i + 1);
		ASSERT_EQ(d->funcs[i].sysname, d->funcs[i].name);
		ASSERT_TRUE(strstr(str(d, d->funcs[i].file), "mtfix_"));
	}

	check_stack(d, "inl_helper", "outer_fn", fp.exe_ra, fp.exe_line,
		    exe_want);
	check_stack(d, "lib_inl", "mtfix_lib_fn", fp.lib_ra, fp.lib_line,
		    lib_want);

	/* The unmapped address: a location without mapping or lines. */
	found = 0;
	for (i = 0; i < d->nsamples; i++) {
		const struct dsample *sm = &d->samples[i];
		const struct dloc *l = loc(d, sm->locs[0]);

		if (sm->nlocs != 1 || !l || l->mapping)
			continue;
		found++;
		ASSERT_EQ(l->addr, 0xf);
		ASSERT_EQ(l->nlines, 0);
		ASSERT_EQ((int64_t)sm->vals[3], 7);
	}
	ASSERT_EQ(found, 1);
	decoded_free(d);
	free(d);
}

/*
 * The profile covers the run it was given (not the time taken to write
 * it), and the executable's mapping is named as it was invoked: a
 * symlink stays the symlink (pprof's "File:").
 */
static void test_times_and_exe(void)
{
	char link[160], tmp[200];
	struct decoded *d;
	unsigned char *buf;
	struct pprof *p;
	struct syms *s;
	size_t len;
	int i, found = 0;

	snprintf(link, sizeof(link), "%s/invoked-as", fixture_dir);
	snprintf(tmp, sizeof(tmp), "%s/mtfix", fixture_dir);
	if (!ASSERT_EQ(symlink(tmp, link), 0))
		return;
	s = syms__new();
	p = pprof__new(s);
	if (!ASSERT_TRUE(p))
		return;
	pprof__set_times(p, 1700000000ULL * 1000000000ULL,
			 47ULL * 1000000000ULL);
	ASSERT_EQ(pprof__set_exe(p, fp.pid, link), 0);
	ASSERT_EQ(pprof__add(p, fp.pid, fp.exe_ra, 2, 1, 10, 1, 10), 0);
	ASSERT_EQ(pprof__write(p, profile), 0);
	pprof__free(p);
	syms__free(s);
	unlink(link);
	buf = gunzip_file(profile, &len);
	d = calloc(1, sizeof(*d));
	if (!ASSERT_TRUE(buf && d && decode(d, buf, len)))
		return;
	free(buf);
	ASSERT_EQ(d->time_ns, 1700000000ULL * 1000000000ULL);
	ASSERT_EQ(d->duration_ns, 47ULL * 1000000000ULL);
	for (i = 0; i < d->nmaps; i++)
		found += !strcmp(str(d, d->maps[i].file), link);
	ASSERT_EQ(found, 1);
	decoded_free(d);
	free(d);
}

/* pprof's own view: function names with exact byte values. */
static bool pprof_top_has(const char *index, const char *value,
			  const char *name)
{
	char cmd[512], line[512], flat[64], rest[256], all[8192] = "";
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "go tool pprof -top -nodefraction=0 %s -sample_index=%s "
		 "'%s' 2>&1", strstr(index, "space") ? "-unit=B" : "", index,
		 profile);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		strncat(all, line, sizeof(all) - strlen(all) - 1);
		/* "  4096B 93.03% 93.03%  4096B 93.03%  inl_helper (inline)" */
		if (sscanf(line, " %63s %*s %*s %*s %*s %255[^\n]", flat,
			   rest) == 2 && !strcmp(flat, value) &&
		    !strncmp(rest, name, strlen(name)) &&
		    (rest[strlen(name)] == '\0' || rest[strlen(name)] == ' '))
			found = true;
	}
	pclose(f);
	if (!found)
		printf("# pprof -sample_index=%s: no \"%s %s\" in:\n%s",
		       index, value, name, all);
	return found;
}

static void test_go_pprof(void)
{
	if (system("command -v go >/dev/null 2>&1")) {
		printf("skip test_go_pprof: go not installed "
		       "(apt-get install golang-go)\n");
		return;
	}
	ASSERT_TRUE(pprof_top_has("inuse_space", "4096B", "inl_helper"));
	ASSERT_TRUE(pprof_top_has("inuse_space", "300B", "lib_inl"));
	ASSERT_TRUE(pprof_top_has("alloc_space", "9192B", "inl_helper"));
	ASSERT_TRUE(pprof_top_has("alloc_space", "500B", "lib_inl"));
	/* main: the 1-byte sample whose leaf is main itself */
	ASSERT_TRUE(pprof_top_has("inuse_space", "1B", "main"));
	/* callers only: flat 0, printed without a unit */
	ASSERT_TRUE(pprof_top_has("inuse_space", "0", "outer_fn"));
	ASSERT_TRUE(pprof_top_has("inuse_space", "0", "mtfix_lib_fn"));
	ASSERT_TRUE(pprof_top_has("inuse_objects", "3", "lib_inl"));
}

static void test_folded(void)
{
	const uint64_t unknown[1] = { 0x10 };
	char *out = NULL, want[1024];
	size_t len = 0;
	struct syms *s;
	FILE *f;

	s = syms__new();
	f = open_memstream(&out, &len);
	if (!ASSERT_TRUE(f))
		return;
	ASSERT_EQ(folded__write(s, f, fp.pid, "mtfix", fp.exe_ra, 2, 4096), 0);
	ASSERT_EQ(folded__write(s, f, fp.pid, "a b;c\n", fp.lib_ra, 2, 300),
		  0);
	ASSERT_EQ(folded__write(s, f, fp.pid, NULL, unknown, 1, 7), 0);
	ASSERT_EQ(folded__write(s, f, fp.pid, "mtfix", NULL, 0, 1), 0);
	ASSERT_EQ(folded__write(s, f, fp.pid, "x", NULL, -1, 1), -EINVAL);
	fclose(f);
	snprintf(want, sizeof(want),
		 "mtfix;main;outer_fn;inl_helper 4096\n"
		 "a_b_c_;main;mtfix_lib_fn;lib_inl 300\n"
		 "pid_%d;[unknown] 7\n"
		 "mtfix 1\n", fp.pid);
	ASSERT_STREQ(out, want);
	free(out);
	syms__free(s);
}

/* Writing into a missing directory fails cleanly. */
static void test_write_error(void)
{
	struct syms *s = syms__new();
	struct pprof *p = pprof__new(s);
	char path[160];

	snprintf(path, sizeof(path), "%s/nodir/x.pb.gz", fixture_dir);
	ASSERT_TRUE(pprof__write(p, path) < 0);
	ASSERT_TRUE(pprof__new(NULL) == NULL);
	pprof__free(p);
	syms__free(s);
}

int main(void)
{
	char path[128];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fixture__build()) {
		printf("not ok fixture build\n");
		fixture__cleanup();
		return 1;
	}
	snprintf(path, sizeof(path), "%s/mtfix", fixture_dir);
	snprintf(profile, sizeof(profile), "%s/heap.pb.gz", fixture_dir);
	if (fixture__spawn(path, NULL, &fp)) {
		printf("not ok fixture start\n");
		fixture__cleanup();
		return 1;
	}
	RUN_TEST(test_write_and_decode);
	RUN_TEST(test_go_pprof);
	RUN_TEST(test_times_and_exe);
	RUN_TEST(test_folded);
	RUN_TEST(test_write_error);
	fixture__kill(&fp);
	fixture__cleanup();
	return test__finish();
}
