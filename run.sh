#!/usr/bin/env bash
# Builds hidream.c and runs the main job: text-to-image with a model directory.
#   bash run.sh                      -> a tiny random-weight model (written by tools/hd_make_model)
#                                       generates out/example.png: it shows the pipeline working, the
#                                       picture is noise (no trained weights ship with the repo)
#   MODEL=/path/to/HiDream-O1-Image bash run.sh   -> the released checkpoint, real pictures
# Extra arguments are passed to `hidream generate`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p out models
if [ -z "${MODEL:-}" ]; then
  MODEL=models/tiny-random
  [ -f "$MODEL/config.json" ] || ./build/hd_make_model --preset tiny --seed 1 --out "$MODEL"
  set -- --no-snap --width 256 --height 256 --steps 8 "$@"
fi
./build/hidream generate -m "$MODEL" -p "a red fox in the snow, golden hour" --seed 42 \
  -o out/example.png "$@"
echo "wrote out/example.png"
