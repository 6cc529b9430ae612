#!/bin/sh
# GPU session check (docs/CUDA.md): build with CUDA, op test vs CPU, golden checks on the GPU, timing.
# Usage, from the repository root on an H100/H200: sh scripts/gpu-check.sh
S=${HIDREAM_SHARED:-../shared}; B=build-cuda
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
cmake -S . -B $B -DHIDREAM_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build $B -j16 2>&1 | grep -E "error|warning"; test -x $B/hidream || exit 1
# 1. every op against the CPU backend: must end "N passed, 0 failed" (and print no SKIP)
timeout 300 $B/test_backend_cuda 2>&1 | grep -v "^ok"
# 2. golden checks on the GPU: forward cases (1e-4 vs float64) and pipeline cases
timeout 300 $B/hidream check-golden $S/golden/model-tiny --backend cuda
# 3. optional, slow: out-of-bounds checks of the kernels
command -v compute-sanitizer >/dev/null &&
  timeout 150 compute-sanitizer --tool memcheck $B/test_backend_cuda 2>&1 | tail -3
# 4. timing: the 8B preset of tools/hd_make_model.c with 8 layers and no vision tower
cat > /tmp/hd-8b-8l.json <<'JSON'
{"architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl",
 "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
 "vision_end_token_id": 151653, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
 "text_config": {"model_type": "qwen3_vl_text", "dtype": "bfloat16", "bos_token_id": 151643,
   "eos_token_id": 151645, "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 12288,
   "num_hidden_layers": 8, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
   "rms_norm_eps": 1e-06, "rope_theta": 5000000, "max_position_embeddings": 262144,
   "hidden_act": "silu", "attention_bias": false, "attention_dropout": 0.0,
   "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20],
                    "mrope_interleaved": true}}}
JSON
test -d /tmp/hd-8b-8l || $B/hd_make_model --config /tmp/hd-8b-8l.json --out /tmp/hd-8b-8l | tail -1
for opt in "" --bf16-gemm; do
  for size in 1024 2048; do
    echo "== cuda $opt ${size}x${size}"
    /usr/bin/time -v $B/hidream generate --backend cuda $opt -v -m /tmp/hd-8b-8l -p "a red fox" \
      -o /tmp/fox.png --width $size --height $size --steps 3 2>&1 |
      grep -E "step 3/3|Elapsed|Maximum resident|hidream"
  done
done
