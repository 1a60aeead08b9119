# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
# keepwatch build. Every output goes under build/; nothing generated is committed.
#   make          build/keepwatchd and build/keepwatch (quiet; V=1 shows the commands)
#   make run      install missing Debian packages, build, start the agent in the foreground
#   make test     install what the tests need, build, run unit and end-to-end tests (also
#                 on the older kernels' fallbacks, and inside qemu guests of Debian's 6.1
#                 and 6.12)
#   make test-kernels-arm64   the qemu guests' suite in Debian's arm64 6.1 and 6.12
#   make cross-arm64  build for arm64 into build/arm64, unit tests under qemu-user
#   make check    the fast loop, no root and no apt: build (render_bench too), unit tests plain and under
#                 ASan/UBSan, format check, Python lint
#   make SANITIZE=1 unit   the unit tests under ASan/UBSan
#   make render-bench ARGS='-n 10000'   time /metrics and JSON rendering (no kernel needed)
#   make bench-kernels   BPF cost of the 6.1 fallbacks and of 6.12's programs in qemu guests
#   make fuzz     every libFuzzer harness of tests/fuzz for FUZZ_SECONDS (60) each; make
#                 check runs each for FUZZ_CHECK_SECONDS (3), or says why it cannot
#
# The layers, each built from its own folder, each using only those below it:
#   user/lib     (libkw.a)       plain helpers and the table of figures; no BPF, no HTTP
#   user/doctor  (libkwdoctor.a) the model (upstream records, census rows) and the doctor's
#                                rules: both programs run the same diagnosis
#   user/agent   (libkwagent.a)  keepwatchd: loader, collector, census, exposition
#   user/cli     (libkwcli.a)    keepwatch: reads the agent's JSON, or Prometheus' for the
#                                fleet doctor; never links agent code

OUT      := build
CLANG    ?= clang
BPFTOOL  ?= $(shell command -v bpftool || echo /usr/sbin/bpftool)
CC       ?= cc
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
PYTEST   ?= /usr/bin/python3 -m pytest
PYFLAKES ?= /usr/bin/python3 -m pyflakes

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
	    -Iinclude -Iuser -I$(OUT) -DKW_VERSION='"$(VERSION)"' -MMD -MP
LIB_LDLIBS   := -lpthread -lm
AGENT_LDLIBS := -lbpf -lelf -lz -lmicrohttpd -lgnutls -lyaml -lcrypt -ljansson $(LIB_LDLIBS)
CLI_LDLIBS   := -ljansson -lcurl -lncurses $(LIB_LDLIBS)
# Tests may be clients of what they test (curl against the HTTP server, jansson on JSON).
TEST_LDLIBS  := -lcmocka -lcurl -ljansson
ifeq ($(SANITIZE),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif
# The fuzz harnesses' build (make fuzz-build, with clang): libFuzzer's coverage, ASan and
# UBSan, every UBSan report fatal so that the fuzzer keeps its input.
ifeq ($(SANITIZE),fuzz)
CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
endif
# vmlinux.h: the committed one of the target architecture (tools/gen-vmlinux.sh), not the
# build host's kernel.
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude \
	      -Ibpf/vmlinux/$(ARCH)

# Objects mirror the source tree under $(OUT)/obj, so that equal names in two layers
# (doctor/doctor.c, cli/doctor.c) never meet.
obj = $(patsubst %.c,$(OUT)/obj/%.o,$(1))

LIB_SRCS   := $(wildcard user/lib/*.c)
DOCTOR_SRCS := $(wildcard user/doctor/*.c)
AGENT_SRCS := $(filter-out user/agent/keepwatchd.c,$(wildcard user/agent/*.c))
CLI_SRCS   := $(filter-out user/cli/keepwatch.c,$(wildcard user/cli/*.c))

LIBKW      := $(OUT)/libkw.a
LIBDOCTOR  := $(OUT)/libkwdoctor.a
LIBAGENT   := $(OUT)/libkwagent.a
LIBCLI     := $(OUT)/libkwcli.a
# The agent without its loader (which needs the BPF skeleton), for the fuzz harnesses.
LIBFUZZAGENT := $(OUT)/libkwagent-noloader.a

# Unit tests mirror the layers: tests/unit/<layer>/test_*.c link that layer and those below.
UNIT_LIB   := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/lib/test_*.c))
UNIT_DOCTOR := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/doctor/test_*.c))
UNIT_AGENT := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/agent/test_*.c))
UNIT_CLI   := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/cli/test_*.c))
UNIT_BINS  := $(UNIT_LIB) $(UNIT_DOCTOR) $(UNIT_AGENT) $(UNIT_CLI)

C_FORMAT   := $(wildcard bpf/*.c bpf/*.h include/*.h user/*/*.[ch] user/*/*/*.[ch] \
		tests/unit/*/*.c tests/fuzz/*.[ch] tools/bench/*.c)
PY_LINT    := $(wildcard tests/*/*.py tools/*.py tools/*/*.py)

.PHONY: fuzz fuzz-build fuzz-check fuzzers
.PHONY: all run test check unit e2e e2e-fallbacks test-kernels test-kernels-arm64 cross-arm64 deps clean format format-check lint bench \
	bench-kernels render-bench docs FORCE
all: $(OUT)/keepwatchd $(OUT)/keepwatch

$(OUT)/keepwatch.bpf.o: bpf/keepwatch.bpf.c
	@mkdir -p $(@D)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/keepwatch.skel.h: $(OUT)/keepwatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name keepwatch_bpf > $@.tmp && mv $@.tmp $@

# The loader includes the skeleton.
$(call obj,user/agent/loader.c): $(OUT)/keepwatch.skel.h

$(OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# What --version and keepwatch_build_info report: the file changes only when `git
# describe` does, and then the objects that print it are rebuilt (they kept the
# version of their last edit before).
$(OUT)/version: FORCE
	@mkdir -p $(@D)
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" > $@
$(call obj,user/agent/metrics.c user/cli/keepwatch.c user/agent/keepwatchd.c): $(OUT)/version
FORCE:

$(LIBKW): $(call obj,$(LIB_SRCS))
$(LIBDOCTOR): $(call obj,$(DOCTOR_SRCS))
$(LIBAGENT): $(call obj,$(AGENT_SRCS))
$(LIBCLI): $(call obj,$(CLI_SRCS))
$(LIBFUZZAGENT): $(call obj,$(filter-out user/agent/loader.c,$(AGENT_SRCS)))
$(LIBKW) $(LIBDOCTOR) $(LIBAGENT) $(LIBCLI) $(LIBFUZZAGENT):
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/keepwatchd: $(call obj,user/agent/keepwatchd.c) $(LIBAGENT) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(AGENT_LDLIBS) -o $@

$(OUT)/keepwatch: $(call obj,user/cli/keepwatch.c) $(LIBCLI) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(CLI_LDLIBS) -o $@

$(UNIT_LIB): $(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIB_LDLIBS) $(TEST_LDLIBS) -o $@
$(UNIT_DOCTOR): $(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ -ljansson $(LIB_LDLIBS) $(TEST_LDLIBS) -o $@
$(UNIT_AGENT): $(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(LIBAGENT) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(AGENT_LDLIBS) $(TEST_LDLIBS) -o $@
$(UNIT_CLI): $(OUT)/tests/%: $(OUT)/obj/tests/unit/%.o $(LIBCLI) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(CLI_LDLIBS) $(TEST_LDLIBS) -o $@

deps:
	@tools/install-deps.sh $(DEPS)

run: DEPS = run
run: deps all
	tools/prepare-host.sh
	exec $(OUT)/keepwatchd $(ARGS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $(RUN) $$t; done

e2e: all
	tools/prepare-host.sh
	$(PYTEST) -v tests/e2e $(PYTEST_ARGS)

# The end-to-end suite again with the agent on the fallbacks of kernels before 6.3/6.10/6.2
# (tcp_rcv_space_adjust, inferred reset reasons, bpf_skc_to_tcp_sock): same exact counts.
# Only the files whose figures come from the kernel side: the HTTP server, TLS, the CLI
# against a fake agent, top, the fleet doctor and Prometheus read the same figures
# whichever programs count them, and would double make test's time for nothing.
FALLBACKS := --fallback requests --fallback reset_reasons --fallback tcp_sock
FALLBACK_TESTS := $(addprefix tests/e2e/test_,core.py reuse.py races.py transfer.py agent.py \
		  restart.py)
e2e-fallbacks: all
	tools/prepare-host.sh
	KW_AGENT_ARGS="$(FALLBACKS)" $(PYTEST) -v $(FALLBACK_TESTS) $(PYTEST_ARGS)

test: DEPS = test
test: deps all
	$(MAKE) format-check
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) OUT=$(OUT)/asan SANITIZE=1 unit
	$(MAKE) fuzz-check
	$(MAKE) e2e
	$(MAKE) e2e-fallbacks
	$(MAKE) test-kernels
	$(MAKE) test-kernels-arm64

# Debian's own kernels (6.1, 6.12) booted in qemu, an end-to-end run inside each
# (tests/kernels/); the downloads are cached under $(OUT)/kernels.
test-kernels: all
	tools/kernels/kernels.py deps x86
	KW_BUILD=$(OUT) KW_ARCHES=x86 $(PYTEST) -v tests/kernels $(PYTEST_ARGS)

# The same suite in Debian's arm64 kernels (6.1, 6.12) under qemu-system-aarch64 (TCG),
# with the arm64 build of $(OUT)/arm64.
test-kernels-arm64:
	tools/install-deps.sh cross-arm64
	$(CROSS_ARM64) all
	tools/kernels/kernels.py deps arm64
	KW_BUILD=$(OUT) KW_ARCHES=arm64 $(PYTEST) -v tests/kernels $(PYTEST_ARGS)

# The whole project for arm64, from this host: Debian's aarch64 cross compiler and arm64
# libraries (multiarch), the arm64 vmlinux.h; the unit tests run under qemu-user.
CROSS_ARM64 = $(MAKE) OUT=$(OUT)/arm64 ARCH=arm64 CC=aarch64-linux-gnu-gcc \
	AR=aarch64-linux-gnu-ar RUN=qemu-aarch64-static
cross-arm64:
	tools/install-deps.sh cross-arm64
	$(CROSS_ARM64) all unit

# The fast loop: no root, no apt, no kernel.
check: all $(OUT)/render_bench
	$(MAKE) format-check
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) OUT=$(OUT)/asan SANITIZE=1 unit
	$(MAKE) fuzz-check

# Fuzzing (tests/fuzz/README.md): one libFuzzer harness per tests/fuzz/NAME.c, its seed
# corpus in tests/fuzz/corpus/NAME/ (committed), what the runs add in $(FUZZ_OUT)/corpus/.
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_BINS  := $(patsubst %,$(OUT)/fuzzers/%,$(FUZZ_NAMES))
FUZZ_OUT   := $(OUT)/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 3

$(FUZZ_BINS): $(OUT)/fuzzers/%: $(OUT)/obj/tests/fuzz/%.o $(LIBFUZZAGENT) $(LIBCLI) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(AGENT_LDLIBS) $(CLI_LDLIBS) -o $@

fuzzers: $(FUZZ_BINS)

fuzz-build:
	$(MAKE) OUT=$(FUZZ_OUT) CC=$(CLANG) SANITIZE=fuzz fuzzers

fuzz: fuzz-build
	tools/fuzz.sh $(FUZZ_OUT) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# Part of make check: a short run of each, skipped (saying why) where clang's libFuzzer
# runtime is missing (Debian's libclang-rt-14-dev; tools/install-deps.sh test has it).
fuzz-check:
	@if tools/fuzz.sh --available "$(CLANG)"; then \
		$(MAKE) fuzz-build && \
		tools/fuzz.sh $(FUZZ_OUT) $(FUZZ_CHECK_SECONDS) $(FUZZ_NAMES); \
	fi

docs: $(OUT)/keepwatchd
	tools/update-docs.sh

bench: all
	tools/bench/run.sh

# The BPF cost in Debian's 6.1 (the fallbacks) and 6.12 booted in qemu, against empty
# programs on the same hooks (tools/bench/kernels-cost.py; about 4 minutes).
bench-kernels: all
	tools/kernels/kernels.py deps x86
	tools/bench/kernels-cost.py $(BENCH_ARGS)

# Scrape rendering alone, without the kernel: build/render_bench -n 10000
$(OUT)/render_bench: $(OUT)/obj/tools/bench/render_bench.o $(LIBAGENT) $(LIBDOCTOR) $(LIBKW)
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(LDFLAGS) $^ $(AGENT_LDLIBS) -o $@

render-bench: $(OUT)/render_bench
	$(OUT)/render_bench $(ARGS)

format:
	clang-format -i $(C_FORMAT)

format-check:
	clang-format --dry-run --Werror $(C_FORMAT)

lint:
	$(PYFLAKES) $(PY_LINT)

clean:
	rm -rf $(OUT)

.SECONDARY:

# Not under $(OUT)/kernels: the guests' Debian packages are extracted there, and their
# rt_tables.d-like folders are no makefiles.
-include $(shell find $(OUT) -path $(OUT)/kernels -prune -o -name '*.d' -type f -print \
	2>/dev/null)
