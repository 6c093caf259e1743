// SPDX-License-Identifier: GPL-2.0
// A Go program that cannot read its own heap profile (it does not import
// runtime/pprof), so the linker sets runtime.disableMemoryProfiling and
// the runtime samples nothing.  It holds 8 MiB in holdBlocks, churns
// in churn, and prints its GC count on SIGUSR1 (after two GCs).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

var keep [][]byte
var sink []byte

//go:noinline
func holdBlocks(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 64<<10))
	}
}

//go:noinline
func churn(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 8192)
	}
}

func main() {
	holdBlocks(128)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for {
			churn(4)
			time.Sleep(time.Millisecond)
		}
	}()
	fmt.Printf("ready %d\n", os.Getpid())
	for range usr1 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("numgc %d rate %d\n", ms.NumGC, runtime.MemProfileRate)
	}
}
