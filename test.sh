#!/usr/bin/env bash
# Builds hidream.c twice (release, and ASan+UBSan) and runs the whole test suite on both, then
# gives every fuzz target a short run. Usage: bash test.sh   (installs Debian packages first)
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIDREAM_SANITIZE=ON \
      -DHIDREAM_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIDREAM_FUZZ=ON \
      -DHIDREAM_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
bash scripts/fuzz-smoke.sh build-fuzz 2000
