// SPDX-License-Identifier: GPL-2.0
/*
 * The one JSON emitter (see json.h).  Every untrusted string memtrace
 * writes as JSON (comm, cgroup names, paths, symbol names) goes through
 * json_str().
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "util.h"

void json_str(FILE *f, const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0;

	fputc('"', f);
	while (i < len && s[i]) {
		size_t n = utf8_len(s + i, len - i);

		if (n > 1) {
			fwrite(s + i, 1, n, f);
			i += n;
			continue;
		}
		switch (s[i]) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			/* controls, DEL and stray bytes: keep them visible */
			if (s[i] < 0x20 || s[i] == 0x7f || n == 0)
				fprintf(f, "\\u%04x", s[i]);
			else	/* unlocked: a name per row, thousands of rows */
				putc_unlocked(s[i], f);
		}
		i++;
	}
	fputc('"', f);
}

void json__init(struct json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
}

/* Before any value or key: the comma, unless a key was just written. */
static void sep(struct json *j)
{
	if (j->keyed) {
		j->keyed = false;
		return;
	}
	if (j->more[j->depth])
		fputc(',', j->f);
	j->more[j->depth] = true;
}

static void begin(struct json *j, char c)
{
	sep(j);
	fputc(c, j->f);
	/* deeper than the stack: still valid, commas as at the last level */
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->more[j->depth] = false;
}

static void end(struct json *j, char c)
{
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
	j->keyed = false;
}

void json__obj(struct json *j)
{
	begin(j, '{');
}

void json__obj_end(struct json *j)
{
	end(j, '}');
}

void json__arr(struct json *j)
{
	begin(j, '[');
}

void json__arr_end(struct json *j)
{
	end(j, ']');
}

void json__key(struct json *j, const char *k)
{
	sep(j);
	json_str(j->f, k, strlen(k));
	fputc(':', j->f);
	j->keyed = true;
}

void json__str(struct json *j, const char *s, size_t len)
{
	sep(j);
	json_str(j->f, s, len);
}

void json__u64(struct json *j, uint64_t v)
{
	sep(j);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void json__i64(struct json *j, int64_t v)
{
	sep(j);
	fprintf(j->f, "%lld", (long long)v);
}

void json__dbl(struct json *j, double v, int prec)
{
	sep(j);
	/* JSON has no NaN or infinity: a rate over no time is unknown */
	if (!isfinite(v))
		fputs("null", j->f);
	else
		fprintf(j->f, "%.*f", prec, v);
}

void json__bool(struct json *j, bool v)
{
	sep(j);
	fputs(v ? "true" : "false", j->f);
}

void json__null(struct json *j)
{
	sep(j);
	fputs("null", j->f);
}

void json__kstr(struct json *j, const char *k, const char *s, size_t len)
{
	json__key(j, k);
	json__str(j, s, len);
}

void json__ku64(struct json *j, const char *k, uint64_t v)
{
	json__key(j, k);
	json__u64(j, v);
}

void json__ki64(struct json *j, const char *k, int64_t v)
{
	json__key(j, k);
	json__i64(j, v);
}

void json__kdbl(struct json *j, const char *k, double v, int prec)
{
	json__key(j, k);
	json__dbl(j, v, prec);
}

void json__kbool(struct json *j, const char *k, bool v)
{
	json__key(j, k);
	json__bool(j, v);
}

void json__knull(struct json *j, const char *k)
{
	json__key(j, k);
	json__null(j);
}
