// SPDX-License-Identifier: GPL-2.0
// A cgo program with two heaps: Go keeps 10 MiB in holdGo; on SIGUSR2
// C code mallocs 100 blocks of 4096 bytes in c_hold (kept), so a tracer
// attached before that sees them; SIGUSR1 publishes the Go heap (two
// GCs) and prints "written".
package main

/*
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void *c_hold(size_t n)
{
	void *p = malloc(n);

	if (p)
		memset(p, 1, n);
	return p;
}
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"unsafe"
)

var keep [][]byte
var cptrs []unsafe.Pointer

//go:noinline
func holdGo(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 256<<10))
	}
}

//go:noinline
func holdC(n int) {
	for i := 0; i < n; i++ {
		cptrs = append(cptrs, C.c_hold(4096))
	}
}

func main() {
	runtime.MemProfileRate = 1
	holdGo(40)
	runtime.GC()
	runtime.GC()
	debug.SetGCPercent(-1)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Printf("ready %d\n", os.Getpid())
	for s := range sig {
		if s == syscall.SIGUSR2 {
			holdC(100)
			fmt.Printf("held c\n")
			continue
		}
		runtime.GC()
		runtime.GC()
		pprof.Lookup("heap")
		fmt.Printf("written numgc\n")
	}
}
