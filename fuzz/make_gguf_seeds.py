"""Writes the seed corpus of fuzz_gguf (fuzz/corpus/fuzz_gguf/) with the `gguf` package from
PyPI: small valid files covering every type hidream reads, every metadata value type, arrays,
a flattened 5-D tensor with its comfy.gguf.orig_shape key, and the ComfyUI name prefix.

usage: build-venv/bin/python fuzz/make_gguf_seeds.py"""
import os

import numpy as np
import gguf

OUT = os.path.join(os.path.dirname(__file__), "corpus", "fuzz_gguf")
Q = gguf.GGMLQuantizationType
rng = np.random.default_rng(7)


def write(name, fill):
    w = gguf.GGUFWriter(os.path.join(OUT, name), "hidream-o1-image")
    fill(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def plain(w):
    w.add_string("general.name", "seed")
    w.add_uint32("test.u32", 7)
    w.add_int64("test.i64", -3)
    w.add_float32("test.f32", 0.5)
    w.add_bool("test.bool", True)
    w.add_array("test.strings", ["a", "bc"])
    w.add_tensor("model.a.weight", rng.standard_normal((2, 4)).astype(np.float32))
    w.add_tensor("model.b.bias", rng.standard_normal(4).astype(np.float16))


def quantized(w):
    for t in (Q.Q8_0, Q.Q4_0):
        a = rng.standard_normal((2, 64)).astype(np.float32)
        w.add_tensor(f"model.{t.name}.weight", gguf.quants.quantize(a, t), raw_dtype=t)
    for t in (Q.Q4_K, Q.Q5_K, Q.Q6_K):  # random block bytes with small finite f16 scales
        size = gguf.GGML_QUANT_SIZES[t][1]
        b = rng.integers(0, 256, size, dtype=np.uint8)
        d = np.array([0.01, 0.002], dtype=np.float16).view(np.uint8)
        if t == Q.Q6_K:
            b[-2:] = d[:2]
        else:
            b[:4] = d
        w.add_tensor(f"model.{t.name}.weight", b.reshape(1, size), raw_dtype=t)
    bf = (rng.standard_normal((3, 8)).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("model.bf16.weight", bf, raw_shape=(3, 8), raw_dtype=Q.BF16)


def flattened(w):
    a = rng.standard_normal((4, 3, 2, 2, 2)).astype(np.float32)
    w.add_array("comfy.gguf.orig_shape.model.diffusion_model.visual.patch.weight", list(a.shape))
    w.add_tensor("model.diffusion_model.visual.patch.weight", a.reshape(4, -1))


os.makedirs(OUT, exist_ok=True)
write("plain.gguf", plain)
write("quantized.gguf", quantized)
write("flattened_5d.gguf", flattened)
print(OUT, sorted(os.listdir(OUT)))
