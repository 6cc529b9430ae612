#!/usr/bin/python3
"""Reference loss and parameter gradients of the Unified Transformer's training objective.

Written from the spec (shared/spec/02-sequence.md, 03-transformer.md) and the objective in the
training brief, not from the official code: a float64 PyTorch forward of the text decoder, the
timestep token (t_embedder1), the bottleneck patch embedding (x_embedder), the patch head
(final_layer2) and lm_head, differentiated by autograd.

Batch: two samples with the input ids / positions / token types of the golden forward cases
t2i_96x64 and t2i_64x128 (shared/golden/model-tiny/golden.safetensors). For sample b with L_b
target rows of P = 3·32² values (flattened index i over the L_b·P values, row-major):
    x0[i] = 0.9·sin(0.37·i + 0.1·b)         eps[i] = cos(1.3·i + 0.5 + b)
    sigma = (0.7, 0.3), noise scale s = 8, sigma_min = 0.05, lambda_lm = 0.5
    z = fl32((1 − sigma)·x0 + sigma·s·eps)  (the model reads float32 rows), t = 1 − sigma
    L_img = mean((x̂ − x0)²) / max(sigma, sigma_min)²
    L_lm  = mean over r = 0 .. A−2 of cross_entropy(lm_head(norm(h_r)), ids[r + 1])
    loss  = mean_b (L_img + lambda_lm·L_lm)
The tables the spec defines in float32 (rotary cos/sin, the timestep sinusoid) are computed in
float32 exactly as the spec states (correctly rounded functions) and used as float64 constants.

Output (tests/data/uit_grad_ref.safetensors, read by tests/test_uit_grad.c):
    loss [1] F64, loss_img [2] F64, loss_lm [2] F64
    for every parameter NAME (official checkpoint name):
      NAME.norm [1] F64       the full gradient's L2 norm
      NAME      F32           the full gradient if it has <= 65536 entries, else 8192 entries at
      NAME.idx  I32 [8192]    the flat indices idx[k] = splitmix64_k(fnv1a64(NAME)) mod numel
                              (splitmix64 stream seeded with the FNV-1a hash of the name)
Before writing, the script checks its own forward against the golden x_pred of both cases.

Regenerate (from the repository root; CPU torch, a few seconds):
    /usr/bin/python3 tests/ref/uit_grad_ref.py ../shared/golden/model-tiny tests/data/uit_grad_ref.safetensors
"""
import json
import math
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

FULL_LIMIT = 65536
N_SAMPLED = 8192
SIGMAS = (0.7, 0.3)
NOISE_SCALE = 8.0
SIGMA_MIN = 0.05
LAMBDA_LM = 0.5
CASES = ("t2i_96x64", "t2i_64x128")


# ---- safetensors (minimal reader/writer; the format is a JSON header then raw little-endian data)

def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = info["data_offsets"]
        buf = raw[base + b0:base + b1]
        dt, shape = info["dtype"], info["shape"]
        if dt == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(buf, dtype={"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}[dt])
        out[name] = a.reshape(shape).copy()
    return out


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        dt = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32"}[a.dtype]
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    import os
    os.replace(tmp, path)


# ---- float32 tables as the spec defines them (03 §2, §5)

def f32(x):
    return np.float32(x)


def timestep_sinusoid(t, dim):
    half = dim // 2
    u = f32(t * 1000.0)
    c = f32(-math.log(10000.0))
    out = np.zeros(dim, dtype=np.float32)
    for k in range(half):
        a = f32(c * f32(k))
        b = f32(a / f32(half))
        fk = f32(math.exp(float(b)))
        arg = f32(u * fk)
        out[k] = f32(math.cos(float(arg)))
        out[half + k] = f32(math.sin(float(arg)))
    return torch.tensor(out.astype(np.float64))


def rope_tables(pos, head_dim, theta, section):
    """pos [3, S] -> cos, sin [S, head_dim] (interleaved MRoPE slot assignment)."""
    half = head_dim // 2
    inv = []
    axis = []
    for j in range(half):
        ex = f32(f32(2 * j) / f32(head_dim))
        p = f32(math.pow(float(f32(theta)), float(ex)))
        inv.append(f32(f32(1.0) / p))
        if j % 3 == 1 and j < 3 * section[1]:
            axis.append(1)
        elif j % 3 == 2 and j < 3 * section[2]:
            axis.append(2)
        else:
            axis.append(0)
    S = pos.shape[1]
    cos = np.zeros((S, head_dim), dtype=np.float32)
    sin = np.zeros((S, head_dim), dtype=np.float32)
    for s in range(S):
        for j in range(half):
            ang = f32(inv[j] * f32(pos[axis[j], s]))
            cos[s, j] = cos[s, j + half] = f32(math.cos(float(ang)))
            sin[s, j] = sin[s, j + half] = f32(math.sin(float(ang)))
    return torch.tensor(cos.astype(np.float64)), torch.tensor(sin.astype(np.float64))


# ---- the model (03 §1-7)

def rmsnorm(x, w, eps):
    g = w.shape[0]
    xs = x.reshape(*x.shape[:-1], -1, g)
    y = xs * torch.rsqrt((xs * xs).mean(-1, keepdim=True) + eps) * w
    return y.reshape(x.shape)


def rope(x, cos, sin, hd):
    S = x.shape[0]
    xh = x.reshape(S, -1, hd)
    x1, x2 = xh[..., :hd // 2], xh[..., hd // 2:]
    rot = torch.cat([-x2, x1], dim=-1)
    return (xh * cos[:, None, :] + rot * sin[:, None, :]).reshape(S, -1)


def attention(q, k, v, H, Hkv, hd, A):
    S = q.shape[0]
    qh = q.reshape(S, H, hd)
    kh = k.reshape(S, Hkv, hd).repeat_interleave(H // Hkv, dim=1)
    vh = v.reshape(S, Hkv, hd).repeat_interleave(H // Hkv, dim=1)
    scores = torch.einsum("qhd,khd->hqk", qh, kh) / math.sqrt(hd)
    i = torch.arange(S)[:, None]
    j = torch.arange(S)[None, :]
    allowed = (i >= A) | (j <= i)   # hybrid mask: causal text rows, generation rows see all
    scores = scores.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return torch.einsum("hqk,khd->qhd", p, vh).reshape(S, H * hd)


class Model:
    def __init__(self, cfg, weights):
        tc = cfg["text_config"]
        self.D = tc["hidden_size"]
        self.H = tc["num_attention_heads"]
        self.Hkv = tc["num_key_value_heads"]
        self.hd = tc["head_dim"]
        self.nl = tc["num_hidden_layers"]
        self.eps = tc["rms_norm_eps"]
        self.theta = cfg["text_config"].get("rope_theta", 5000000.0)
        self.section = tc["rope_scaling"]["mrope_section"]
        self.tms = cfg.get("hidream_tiny_test", {}).get("tms_token_id", 151673)
        self.names = [n for n in weights if n.startswith(("model.language_model.", "model.t_embedder1.",
                                                          "model.x_embedder.", "model.final_layer2.",
                                                          "lm_head."))]
        self.p = {n: torch.tensor(weights[n].astype(np.float64), requires_grad=True) for n in self.names}

    def w(self, name):
        return self.p[name]

    def forward(self, ids, pos, A, vin, t, want_logits):
        """ids [T], pos [3, S], vin [L, P] -> pred [L, P], logits [A-1, V] (or None)."""
        T, S = len(ids), pos.shape[1]
        lm = "model.language_model."
        x_text = self.w(lm + "embed_tokens.weight")[torch.tensor(ids)]
        freq = timestep_sinusoid(t, self.w("model.t_embedder1.mlp.0.weight").shape[1])
        h = torch.nn.functional.silu(self.w("model.t_embedder1.mlp.0.weight") @ freq
                                     + self.w("model.t_embedder1.mlp.0.bias"))
        e_t = self.w("model.t_embedder1.mlp.2.weight") @ h + self.w("model.t_embedder1.mlp.2.bias")
        is_tms = torch.tensor([i == self.tms for i in ids])[:, None]
        x_text = torch.where(is_tms, e_t[None, :], x_text)
        h1 = vin @ self.w("model.x_embedder.proj1.weight").T
        x_img = h1 @ self.w("model.x_embedder.proj2.weight").T + self.w("model.x_embedder.proj2.bias")
        x = torch.cat([x_text, x_img], dim=0)
        cos, sin = rope_tables(pos, self.hd, self.theta, self.section)
        for i in range(self.nl):
            pre = f"{lm}layers.{i}."
            h = rmsnorm(x, self.w(pre + "input_layernorm.weight"), self.eps)
            q = h @ self.w(pre + "self_attn.q_proj.weight").T
            k = h @ self.w(pre + "self_attn.k_proj.weight").T
            v = h @ self.w(pre + "self_attn.v_proj.weight").T
            q = rope(rmsnorm(q, self.w(pre + "self_attn.q_norm.weight"), self.eps), cos, sin, self.hd)
            k = rope(rmsnorm(k, self.w(pre + "self_attn.k_norm.weight"), self.eps), cos, sin, self.hd)
            a = attention(q, k, v, self.H, self.Hkv, self.hd, A)
            x = x + a @ self.w(pre + "self_attn.o_proj.weight").T
            h = rmsnorm(x, self.w(pre + "post_attention_layernorm.weight"), self.eps)
            g = h @ self.w(pre + "mlp.gate_proj.weight").T
            u = h @ self.w(pre + "mlp.up_proj.weight").T
            x = x + (torch.nn.functional.silu(g) * u) @ self.w(pre + "mlp.down_proj.weight").T
        xf = rmsnorm(x, self.w(lm + "norm.weight"), self.eps)
        pred = xf[T:S] @ self.w("model.final_layer2.linear.weight").T + self.w("model.final_layer2.linear.bias")
        logits = xf[0:A - 1] @ self.w("lm_head.weight").T if want_logits else None
        return pred, logits


# ---- the sampled-index generator the C test re-derives

M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def sample_indices(name, numel, n):
    state = fnv1a64(name)
    out = np.zeros(n, dtype=np.int32)
    for k in range(n):
        state = (state + 0x9e3779b97f4a7c15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
        z ^= z >> 31
        out[k] = z % numel
    return out


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/golden/model-tiny"
    out_path = sys.argv[2] if len(sys.argv) > 2 else "tests/data/uit_grad_ref.safetensors"
    cfg = json.load(open(model_dir + "/config.json"))
    model = Model(cfg, st_read(model_dir + "/model.safetensors"))
    golden = st_read(model_dir + "/golden.safetensors")

    losses, l_img, l_lm = [], [], []
    for b, case in enumerate(CASES):
        g = lambda n: golden[f"forward.{case}.{n}"]
        ids = [int(i) for i in g("input_ids")[0]]
        pos = g("position_ids")[:, 0, :]
        types = g("token_types")[0]
        A = int(np.argmax(types != 0)) if (types != 0).any() else len(types)
        T, S = len(ids), pos.shape[1]
        L = S - T
        # self-check against the official forward (golden x_pred)
        with torch.no_grad():
            pred, _ = model.forward(ids, pos, A, torch.tensor(g("vinputs")[0]), float(g("timestep")[0]), False)
            ref = torch.tensor(g("x_pred"))
            rel = float((pred - ref).norm() / ref.norm())
        print(f"{case}: forward vs golden x_pred rel. err {rel:.2e}")
        assert rel < 1e-6, "the reference forward does not reproduce the golden x_pred"
        P = pred.shape[1]
        i = np.arange(L * P, dtype=np.float64)
        x0 = 0.9 * np.sin(0.37 * i + 0.1 * b)
        eps = np.cos(1.3 * i + 0.5 + b)
        sigma = SIGMAS[b]
        z = ((1 - sigma) * x0 + sigma * NOISE_SCALE * eps).astype(np.float32).astype(np.float64)
        pred, logits = model.forward(ids, pos, A, torch.tensor(z.reshape(L, P)), 1.0 - sigma, True)
        x0t = torch.tensor(x0.reshape(L, P))
        li = ((pred - x0t) ** 2).mean() / max(sigma, SIGMA_MIN) ** 2
        ll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:A]))
        l_img.append(float(li))
        l_lm.append(float(ll))
        losses.append(li + LAMBDA_LM * ll)
    loss = sum(losses) / len(losses)
    loss.backward()
    print(f"loss {float(loss):.10g} (img {l_img}, lm {l_lm})")

    out = {"loss": np.array([float(loss)]), "loss_img": np.array(l_img), "loss_lm": np.array(l_lm)}
    for n in model.names:
        gr = model.p[n].grad.numpy()
        out[n + ".norm"] = np.array([float(np.linalg.norm(gr))])
        if gr.size <= FULL_LIMIT:
            out[n] = gr.astype(np.float32)
        else:
            idx = sample_indices(n, gr.size, N_SAMPLED)
            out[n + ".idx"] = idx
            out[n] = gr.reshape(-1)[idx].astype(np.float32)
    st_write(out_path, out)
    print(f"wrote {out_path} ({len(model.names)} parameters)")


if __name__ == "__main__":
    main()
