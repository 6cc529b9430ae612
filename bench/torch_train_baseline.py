"""PyTorch baseline for `bench_train`: one UiT training step in plain PyTorch, same work as hidream.c.

The model is the Unified Transformer at a small size: token embedding, timestep token (sinusoid ->
Linear -> SiLU -> Linear), bottleneck patch embedding (3p² -> D/4 -> D), decoder layers (RMSNorm,
q/k/v/o without bias, per-head RMSNorm on q and k, rotary embedding, grouped-query attention with
the hybrid mask: text rows causal, timestep and patch rows see every row; SwiGLU), final RMSNorm,
the patch head (D -> 3p²) and lm_head for the joint LM loss. One step = forward on a batch of B
sequences of T text rows + L patch rows, the objective of docs/TRAINING.md (velocity-space MSE
plus λ·cross-entropy on the text rows), backward, global-norm clipping and AdamW — all float32,
as hidream.c's training engine.

Prints one JSON line: {"model", "params", "batch", "tokens", "torch_samples_s", "blas", ...}.
Usage: OMP_NUM_THREADS=2 /usr/bin/python3 torch_train_baseline.py --dim 256 --layers 6 ...
The BLAS behind torch is named in the output ("blas"): with Debian's python3-torch it must be
OpenBLAS (libopenblas0-pthread); the reference BLAS is ~25x slower and makes the comparison void.
"""
import argparse, json, math, os, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Layer(nn.Module):
    def __init__(self, d, nh, nkv, hd, ff):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.ln1, self.ln2 = RMSNorm(d), RMSNorm(d)
        self.q = nn.Linear(d, nh * hd, bias=False)
        self.k = nn.Linear(d, nkv * hd, bias=False)
        self.v = nn.Linear(d, nkv * hd, bias=False)
        self.o = nn.Linear(nh * hd, d, bias=False)
        self.qn, self.kn = RMSNorm(hd), RMSNorm(hd)
        self.gate = nn.Linear(d, ff, bias=False)
        self.up = nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, S, _ = x.shape
        h = self.ln1(x)
        q = self.qn(self.q(h).view(B, S, self.nh, self.hd)).transpose(1, 2)
        k = self.kn(self.k(h).view(B, S, self.nkv, self.hd)).transpose(1, 2)
        v = self.v(h).view(B, S, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        g = self.nh // self.nkv
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd)) + mask
        a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, S, self.nh * self.hd)
        x = x + self.o(a)
        h = self.ln2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class UiT(nn.Module):
    def __init__(self, layers, d, nh, nkv, hd, ff, vocab, patch):
        super().__init__()
        pd = 3 * patch * patch
        self.embed = nn.Embedding(vocab, d)
        self.t1, self.t2 = nn.Linear(256, d), nn.Linear(d, d)
        self.p1, self.p2 = nn.Linear(pd, d // 4, bias=False), nn.Linear(d // 4, d)
        self.layers = nn.ModuleList(Layer(d, nh, nkv, hd, ff) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, pd)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids, z, t, cos, sin, mask):
        T = ids.shape[1]
        half = 128
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        arg = (t * 1000.0)[:, None] * freqs[None]
        temb = self.t2(F.silu(self.t1(torch.cat([torch.cos(arg), torch.sin(arg)], -1))))
        x_text = self.embed(ids)
        x_text = torch.cat([x_text[:, :T - 1], temb[:, None]], 1)   # last text row = timestep token
        x = torch.cat([x_text, self.p2(self.p1(z))], 1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        return self.head(x[:, T:]), self.lm_head(x[:, :T - 2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="model")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--size", type=int, default=64, help="square image side in pixels")
    ap.add_argument("--text", type=int, default=24, help="text rows T incl. boi and tms")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = UiT(a.layers, a.dim, a.heads, a.kv_heads, a.head_dim, a.ffn, a.vocab, a.patch)
    n_params = sum(p.numel() for p in m.parameters())
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01)
    B, T, L = a.batch, a.text, (a.size // a.patch) ** 2
    S = T + L
    pd = 3 * a.patch * a.patch
    ids = torch.randint(0, a.vocab, (B, T))
    x0 = torch.rand(B, L, pd) * 2 - 1
    # rotary tables [S, hd] (values do not change the work)
    pos = torch.arange(S, dtype=torch.float32)
    inv = 1.0 / (5e6 ** (torch.arange(0, a.head_dim, 2, dtype=torch.float32) / a.head_dim))
    ang = torch.cat([pos[:, None] * inv[None]] * 2, -1)
    cos, sin = ang.cos(), ang.sin()
    # hybrid mask: rows < A = T-1 causal, the rest see every row
    A = T - 1
    mask = torch.zeros(S, S)
    mask[:A, :] = torch.triu(torch.full((A, S), float("-inf")), 1)
    times = []
    for it in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        sigma = torch.sigmoid(torch.randn(B))
        eps = torch.randn(B, L, pd)
        z = (1 - sigma)[:, None, None] * x0 + sigma[:, None, None] * eps
        pred, logits = m(ids, z, 1 - sigma, cos, sin, mask)
        w = 1.0 / sigma.clamp(min=0.05) ** 2
        l_img = (((pred - x0) ** 2).mean((1, 2)) * w).mean()
        l_lm = F.cross_entropy(logits.reshape(-1, a.vocab), ids[:, 1:T - 1].reshape(-1))
        loss = l_img + 0.1 * l_lm
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if it >= a.warmup:
            times.append(time.perf_counter() - t0)
    blas = "unknown"
    try:  # the library actually mapped into this process after the matrix products above
        with open("/proc/self/maps") as f:
            libs = {l.split()[-1] for l in f if "blas" in l.lower() or "mkl" in l.lower()}
        for lib in sorted(libs):
            name = os.path.basename(lib)
            if "openblas" in lib:
                blas = "OpenBLAS (" + name + ")"
            elif "mkl" in name and blas == "unknown":
                blas = "MKL (" + name + ")"
            elif name.startswith("libblas") and blas == "unknown":
                blas = "reference BLAS (" + lib + "): comparison void"
    except OSError:
        pass
    med = statistics.median(times)
    print(json.dumps({"model": a.name, "params": n_params, "batch": B, "tokens": S,
                      "torch_samples_s": B / med, "torch_step_ms": med * 1e3,
                      "torch_step_ms_min": min(times) * 1e3, "torch_step_ms_max": max(times) * 1e3,
                      "blas": blas, "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
