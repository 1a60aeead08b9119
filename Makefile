# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
# keepwatch build. Every output goes under build/; nothing generated is committed.
#   make          build/keepwatchd and build/keepwatch
#   make run      install missing Debian packages, build, start the agent in the foreground
#   make test     install what the tests need, build, run unit and end-to-end tests
#   make SANITIZE=1 unit   the unit tests under ASan/UBSan
#   make render-bench ARGS='-n 10000'   time /metrics and JSON rendering (no kernel needed)

OUT      := build
CLANG    ?= clang
BPFTOOL  ?= $(shell command -v bpftool || echo /usr/sbin/bpftool)
CC       ?= cc
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
PYTEST   ?= /usr/bin/python3 -m pytest

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
	    -Iinclude -Iuser -I$(OUT) -DKW_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS   := -lbpf -lelf -lz -lmicrohttpd -ljansson -lcurl -lpthread
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -I$(OUT)

LIB_SRCS := $(filter-out user/keepwatchd.c user/keepwatch.c,$(wildcard user/*.c))
LIB_OBJS := $(LIB_SRCS:user/%.c=$(OUT)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(OUT)/%)

.PHONY: all run test unit e2e deps clean format format-check bench render-bench docs FORCE
all: $(OUT)/keepwatchd $(OUT)/keepwatch

$(OUT):
	@mkdir -p $@

$(OUT)/vmlinux.h: | $(OUT)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/keepwatch.bpf.o: bpf/keepwatch.bpf.c $(OUT)/vmlinux.h | $(OUT)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/keepwatch.skel.h: $(OUT)/keepwatch.bpf.o
	$(BPFTOOL) gen skeleton $< name keepwatch_bpf > $@.tmp && mv $@.tmp $@

# The loader includes the skeleton.
$(OUT)/loader.o: $(OUT)/keepwatch.skel.h

$(OUT)/%.o: user/%.c | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

# What --version and keepwatch_build_info report: the file changes only when `git
# describe` does, and then the three objects that print it are rebuilt (they kept the
# version of their last edit before).
$(OUT)/version: FORCE | $(OUT)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" > $@
$(OUT)/metrics.o $(OUT)/keepwatch.o $(OUT)/keepwatchd.o: $(OUT)/version
FORCE:

$(OUT)/libkeepwatch.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(OUT)/keepwatchd: $(OUT)/keepwatchd.o $(OUT)/libkeepwatch.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/keepwatch: $(OUT)/keepwatch.o $(OUT)/libkeepwatch.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/test_%.o: tests/unit/test_%.c | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/test_%: $(OUT)/test_%.o $(OUT)/libkeepwatch.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

deps:
	@tools/install-deps.sh $(DEPS)

run: DEPS = run
run: deps all
	tools/prepare-host.sh
	exec $(OUT)/keepwatchd $(ARGS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: all
	tools/prepare-host.sh
	$(PYTEST) -v tests/e2e $(PYTEST_ARGS)

test: DEPS = test
test: deps all
	$(MAKE) format-check
	$(MAKE) unit
	$(MAKE) OUT=$(OUT)/asan SANITIZE=1 unit
	$(MAKE) e2e

docs: $(OUT)/keepwatchd
	tools/update-docs.sh

bench: all
	tools/bench/run.sh

# Scrape rendering alone, without the kernel: build/render_bench -n 10000
$(OUT)/render_bench.o: tools/bench/render_bench.c | $(OUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/render_bench: $(OUT)/render_bench.o $(OUT)/libkeepwatch.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

render-bench: $(OUT)/render_bench
	$(OUT)/render_bench $(ARGS)

format:
	clang-format -i bpf/*.c include/*.h user/*.c user/*.h tests/unit/*.c

format-check:
	clang-format --dry-run --Werror bpf/*.c include/*.h user/*.c user/*.h tests/unit/*.c

clean:
	rm -rf $(OUT)

.SECONDARY:

-include $(wildcard $(OUT)/*.d)

# Debian's own kernels (6.1, 6.12) booted in qemu, an end-to-end run inside each (tests/kernels/).
.PHONY: test-kernels
test-kernels: all
	tools/kernels/kernels.py deps
	KW_BUILD=$(OUT) $(PYTEST) -v tests/kernels $(PYTEST_ARGS)
