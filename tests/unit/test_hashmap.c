// SPDX-License-Identifier: GPL-2.0
/*
 * The generic hash map (user/hashmap.c) against a reference model: random
 * inserts, replaces and deletes checked op by op against a plain array,
 * growth through many doublings, iteration that deletes as it goes, a
 * multimap, caller-given hash/equal callbacks and a hash that sends
 * every key to one bucket.
 */
#include <errno.h>
#include <stdlib.h>

#include "test.h"
#include "hashmap.h"

#define NKEYS	512		/* key space: collisions of keys are common */

/* The model: value + 1 per key, 0 = absent. */
struct model {
	uintptr_t v[NKEYS];
	size_t n;
};

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Keys spread over 64 bits, so the map never sees them in order. */
static uint64_t key_of(int i)
{
	return (uint64_t)i * 0x9e3779b97f4a7c15ULL;
}

static bool same_as_model(const struct hashmap *m, const struct model *md)
{
	struct hashmap_entry *cur;
	size_t bkt, seen = 0;
	int i, wrong = 0;

	for (i = 0; i < NKEYS; i++) {
		void *v = NULL;
		bool found = hashmap__find(m, key_of(i), &v);

		if (found != (md->v[i] != 0) ||
		    (found && (uintptr_t)v != md->v[i] - 1))
			wrong++;
	}
	hashmap__for_each_entry(m, cur, bkt)
		seen++;
	return ASSERT_EQ(wrong, 0) && ASSERT_EQ(hashmap__size(m), md->n) &&
	       ASSERT_EQ(seen, md->n);
}

/* One check per random op: quiet unless it fails (then the op says so). */
#define SAME(a, b) ({							\
	long long __a = (long long)(a), __b = (long long)(b);		\
	if (__a != __b)							\
		printf("    op %d: %s: got %lld, want %lld\n", op, #a,	\
		       __a, __b);					\
	__a == __b; })

static size_t const_hash(uint64_t key, void *ctx)
{
	return 7;	/* every key in one bucket: chains must still work */
}

static void random_ops(hashmap_hash_fn hash)
{
	struct hashmap m;
	struct model md = {};
	int op, bad = 0;

	hashmap__init(&m, hash, NULL, NULL);
	for (op = 0; op < 200000 && !bad; op++) {
		int i = rnd() % NKEYS, err;
		uintptr_t val = rnd() & 0xffffff;
		void *old = (void *)1;

		switch (rnd() % 4) {
		case 0:		/* add */
			err = hashmap__add(&m, key_of(i), (void *)val);
			if (!SAME(err, md.v[i] ? -EEXIST : 0))
				bad = 1;
			if (!md.v[i]) {
				md.v[i] = val + 1;
				md.n++;
			}
			break;
		case 1:		/* set: the old value comes back */
			err = hashmap__set(&m, key_of(i), (void *)val, &old);
			if (!SAME(err, 0) ||
			    !SAME((uintptr_t)old,
				       md.v[i] ? md.v[i] - 1 : 0))
				bad = 1;
			if (!md.v[i])
				md.n++;
			md.v[i] = val + 1;
			break;
		case 2:		/* update: only an existing key */
			err = hashmap__insert(&m, key_of(i), (void *)val,
					      HASHMAP_UPDATE, NULL);
			if (!SAME(err, md.v[i] ? 0 : -ENOENT))
				bad = 1;
			if (md.v[i])
				md.v[i] = val + 1;
			break;
		default:	/* delete */
			if (!SAME(hashmap__delete(&m, key_of(i), &old),
				       md.v[i] != 0) ||
			    (md.v[i] && !SAME((uintptr_t)old,
						    md.v[i] - 1)))
				bad = 1;
			if (md.v[i]) {
				md.v[i] = 0;
				md.n--;
			}
			break;
		}
		if (op % 997 == 0 && !same_as_model(&m, &md))
			bad = 1;
	}
	ASSERT_TRUE(!bad);
	same_as_model(&m, &md);
	hashmap__clear(&m);
	ASSERT_EQ(hashmap__size(&m), 0);
	ASSERT_TRUE(!hashmap__find(&m, key_of(1), NULL));
}

static void test_random_vs_model(void)
{
	random_ops(NULL);
}

static void test_one_bucket(void)
{
	random_ops(const_hash);
}

/* 100,000 keys: many doublings; every one still found after. */
static void test_grow(void)
{
	struct hashmap *m = hashmap__new(NULL, NULL, NULL);
	int i, missing = 0;

	for (i = 0; i < 100000; i++)
		if (hashmap__add(m, i, (void *)(uintptr_t)(i * 3)))
			missing++;
	ASSERT_EQ(missing, 0);
	ASSERT_EQ(hashmap__size(m), 100000);
	ASSERT_TRUE(m->cap >= hashmap__size(m));
	for (i = 0; i < 100000; i++)
		if ((uintptr_t)hashmap__get(m, i) != (uintptr_t)i * 3)
			missing++;
	ASSERT_EQ(missing, 0);
	ASSERT_TRUE(!hashmap__find(m, 100000, NULL));
	hashmap__free(m);
}

/*
 * Delete as we iterate: every entry is visited exactly once, the ones
 * deleted are gone, the others all stay.
 */
static void test_iterate_delete(void)
{
	struct hashmap m;
	struct hashmap_entry *cur, *tmp;
	static unsigned char visits[NKEYS * 8];
	size_t bkt, left = 0;
	int i, twice = 0, wrong = 0;

	hashmap__init(&m, NULL, NULL, NULL);
	for (i = 0; i < NKEYS * 8; i++)
		hashmap__add(&m, key_of(i), (void *)(uintptr_t)i);
	hashmap__for_each_entry_safe(&m, cur, tmp, bkt) {
		i = (uintptr_t)cur->value;
		if (visits[i]++)
			twice++;
		if (i % 3)
			hashmap__delete_entry(&m, cur);
	}
	ASSERT_EQ(twice, 0);
	for (i = 0; i < NKEYS * 8; i++) {
		if (!visits[i] || hashmap__find(&m, key_of(i), NULL) != !(i % 3))
			wrong++;
		left += !(i % 3);
	}
	ASSERT_EQ(wrong, 0);
	ASSERT_EQ(hashmap__size(&m), left);
	/* and delete everything the same way */
	hashmap__for_each_entry_safe(&m, cur, tmp, bkt)
		hashmap__delete_entry(&m, cur);
	ASSERT_EQ(hashmap__size(&m), 0);
	hashmap__for_each_entry(&m, cur, bkt)
		wrong++;
	ASSERT_EQ(wrong, 0);
	hashmap__clear(&m);
}

/* A multimap: several values per key, all found, deleted one by one. */
static void test_multimap(void)
{
	struct hashmap m;
	struct hashmap_entry *cur;
	int i, n, sum;

	hashmap__init(&m, NULL, NULL, NULL);
	for (i = 0; i < 300; i++)
		ASSERT_EQ(hashmap__append(&m, i % 10, (void *)(uintptr_t)i), 0);
	n = sum = 0;
	hashmap__for_each_key_entry(&m, cur, 3) {
		n++;
		sum += (uintptr_t)cur->value;
	}
	ASSERT_EQ(n, 30);
	ASSERT_EQ(sum, 30 * 3 + 10 * (29 * 30 / 2));	/* 3, 13, ..., 293 */
	for (i = 0; i < 30; i++)
		ASSERT_TRUE(hashmap__delete(&m, 3, NULL));
	ASSERT_TRUE(!hashmap__delete(&m, 3, NULL));
	ASSERT_EQ(hashmap__size(&m), 270);
	hashmap__clear(&m);
}

/* Keys that are pointers to strings: found by content, not address. */
static size_t str_hash(uint64_t key, void *ctx)
{
	const char *s = (const char *)(uintptr_t)key;
	size_t h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static bool str_equal(uint64_t a, uint64_t b, void *ctx)
{
	return !strcmp((const char *)(uintptr_t)a, (const char *)(uintptr_t)b);
}

static void test_callbacks(void)
{
	static const char *const words[] = { "malloc", "free", "realloc",
					     "calloc", "" };
	struct hashmap m;
	char probe[16];
	unsigned int i;

	hashmap__init(&m, str_hash, str_equal, NULL);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(hashmap__add(&m, (uintptr_t)words[i],
				       (void *)(uintptr_t)(i + 1)), 0);
	strcpy(probe, "realloc");	/* another address, same content */
	ASSERT_EQ((uintptr_t)hashmap__get(&m, (uintptr_t)probe), 3);
	ASSERT_EQ(hashmap__add(&m, (uintptr_t)probe, NULL), -EEXIST);
	strcpy(probe, "mallo");
	ASSERT_TRUE(!hashmap__find(&m, (uintptr_t)probe, NULL));
	strcpy(probe, "");
	ASSERT_EQ((uintptr_t)hashmap__get(&m, (uintptr_t)probe), 5);
	hashmap__clear(&m);
}

/* (pid, generation) keys: the same pid of two generations is two keys. */
static void test_pairs(void)
{
	struct hashmap m;

	hashmap__init(&m, NULL, NULL, NULL);
	ASSERT_EQ(hashmap__add(&m, hashmap__pair(4242, 1), (void *)1), 0);
	ASSERT_EQ(hashmap__add(&m, hashmap__pair(4242, 2), (void *)2), 0);
	ASSERT_EQ(hashmap__add(&m, hashmap__pair(1, 4242), (void *)3), 0);
	ASSERT_EQ((uintptr_t)hashmap__get(&m, hashmap__pair(4242, 2)), 2);
	ASSERT_TRUE(hashmap__delete(&m, hashmap__pair(4242, 1), NULL));
	ASSERT_TRUE(!hashmap__find(&m, hashmap__pair(4242, 1), NULL));
	ASSERT_EQ((uintptr_t)hashmap__get(&m, hashmap__pair(1, 4242)), 3);
	hashmap__clear(&m);
}

int main(void)
{
	RUN_TEST(test_random_vs_model);
	RUN_TEST(test_one_bucket);
	RUN_TEST(test_grow);
	RUN_TEST(test_iterate_delete);
	RUN_TEST(test_multimap);
	RUN_TEST(test_callbacks);
	RUN_TEST(test_pairs);
	return test__finish();
}
