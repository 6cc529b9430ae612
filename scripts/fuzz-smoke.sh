#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR from its seed corpus (fuzz/corpus/NAME) for at most RUNS
# iterations and at most SECONDS seconds each.
set -euo pipefail
build=${1:-build-fuzz}; runs=${2:-2000}; secs=${3:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
n=0
for t in "$build"/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  corpus=$(mktemp -d)
  [ -d "$root/fuzz/corpus/$name" ] && cp -r "$root/fuzz/corpus/$name/." "$corpus/"
  "$t" -runs="$runs" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 "$corpus" >"$corpus.log" 2>&1 || { tail -30 "$corpus.log"; echo "fuzz: $name FAILED"; exit 1; }
  echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$corpus.log" | awk '{print $2}') runs)"
  rm -rf "$corpus" "$corpus.log"
  n=$((n+1))
done
echo "fuzz: $n targets ran"
