# CLI tests of `hidream train` on the seconds-long recipe train/shapes-tiny-ci.json. Each runs a
# short sh script with HIDREAM_BIN and HIDREAM_SOURCE in its environment.

# The loss falls: the mean of the last 10 steps is below half the mean of the first 5; the run
# leaves every artefact it promises, and the exported model generates a picture.
add_test(NAME train_cli_loss_falls_and_export_generates
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  "$HIDREAM_BIN" train "$HIDREAM_SOURCE/train/shapes-tiny-ci.json" --out "$d/run" \
                    --threads 2 || exit 1
                  for f in loss.csv loss.png checkpoint.safetensors eval.csv \
                           samples/step-000030.png model/config.json model/tokenizer.json \
                           model/model.safetensors; do
                    test -s "$d/run/$f" || { echo "missing $f"; exit 1; }
                  done
                  awk -F, 'NR > 1 && NR <= 6 { a += $2; na++ } NR > 21 { b += $2; nb++ }
                           END { printf "first %.4f last %.4f\n", a / na, b / nb;
                                 exit !(nb == 10 && b / nb < 0.5 * a / na) }' "$d/run/loss.csv" \
                    || exit 1
                  "$HIDREAM_BIN" generate -m "$d/run/model" -p "a red circle" -o "$d/x.png" \
                    --seed 3 || exit 1
                  test -s "$d/x.png"]])

# Stopping at step 12 and resuming gives the same bytes as an uninterrupted run: checkpoint
# (weights, moments, EMA), exported model and loss.csv.
add_test(NAME train_cli_resume_is_bit_identical
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  r="$HIDREAM_SOURCE/train/shapes-tiny-ci.json"
                  "$HIDREAM_BIN" train "$r" --out "$d/a" --threads 2 -q || exit 1
                  "$HIDREAM_BIN" train "$r" --out "$d/b" --threads 2 -q --until 12 || exit 1
                  test ! -e "$d/b/model" || { echo "exported before the end"; exit 1; }
                  "$HIDREAM_BIN" train "$r" --out "$d/b" --threads 2 -q --resume || exit 1
                  cmp "$d/a/checkpoint.safetensors" "$d/b/checkpoint.safetensors" || exit 1
                  cmp "$d/a/model/model.safetensors" "$d/b/model/model.safetensors" || exit 1
                  cmp "$d/a/loss.csv" "$d/b/loss.csv" || exit 1
                  "$HIDREAM_BIN" train "$r" --out "$d/c" --threads 2 -q --until 12 --restart || exit 1
                  cmp -s "$d/a/checkpoint.safetensors" "$d/c/checkpoint.safetensors" && exit 1
                  exit 0]])

# Bad input: exit 2, exactly one line on stderr naming the file and
# the field, and nothing half-written.
add_test(NAME train_cli_bad_input_exits_with_one_line
  COMMAND sh -c [=[d=$(mktemp -d) || exit 1
                  trap 'chmod -R u+w "$d"; rm -rf "$d"' EXIT
                  r="$HIDREAM_SOURCE/train/shapes-tiny-ci.json"
                  one() { # expected-rc expected-text args...
                    want=$1; text=$2; shift 2
                    "$HIDREAM_BIN" train "$@" > "$d/out" 2> "$d/err"; rc=$?
                    cat "$d/err"
                    test "$rc" -eq "$want" || { echo "rc $rc, wanted $want"; exit 1; }
                    test "$(wc -l < "$d/err")" -eq 1 || exit 1
                    grep -q -- "$text" "$d/err" || { echo "no '$text'"; exit 1; }
                  }
                  one 2 "cannot open\|No such" "$d/missing.json"
                  printf '{"stages": [{"steps": 3, "sizes": [[64, 64]]}], "batch": 0}' > "$d/b.json"
                  one 2 "b.json: batch = 0" "$d/b.json"
                  printf '{"stages": [{"steps": 3, "sizes": [[60, 64]]}]}' > "$d/s.json"
                  one 2 "stages\[0\].sizes\[0\]" "$d/s.json"
                  printf '{"stages": [{"steps": 3, "sizes": [[64, 64]]}], "bach": 4}' > "$d/u.json"
                  one 2 "bach: unknown field" "$d/u.json"
                  printf '{"stages": [{"steps": 3, "sizes": [[64, 64]]}],' > "$d/t.json"
                  one 2 "t.json: line" "$d/t.json"
                  printf '{"stages": [{"steps": 3, "sizes": [[64, 64]]}], "data": {"kind": "folder", "folder": "%s/none"}}' "$d" > "$d/f.json"
                  one 2 "none" "$d/f.json" --out "$d/frun"
                  mkdir -p "$d/ro" && chmod a-w "$d/ro"
                  if [ "$(id -u)" != 0 ]; then one 2 "ro/run" "$r" --out "$d/ro/run"; fi
                  one 2 "until" "$r" --until 0
                  "$HIDREAM_BIN" train "$r" --out "$d/twice" -q --until 2 > /dev/null || exit 1
                  one 2 "--resume" "$r" --out "$d/twice"
                  exit 0]=])

# A stop signal mid-run writes a checkpoint, exits 130, and --resume finishes the run.
add_test(NAME train_cli_signal_checkpoints_and_resumes
  COMMAND sh -c [[d=$(mktemp -d) || exit 1
                  trap 'rm -rf "$d"' EXIT
                  sed 's/"steps": 30/"steps": 3000/' "$HIDREAM_SOURCE/train/shapes-tiny-ci.json" \
                    > "$d/long.json"
                  "$HIDREAM_BIN" train "$d/long.json" --out "$d/run" -q --threads 1 \
                    > /dev/null 2> "$d/err" &
                  pid=$!
                  for i in $(seq 1 100); do test -s "$d/run/loss.csv" && break; sleep 0.1; done
                  sleep 0.5; kill -TERM $pid; wait $pid; rc=$?
                  cat "$d/err"
                  test "$rc" -eq 130 || { echo "rc $rc"; exit 1; }
                  k=$(sed -n 's/.*stopped at step \([0-9]*\).*/\1/p' "$d/err")
                  test -n "$k" && test -s "$d/run/checkpoint.safetensors" || exit 1
                  "$HIDREAM_BIN" train "$d/long.json" --out "$d/run" --until $((k + 3)) --resume \
                    > "$d/out" || exit 1
                  cat "$d/out"
                  grep -q "step $k of 3000" "$d/out" && grep -q "step $((k + 3))/3000" "$d/out"]])

set_tests_properties(train_cli_loss_falls_and_export_generates train_cli_resume_is_bit_identical
                     train_cli_bad_input_exits_with_one_line
                     train_cli_signal_checkpoints_and_resumes
                     PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 300)
