# The embedded default model (models/shapes, found next to the binary: no -m) draws the picture
# run.sh names. Twenty fixed seeds of "a red circle on the left" are generated
# at the model's own size and defaults and judged by `hidream eval shapes --images` (spec 09 §5):
# at least 16 of the 20 must be correct.
add_test(NAME embedded_model_draws_the_run_sh_prompt_for_16_of_20_seeds
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  p="a red circle on the left"
                  for s in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
                    n=$(printf '%02d' "$s")
                    "$HIDREAM_BIN" generate -p "$p" --seed "$s" -o "$d/$n.png" || exit 1
                    printf '%s\n' "$p" > "$d/$n.txt"
                  done
                  "$HIDREAM_BIN" eval shapes --images "$d" -v > "$d/eval.txt" || exit 1
                  cat "$d/eval.txt"
                  awk '$1 == "overall" { exit !($2 >= 16 && $3 == 20) }' "$d/eval.txt"]])

# `hidream eval shapes` with no -m judges the embedded model on prompts drawn from the whole
# grammar; the run must complete and report all five categories.
add_test(NAME embedded_model_is_the_default_of_eval
  COMMAND sh -c [[out=$("$HIDREAM_BIN" eval shapes --n 5 --seed 7) || exit 1
                  printf '%s\n' "$out"
                  for c in single position counting relation "two objects" overall; do
                    printf '%s\n' "$out" | grep -q "^$c " || { echo "no $c"; exit 1; }
                  done]])
set_tests_properties(embedded_model_draws_the_run_sh_prompt_for_16_of_20_seeds
  embedded_model_is_the_default_of_eval PROPERTIES ENVIRONMENT "HIDREAM_BIN=$<TARGET_FILE:hidream_cli>")
