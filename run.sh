#!/usr/bin/env bash
# Builds hidream.c and runs the main job: text-to-image.
#   bash run.sh            -> the embedded model (models/shapes, trained here by `hidream train`
#                             train/shapes.json, then train/shapes-finetune.json) draws "a red circle on the left"
#                             into out/example.png (64x64, its native size; under a second)
#   MODEL=/path/to/HiDream-O1-Image PROMPT="a red fox in the snow" bash run.sh
#                          -> the released 8B checkpoint (or any model directory)
# Extra arguments are passed to `hidream generate` (e.g. --seed 7, -o out/other.png).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out
prompt=${PROMPT:-"a red circle on the left"}
model=()
[ -n "${MODEL:-}" ] && model=(-m "$MODEL")
./build/hidream generate "${model[@]}" -p "$prompt" --seed 42 -o out/example.png "$@"
echo "wrote out/example.png ($prompt)"
