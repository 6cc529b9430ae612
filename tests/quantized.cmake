# CLI tests of GGUF checkpoints: `hidream quantize`, loading model.gguf, the error each format
# adds to a forward (check-golden --weights, on the golden tiny model), a GGUF written by an
# independent writer (the `gguf` package from PyPI, tests/gguf_from_pypi.py), corrupt files.

# Q8_0 and Q4_K copies quantize, load (info), generate, and stay within their forward error
# bound (Q8_0 also with --int8, where its weights become int8 panels: 0.020-0.026); the bound is tight enough that an unquantized or broken copy would be noticed (1e-5
# must fail: the weights really changed).
add_test(NAME quantize_q8_0_and_q4_k_load_and_stay_within_their_forward_error
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  tiny="$HIDREAM_SHARED/golden/model-tiny"
                  "$HIDREAM_BIN" quantize "$tiny" "$d/q8" --type q8_0 || exit 1
                  "$HIDREAM_BIN" quantize "$tiny" "$d/q4k" --type q4_k || exit 1
                  test -f "$d/q8/model.gguf" && test -f "$d/q8/config.json" &&
                    test -f "$d/q8/tokenizer.json" || exit 1
                  test ! -e "$d/q8/model.safetensors" || exit 1
                  "$HIDREAM_BIN" info "$d/q8" | grep -q 'Q8_0' || exit 1
                  "$HIDREAM_BIN" check-golden "$tiny" --only forward --weights "$d/q8" --tol 3e-2 || exit 1
                  "$HIDREAM_BIN" check-golden "$tiny" --only forward --weights "$d/q8" --int8 \
                    --tol 3e-2 || exit 1
                  "$HIDREAM_BIN" check-golden "$tiny" --only forward --weights "$d/q4k" --tol 0.3 || exit 1
                  if "$HIDREAM_BIN" check-golden "$tiny" --only forward --weights "$d/q8" \
                       --tol 1e-5 > /dev/null; then echo "Q8_0 copy is exact: not quantized"; exit 1; fi
                  "$HIDREAM_BIN" generate -m "$d/q8" -p 'a red circle' --mode dev --timesteps 999,500 \
                    --width 64 --height 64 --no-snap --seed 1 -o "$d/q8.png" || exit 1
                  test -s "$d/q8.png"]])

# Every format quantizes and passes its forward bound. Measured on the tiny model (uniform random
# weights, the hardest case for 4-bit blocks): Q8_0 0.010-0.018, Q6_K 0.025-0.047, Q5_K
# 0.050-0.097, Q4_K 0.10-0.18, Q4_0 0.15-0.27; the bounds leave margin above those.
foreach(pair "q4_0;0.4" "q5_k;0.15" "q6_k;0.08")
  list(GET pair 0 fmt)
  list(GET pair 1 tol)
  add_test(NAME quantize_${fmt}_forward_error_within_${tol}
    COMMAND sh -c "d=$(mktemp -d) || exit 1
                   trap 'rm -rf \"$d\"' EXIT
                   \"$HIDREAM_BIN\" quantize \"$HIDREAM_SHARED/golden/model-tiny\" \"$d/q\" --type ${fmt} || exit 1
                   \"$HIDREAM_BIN\" check-golden \"$HIDREAM_SHARED/golden/model-tiny\" --only forward --weights \"$d/q\" --tol ${tol}")
endforeach()

# Bad requests: unknown type, missing arguments, a broken input model (nothing is written).
add_test(NAME quantize_bad_input_exits_2_with_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  tiny="$HIDREAM_SHARED/golden/model-tiny"
                  check() { rc=$1; lines=$(wc -l < "$d/err"); cat "$d/err"
                            test "$rc" -eq 2 && test "$lines" -eq 1 || { echo "rc $rc, $lines lines"; exit 1; }; }
                  "$HIDREAM_BIN" quantize "$tiny" "$d/o" --type q3_k 2> "$d/err"; check $?
                  grep -q "q3_k" "$d/err" || exit 1
                  "$HIDREAM_BIN" quantize "$tiny" 2> "$d/err"; check $?
                  mkdir "$d/bad" && cp "$tiny/config.json" "$tiny/tokenizer.json" "$d/bad/" &&
                    head -c 300 "$tiny/model.safetensors" > "$d/bad/model.safetensors"
                  "$HIDREAM_BIN" quantize "$d/bad" "$d/o2" --type q8_0 2> "$d/err"; check $?
                  test ! -e "$d/o2/model.gguf" || exit 1
                  "$HIDREAM_BIN" quantize "$tiny" "$tiny" --type q8_0 2> "$d/err"; check $?]])

# A truncated or tampered model.gguf: info and generate give one line naming the file, exit 2.
add_test(NAME corrupt_gguf_model_exits_2_with_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  tiny="$HIDREAM_SHARED/golden/model-tiny"
                  "$HIDREAM_BIN" quantize "$tiny" "$d/q" --type q4_k > /dev/null || exit 1
                  mkdir "$d/t" && cp "$d/q/config.json" "$d/q/tokenizer.json" "$d/t/" || exit 1
                  size=$(wc -c < "$d/q/model.gguf")
                  for cut in 3 20 200 2000 $((size / 2)) $((size - 1)); do
                    head -c $cut "$d/q/model.gguf" > "$d/t/model.gguf"
                    "$HIDREAM_BIN" info "$d/t" > /dev/null 2> "$d/err"; rc=$?
                    lines=$(wc -l < "$d/err"); cat "$d/err"
                    test "$rc" -eq 2 && test "$lines" -eq 1 && grep -q 'model.gguf' "$d/err" ||
                      { echo "cut $cut: rc $rc, $lines lines"; exit 1; }
                  done
                  # a tensor type id no reader knows (the first tensor info's type field)
                  cp "$d/q/model.gguf" "$d/t/model.gguf"
                  printf 'GGUF\001\000\000\000' | dd of="$d/t/model.gguf" bs=1 seek=0 conv=notrunc 2> /dev/null
                  "$HIDREAM_BIN" info "$d/t" > /dev/null 2> "$d/err"; rc=$?; cat "$d/err"
                  test "$rc" -eq 2 && grep -q 'version 1' "$d/err"]])

# A GGUF written by the `gguf` package from PyPI (an independent writer: its own header, its own
# Q8_0 quantizer) loads and passes the Q8_0 forward bound.
add_test(NAME gguf_from_the_pypi_writer_loads_and_passes_forward
  COMMAND sh -c "d=$(mktemp -d) || exit 1
                 trap 'rm -rf \"$d\"' EXIT
                 ${CMAKE_SOURCE_DIR}/build-venv/bin/python ${CMAKE_SOURCE_DIR}/tests/gguf_from_pypi.py \
                   \"$HIDREAM_SHARED/golden/model-tiny\" \"$d/py\" || exit 1
                 \"$HIDREAM_BIN\" info \"$d/py\" || exit 1
                 \"$HIDREAM_BIN\" check-golden \"$HIDREAM_SHARED/golden/model-tiny\" --only forward --weights \"$d/py\" --tol 3e-2")

# A "scaled fp8" checkpoint (F8_E4M3 matrices with per-tensor scale_weight tensors and the
# scaled_fp8 marker, as ComfyUI writes them; made by an independent numpy writer) loads, generates
# and stays within its forward bound (measured 0.046-0.089 on the tiny model); a per-channel scale
# is refused at load with one line naming the tensor.
add_test(NAME scaled_fp8_checkpoint_loads_and_passes_forward
  COMMAND sh -c "d=$(mktemp -d) || exit 1
                 trap 'rm -rf \"$d\"' EXIT
                 py=${CMAKE_SOURCE_DIR}/build-venv/bin/python
                 tiny=\"$HIDREAM_SHARED/golden/model-tiny\"
                 $py ${CMAKE_SOURCE_DIR}/tests/fp8_scaled_model.py \"$tiny\" \"$d/f8\" || exit 1
                 \"$HIDREAM_BIN\" info \"$d/f8\" | grep -q F8_E4M3 || exit 1
                 \"$HIDREAM_BIN\" check-golden \"$tiny\" --only forward --weights \"$d/f8\" --tol 0.15 || exit 1
                 \"$HIDREAM_BIN\" generate -m \"$d/f8\" -p 'a red circle' --mode dev --timesteps 999,500 \
                   --width 64 --height 64 --no-snap -o \"$d/f8.png\" || exit 1
                 $py ${CMAKE_SOURCE_DIR}/tests/fp8_scaled_model.py \"$tiny\" \"$d/bad\" --bad-scale > /dev/null || exit 1
                 \"$HIDREAM_BIN\" info \"$d/bad\" > /dev/null 2> \"$d/err\"; rc=$?; cat \"$d/err\"
                 test $rc -eq 2 && test $(wc -l < \"$d/err\") -eq 1 && grep -q scale_weight \"$d/err\"")

set_tests_properties(
  scaled_fp8_checkpoint_loads_and_passes_forward
  quantize_q8_0_and_q4_k_load_and_stay_within_their_forward_error
  quantize_q4_0_forward_error_within_0.4 quantize_q5_k_forward_error_within_0.15
  quantize_q6_k_forward_error_within_0.08 quantize_bad_input_exits_2_with_one_line
  corrupt_gguf_model_exits_2_with_one_line gguf_from_the_pypi_writer_loads_and_passes_forward
  PROPERTIES ENVIRONMENT "${HD_TEST_ENV}")
