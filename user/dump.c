// SPDX-License-Identifier: GPL-2.0
/* Placeholder until pre-OOM capture lands: nothing is armed. */
#include <errno.h>
#include <stdio.h>

#include "app.h"
#include "dump.h"

int dump__new(struct app *app, struct dump **out)
{
	*out = NULL;
	return 0;
}

void dump__free(struct dump *d)
{
}

void dump__refresh(struct dump *d)
{
}

int dump__pollfds(struct dump *d, struct pollfd *fds, int max)
{
	return 0;
}

void dump__on_ready(struct dump *d, int fd)
{
}

int dump__now(struct dump *d, int pid, const char *reason)
{
	fprintf(stderr, "memtrace: dump: not available yet\n");
	return -ENOTSUP;
}

void dump__oom(struct dump *d, const struct mt_event *e)
{
}
