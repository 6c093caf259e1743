// SPDX-License-Identifier: GPL-2.0
// A Go program that knows what it holds: named functions keep known
// amounts, one churns.  On SIGUSR1 it runs two GCs (so every allocation
// is published in the heap profile), writes its own profile with
// pprof.WriteHeapProfile and prints "written PATH numgc N"; with GC
// switched off it then stays quiescent, so a reader sees the same heap.
// SIGUSR2 holds 10 MiB more in holdLarge and prints "grown".
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"
)

var keep [][]byte
var keepMap = map[int]*[512]byte{}
var sink []byte

//go:noinline
func holdSmall(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 1024))
	}
}

//go:noinline
func holdLarge(n int) {
	for i := 0; i < n; i++ {
		keep = append(keep, make([]byte, 256<<10))
	}
}

//go:noinline
func holdMap(n int) {
	for i := 0; i < n; i++ {
		keepMap[i] = new([512]byte)
	}
}

//go:noinline
func holdLeak(mib int) {
	for i := 0; i < mib*16; i++ {
		b := make([]byte, 64<<10)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1 // touched: resident, counted by the cgroup
		}
		keep = append(keep, b)
	}
}

//go:noinline
func churn(n int) {
	for i := 0; i < n; i++ {
		sink = make([]byte, 4096)
	}
}

func main() {
	rate := flag.Int("rate", -1, "runtime.MemProfileRate (-1: default)")
	out := flag.String("out", "", "where SIGUSR1 writes the heap profile")
	scale := flag.Int("scale", 1, "multiply the amounts")
	spin := flag.Bool("spin", false, "keep allocating (churn) until killed")
	gogc := flag.Int("gogc", -1, "GOGC once started (-1: GC off, quiescent)")
	leak := flag.Int("leak", 0, "after a line on stdin, leak N MiB every 50 ms")
	flag.Parse()
	if *rate >= 0 {
		runtime.MemProfileRate = *rate
	}
	holdSmall(2000 * *scale)
	holdLarge(40 * *scale)
	holdMap(1000 * *scale)
	churn(5000 * *scale)
	runtime.GC()
	runtime.GC()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	// SIGUSR2: hold 10 MiB more in holdLarge, published by two GCs
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		for range usr2 {
			holdLarge(40 * *scale)
			runtime.GC()
			runtime.GC()
			fmt.Printf("grown\n")
		}
	}()
	if *spin {
		go func() {
			for {
				churn(1000)
				time.Sleep(time.Millisecond)
			}
		}()
	} else {
		debug.SetGCPercent(*gogc)
	}
	fmt.Printf("ready %d\n", os.Getpid())
	if *leak > 0 {
		var line string
		fmt.Scanln(&line)
		for {
			holdLeak(*leak)
			time.Sleep(50 * time.Millisecond)
		}
	}
	for range usr1 {
		runtime.GC()
		runtime.GC()
		f, err := os.Create(*out)
		if err == nil {
			err = pprof.WriteHeapProfile(f)
			f.Close()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if err != nil {
			fmt.Printf("error %v\n", err)
		} else {
			fmt.Printf("written %s numgc %d rate %d nextgc %d "+
				"memlimit %d\n", *out, ms.NumGC,
				runtime.MemProfileRate, ms.NextGC,
				debug.SetMemoryLimit(-1))
		}
	}
}
