#!/usr/bin/env bash
# Builds hidream.c twice (release, and ASan+UBSan) and runs the whole test suite on both, then
# gives every fuzz target a short run. Usage: bash test.sh   (installs Debian packages first)
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh --test
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" | tee build/ctest.log

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIDREAM_SANITIZE=ON \
      -DHIDREAM_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" | tee build-asan/ctest.log

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIDREAM_FUZZ=ON \
      -DHIDREAM_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
bash scripts/fuzz-smoke.sh build-fuzz 1000000 20 | tee build-fuzz/fuzz.log

# One closing line for the whole run (every step above stops the script on failure).
n1=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' build/ctest.log)
n2=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' build-asan/ctest.log)
n3=$(grep -c '^fuzz: .* ok' build-fuzz/fuzz.log || true)
echo "release ${n1:-0} + sanitizer ${n2:-0} tests, ${n3:-0} fuzz targets"
echo "$(( ${n1:-0} + ${n2:-0} + ${n3:-0} )) passed, 0 failed"
