// SPDX-License-Identifier: GPL-2.0
// Go workload for `make bench` (tools/bench/goheap_bench.py).
//
//	gobench -alloc N     allocate N mixed objects (some kept a while),
//	                     print "ns_per_op X" and exit
//	gobench -buckets N   make about N distinct allocation stacks (every
//	                     one recorded: MemProfileRate 1), print "ready",
//	                     then wait to be read
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

var ring [4096][]byte
var keep [][]byte

//go:noinline
func work(n int) {
	for i := 0; i < n; i++ {
		ring[i%len(ring)] = make([]byte, 16+(i%64)*8)
	}
}

// Distinct stacks: a call path of a() and b() spelled by the bits of k.
//
//go:noinline
func a(d, k int) {
	if d == 0 {
		keep = append(keep, make([]byte, 64))
		return
	}
	if k&1 == 0 {
		a(d-1, k>>1)
	} else {
		b(d-1, k>>1)
	}
}

//go:noinline
func b(d, k int) {
	if d == 0 {
		keep = append(keep, make([]byte, 128))
		return
	}
	if k&1 == 0 {
		a(d-1, k>>1)
	} else {
		b(d-1, k>>1)
	}
}

func main() {
	alloc := flag.Int("alloc", 0, "objects to allocate")
	buckets := flag.Int("buckets", 0, "distinct stacks to make")
	flag.Parse()
	_ = pprof.Lookup // profiling stays compiled in, as in a service
	if *alloc > 0 {
		work(*alloc / 10) // warm up
		t := time.Now()
		work(*alloc)
		fmt.Printf("ns_per_op %.2f\n", float64(time.Since(t).Nanoseconds())/float64(*alloc))
		return
	}
	runtime.MemProfileRate = 1
	depth := 1
	for 1<<depth < *buckets {
		depth++
	}
	for k := 0; k < *buckets; k++ {
		a(depth, k)
	}
	runtime.GC()
	runtime.GC()
	fmt.Printf("ready %d\n", os.Getpid())
	for {
		time.Sleep(time.Hour)
	}
}
