# CLI tests of the hardening issue: exit statuses (one table in --help and the README, 3 for an
# output that cannot be written), FIFOs refused without blocking, the size-snapping notice.

# `hidream --help` and `hidream generate --help` print the same exit table, and the README's table
# lists the same statuses.
add_test(NAME cli_exit_status_table_in_help_and_readme
  COMMAND sh -c [[main=$("$HIDREAM_BIN" --help | sed -n '/^exit status:/,$p') || exit 1
                  gen=$("$HIDREAM_BIN" generate --help | sed -n '/^exit status:/,$p') || exit 1
                  echo "$main"
                  test -n "$main" && test "$main" = "$gen" || { echo "tables differ"; exit 1; }
                  codes=$(echo "$main" | sed -n 's/^  \([0-9][0-9]*\) .*/\1/p' | tr '\n' ' ')
                  test "$codes" = "0 1 2 3 4 130 " || { echo "codes: $codes"; exit 1; }
                  for c in 0 1 2 3 4; do
                    grep -q "^| $c | " "$HIDREAM_SOURCE/README.md" || { echo "README lacks $c"; exit 1; }
                  done
                  grep -q "^| 130, 143 | " "$HIDREAM_SOURCE/README.md"]])

# A picture that cannot be written (file size limit, standing in for a full disk): exit 3, one
# line naming the reason, no file and no temporary file left.
add_test(NAME cli_unwritable_output_exits_3_and_leaves_nothing
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  m="$HIDREAM_SHARED/golden/model-tiny"
                  (trap '' XFSZ; ulimit -f 2; exec "$HIDREAM_BIN" generate -m "$m" -p x \
                     -o "$d/x.png" --width 128 --height 128 --no-snap --steps 1) 2> "$d/err"
                  rc=$?; cat "$d/err"
                  test "$rc" -eq 3 || { echo "rc $rc"; exit 1; }
                  test "$(wc -l < "$d/err")" -eq 1 || exit 1
                  grep -q "File too large" "$d/err" || exit 1
                  test "$(ls "$d")" = "err"]])

# A FIFO where a file is expected (config.json, model weights, --ref, --from-png, --layout) is
# refused at once, with one line, instead of blocking until a writer appears.
add_test(NAME cli_fifo_inputs_are_refused_without_blocking
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  m="$HIDREAM_SHARED/golden/model-tiny"
                  mkfifo "$d/fifo" "$d/fifo.png" "$d/fifo.json" || exit 1
                  mkdir "$d/m1" "$d/m2"
                  ln -s "$m/model.safetensors" "$d/m1/"; ln -s "$m/tokenizer.json" "$d/m1/"
                  mkfifo "$d/m1/config.json"
                  cp "$m/config.json" "$d/m2/"; ln -s "$m/tokenizer.json" "$d/m2/"
                  mkfifo "$d/m2/model.safetensors"
                  "$HIDREAM_BIN" generate -m "$m" -p x -o "$d/ok.png" --width 64 --height 64 \
                    --no-snap --steps 1 || exit 1
                  g="$HIDREAM_BIN generate --width 64 --height 64 --no-snap --steps 1"
                  check() { # label, args...
                    label=$1; shift
                    timeout 60 "$@" > /dev/null 2> "$d/err"; rc=$?
                    cat "$d/err"
                    test "$rc" -eq 2 || { echo "$label: rc $rc"; exit 1; }
                    test "$(wc -l < "$d/err")" -eq 1 || { echo "$label: not one line"; exit 1; }
                    grep -q "not a regular file" "$d/err" || { echo "$label: message"; exit 1; }
                  }
                  check config $g -m "$d/m1" -p x -o "$d/o.png"
                  check weights $g -m "$d/m2" -p x -o "$d/o.png"
                  check info "$HIDREAM_BIN" info "$d/m1"
                  check ref $g -m "$m" -p x --ref "$d/fifo.png" -o "$d/o.png"
                  check from-png $g -m "$m" --from-png "$d/fifo.png" -o "$d/o.png"
                  check layout $g -m "$m" -p x --ref "$d/ok.png" --ref "$d/ok.png" \
                    --layout "$d/fifo.json" -o "$d/o.png"
                  test ! -e "$d/o.png"]])

# A requested size that is snapped to another is said (with or without -v); the model's own
# size and --no-snap say nothing. (A patch-8 model with a native 64x64 size: quick.)
add_test(NAME cli_snapped_size_is_noticed
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HD_MAKE_MODEL" --preset tiny --no-vision --seed 11 --out "$d/m" --patch 8 \
                    --native 64x64 --noise-scale 1 \
                    --hidream '{"scheduler":"unipc","steps":2,"guidance":1,"shift":1}' || exit 1
                  g() { "$HIDREAM_BIN" generate -m "$d/m" -p x -o "$d/a.png" "$@" 2> "$d/err"; }
                  g --width 100 --height 90 || exit 1
                  cat "$d/err"
                  grep -q "^hidream generate: note: 100x90 is snapped to 64x64" "$d/err" || exit 1
                  g --width 96 --height 96 --no-snap || exit 1
                  test ! -s "$d/err" || exit 1
                  g --width 64 --height 64 || exit 1
                  test ! -s "$d/err" || exit 1
                  g || exit 1
                  test ! -s "$d/err"]])


# CPU commands, --help included, never map the CUDA libraries: the CUDA backend is a module
# loaded on first use. LD_DEBUG=libs lists every library the loader maps; the same listing for
# a `--backend cuda` run must show the module (so this test sees loads at all).
add_test(NAME cli_cpu_commands_do_not_load_cuda
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  m="$HIDREAM_SHARED/golden/model-tiny"
                  LD_DEBUG=libs "$HIDREAM_BIN" --help > /dev/null 2> "$d/help" || exit 1
                  grep -q "calling init: .*libc\.so" "$d/help" || { echo "LD_DEBUG shows nothing"; exit 1; }
                  LD_DEBUG=libs "$HIDREAM_BIN" info "$m" > /dev/null 2> "$d/info" || exit 1
                  LD_DEBUG=libs "$HIDREAM_BIN" generate -m "$m" -p x -o "$d/x.png" --steps 1 \
                    --width 64 --height 64 --no-snap 2> "$d/gen" || exit 1
                  for f in help info gen; do
                    if grep -E "libcudart|libcublas|libhidream_cuda" "$d/$f"; then
                      echo "$f loaded CUDA"; exit 1
                    fi
                  done
                  if [ -f "$HIDREAM_BUILD/libhidream_cuda.so" ]; then
                    LD_DEBUG=libs "$HIDREAM_BIN" generate -m "$m" -p x -o "$d/y.png" --steps 1 \
                      --backend cuda 2> "$d/cuda"
                    grep -q "libhidream_cuda.so" "$d/cuda" || { echo "module never loaded"; exit 1; }
                  fi
                  echo "no CUDA library in CPU runs"]])

# The CUDA module missing or not loadable: one line naming the file, exit 2, nothing written.
add_test(NAME cli_cuda_module_failures_are_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  m="$HIDREAM_SHARED/golden/model-tiny"
                  printf 'not an ELF file' > "$d/fake.so"
                  for mod in "$d/missing.so" "$d/fake.so" "$HIDREAM_BIN"; do
                    HIDREAM_CUDA_MODULE="$mod" "$HIDREAM_BIN" generate -m "$m" -p x \
                      -o "$d/x.png" --steps 1 --backend cuda 2> "$d/err"
                    rc=$?; cat "$d/err"
                    test "$rc" -eq 2 || { echo "rc $rc for $mod"; exit 1; }
                    test "$(wc -l < "$d/err")" -eq 1 || exit 1
                    if [ -f "$HIDREAM_BUILD/libhidream_cuda.so" ]; then
                      grep -qF "$mod" "$d/err" || { echo "message lacks $mod"; exit 1; }
                    else
                      grep -q "no CUDA support" "$d/err" || exit 1
                    fi
                    test ! -e "$d/x.png" || exit 1
                  done]])

set_tests_properties(cli_exit_status_table_in_help_and_readme
                     cli_unwritable_output_exits_3_and_leaves_nothing
                     cli_fifo_inputs_are_refused_without_blocking cli_snapped_size_is_noticed
                     cli_cpu_commands_do_not_load_cuda cli_cuda_module_failures_are_one_line
                     PROPERTIES ENVIRONMENT
                     "${HD_TEST_ENV};HD_MAKE_MODEL=$<TARGET_FILE:hd_make_model>" TIMEOUT 600)

# Bad precision flags on every command that takes them: exit 2, one line naming the flag, no file.
add_test(NAME cli_bad_precision_flags_are_one_line_errors
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  m="$HIDREAM_SHARED/golden/model-tiny"
                  check() { # expected text, then the command
                    want=$1; shift
                    "$@" > "$d/out" 2> "$d/err"; rc=$?; cat "$d/err"
                    test "$rc" -eq 2 || { echo "rc $rc: $*"; exit 1; }
                    test "$(wc -l < "$d/err")" -eq 1 || exit 1
                    grep -q -- "$want" "$d/err" || { echo "no '$want'"; exit 1; }
                  }
                  check "'fp16' is not auto, exact, bf16 or int8" \
                    "$HIDREAM_BIN" generate -m "$m" -p x -o "$d/x.png" --precision fp16
                  check "needs a value" "$HIDREAM_BIN" generate -m "$m" -p x -o "$d/x.png" --precision
                  check "--int8 conflicts with --exact" "$HIDREAM_BIN" serve -m "$m" --exact --int8
                  check "--bf16-gemm conflicts with --precision" \
                    "$HIDREAM_BIN" eval shapes -m "$m" --precision exact --bf16-gemm
                  check "--exact goes with -m" "$HIDREAM_BIN" eval shapes --images "$d" --exact
                  check "--bf16-gemm and --int8 exclude each other" \
                    "$HIDREAM_BIN" check-golden "$m" --only forward --bf16-gemm --int8
                  test ! -e "$d/x.png"]])
set_tests_properties(cli_bad_precision_flags_are_one_line_errors
                     PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 600)
