/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One small generic hash map for every module (the pattern of libbpf's
 * hashmap.h, our own code): chained buckets, grown by doubling, 64-bit
 * keys and pointer values.  Keys are integers by default (a pid, a
 * (pid, generation) pair packed in 64 bits); a module with other keys
 * gives hash and equal callbacks and passes a pointer or an index as the
 * key.  Several entries may share a key (hashmap__append): a multimap,
 * e.g. content hashes with collisions resolved by the caller.
 *
 * Not thread-safe.  Iteration with the _safe macro may delete the
 * current entry (hashmap__delete_entry, and only that one: the next is
 * already held); nothing may be inserted while iterating (an insert can
 * grow and rehash the buckets).
 */
#ifndef MT_HASHMAP_H
#define MT_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef size_t (*hashmap_hash_fn)(uint64_t key, void *ctx);
typedef bool (*hashmap_equal_fn)(uint64_t a, uint64_t b, void *ctx);

struct hashmap_entry {
	uint64_t key;
	void *value;
	struct hashmap_entry *next;
};

struct hashmap {
	hashmap_hash_fn hash_fn;	/* NULL: the key is its own hash */
	hashmap_equal_fn equal_fn;	/* NULL: keys compare with == */
	void *ctx;
	struct hashmap_entry **buckets;
	size_t cap;			/* buckets: 0 or a power of two */
	int cap_bits;
	size_t sz;			/* entries */
};

enum hashmap_insert {
	HASHMAP_ADD,		/* only if the key is new, else -EEXIST */
	HASHMAP_SET,		/* add, or replace the value of the key */
	HASHMAP_UPDATE,		/* only if the key exists, else -ENOENT */
	HASHMAP_APPEND,		/* always add: the key may repeat */
};

/* A 64-bit integer mixed into a well-spread hash (murmur3's finalizer). */
static inline size_t hashmap__mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h;
}

/* Two 32-bit halves as one key: (pid, generation), (tgid, gen). */
static inline uint64_t hashmap__pair(uint32_t hi, uint32_t lo)
{
	return (uint64_t)hi << 32 | lo;
}

void hashmap__init(struct hashmap *m, hashmap_hash_fn hash_fn,
		   hashmap_equal_fn equal_fn, void *ctx);
struct hashmap *hashmap__new(hashmap_hash_fn hash_fn,
			     hashmap_equal_fn equal_fn, void *ctx);
/* Drop every entry (the values are the caller's); keeps the callbacks. */
void hashmap__clear(struct hashmap *m);
void hashmap__free(struct hashmap *m);

static inline size_t hashmap__size(const struct hashmap *m)
{
	return m->sz;
}

/*
 * Insert key -> value; for HASHMAP_SET/UPDATE the value replaced goes to
 * *old_value if old_value is not NULL (NULL there when the key was new).
 * 0, -EEXIST, -ENOENT or -ENOMEM.
 */
int hashmap__insert(struct hashmap *m, uint64_t key, void *value,
		    enum hashmap_insert how, void **old_value);

static inline int hashmap__add(struct hashmap *m, uint64_t key, void *value)
{
	return hashmap__insert(m, key, value, HASHMAP_ADD, NULL);
}

static inline int hashmap__set(struct hashmap *m, uint64_t key, void *value,
			       void **old_value)
{
	return hashmap__insert(m, key, value, HASHMAP_SET, old_value);
}

static inline int hashmap__append(struct hashmap *m, uint64_t key,
				  void *value)
{
	return hashmap__insert(m, key, value, HASHMAP_APPEND, NULL);
}

/* The value of key (one of them, in a multimap) into *value. */
bool hashmap__find(const struct hashmap *m, uint64_t key, void **value);
/* The value of key, or NULL (for maps whose values are never NULL). */
static inline void *hashmap__get(const struct hashmap *m, uint64_t key)
{
	void *v = NULL;

	return hashmap__find(m, key, &v) ? v : NULL;
}
/* Remove one entry of key; its value into *old_value.  False: none. */
bool hashmap__delete(struct hashmap *m, uint64_t key, void **old_value);
/* Remove exactly this entry (the cur of an iteration), freeing it. */
void hashmap__delete_entry(struct hashmap *m, struct hashmap_entry *e);

/* Bucket of a key; for the iteration macros. */
size_t hashmap__bucket(const struct hashmap *m, uint64_t key);
bool hashmap__key_eq(const struct hashmap *m, uint64_t a, uint64_t b);

/* Every entry, in no particular order. */
#define hashmap__for_each_entry(m, cur, bkt)				\
	for ((bkt) = 0; (bkt) < (m)->cap; (bkt)++)			\
		for ((cur) = (m)->buckets[bkt]; (cur); (cur) = (cur)->next)

/* The same; hashmap__delete_entry(m, cur) is allowed inside. */
#define hashmap__for_each_entry_safe(m, cur, tmp, bkt)			\
	for ((bkt) = 0; (bkt) < (m)->cap; (bkt)++)			\
		for ((cur) = (m)->buckets[bkt];				\
		     (cur) && ((tmp) = (cur)->next, 1);			\
		     (cur) = (tmp))

/* Every entry whose key equals key (several in a multimap). */
#define hashmap__for_each_key_entry(m, cur, k)				\
	for ((cur) = (m)->cap ? (m)->buckets[hashmap__bucket(m, k)] : NULL; \
	     (cur); (cur) = (cur)->next)				\
		if (hashmap__key_eq(m, (cur)->key, k))

#endif /* MT_HASHMAP_H */
