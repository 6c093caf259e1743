/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one JSON emitter: objects, arrays, keys and values with the commas
 * placed by the emitter, never by hand, so a writer cannot produce
 * invalid JSON.  Strings are escaped (quotes, backslashes, control
 * bytes; a byte that is not valid UTF-8 becomes \u00XX so the output is
 * always valid UTF-8); a number that is not finite is written as null.
 */
#ifndef MT_JSON_H
#define MT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH	16

struct json {
	FILE *f;
	int depth;
	bool more[JSON_MAX_DEPTH];	/* a value already at this depth */
	bool keyed;			/* a key was written: its value next */
};

void json__init(struct json *j, FILE *f);

void json__obj(struct json *j);		/* { */
void json__obj_end(struct json *j);	/* } */
void json__arr(struct json *j);		/* [ */
void json__arr_end(struct json *j);	/* ] */
/* The key of the next value (inside an object). */
void json__key(struct json *j, const char *k);

/* Values.  A string stops at len bytes or its first NUL. */
void json__str(struct json *j, const char *s, size_t len);
void json__u64(struct json *j, uint64_t v);
void json__i64(struct json *j, int64_t v);
/* prec digits after the point; not finite: null. */
void json__dbl(struct json *j, double v, int prec);
void json__bool(struct json *j, bool v);
void json__null(struct json *j);

/* key + value, the common case. */
void json__kstr(struct json *j, const char *k, const char *s, size_t len);
void json__ku64(struct json *j, const char *k, uint64_t v);
void json__ki64(struct json *j, const char *k, int64_t v);
void json__kdbl(struct json *j, const char *k, double v, int prec);
void json__kbool(struct json *j, const char *k, bool v);
void json__knull(struct json *j, const char *k);

/* The escaped string alone, quotes included (no emitter state). */
void json_str(FILE *f, const char *s, size_t len);

#endif /* MT_JSON_H */
