/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the user-space modules. */
#ifndef MT_UTIL_H
#define MT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

uint64_t now_ns(void);		/* CLOCK_MONOTONIC, the clock BPF stamps with */
double now_wall(void);		/* seconds since the epoch */

/*
 * Copy untrusted text (a process name, a path) for a terminal: control
 * characters, DEL, invalid UTF-8 and escape sequences become visible
 * \xNN / \n forms, never raw bytes.
 */
void sanitize(const char *in, size_t inlen, char *out, size_t outlen);
/* Length of the valid UTF-8 sequence at s (at most n bytes); 0: invalid
 * (C1 controls, overlong forms and surrogates count as invalid). */
size_t utf8_len(const unsigned char *s, size_t n);
/* Human units: 1536 -> "1.5K". */
void human_bytes(char *buf, size_t len, double v);

/* A duration for humans: 42 -> "42s", 4000 -> "67m"; "" when v < 0. */
void human_secs(char *buf, size_t len, double v);

int read_file(const char *path, char *buf, size_t len);

/*
 * A new file beside path (PATH.XXXXXX), to be renamed over path once
 * complete; its name goes to tmp.  Created O_EXCL under a random name,
 * so it never follows or truncates a file or symlink someone put there
 * (memtrace runs as root; /tmp is everyone's), and rename() replaces a
 * symlink at path instead of writing through it.  Returns an fd or
 * -errno.
 */
int tmpfile_beside(const char *path, char *tmp, size_t len);

/*
 * Option values, checked whole: a decimal integer in [lo, hi] (no sign,
 * no trailing text, no wrap past 2^64), or a finite number in [lo, hi].
 * Return 0, -EINVAL (not a number) or -ERANGE (outside the range).
 */
int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int parse_real(const char *s, double lo, double hi, double *out);
/*
 * A size with an optional K/M/G/T suffix (powers of 1024, optional "B"
 * or "iB"): "512M", "1.5G", "1048576".  In [lo, hi] bytes, whole bytes.
 */
int parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/*
 * Make room for one more element in a growable array: *arrp holds nr
 * elements of size bytes and room for *cap.  Doubles the room when full.
 * Returns 0, or -ENOMEM with the array untouched.
 */
int array_grow(void *arrp, int *cap, int nr, size_t size);

#endif /* MT_UTIL_H */
