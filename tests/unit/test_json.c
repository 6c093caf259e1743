// SPDX-License-Identifier: GPL-2.0
/*
 * The JSON emitter (user/json.c): hostile strings (every byte value,
 * quotes, backslashes, escape sequences, invalid UTF-8, surrogates, C1
 * controls), non-finite numbers and nesting are written, then parsed
 * back by Python's json module, whose canonical dump must be exactly
 * what the strings and numbers were.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "json.h"

static void test_json_str_escapes(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	json_str(f, "q\"b\\\n\x01\x1b\xc3\xa9\xff", 11);
	fclose(f);
	ASSERT_STREQ(buf, "\"q\\\"b\\\\\\n\\u0001\\u001b\xc3\xa9\\u00ff\"");
	free(buf);
}

/* Commas come from the emitter: keys, nesting, empty containers. */
static void test_json_commas(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct json j;

	json__init(&j, f);
	json__obj(&j);
	json__ku64(&j, "a", 1);
	json__key(&j, "b");
	json__arr(&j);
	json__arr_end(&j);
	json__key(&j, "c");
	json__arr(&j);
	json__obj(&j);
	json__obj_end(&j);
	json__i64(&j, -2);
	json__null(&j);
	json__arr_end(&j);
	json__kdbl(&j, "d", NAN, 1);
	json__kdbl(&j, "e", 2.25, 2);
	json__obj_end(&j);
	fclose(f);
	ASSERT_STREQ(buf, "{\"a\":1,\"b\":[],\"c\":[{},-2,null],\"d\":null,"
		     "\"e\":2.25}");
	free(buf);
}

/* What Python's json.dumps(ensure_ascii) gives for code point c. */
static void py_char(FILE *f, unsigned c)
{
	switch (c) {
	case '"': fputs("\\\"", f); return;
	case '\\': fputs("\\\\", f); return;
	case '\n': fputs("\\n", f); return;
	case '\r': fputs("\\r", f); return;
	case '\t': fputs("\\t", f); return;
	case '\b': fputs("\\b", f); return;
	case '\f': fputs("\\f", f); return;
	}
	if (c < 0x20 || c > 0x7e)
		fprintf(f, "\\u%04x", c);
	else
		fputc(c, f);
}

/*
 * Each hostile input and the code points it must read back as: a valid
 * UTF-8 sequence is its character, any other byte b is U+00b (kept
 * visible, never dropped, and the output stays valid UTF-8).
 */
static const struct {
	const char *in;
	size_t len;
	const char *want;	/* Python's canonical dump of the string */
} cases[] = {
	{ "q\"b\\\n\x01\x1b[31m", 11, "q\\\"b\\\\\\n\\u0001\\u001b[31m" },
	{ "\xc3\xa9t\xc3\xa9", 6, "\\u00e9t\\u00e9" },
	{ "\xff\xfe", 2, "\\u00ff\\u00fe" },
	{ "cut\xc3", 4, "cut\\u00c3" },				/* truncated */
	{ "\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080" },		/* surrogate */
	{ "\xc2\x9b" "2J", 4, "\\u00c2\\u009b2J" },		/* C1 CSI */
	{ "\xc0\xaf", 2, "\\u00c0\\u00af" },			/* overlong / */
	{ "\xf0\x9f\x98\x80", 4, "\\ud83d\\ude00" },		/* emoji */
	{ "a\0b", 3, "a" },					/* C string */
	{ "\x7f\x08\x0c\r\t", 5, "\\u007f\\b\\f\\r\\t" },
	{ "", 0, "" },
};

static void test_json_parse_back(void)
{
	char path[] = "/tmp/mt-test-json-XXXXXX", cmd[256], all[256];
	char *want = NULL, *got = NULL;
	size_t wlen = 0, glen = 0, n;
	FILE *f, *w, *p;
	struct json j;
	unsigned i;
	int fd;

	fd = mkstemp(path);
	if (!ASSERT_TRUE(fd >= 0))
		return;
	f = fdopen(fd, "w");
	w = open_memstream(&want, &wlen);
	json__init(&j, f);
	json__obj(&j);
	/* a hostile key too: keys go through the same escaping */
	json__kstr(&j, "k\"\x1b\xff", "v", 1);
	fputs("{\"k\\\"\\u001b\\u00ff\":\"v\",\"s\":[", w);
	json__key(&j, "s");
	json__arr(&j);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json__str(&j, cases[i].in, cases[i].len);
		fprintf(w, "%s\"%s\"", i ? "," : "", cases[i].want);
	}
	/* every byte 1..255 in one string: no two of them form UTF-8 */
	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	json__str(&j, all, 255);
	fputs(",\"", w);
	for (i = 1; i < 256; i++)
		py_char(w, i);
	fputs("\"]", w);
	json__arr_end(&j);
	json__key(&j, "n");
	json__arr(&j);
	json__dbl(&j, NAN, 1);
	json__dbl(&j, INFINITY, 1);
	json__dbl(&j, -INFINITY, 3);
	json__dbl(&j, -1.5, 1);
	json__u64(&j, UINT64_MAX);
	json__i64(&j, INT64_MIN);
	json__bool(&j, true);
	json__arr_end(&j);
	fputs(",\"n\":[null,null,null,-1.5,18446744073709551615,"
	      "-9223372036854775808,true]", w);
	json__key(&j, "deep");
	for (i = 0; i < 20; i++)	/* deeper than the emitter's stack */
		json__arr(&j);
	json__u64(&j, 1);
	json__u64(&j, 2);
	for (i = 0; i < 20; i++)
		json__arr_end(&j);
	fputs(",\"deep\":", w);
	for (i = 0; i < 20; i++)
		fputc('[', w);
	fputs("1,2", w);
	for (i = 0; i < 20; i++)
		fputc(']', w);
	json__obj_end(&j);
	fputs("}\n", w);
	fclose(f);
	fclose(w);

	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; print(json.dumps("
		 "json.load(open(sys.argv[1], encoding=\"utf-8\", errors=\"strict\"))"
		 ", separators=(\",\",\":\")))' %s", path);
	p = popen(cmd, "r");
	if (ASSERT_TRUE(p)) {
		FILE *g = open_memstream(&got, &glen);
		char b[4096];

		while ((n = fread(b, 1, sizeof(b), p)) > 0)
			fwrite(b, 1, n, g);
		fclose(g);
		ASSERT_EQ(pclose(p), 0);
		ASSERT_STREQ(got, want);
	}
	unlink(path);
	free(want);
	free(got);
}

int main(void)
{
	RUN_TEST(test_json_str_escapes);
	RUN_TEST(test_json_commas);
	RUN_TEST(test_json_parse_back);
	return test__finish();
}
