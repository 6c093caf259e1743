// SPDX-License-Identifier: GPL-2.0
/* Small helpers: clocks, untrusted-text escaping, units, file reads. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, C1 controls (0x80-0x9f act as CSI etc.) */
	if ((len == 2 && cp < 0xa0) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void sanitize(const char *in, size_t inlen, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	if (!outlen)
		return;
	while (i < inlen && s[i]) {
		size_t n = utf8_len(s + i, inlen - i);
		char tmp[8];
		size_t tl;

		if (n == 1 && s[i] >= 0x20 && s[i] != 0x7f && s[i] != '\\') {
			tmp[0] = s[i];
			tl = 1;
		} else if (n > 1) {
			memcpy(tmp, s + i, n);
			tl = n;
		} else if (s[i] == '\\') {
			memcpy(tmp, "\\\\", 2);
			tl = 2;
		} else {
			tl = snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
			n = 1;
		}
		if (o + tl >= outlen)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
		i += n;
	}
	out[o] = '\0';
}

void human_bytes(char *buf, size_t len, double v)
{
	static const char units[] = "BKMGTP";
	bool neg = v < 0;
	int u = 0;

	if (neg)
		v = -v;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%s%.0f", neg ? "-" : "", v);
	else if (v < 10)
		snprintf(buf, len, "%s%.1f%c", neg ? "-" : "", v, units[u]);
	else
		snprintf(buf, len, "%s%.0f%c", neg ? "-" : "", v, units[u]);
}

void human_secs(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "%s", "");
	else if (v < 100)
		snprintf(buf, len, "%.0fs", v);
	else if (v < 6000)
		snprintf(buf, len, "%.0fm", v / 60);
	else if (v < 360000)
		snprintf(buf, len, "%.0fh", v / 3600);
	else
		snprintf(buf, len, "%.0fd", v / 86400);
}

int tmpfile_beside(const char *path, char *tmp, size_t len)
{
	int fd;

	if (snprintf(tmp, len, "%s.XXXXXX", path) >= (int)len)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* readable like a file created with the usual umask */
	fchmod(fd, 0644);
	return fd;
}

int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, tot = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)tot < len - 1) {
		n = read(fd, buf + tot, len - 1 - tot);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tot = -errno;
			break;
		}
		if (!n)
			break;
		tot += n;
	}
	close(fd);
	if (tot >= 0)
		buf[tot] = '\0';
	return tot;
}

int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	unsigned long long v;
	char *end;

	/* strtoull takes "-1" as 2^64-1 and skips leading blanks */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_real(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s || (*s != '.' && *s != '-' && *s != '+' &&
			  (*s < '0' || *s > '9')))
		return -EINVAL;	/* "inf", "nan", blanks */
	errno = 0;
	v = strtod(s, &end);
	if (*end || end == s)
		return -EINVAL;
	if (!isfinite(v) || v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char num[64];
	double v, mult = 1;
	size_t n;
	int err;

	if (!s || (n = strlen(s)) >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	/* peel "B", "iB", then the unit letter off the end */
	if (n && (num[n - 1] == 'B' || num[n - 1] == 'b'))
		num[--n] = '\0';
	if (n && num[n - 1] == 'i')
		num[--n] = '\0';
	switch (n ? num[n - 1] : 0) {
	case 'k': case 'K': mult = 0x1p10; break;
	case 'm': case 'M': mult = 0x1p20; break;
	case 'g': case 'G': mult = 0x1p30; break;
	case 't': case 'T': mult = 0x1p40; break;
	}
	if (mult > 1)
		num[--n] = '\0';
	err = parse_real(num, 0, 1e30, &v);
	if (err)
		return err;
	v *= mult;
	/* 2^64 is exact in a double: compare before converting */
	if (v >= 0x1p64 || v < lo || v > hi)
		return -ERANGE;
	if (v != floor(v))
		return -EINVAL;
	*out = v;
	return 0;
}

int array_grow(void *arrp, int *cap, int nr, size_t size)
{
	void **arr = arrp, *n;
	int want;

	if (nr < *cap)
		return 0;
	want = *cap ? *cap * 2 : 16;
	n = realloc(*arr, (size_t)want * size);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = want;
	return 0;
}
