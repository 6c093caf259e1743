/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Artifact files: the dump directory (--dump-dir) and the directory of
 * each capture under it.  Everything is created through directory fds,
 * O_NOFOLLOW|O_EXCL, mode 0600, under ".tmp-MEMTRACEPID-" names,
 * written with checked writes, fsynced and renamed when complete; a file
 * that could not be written is remembered by name so the capture can
 * say so and fail.
 */
#ifndef MT_ARTIFACT_H
#define MT_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct artdir;		/* the dump directory, root-owned, mode 0700 */
struct artifact;	/* one capture's directory under it */

/* Remembers path; nothing is opened yet. */
int artdir__new(const char *path, struct artdir **out);
void artdir__free(struct artdir *ad);
/*
 * Open (once) after checking it is a real root-owned directory no one
 * else can write, and remove what dead memtraces left half written.
 * Says what is wrong on stderr; 0 or -errno.
 */
int artdir__open(struct artdir *ad);
/* The directory's name escaped for messages. */
const char *artdir__shown(const struct artdir *ad);
/* Free bytes on its file system; -errno if unknown (or not open). */
int artdir__avail(const struct artdir *ad, uint64_t *bytes);

/*
 * Create TIME-PID-COMM-CONTAINER[-oom] under a temporary name (comm and
 * container made file-name safe here).  0 or -errno.
 */
int artifact__new(struct artdir *ad, int pid, const char *comm,
		  const char *container, bool oom, struct artifact **out);
/* Close it (the temporary name stays unless published). NULL is fine. */
void artifact__free(struct artifact *a);
/* fsync and rename to its final name; 0 or -errno. */
int artifact__publish(struct artifact *a);
/* Remove it (not published) and everything in it. */
void artifact__discard(struct artifact *a);
int artifact__fd(const struct artifact *a);
/* Its final name, relative to the dump directory. */
const char *artifact__name(const struct artifact *a);

/* Write a whole file; 0 or -errno, the loss noted. */
int artifact__write(struct artifact *a, const char *name, const char *buf,
		    size_t len);
/* Copy src in; 1 if src cannot be read (not counted as a loss). */
int artifact__copy(struct artifact *a, const char *src, const char *name);

/* A file being written: fprintf to f, then afile__commit(). */
struct afile {
	FILE *f;
	struct artifact *art;
	char tmp[300], name[256];
};
int afile__open(struct afile *f, struct artifact *a, const char *name);
/* Written whole, on disk, then under its name: or gone and noted. */
int afile__commit(struct afile *f);

/* A file of the capture is lost (err -errno): named, counted. */
void artifact__lost(struct artifact *a, const char *name, int err);
/* Names of the files lost so far ("" if none), and the first error. */
const char *artifact__lost_names(const struct artifact *a);
int artifact__lost_err(const struct artifact *a);
/* A file written whole by other means (heap.pb.gz): counted. */
void artifact__count(struct artifact *a);
/* Files written whole so far. */
int artifact__written(const struct artifact *a);
/* Forget the losses (already said otherwise). */
void artifact__forget_lost(struct artifact *a);

/* The temporary name of name while memtrace writes it. */
void artifact__tmp_name(char *buf, size_t len, const char *name);

#endif /* MT_ARTIFACT_H */
