"""Writes a "scaled fp8" copy of a safetensors model directory, as ComfyUI's scaled-fp8
checkpoints are laid out: every matrix X.weight (two or more dimensions, not the token
embedding nor the ViT positional table) becomes float8_e4m3fn values with a one-value float32
tensor X.scale_weight (value = fp8 × scale, scale = max|w| / 448), plus a "scaled_fp8" marker
tensor. Other tensors are copied. An independent writer (numpy, no hidream code).

usage: fp8_scaled_model.py IN_DIR OUT_DIR [--bad-scale]
--bad-scale gives the first layer's first scale tensor two values (a per-channel scale hidream refuses)."""
import json
import os
import shutil
import struct
import sys

import numpy as np


def e4m3_table():
    """Every finite float8_e4m3fn value and its code."""
    codes, vals = [], []
    for c in range(256):
        s, e, m = c >> 7, (c >> 3) & 15, c & 7
        if e == 15 and m == 7:
            continue  # NaN
        v = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
        codes.append(c)
        vals.append(-v if s else v)
    order = np.argsort(vals, kind="stable")
    return np.array(vals)[order], np.array(codes, dtype=np.uint8)[order]


VALS, CODES = e4m3_table()


def to_e4m3(x):
    i = np.clip(np.searchsorted(VALS, x), 1, len(VALS) - 1)
    lo, hi = VALS[i - 1], VALS[i]
    pick = np.where(np.abs(x - lo) <= np.abs(hi - x), i - 1, i)
    return CODES[pick]


def read(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    bad = "--bad-scale" in sys.argv[3:]
    os.makedirs(dst, exist_ok=True)
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(src, f), dst)
    header, data = read(os.path.join(src, "model.safetensors"))
    out, blobs, off = {}, [], 0

    def add(name, dtype, shape, b):
        nonlocal off
        out[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)

    n_fp8, bad_done = 0, False
    for name, info in sorted(header.items()):
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        matrix = (len(info["shape"]) >= 2 and name.endswith(".weight") and "embed_tokens" not in
                  name and "pos_embed" not in name)
        if not matrix:
            add(name, info["dtype"], info["shape"], raw)
            continue
        a = np.frombuffer(raw, dtype=np.uint16 if info["dtype"] == "BF16" else np.float32)
        if info["dtype"] == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        scale = np.float32(np.abs(a).max() / 448.0)
        add(name, "F8_E4M3", info["shape"], to_e4m3(a / scale).tobytes())
        sname = name[:-len(".weight")] + ".scale_weight"
        if bad and name.startswith("model.language_model.layers.0.") and not bad_done:
            bad_done = True
            add(sname, "F32", [2], np.array([scale, scale], dtype=np.float32).tobytes())
        else:
            add(sname, "F32", [], np.array(scale, dtype=np.float32).tobytes())
        n_fp8 += 1
    add("scaled_fp8", "F8_E4M3", [2], bytes(2))
    hdr = json.dumps(out).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))
    print(f"{dst}: {n_fp8} fp8 matrices with per-tensor scales")


if __name__ == "__main__":
    main()
