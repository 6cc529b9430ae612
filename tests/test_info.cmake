# CLI tests of `hidream info` and of the random model writer (tools/hd_make_model.c).
# Each runs a short sh script; the environment carries HIDREAM_BIN, HIDREAM_SHARED and
# HD_MAKE_MODEL (the tool's path).

set(HD_INFO_TEST_ENV "${HD_TEST_ENV};HD_MAKE_MODEL=$<TARGET_FILE:hd_make_model>")

# The golden tiny model is usable: exit 0 and the report names its parts.
add_test(NAME info_golden_model_is_usable
  COMMAND sh -c [[out=$("$HIDREAM_BIN" info "$HIDREAM_SHARED/golden/model-tiny") || exit 1
                  echo "$out"
                  echo "$out" | grep -q '^parameters' && echo "$out" | grep -q '^memory' &&
                  echo "$out" | grep -q 'tms [0-9]']])

# A directory whose weights file is truncated: exit 2 and exactly one line on stderr.
add_test(NAME info_corrupt_model_exits_2_with_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  cp "$HIDREAM_SHARED/golden/model-tiny/config.json" \
                     "$HIDREAM_SHARED/golden/model-tiny/tokenizer.json" "$d/" || exit 1
                  head -c 100 "$HIDREAM_SHARED/golden/model-tiny/model.safetensors" \
                    > "$d/model.safetensors"
                  "$HIDREAM_BIN" info "$d" > "$d/out" 2> "$d/err"; rc=$?
                  cat "$d/err"; lines=$(wc -l < "$d/err")
                  rm -rf "$d"
                  test "$rc" -eq 2 && test "$lines" -eq 1]])

# A directory without any model files: exit 2, one line.
add_test(NAME info_empty_dir_exits_2_with_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  "$HIDREAM_BIN" info "$d" > /dev/null 2> "$d/err"; rc=$?
                  cat "$d/err"; lines=$(wc -l < "$d/err"); rm -rf "$d"
                  test "$rc" -eq 2 && test "$lines" -eq 1]])

# hd_make_model writes sharded, text-only and float32 models that `hidream info` accepts; the same
# seed gives the same bytes, another seed other bytes.
add_test(NAME make_model_tiny_sharded_and_text_only
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HD_MAKE_MODEL" --preset tiny --out "$d/a" --seed 3 || exit 1
                  "$HD_MAKE_MODEL" --preset tiny --out "$d/a2" --seed 3 || exit 1
                  "$HD_MAKE_MODEL" --preset tiny --out "$d/a4" --seed 4 || exit 1
                  "$HD_MAKE_MODEL" --preset tiny --out "$d/b" --seed 3 --shards 3 || exit 1
                  "$HD_MAKE_MODEL" --config "$HIDREAM_SHARED/golden/model-tiny/config.json" \
                    --out "$d/c" --no-vision --dtype f32 || exit 1
                  test -f "$d/b/model-00003-of-00003.safetensors" || exit 1
                  test -f "$d/b/model.safetensors.index.json" || exit 1
                  "$HIDREAM_BIN" info "$d/a" > /dev/null || exit 1
                  "$HIDREAM_BIN" info "$d/b" | grep -q '3 safetensors files' || exit 1
                  "$HIDREAM_BIN" info "$d/c" | grep -q 'F32' || exit 1
                  cmp "$d/a/model.safetensors" "$d/a2/model.safetensors" || exit 1
                  cmp -s "$d/a/model.safetensors" "$d/a4/model.safetensors" && exit 1
                  cmp "$d/a/tokenizer.json" "$d/b/tokenizer.json" || exit 1
                  "$HD_MAKE_MODEL" --preset nope --out "$d/x" 2> /dev/null && exit 1
                  exit 0]])

set_tests_properties(info_golden_model_is_usable info_corrupt_model_exits_2_with_one_line
                     info_empty_dir_exits_2_with_one_line make_model_tiny_sharded_and_text_only
                     PROPERTIES ENVIRONMENT "${HD_INFO_TEST_ENV}" TIMEOUT 300)
