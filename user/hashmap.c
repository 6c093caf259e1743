// SPDX-License-Identifier: GPL-2.0
/* The generic hash map (see hashmap.h): chained buckets, grown by doubling. */
#include <errno.h>
#include <stdlib.h>

#include "hashmap.h"

#define HASHMAP_MIN_BITS	4	/* 16 buckets at the first insert */

void hashmap__init(struct hashmap *m, hashmap_hash_fn hash_fn,
		   hashmap_equal_fn equal_fn, void *ctx)
{
	m->hash_fn = hash_fn;
	m->equal_fn = equal_fn;
	m->ctx = ctx;
	m->buckets = NULL;
	m->cap = 0;
	m->cap_bits = 0;
	m->sz = 0;
}

struct hashmap *hashmap__new(hashmap_hash_fn hash_fn,
			     hashmap_equal_fn equal_fn, void *ctx)
{
	struct hashmap *m = malloc(sizeof(*m));

	if (m)
		hashmap__init(m, hash_fn, equal_fn, ctx);
	return m;
}

void hashmap__clear(struct hashmap *m)
{
	struct hashmap_entry *cur, *tmp;
	size_t bkt;

	if (!m)
		return;
	hashmap__for_each_entry_safe(m, cur, tmp, bkt)
		free(cur);
	free(m->buckets);
	m->buckets = NULL;
	m->cap = 0;
	m->cap_bits = 0;
	m->sz = 0;
}

void hashmap__free(struct hashmap *m)
{
	hashmap__clear(m);
	free(m);
}

/*
 * A caller's hash (a pid, a string's hash) is mixed again: the bucket
 * index takes the low bits, which a plain integer key would crowd.
 */
static size_t bucket_of(hashmap_hash_fn hash_fn, void *ctx, uint64_t key,
			int bits)
{
	uint64_t h = hash_fn ? hash_fn(key, ctx) : key;

	return hashmap__mix(h) & ((1ULL << bits) - 1);
}

size_t hashmap__bucket(const struct hashmap *m, uint64_t key)
{
	return bucket_of(m->hash_fn, m->ctx, key, m->cap_bits);
}

bool hashmap__key_eq(const struct hashmap *m, uint64_t a, uint64_t b)
{
	return m->equal_fn ? m->equal_fn(a, b, m->ctx) : a == b;
}

/* Twice the buckets once entries outnumber them (load factor <= 1). */
static int grow(struct hashmap *m)
{
	int bits = m->cap_bits ? m->cap_bits + 1 : HASHMAP_MIN_BITS;
	size_t cap = (size_t)1 << bits, bkt;
	struct hashmap_entry **nb, *cur, *tmp;

	nb = calloc(cap, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	hashmap__for_each_entry_safe(m, cur, tmp, bkt) {
		size_t i = bucket_of(m->hash_fn, m->ctx, cur->key, bits);

		cur->next = nb[i];
		nb[i] = cur;
	}
	free(m->buckets);
	m->buckets = nb;
	m->cap = cap;
	m->cap_bits = bits;
	return 0;
}

/* The link that points at key's first entry, or NULL. */
static struct hashmap_entry **find_link(const struct hashmap *m, uint64_t key)
{
	struct hashmap_entry **pp;

	if (!m->cap)
		return NULL;
	for (pp = &m->buckets[hashmap__bucket(m, key)]; *pp;
	     pp = &(*pp)->next)
		if (hashmap__key_eq(m, (*pp)->key, key))
			return pp;
	return NULL;
}

int hashmap__insert(struct hashmap *m, uint64_t key, void *value,
		    enum hashmap_insert how, void **old_value)
{
	struct hashmap_entry **pp = NULL, *e;
	size_t i;

	if (old_value)
		*old_value = NULL;
	if (how != HASHMAP_APPEND) {
		pp = find_link(m, key);
		if (pp && how == HASHMAP_ADD)
			return -EEXIST;
		if (!pp && how == HASHMAP_UPDATE)
			return -ENOENT;
		if (pp) {
			if (old_value)
				*old_value = (*pp)->value;
			(*pp)->value = value;
			return 0;
		}
	}
	if (m->sz >= m->cap && grow(m))
		return -ENOMEM;
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->key = key;
	e->value = value;
	i = hashmap__bucket(m, key);
	e->next = m->buckets[i];
	m->buckets[i] = e;
	m->sz++;
	return 0;
}

bool hashmap__find(const struct hashmap *m, uint64_t key, void **value)
{
	struct hashmap_entry **pp = find_link(m, key);

	if (!pp)
		return false;
	if (value)
		*value = (*pp)->value;
	return true;
}

bool hashmap__delete(struct hashmap *m, uint64_t key, void **old_value)
{
	struct hashmap_entry **pp = find_link(m, key), *e;

	if (!pp)
		return false;
	e = *pp;
	*pp = e->next;
	if (old_value)
		*old_value = e->value;
	free(e);
	m->sz--;
	return true;
}

void hashmap__delete_entry(struct hashmap *m, struct hashmap_entry *e)
{
	struct hashmap_entry **pp;

	for (pp = &m->buckets[hashmap__bucket(m, e->key)]; *pp;
	     pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			m->sz--;
			return;
		}
	}
}
