#!/usr/bin/env bash
# The full comparison of issue 14 in one go, for a quiet window: builds mydumper/myloader
# 1.0.1 (../shared/peers/build-mydumper.sh) and amsu + the harness in release mode, runs
# `provision` at ~0.5 GB (--size small) and ~2 GB (--size large) with every amsu method,
# every knob variant and every peer, and appends each report to BENCHMARKS.md under a
# new dated section (the reports also stay in $OUT/SIZE.md, the harness logs in
# $OUT/SIZE/logs).
#
# Usage: bash benches/run-all.sh            (both sizes, about 1.5–2 h on 2 cores)
#        SIZES=small bash benches/run-all.sh (one size)
#        METHODS=amsu-logical,mydumper-1.0 bash benches/run-all.sh
# Environment: SIZES (default "small large"), METHODS (default: all below), THREADS
# (default 2, the same for every tool), OUT (default /tmp/amsu-run-all),
# CARGO_TARGET_DIR (default: the workspace's target/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
sizes=${SIZES:-small large}
threads=${THREADS:-2}
out=${OUT:-/tmp/amsu-run-all}
methods=${METHODS:-amsu-logical,amsu-logical-durable,amsu-logical-ungoverned,amsu-logical-bulk,amsu-logical-auto-threads,amsu-logical-kill-rerun,amsu-outfile,amsu-physical,mariadb-dump,mydumper,mydumper-1.0,mariadb-backup,cold-copy}

shared=$root/../shared
[ -d "$shared" ] || shared=/work/shared
mydumper10=$(bash "$shared/peers/build-mydumper.sh")
cargo build --release -p amsu-cli -p amsu-benches
amsu=$CARGO_TARGET_DIR/release/amsu
provision=$CARGO_TARGET_DIR/release/provision
mkdir -p "$out"

commit=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet HEAD -- . 2>/dev/null && echo "" || echo " (with uncommitted changes)")
{
  echo
  echo "## Issue 14 comparison, $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$commit\`$dirty"
  echo
  echo "Run by \`benches/run-all.sh\`: \`provision --size SIZE --threads $threads --methods $methods --mydumper10-dir $mydumper10\`."
} >> BENCHMARKS.md

for size in $sizes; do
  case $size in
    small) title="~0.5 GB (\`--size small\`)" ;;
    large) title="~2 GB (\`--size large\`)" ;;
    *) title="\`--size $size\`" ;;
  esac
  echo "== $size ==" >&2
  status=0
  "$provision" --size "$size" --threads "$threads" --methods "$methods" \
    --mydumper10-dir "$mydumper10" --amsu "$amsu" --dir "$out/$size" \
    > "$out/$size.md" || status=$?
  {
    echo
    echo "### $title"
    echo
    if [ "$status" -ne 0 ]; then
      echo "The harness failed (exit $status); see $out/$size and its logs."
    fi
    # The report's headings one level down, under this section.
    sed 's/^### /#### /' "$out/$size.md"
  } >> BENCHMARKS.md
done
echo "appended to $root/BENCHMARKS.md; reports in $out" >&2
