# SPDX-License-Identifier: GPL-2.0
# memtrace build.  `make` builds ./memtrace; `make run` and `make test` first
# install whatever Debian packages are missing (tools/setup.sh).

OUTPUT	?= build
CLANG	?= clang
CC	?= gcc
BPFTOOL	?= bpftool
ARCH	:= $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

CFLAGS	?= -O2 -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fno-omit-frame-pointer
CFLAGS	+= $(SAN_CFLAGS)
INCLUDES := -Iinclude -Iuser -I$(OUTPUT)
LIBS	:= -lbpf -lelf -lz -ldw -lcapstone -lncursesw -lm -lstdc++

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS	:= $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(filter-out user/main.c,$(wildcard user/*.c))
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/%.o,$(USER_SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
WORKLOAD_SRCS := $(filter-out tests/workloads/sites.c tests/workloads/wrap.c tests/workloads/realloc_race.c,$(wildcard tests/workloads/*.c))
WORKLOADS := $(patsubst tests/workloads/%.c,$(OUTPUT)/workloads/%,$(WORKLOAD_SRCS)) \
	     $(OUTPUT)/workloads/sites $(OUTPUT)/workloads/libmtsite.so \
	     $(OUTPUT)/workloads/wrap $(OUTPUT)/workloads/libmtwrap.so \
	     $(OUTPUT)/workloads/allocs_mtalloc $(OUTPUT)/workloads/libmtalloc.so \
	     $(OUTPUT)/workloads/libmtfwd.so $(OUTPUT)/workloads/cxx_mtalloc \
	     $(OUTPUT)/workloads/realloc_race \
	     $(patsubst tests/workloads/%.cpp,$(OUTPUT)/workloads/%,$(wildcard tests/workloads/*.cpp)) \
	     $(OUTPUT)/workloads/chain $(OUTPUT)/workloads/chain_mixed \
	     $(OUTPUT)/workloads/chain_plt $(OUTPUT)/workloads/libmtchain.so \
	     $(OUTPUT)/workloads/bench_deep $(OUTPUT)/workloads/bench_deep_fp

# jemalloc's own API, where Debian's libjemalloc2 is installed (make test
# installs it first, then builds in a sub-make that sees it)
JEMALLOC := $(wildcard /usr/lib/x86_64-linux-gnu/libjemalloc.so.2)
ifneq ($(JEMALLOC),)
WORKLOADS += $(OUTPUT)/workloads/jeapi
endif

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all clean deps run test unit integration bench vmlinux install man \
	check-asan

all: memtrace

deps:
	$(Q)tools/setup.sh

$(OUTPUT) $(OUTPUT)/tests $(OUTPUT)/workloads:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/memtrace.h vmlinux/vmlinux.h | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
		-Iinclude -Ivmlinux -c $< -o $@.tmp
	$(Q)$(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/%.o: user/%.c $(wildcard user/*.h) include/memtrace.h $(SKELS) | $(OUTPUT)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) -c $< -o $@

memtrace $(OUTPUT)/memtrace: $(OUTPUT)/main.o $(USER_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBS) -o $@

# Unit tests link every user module except main.c; they need no root.
$(OUTPUT)/tests/%: tests/unit/%.c tests/unit/test.h $(wildcard tests/unit/fixtures/*) $(USER_OBJS) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) $< $(USER_OBJS) $(LIBS) -o $@

# Workloads know what they allocate; frame pointers so stacks are exact.
$(OUTPUT)/workloads/%: tests/workloads/%.c tests/workloads/truth.h | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fno-inline-functions-called-once \
		-Wall -Wno-unused-result -o $@ $< -lpthread

$(OUTPUT)/workloads/%: tests/workloads/%.cpp | $(OUTPUT)/workloads
	$(call msg,CXX,$@)
	$(Q)g++ -O1 -g -fno-omit-frame-pointer -Wall -o $@ $<

# The sites workload links a shared library of its own, found via $ORIGIN.
$(OUTPUT)/workloads/libmtsite.so: tests/workloads/lib/mtsite.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fPIC -shared -o $@ $<

$(OUTPUT)/workloads/sites: tests/workloads/sites.c tests/workloads/truth.h $(OUTPUT)/workloads/libmtsite.so
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -Wall -o $@ $< \
		-L$(OUTPUT)/workloads -lmtsite -Wl,-rpath,'$$ORIGIN'

# Wrappers built like a distribution's libraries: no frame pointers.
$(OUTPUT)/workloads/libmtwrap.so: tests/workloads/lib/mtwrap.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -g -fomit-frame-pointer -fPIC -shared -o $@ $<

$(OUTPUT)/workloads/wrap: tests/workloads/wrap.c tests/workloads/truth.h $(OUTPUT)/workloads/libmtwrap.so
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -Wall -o $@ $< \
		-L$(OUTPUT)/workloads -lmtwrap -Wl,-rpath,'$$ORIGIN'

# An allocator of its own (like jemalloc linked in): libc's is never called.
$(OUTPUT)/workloads/libmtalloc.so: tests/workloads/lib/mtalloc.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fPIC -shared -o $@ $<

$(OUTPUT)/workloads/cxx_mtalloc: tests/workloads/cxx.cpp $(OUTPUT)/workloads/libmtalloc.so
	$(call msg,CXX,$@)
	$(Q)g++ -O1 -g -fno-omit-frame-pointer -Wall -o $@ $< \
		-L$(OUTPUT)/workloads -lmtalloc -Wl,-rpath,'$$ORIGIN'

$(OUTPUT)/workloads/jeapi: tests/workloads/opt/jeapi.c tests/workloads/truth.h | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -Wall -o $@ $< $(JEMALLOC)

# A preloaded wrapper passing each call on to the C library's.
$(OUTPUT)/workloads/libmtfwd.so: tests/workloads/lib/mtfwd.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fPIC -shared -o $@ $<

$(OUTPUT)/workloads/allocs_mtalloc: tests/workloads/allocs.c tests/workloads/truth.h $(OUTPUT)/workloads/libmtalloc.so
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fno-inline-functions-called-once \
		-Wall -Wno-unused-result -o $@ $< -lpthread \
		-L$(OUTPUT)/workloads -lmtalloc -Wl,-rpath,'$$ORIGIN'

# realloc's old address handed to another thread (the allocator's hook)
$(OUTPUT)/workloads/realloc_race: tests/workloads/realloc_race.c tests/workloads/truth.h $(OUTPUT)/workloads/libmtalloc.so
	$(call msg,CC,$@)
	$(Q)$(CC) -O1 -g -fno-omit-frame-pointer -fno-inline-functions-called-once \
		-Wall -Wno-unused-result -o $@ $< -lpthread \
		-L$(OUTPUT)/workloads -lmtalloc -Wl,-rpath,'$$ORIGIN'

# Go workloads (tests/integration/test_go.py): Debian's Go 1.19 and, when
# installed, bookworm-backports' 1.23; plain, stripped (-s -w) and PIE.
# Built offline: no modules, no toolchain download, a cache of our own.
GO119	:= $(shell command -v go 2>/dev/null)
GO123	:= $(wildcard /usr/lib/go-1.23/bin/go)
GOENV	:= GOCACHE=$(abspath $(OUTPUT))/go-cache GO111MODULE=off GOFLAGS= \
	   GOTOOLCHAIN=local CGO_ENABLED=0
GODIR	:= $(OUTPUT)/workloads/go
# goinline: heap stacks through inlined calls (test_gosyms.py)
GO_VARIANTS := goheap goheap-stripped goheap-pie noprof \
	       goinline goinline-stripped goinline-pie
ifneq ($(GO119),)
WORKLOADS += $(patsubst %,$(GODIR)/%-119,$(GO_VARIANTS)) $(GODIR)/cgoheap-119 \
	     $(GODIR)/gobench-119
endif
ifneq ($(GO123),)
WORKLOADS += $(patsubst %,$(GODIR)/%-123,$(GO_VARIANTS))
endif
GO_119	= $(GO119)
GO_123	= $(GO123)
GOFLAGS_goheap :=
GOFLAGS_goheap-stripped := -ldflags='-s -w'
GOFLAGS_goheap-pie := -buildmode=pie

$(GODIR):
	$(Q)mkdir -p $@

# $(1): variant ("", -stripped, -pie), $(2): toolchain, $(3): program
define go_rules
$(GODIR)/$(3)$(1)-$(2): tests/workloads/go/$(3).go | $(GODIR)
	$$(call msg,GO$(2),$$@)
	$(Q)$(GOENV) $$(GO_$(2)) build $$(GOFLAGS_goheap$(1)) -o $$@ $$<
endef
$(foreach p,goheap goinline,$(foreach v,119 123,\
	$(eval $(call go_rules,,$(v),$(p)))\
	$(eval $(call go_rules,-stripped,$(v),$(p)))\
	$(eval $(call go_rules,-pie,$(v),$(p)))))

# A Go program that does not import runtime/pprof: the linker compiles
# heap profiling out.
$(GODIR)/noprof-%: tests/workloads/go/noprof/noprof.go | $(GODIR)
	$(call msg,GO$*,$@)
	$(Q)$(GOENV) $(GO_$*) build -o $@ $<

# Go symbolization bench (tools/bench/gosym_bench.py builds it on demand)
$(OUTPUT)/bench/gosym_bench: tools/bench/gosym_bench.c $(USER_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) $< $(USER_OBJS) $(LIBS) -o $@

# Built as distributions build: -O2 without frame pointers (CFI unwinding).
NOFP_CFLAGS := -O2 -g -fomit-frame-pointer -Wall -Wno-unused-result
$(OUTPUT)/workloads/chain: tests/workloads/cfi/chain.c tests/workloads/truth.h | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -o $@ $<

$(OUTPUT)/workloads/chain_mixed: tests/workloads/cfi/chain.c tests/workloads/truth.h | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -DCHAIN_MIXED -o $@ $<

$(OUTPUT)/workloads/bench_deep: tests/workloads/cfi/bench_deep.c tests/workloads/bench_tight.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -o $@ $<

$(OUTPUT)/workloads/bench_deep_fp: tests/workloads/cfi/bench_deep.c tests/workloads/bench_tight.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -fno-omit-frame-pointer -o $@ $<

$(OUTPUT)/workloads/libmtchain.so: tests/workloads/cfi/xmalloc.c | $(OUTPUT)/workloads
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -fPIC -shared -o $@ $<

$(OUTPUT)/workloads/chain_plt: tests/workloads/cfi/chain.c tests/workloads/truth.h $(OUTPUT)/workloads/libmtchain.so
	$(call msg,CC,$@)
	$(Q)$(CC) $(NOFP_CFLAGS) -DCHAIN_LIB -o $@ $< \
		-L$(OUTPUT)/workloads -lmtchain -Wl,-rpath,'$$ORIGIN'

# make bench: a Go allocation loop, and a profile of many buckets
$(GODIR)/gobench-%: tests/workloads/go/gobench/gobench.go | $(GODIR)
	$(call msg,GO$*,$@)
	$(Q)$(GOENV) $(GO_$*) build -o $@ $<

$(OUTPUT)/bench/goheap_bench: tools/bench/goheap_bench.c $(USER_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(INCLUDES) $< $(USER_OBJS) $(LIBS) -o $@

# cgo: a Go heap and a C heap in one process
$(GODIR)/cgoheap-%: tests/workloads/go/cgo/cgoheap.go | $(GODIR)
	$(call msg,GO$*,$@)
	$(Q)$(GOENV) CGO_ENABLED=1 CGO_CFLAGS='-O1 -g -fno-omit-frame-pointer' \
		$(GO_$*) build -o $@ $<

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

build-tests: memtrace $(UNIT_BINS) $(WORKLOADS)

# The fault-injection suite (tests/integration/test_faults.py) against a
# memtrace built with AddressSanitizer and UBSan in a build dir of its own
# (~1 min to build, ~1 min to run: not part of `make test`).
ASAN_OUT ?= build-asan
ASAN_CFLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
check-asan: deps
	$(Q)$(MAKE) --no-print-directory build-tests
	$(Q)$(MAKE) --no-print-directory OUTPUT=$(ASAN_OUT) \
		SAN_CFLAGS='$(ASAN_CFLAGS)' $(ASAN_OUT)/memtrace
	$(Q)ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		MEMTRACE=$(abspath $(ASAN_OUT))/memtrace \
		python3 tests/run.py --integration -k test_faults.

run: deps memtrace
	./memtrace

test: deps
	$(Q)$(MAKE) --no-print-directory build-tests
	$(Q)python3 tests/run.py

unit: build-tests
	$(Q)python3 tests/run.py --unit

integration: build-tests
	$(Q)python3 tests/run.py --integration

bench: deps
	$(Q)$(MAKE) --no-print-directory build-tests
	$(Q)tools/bench.sh

PREFIX	?= /usr/local
install: memtrace
	install -D -m 0755 memtrace $(DESTDIR)$(PREFIX)/sbin/memtrace
	install -D -m 0644 docs/memtrace.8 $(DESTDIR)$(PREFIX)/share/man/man8/memtrace.8

man:
	$(Q)man -l docs/memtrace.8

clean:
	rm -rf $(OUTPUT) $(ASAN_OUT) memtrace
