"""Writes a model directory whose weights are a GGUF file made by the `gguf` package from PyPI
(an independent writer and Q8_0 quantizer), from a safetensors model directory.

usage: gguf_from_pypi.py IN_DIR OUT_DIR

Matrices (*.weight with two or more dimensions, rows whole blocks of 32, not the ViT's
positional table) become Q8_0 through gguf.quants.quantize; everything else float32. Tensors of
more than four dimensions are stored as [rows, rest] with a comfy.gguf.orig_shape key, as
ComfyUI-GGUF does. config.json and tokenizer.json are copied."""
import json
import os
import shutil
import struct
import sys

import numpy as np
import gguf

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    data = raw[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        a = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(np.float32).reshape(info["shape"])
    return out


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(src, f), dst)
    tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    w = gguf.GGUFWriter(os.path.join(dst, "model.gguf"), "hidream-o1-image")
    n_q = 0
    for name, a in sorted(tensors.items()):
        if a.ndim > 4:
            w.add_array("comfy.gguf.orig_shape." + name, list(a.shape))
        if a.ndim >= 2:
            a = a.reshape(a.shape[0], -1)
        matrix = a.ndim == 2 and name.endswith(".weight") and "pos_embed" not in name
        if matrix and a.shape[1] % 32 == 0:
            q = gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            n_q += 1
        else:
            w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{dst}/model.gguf: {n_q} Q8_0 matrices of {len(tensors)} tensors (gguf {gguf.__name__})")


if __name__ == "__main__":
    main()
