# CLI tests of `hidream shapes` and `hidream eval shapes`. Each runs a short sh script with
# HIDREAM_BIN (and HD_MAKE_MODEL, the random model writer) in its environment.

set(HD_SHAPES_TEST_ENV "${HD_TEST_ENV};HD_MAKE_MODEL=$<TARGET_FILE:hd_make_model>")
if(EXISTS /usr/bin/python3)
  set(HD_SHAPES_PYTHON /usr/bin/python3)
else()
  find_program(HD_SHAPES_PYTHON python3)
endif()

# The world written as a folder is judged correct by `eval shapes --images` (>= 0.99 at the
# smallest evaluation size and at a non-square one), and the same seed writes the same files.
add_test(NAME shapes_cli_world_folder_scores_at_least_099
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  for size in 64x64 96x64; do
                    "$HIDREAM_BIN" shapes --out "$d/$size" --n 300 --size $size --seed 3 || exit 1
                    out=$("$HIDREAM_BIN" eval shapes --images "$d/$size" --grid "$d/f.png") || exit 1
                    echo "$out"
                    echo "$out" | awk '$1 == "overall" { ok = ($4 >= 0.99 && $3 == 300) }
                                       END { exit !ok }' || exit 1
                  done
                  "$HIDREAM_BIN" shapes --out "$d/again" --n 5 --size 64x64 --seed 3 || exit 1
                  cmp "$d/64x64/000004.png" "$d/again/000004.png" || exit 1
                  cmp "$d/64x64/000004.txt" "$d/again/000004.txt" || exit 1
                  "$HIDREAM_BIN" shapes --out "$d/other" --n 5 --size 64x64 --seed 4 || exit 1
                  cmp -s "$d/64x64/000004.png" "$d/other/000004.png" && exit 1
                  exit 0]])

# Bad arguments and bad input: exit 2 and exactly one line on stderr, naming what is wrong.
add_test(NAME shapes_cli_bad_input_exits_2_with_one_line
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HIDREAM_BIN" shapes --out "$d/w" --n 3 || exit 1
                  printf 'a red dog' > "$d/w/000001.txt"
                  mkdir "$d/empty"
                  check() { # expected stderr fragment, then the command
                    want=$1; shift
                    "$@" > /dev/null 2> "$d/err"; rc=$?
                    cat "$d/err"
                    test "$rc" -eq 2 || { echo "rc $rc for: $*"; exit 1; }
                    test "$(wc -l < "$d/err")" -eq 1 || { echo "not one line: $*"; exit 1; }
                    grep -q -- "$want" "$d/err" || { echo "no '$want' for: $*"; exit 1; }
                  }
                  check "sides in 32" "$HIDREAM_BIN" shapes --out "$d/x" --n 3 --size 10x10
                  check "WxH" "$HIDREAM_BIN" shapes --out "$d/x" --n 3 --size 64
                  check "required" "$HIDREAM_BIN" shapes --out "$d/x"
                  check "not in 1" "$HIDREAM_BIN" shapes --out "$d/x" --n 0
                  check "unsigned" "$HIDREAM_BIN" shapes --out "$d/x" --n -4
                  check "unknown option" "$HIDREAM_BIN" shapes --bogus 1
                  check "needs a value" "$HIDREAM_BIN" shapes --out
                  check "t.json" "$HIDREAM_BIN" shapes --tokenizer "$d/no/such/dir/t.json"
                  check "000001.png" "$HIDREAM_BIN" eval shapes --images "$d/w"
                  check "no images" "$HIDREAM_BIN" eval shapes --images "$d/empty"
                  check "nope" "$HIDREAM_BIN" eval shapes --images "$d/nope"
                  check "only benchmark" "$HIDREAM_BIN" eval faces --images "$d/w"
                  check "not an integer" "$HIDREAM_BIN" eval shapes --images "$d/w" --n abc
                  check "unknown format" "$HIDREAM_BIN" eval shapes --images "$d/w" --grid "$d/g.gif"
                  check "not both" "$HIDREAM_BIN" eval shapes --images "$d/w" -m "$d/w"
                  check "config.json" "$HIDREAM_BIN" eval shapes -m "$d/empty" --n 2
                  rm "$d/w/000002.txt"
                  check "000002.txt" "$HIDREAM_BIN" eval shapes --images "$d/w"
                  exit 0]])

# The world's tokenizer: written by `shapes --tokenizer`, read by `hidream tokenize`, one id per
# word of a prompt.
add_test(NAME shapes_cli_tokenizer_one_token_per_word
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HIDREAM_BIN" shapes --tokenizer "$d/tokenizer.json" || exit 1
                  ids=$("$HIDREAM_BIN" tokenize --tokenizer "$d/tokenizer.json" \
                        "an orange square above a small green circle") || exit 1
                  echo "$ids"
                  test "$(echo $ids | wc -w)" -eq 8]])

# eval -m generates each picture exactly as `hidream generate -m DIR -p PROMPT --seed S+i` does
# (same pixels), judges it and prints the table; --save writes what it judged.
add_test(NAME eval_cli_model_pictures_match_generate
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HD_MAKE_MODEL" --preset tiny --out "$d/m" --patch 8 --native 64x64 \
                    --hidream '{"steps":3}' > /dev/null || exit 1
                  out=$("$HIDREAM_BIN" eval shapes -m "$d/m" --n 3 --seed 5 --save "$d/s" \
                        --grid "$d/g.png" --threads 2) || exit 1
                  echo "$out"
                  echo "$out" | grep -q '^overall  *[0-9]*  *3 ' || exit 1
                  "$HIDREAM_BIN" generate -m "$d/m" -p "$(cat "$d/s/000002.txt")" --seed 7 \
                    -o "$d/gen.png" --threads 2 2> /dev/null || exit 1
                  "$HD_SHAPES_PYTHON" -c 'import sys
from PIL import Image
a, b = (Image.open(p).convert("RGB") for p in sys.argv[1:])
sys.exit(a.size != b.size or a.tobytes() != b.tobytes())' "$d/s/000002.png" "$d/gen.png" || exit 1
                  out2=$("$HIDREAM_BIN" eval shapes --images "$d/s") || exit 1
                  test "$(echo "$out" | grep overall)" = "$(echo "$out2" | grep overall)"]])
set_tests_properties(shapes_cli_world_folder_scores_at_least_099
                     shapes_cli_bad_input_exits_2_with_one_line
                     shapes_cli_tokenizer_one_token_per_word
                     eval_cli_model_pictures_match_generate
                     PROPERTIES ENVIRONMENT "${HD_SHAPES_TEST_ENV};HD_SHAPES_PYTHON=${HD_SHAPES_PYTHON}"
                     TIMEOUT 300)
