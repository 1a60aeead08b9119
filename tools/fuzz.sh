#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Runs keepwatch's libFuzzer harnesses (tests/fuzz; built by make fuzz-build).
#   tools/fuzz.sh DIR SECONDS NAME...   run DIR/fuzzers/NAME for SECONDS each, one process
#                                       at a time, on DIR/corpus/NAME (what the runs found)
#                                       and tests/fuzz/corpus/NAME (the committed seeds);
#                                       prints executions per harness; exit 1 on a finding,
#                                       whose input is saved as DIR/artifacts/NAME-*
#   tools/fuzz.sh --available [CLANG]   exit 0 if CLANG (clang) links -fsanitize=fuzzer,
#                                       else say why fuzzing is skipped and exit 1
set -euo pipefail

prog=${0##*/}
cd "$(dirname "$0")/.."

if [ "${1:-}" = --available ]; then
	clang=${2:-clang}
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/t.c"
	if ! command -v "$clang" >/dev/null; then
		echo "$prog: fuzzing skipped: $clang not found (tools/install-deps.sh run installs it)"
		exit 1
	fi
	if ! "$clang" -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" 2>"$tmp/err"; then
		echo "$prog: fuzzing skipped: $clang cannot link -fsanitize=fuzzer (libFuzzer's" \
			"runtime is missing: tools/install-deps.sh test installs libclang-rt-14-dev)"
		exit 1
	fi
	exit 0
fi

[ $# -ge 3 ] || { echo "usage: $prog DIR SECONDS NAME... | --available [CLANG]" >&2; exit 2; }
dir=$1 seconds=$2
shift 2
mkdir -p "$dir/artifacts"
failed=()
printf '%-12s %8s %12s %9s %7s  %s\n' harness seconds executions exec/s corpus result
for name in "$@"; do
	bin=$dir/fuzzers/$name
	log=$dir/$name.log
	mkdir -p "$dir/corpus/$name"
	opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$dir/artifacts/$name-")
	[ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
	seeds=()
	[ -d "tests/fuzz/corpus/$name" ] && seeds=("tests/fuzz/corpus/$name")
	result=ok
	# No leak checks between inputs: the harnesses free what they take, and ASan's leak
	# check at exit still runs.
	if ! "$bin" "${opts[@]}" "$dir/corpus/$name" "${seeds[@]}" >"$log" 2>&1; then
		result="FOUND SOMETHING: see $log"
		failed+=("$name")
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	corpus=$(find "$dir/corpus/$name" ${seeds[@]+"${seeds[@]}"} -type f | wc -l)
	printf '%-12s %8s %12s %9s %7s  %s\n' "$name" "$seconds" "${execs:-?}" "${rate:-?}" \
		"$corpus" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
	for name in "${failed[@]}"; do
		echo "--- $name: end of $dir/$name.log"
		grep -v '^#[0-9]' "$dir/$name.log" | tail -40
	done
	echo "$prog: findings in: ${failed[*]} (inputs in $dir/artifacts/)" >&2
	exit 1
fi
