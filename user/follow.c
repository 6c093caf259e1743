// SPDX-License-Identifier: GPL-2.0
/*
 * -p follows what a server forked before memtrace started, and --cgroup
 * whatever a container runs.  Later forks need nothing from here: the
 * kernel counts a traced process's children from their fork, and the
 * FORK record gets them their probes (events.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "follow.h"
#include "procfs.h"
#include "util.h"

struct pp {
	int pid, ppid;
};

/* The parent of pid, -1 if gone. */
static int ppid_of(int pid)
{
	struct procfs_stat st;

	return procfs__read_stat(pid, &st) ? -1 : st.ppid;
}

static bool has(const int *v, int n, int x)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static int push(int **v, int *cap, int *n, int x)
{
	if (array_grow(v, cap, *n, sizeof(**v)))
		return -ENOMEM;
	(*v)[(*n)++] = x;
	return 0;
}

int follow__descendants(const int *roots, int nroots, int **out, int *n)
{
	struct pp *all = NULL;
	int nall = 0, capall = 0, cap = 0, i, j, err, *pids, npids;

	*out = NULL;
	*n = 0;
	err = procfs__pids(&pids, &npids);
	if (err)
		return err;
	/* one pass over /proc: pid -> parent */
	for (i = 0; i < npids; i++) {
		int ppid = ppid_of(pids[i]);

		if (ppid <= 0)
			continue;
		if (array_grow(&all, &capall, nall, sizeof(*all))) {
			err = -ENOMEM;
			break;
		}
		all[nall++] = (struct pp){ pids[i], ppid };
	}
	free(pids);
	/* breadth first: each one found is a parent to look for in turn */
	for (i = -nroots; !err && i < *n; i++) {
		int parent = i < 0 ? roots[i + nroots] : (*out)[i];

		for (j = 0; j < nall && !err; j++)
			if (all[j].ppid == parent &&
			    !has(roots, nroots, all[j].pid) &&
			    !has(*out, *n, all[j].pid))
				err = push(out, &cap, n, all[j].pid);
	}
	free(all);
	return err;
}

int follow__cgroup_pids(const char *dir, int **out, int *n)
{
	char path[4096];
	int cap = 0, pid, err = 0;
	FILE *f;

	*out = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!err && fscanf(f, "%d", &pid) == 1)
		err = push(out, &cap, n, pid);
	fclose(f);
	return err;
}

void follow__cgroup_poll(struct app *app)
{
	int *pids, n, i;

	if (!app->env.cgroup_path ||
	    follow__cgroup_pids(app->env.cgroup_path, &pids, &n))
		return;
	for (i = 0; i < n; i++) {
		struct mt_row *r = table__get(app->table, pids[i]);

		/* new members, and the exited pid a new member reuses */
		if (!r || r->exited)
			app__trace_pid(app, pids[i]);
	}
	free(pids);
}
