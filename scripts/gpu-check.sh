#!/bin/sh
# GPU session check (docs/CUDA.md): build with CUDA, op test vs CPU, golden checks on the GPU,
# per-forward timings side by side with PyTorch.
#
#   sh scripts/gpu-check.sh --prepare   here, with apt and ../shared: fills the ignored folders
#                                       .deps (Debian libraries, unpacked) and .shared (golden
#                                       data, torch baseline) that a device call carries
#   sh scripts/gpu-check.sh [LAYERS]    on the H100/H200 machine (no apt there): everything else;
#                                       logs under $OUT (or out/gpu); LAYERS of the 8B shapes (8)
#
# Device call: carry [".deps", ".shared"], command `sh scripts/gpu-check.sh 8`.
set -u
ROOT=$(pwd)
DEPS=$ROOT/.deps
ARCH=x86_64-linux-gnu

if [ "${1:-}" = "--prepare" ]; then
    set -e
    SRC=${HIDREAM_SHARED:-../shared}
    grep -qx '/.deps/' .git/info/exclude 2>/dev/null || echo '/.deps/' >>.git/info/exclude
    grep -qx '/.shared/' .git/info/exclude 2>/dev/null || echo '/.shared/' >>.git/info/exclude
    rm -rf "$DEPS" && mkdir -p "$DEPS/debs"
    (cd "$DEPS/debs" && apt-get download libjansson4 libjansson-dev libpcre2-8-0 libpcre2-dev \
        libutf8proc2 libutf8proc-dev libpng16-16 libpng-dev libwebp7 libwebp-dev libwebpdemux2 \
        libwebpmux3 libjpeg62-turbo libjpeg62-turbo-dev zlib1g zlib1g-dev pkgconf pkgconf-bin \
        libpkgconf3)
    for f in "$DEPS"/debs/*.deb; do dpkg -x "$f" "$DEPS"; done
    rm -rf "$DEPS/debs" "$DEPS/usr/share/doc" "$DEPS/usr/share/man"
    rm -rf .shared && mkdir -p .shared/golden .shared/bench
    cp -r "$SRC/golden/model-tiny" .shared/golden/
    cp "$SRC/bench/torch_uit_baseline.py" .shared/bench/
    du -sh "$DEPS" .shared
    exit 0
fi

LAYERS=${1:-8}
S=${HIDREAM_SHARED:-$ROOT/.shared}
[ -d "$S/golden" ] || S=$ROOT/../shared
B=build-cuda
LOG=${OUT:-$ROOT/out/gpu}
mkdir -p "$LOG"
# the carried libraries: pkgconf (and its library) from .deps, every .pc path under .deps;
# the programs find the libraries through the build tree's RPATH
if [ -d "$DEPS/usr/lib/$ARCH" ]; then
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$DEPS/usr/lib/$ARCH" \
        "$DEPS/usr/bin/pkgconf" >"$DEPS/pkg-config"
    chmod +x "$DEPS/pkg-config"
    export PKG_CONFIG="$DEPS/pkg-config" PKG_CONFIG_SYSROOT_DIR="$DEPS"
    export PKG_CONFIG_LIBDIR="$DEPS/usr/lib/$ARCH/pkgconfig:$DEPS/usr/share/pkgconfig"
    export CMAKE_PREFIX_PATH="$DEPS/usr" CFLAGS="-I$DEPS/usr/include/$ARCH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$LOG/gpu.txt"
t0=$(date +%s)
cmake -S . -B $B -DHIDREAM_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DHIDREAM_SHARED_DIR="$S" \
    >"$LOG/build.txt" 2>&1 &&
    cmake --build $B -j16 --target hidream_cli test_backend_cuda bench_uit >>"$LOG/build.txt" 2>&1
grep -E "error|warning" "$LOG/build.txt" | head -20
test -x $B/hidream || { tail -30 "$LOG/build.txt"; exit 1; }
echo "build: $(($(date +%s) - t0)) s"
# 1. every op against the CPU backend: must end "N passed, 0 failed" (and print no SKIP)
timeout 120 $B/test_backend_cuda >"$LOG/test_backend_cuda.txt" 2>&1
echo "test_backend_cuda rc=$?: $(grep -v '^ok' "$LOG/test_backend_cuda.txt" | tail -15)"
# 2. golden checks on the GPU: forward cases (1e-4 vs float64) and pipeline cases
timeout 120 $B/hidream check-golden "$S/golden/model-tiny" --backend cuda \
    >"$LOG/check_golden.txt" 2>&1
echo "check-golden rc=$?: $(tail -3 "$LOG/check_golden.txt")"
# 3. per-forward timing at the 8B shapes (random in-memory model of LAYERS layers): exact,
#    bf16 with the float32 attention (before), bf16 (after); torch bf16 in the same call
timeout 200 $B/bench_uit --backend cuda --layers "$LAYERS" --reps 5 --shared "$S" --json \
    --modes exact,bf16-f32attn,bf16 >"$LOG/bench.json" 2>"$LOG/bench.err"
echo "bench_uit rc=$?"; cat "$LOG/bench.json"; tail -4 "$LOG/bench.err"
# 4. the whole 36-layer model in the fast mode, against torch with 36 layers
if [ "${FULL36:-1}" = 1 ]; then
    timeout 120 $B/bench_uit --backend cuda --layers 36 --reps 5 --shared "$S" --json \
        --modes bf16 >"$LOG/bench36.json" 2>>"$LOG/bench.err"
    echo "bench_uit 36 layers rc=$?"; cat "$LOG/bench36.json"
fi
