#!/usr/bin/env python3
"""Writes the tiny random Qwen3 causal LM and the golden outputs that tests/test_agent_lm.c
compares hidream.c's decoder with (config.json, model.safetensors, golden.safetensors here).

Needs PyPI torch, transformers and safetensors:  pip install torch transformers safetensors
Usage:  python3 tests/data/qwen3-tiny/make_golden.py

The weights are drawn in float32, rounded to bfloat16 and stored as bfloat16; the reference
runs in float32 on those rounded values (the precision hidream.c computes in). The weights are
larger than the usual 0.02 initialisation so that logits are spread out and greedy choices are
far from ties (the script checks the margin). golden.safetensors holds, for prompts k = 0, 1, 2:
  ids_k     int64 [L]        the prompt
  greedy_k  int64 [G]        model.generate(do_sample=False) continuation
  logits_k  float32 [L+G, V] the logits of prompt + continuation at every position
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = 10

cfg = Qwen3Config(
    vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
    rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False,
    bos_token_id=None, eos_token_id=None, pad_token_id=None)

torch.manual_seed(1234)
model = Qwen3ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.copy_(1.0 + 0.2 * torch.randn_like(p))
        else:
            p.copy_(0.35 * torch.randn_like(p))
        p.copy_(p.to(torch.bfloat16).to(torch.float32))

state = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
save_file(state, os.path.join(HERE, "model.safetensors"), metadata={"format": "pt"})
conf = cfg.to_dict()
conf["architectures"] = ["Qwen3ForCausalLM"]
keep = ["architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
        "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
        "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_parameters",
        "tie_word_embeddings", "attention_bias", "hidden_act", "use_sliding_window"]
conf = {k: conf[k] for k in keep if k in conf}
with open(os.path.join(HERE, "config.json"), "w") as f:
    json.dump(conf, f, indent=2)
    f.write("\n")

gen = torch.Generator().manual_seed(99)
golden = {}
for k, n in enumerate([7, 13, 20]):
    ids = torch.randint(0, cfg.vocab_size, (1, n), generator=gen)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=GEN, do_sample=False, min_new_tokens=GEN,
                             pad_token_id=0)
        logits = model(out).logits[0].float()
    cont = out[0, n:]
    # every greedy choice must win by a clear margin, or float32 noise could flip it
    for i in range(GEN):
        top = torch.topk(logits[n - 1 + i], 2).values
        assert float(top[0] - top[1]) > 1e-3, f"prompt {k}: near tie at step {i}"
        assert int(torch.argmax(logits[n - 1 + i])) == int(cont[i])
    golden[f"ids_{k}"] = ids[0].clone()
    golden[f"greedy_{k}"] = cont.clone()
    golden[f"logits_{k}"] = logits.contiguous()
save_file(golden, os.path.join(HERE, "golden.safetensors"))
print("wrote", HERE)
