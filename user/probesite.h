/* SPDX-License-Identifier: GPL-2.0 */
/* Choose where in a function a uprobe costs least. */
#ifndef MT_PROBESITE_H
#define MT_PROBESITE_H

#include <stddef.h>
#include <stdint.h>

#define PROBESITE_WINDOW 64	/* bytes of code examined */

struct probesite {
	uint32_t skip;		/* bytes from the entry to the chosen site */
	char why[256];		/* what is there, for -v */
};

/*
 * Given the first bytes of a function (code[0] is the entry), choose the
 * first instruction the kernel emulates that every call reaches with the
 * entry's first nargs argument registers and stack pointer.  Returns 1 with a site
 * past the entry, 0 if the entry itself is the site (emulated or no safe
 * alternative), negative errno on decoder failure.
 */
int probesite__choose(const uint8_t *code, size_t len, int nargs,
		      struct probesite *out);

#endif /* MT_PROBESITE_H */
