// SPDX-License-Identifier: GPL-2.0
// Ground truth for tests/unit/test_gobin.c: the program prints its own
// logical call stack as the Go runtime symbolizes it, through a chain of
// calls the compiler inlines, so the reader can be checked against the
// runtime itself on every build (normal, stripped, PIE).  The stack
// starts in runtime.Callers, a leading runtime frame pprof hides.
package main

import (
	"os"
	"runtime"
	"strconv"
)

var sink []byte

//go:noinline
func leaf(n int) []uintptr {
	sink = make([]byte, n)
	pcs := make([]uintptr, 64)
	k := runtime.Callers(0, pcs)
	return pcs[:k]
}

func inlA(n int) []uintptr { return leaf(n + 1) }
func inlB(n int) []uintptr { return inlA(n * 2) }

//go:noinline
func outer(n int) []uintptr { return inlB(n) }

func main() {
	pcs := outer(len(os.Args))
	out := "entry main.leaf " + strconv.FormatUint(uint64(runtime.FuncForPC(pcs[0]).Entry()), 16) + "\n"
	frames := runtime.CallersFrames(pcs)
	for i := 0; ; i++ {
		f, more := frames.Next()
		out += "frame " + strconv.FormatUint(uint64(pcs[i]), 16) + " " + f.Function + " " +
			f.File + " " + strconv.Itoa(f.Line) + "\n"
		if !more || i+1 >= len(pcs) {
			break
		}
	}
	os.Stdout.WriteString(out + "done\n")
	// "wait": stay alive for a symbolizer until stdin closes
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		os.Stdin.Read(make([]byte, 1))
	}
}
