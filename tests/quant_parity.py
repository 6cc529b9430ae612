#!/usr/bin/env python3
"""Bit-for-bit parity of hidream.c's GGML block formats with gguf-py (the `gguf` package).

Usage: quant_parity.py TEST_QUANT_BINARY

Writes, per format, random blocks and gguf-py's float32 dequantization of them; for Q8_0 and
Q4_0 also random float32 rows and gguf-py's quantize() of them. Then runs
`TEST_QUANT_BINARY --parity DIR`, which decodes the same blocks with hd_dequant_* and quantizes
the same rows with hd_quant_q8_0 / hd_quant_q4_0, and fails on any differing bit. Blocks are:
  * K formats: random bytes with finite random f16 scales (d, dmin) patched in, so every code,
    scale byte and high bit pattern occurs; gguf-py has no K quantizer to compare with.
  * Q8_0 / Q4_0: quantize() of rows built to hit the reference's edge cases (rounding ties,
    subnormal f16 scales, tied largest magnitudes, zeros), plus random-byte blocks.
Needs the test-only venv (scripts/deps.sh --test); a missing gguf package is a failure.
"""
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from gguf import GGMLQuantizationType as T, quants
    from gguf.constants import GGML_QUANT_SIZES
except ImportError as e:
    sys.stderr.write("FAIL: numpy and gguf (scripts/deps.sh --test installs them in build-venv/) "
                     "are needed for %s: %s\n" % (sys.executable, e))
    sys.exit(1)

RNG = np.random.default_rng(20260517)
FORMATS = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K}
F16_OFFSETS = {"q8_0": [0], "q4_0": [0], "q4_k": [0, 2], "q5_k": [0, 2], "q6_k": [208]}
N_RANDOM_BLOCKS = 3000


def finite_f16(n):
    """Random f16 bit patterns over every finite value: zeros, subnormals, both signs."""
    h = RNG.integers(0, 1 << 16, size=n, dtype=np.uint16)
    inf_nan = (h & 0x7C00) == 0x7C00
    h[inf_nan] &= 0xBFFF  # clear the top exponent bit: finite, same sign
    return h


def random_blocks(name, n):
    blk, size = GGML_QUANT_SIZES[FORMATS[name]]
    b = RNG.integers(0, 256, size=(n, size), dtype=np.uint8)
    for off in F16_OFFSETS[name]:
        b[:, off:off + 2] = finite_f16(n).view(np.uint8).reshape(n, 2)
    return b


def edge_rows(name):
    """Rows of 32-value blocks that exercise the reference quantizers' corner cases."""
    g = RNG.standard_normal((2000, 32)).astype(np.float32)
    g *= (10.0 ** RNG.uniform(-9, 4, size=(2000, 1))).astype(np.float32)  # subnormal d .. large
    k = np.arange(32, dtype=np.float32)
    if name == "q8_0":  # amax 127 -> d = 1, id = 1: codes of x.5 are ties, rounded away from 0
        special = [np.where(k % 2 == 0, k - 16.5, 127.0), np.where(k == 31, -127.0, -k - 0.5)]
    else:  # largest magnitude -8 or 8 -> d = -+1: x*id + 8.5 truncates at exact integers
        special = [np.where(k == 3, -8.0, k % 16 - 7.5), np.where(k == 0, 8.0, k / 4 - 8)]
        # tied largest magnitudes: the first one (negative here) sets the sign of d
        special += [np.where(k == 5, -3.0, np.where(k == 9, 3.0, k / 16))]
    special += [np.zeros(32), -np.zeros(32), np.full(32, 0.1), np.full(32, -7e-6)]
    special += [np.where(k == 0, -0.0, 0.0), np.where(k == 31, 1e-30, 0.0)]
    special += [np.float32(3e-8) * (k - 15)]  # d in f16's subnormal range or flushed to zero
    # 1/d overflows float32: the reference's codes for such blocks are 0 (d is stored as 0)
    special += [np.select([k == 3, k == 5, k == 7], [1e-39, -3e-40, 2e-45], 0.0)]
    special += [np.full(32, 1e-39), np.full(32, -1e-37)]
    return np.concatenate([np.array(special, dtype=np.float32), g]).reshape(-1)


def write(path, arr):
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(arr).tobytes())


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: quant_parity.py TEST_QUANT_BINARY\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="hd-quant-parity-") as d:
        for name, qt in FORMATS.items():
            blocks = random_blocks(name, N_RANDOM_BLOCKS)
            if name in ("q8_0", "q4_0"):
                x = edge_rows(name)
                with np.errstate(invalid="ignore", over="ignore"):  # the 1/d overflow rows
                    q = quants.quantize(x, qt)
                write(os.path.join(d, name + ".in.f32"), x.astype("<f4"))
                write(os.path.join(d, name + ".quant"), q)
                blocks = np.concatenate([q.reshape(-1, blocks.shape[1]), blocks])
            write(os.path.join(d, name + ".blocks"), blocks)
            write(os.path.join(d, name + ".f32"), quants.dequantize(blocks, qt).astype("<f4"))
        r = subprocess.run([sys.argv[1], "--parity", d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(r.stdout)
    reported = set(re.findall(r"^parity (\S+ \S+): [1-9]\d* blocks", r.stdout, re.M))
    want = {"%s dequantize" % n for n in FORMATS} | {"q8_0 quantize", "q4_0 quantize"}
    if r.returncode != 0 or reported != want:
        sys.stdout.write("FAIL: differences from gguf-py (exit %d; missing reports: %s)\n"
                         % (r.returncode, sorted(want - reported) or "none"))
        return 1
    print("gguf %s: all blocks bit-identical" % importlib.metadata.version("gguf"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
