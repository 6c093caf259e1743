// SPDX-License-Identifier: GPL-2.0
/*
 * C++ workload: memory held through operator new from methods in a
 * namespace, so frames must read demangled (ns::Cache::fill(int)).
 * Prints "done <bytes held through operator new by Cache::fill>
 * <bytes held through malloc by Cache::raw>"
 * and waits for EOF on stdin.
 */
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <vector>

namespace ns {
struct Item {
	char payload[200];
};

class Cache {
public:
	__attribute__((noinline)) void fill(int n)
	{
		for (int i = 0; i < n; i++)
			items.push_back(new Item());
	}
	/* straight to malloc: this frame has a frame pointer to be found */
	__attribute__((noinline)) void raw(int n)
	{
		for (int i = 0; i < n && i < 64; i++)
			blocks[i] = malloc(300);
	}
	std::vector<Item *> items;
	void *blocks[64];
};
} // namespace ns

__attribute__((noinline)) static char *make_buffer(size_t n)
{
	return new char[n];
}

int main()
{
	ns::Cache c;
	char buf[64], ch;
	int n;

	c.items.reserve(1000);	/* the vector's own block comes first */
	c.fill(1000);
	c.raw(50);
	char *b = make_buffer(4096);
	n = snprintf(buf, sizeof(buf), "done %zu %d\n",
		     1000 * sizeof(ns::Item), 50 * 300);
	if (write(1, buf, n) != n)
		return 1;
	while (read(0, &ch, 1) == 1)
		;
	delete[] b;
	return 0;
}
