#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
# Rewrites README.md's metric reference from the agent's own tables
# (build/keepwatchd --metrics-doc), between the metrics:begin and metrics:end markers.
set -euo pipefail
cd "$(dirname "$0")/.."
gen=$(mktemp)
trap 'rm -f "$gen"' EXIT
build/keepwatchd --metrics-doc >"$gen"
awk -v gen="$gen" '
	/^<!-- metrics:begin/ { while ((getline line < gen) > 0) print line; skip = 1; next }
	/^<!-- metrics:end/ { skip = 0; next }
	!skip { print }
' README.md >README.md.tmp
mv README.md.tmp README.md
