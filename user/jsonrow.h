/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one row schema: a process row as JSON, the same fields under the
 * same names in --json refreshes, a capture's row.json and an OOM
 * post-mortem (docs/memtrace.8, JSON OUTPUT, lists them).
 */
#ifndef MT_JSONROW_H
#define MT_JSONROW_H

struct app;
struct json;
struct mt_row;
struct mt_site_row;

/* The row object; its top_sites biggest sites (0: no "sites" key). */
void jsonrow__write(struct json *j, struct app *app, struct mt_row *r,
		    int top_sites);
/* A site's stack: an array of frames, innermost first. */
void jsonrow__stack(struct json *j, struct app *app, struct mt_row *r,
		    const struct mt_site_row *s);

#endif /* MT_JSONROW_H */
