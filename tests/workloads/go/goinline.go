// SPDX-License-Identifier: GPL-2.0
// Heap stacks through inlined calls, for tests/integration/test_gosyms.py:
// main.keepInlA inlined into main.keepInlB inlined into the non-inlined
// main.keepOuter, and bytes.(*Buffer).Grow inlined into main.useBuffer.
// Every allocation is sampled (MemProfileRate = 1), two GCs publish
// them, the program writes its own pprof.WriteHeapProfile to argv[1],
// prints "ready PID" and stays quiescent (GC off) until stdin closes.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
)

var keep [][]byte
var bufs []*bytes.Buffer

func keepInlA(n int) { keep = append(keep, make([]byte, n)) }
func keepInlB(n int) { keepInlA(n * 2) }

//go:noinline
func keepOuter(n int) {
	for i := 0; i < 64; i++ {
		keepInlB(n)
	}
}

//go:noinline
func useBuffer(n int) {
	for i := 0; i < 16; i++ {
		b := new(bytes.Buffer)
		b.Grow(n)
		bufs = append(bufs, b)
	}
}

func main() {
	runtime.MemProfileRate = 1
	keepOuter(4096)
	useBuffer(100 << 10)
	runtime.GC()
	runtime.GC()
	debug.SetGCPercent(-1)
	f, err := os.Create(os.Args[1])
	if err == nil {
		err = pprof.WriteHeapProfile(f)
		f.Close()
	}
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	os.Stdin.Read(make([]byte, 1))
}
