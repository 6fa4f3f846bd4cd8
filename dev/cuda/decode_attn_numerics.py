"""Emulates the numerics of the two paged decode attention kernels on SmolLM2's real q/K/V.

Why: the tensor-core kernel (attention_decode_mma.cu) passed random-data tests at 1e-4 but moved
SmolLM2's prefill logits 5x more than the CUDA-core split kernel (issue 7, session 3 lead check).
This script runs the model in NumPy (bf16-rounded weights, bf16 K/V as the GPU holds them,
optionally bf16-rounded projection inputs like the cuBLAS path) with each attention variant
swapped in, and prints per-layer attention errors vs float64 and the final logits' rel L2 vs the
float64-attention run. Variants:
  f64    float64 softmax(q k^T) v over the bf16 K/V (the reference)
  split  float32 q * scale * log2(e) times bf16 k, float32 accumulation (the CUDA-core kernel)
  mma2   q as bf16 hi + bf16 lo (the kernel before the fix), P as bf16 hi + lo
  mma3   q as bf16 hi + mid + lo (three terms), P as bf16 hi + lo
  mma33  q and P as three bf16 terms each (the kernel after the fix, query groups <= 4)

Usage: .venv/bin/python dev/cuda/decode_attn_numerics.py [--cublas] [--tokens 1,504,...]
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "reference"))
import llama_ref as ref  # noqa: E402

LOG2E = 1.4426950408889634


def bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to the nearest bf16 (ties to even), returned as float32."""
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


def split_terms(x: np.ndarray, n: int) -> list[np.ndarray]:
    terms, rest = [], x.astype(np.float32)
    for _ in range(n):
        t = bf16(rest)
        terms.append(t)
        rest = (rest - t).astype(np.float32)
    return terms


def attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, variant: str) -> np.ndarray:
    """q [G, D] float32 (one KV head's query group, one token), k/v [S, D] bf16 values."""
    D = q.shape[-1]
    if variant == "f64":
        s = (q.astype(np.float64) @ k.T.astype(np.float64)) / math.sqrt(D)
        p = np.exp(s - s.max(-1, keepdims=True))
        return (p @ v.astype(np.float64)) / p.sum(-1, keepdims=True)
    qs = (q * np.float32(1.0 / math.sqrt(D) * LOG2E)).astype(np.float32)
    if variant == "split":
        s = (qs @ k.T).astype(np.float32)
        p = np.exp2(s - s.max(-1, keepdims=True)).astype(np.float32)
        return ((p @ v) / p.sum(-1, keepdims=True)).astype(np.float64)
    n, n_p = {"mma2": (2, 2), "mma3": (3, 2), "mma33": (3, 3)}[variant]
    # each term's products are exact in float32 (bf16 x bf16); the row sums in float32
    s = sum((t @ k.T).astype(np.float32) for t in split_terms(qs, n)).astype(np.float32)
    p = np.exp2(s - s.max(-1, keepdims=True)).astype(np.float32)
    o = sum((t @ v).astype(np.float32) for t in split_terms(p, n_p))
    return (o / p.sum(-1, keepdims=True)).astype(np.float64)


def forward(model, tokens, variant, cublas, stats=None):
    cfg = model.config
    T, hd, G = len(tokens), cfg.head_dim, cfg.kv_groups
    h = model.tok_embd[np.asarray(tokens)].astype(np.float32)
    cos, sin = ref.rope_cos_sin(np.arange(T), hd, cfg.rope_base, np.float32)
    act = bf16 if cublas else (lambda a: a)
    for li, L in enumerate(model.layers):
        x = act(ref.rms_norm(h, L.attn_norm, cfg.norm_eps).astype(np.float32))
        q = (x @ L.wq.T).reshape(T, cfg.n_heads, hd).transpose(1, 0, 2)
        k = (x @ L.wk.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)
        v = (x @ L.wv.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)
        q = ref.rope_adjacent(q, cos, sin).astype(np.float32)
        k = bf16(ref.rope_adjacent(k, cos, sin))
        v = bf16(v)
        out = np.zeros((T, cfg.n_heads, hd), np.float64)
        for t in range(T):
            for kvh in range(cfg.n_kv_heads):
                qg = q[kvh * G:(kvh + 1) * G, t]
                o = attend(qg, k[kvh, :t + 1], v[kvh, :t + 1], variant)
                out[t, kvh * G:(kvh + 1) * G] = o
                if stats is not None:
                    o64 = attend(qg, k[kvh, :t + 1], v[kvh, :t + 1], "f64")
                    qs = qg.astype(np.float64) / math.sqrt(hd)
                    mag = np.abs(qs) @ np.abs(k[kvh, :t + 1].astype(np.float64)).T
                    sc = qs @ k[kvh, :t + 1].astype(np.float64).T
                    st = stats.setdefault(li, [0.0, 0.0, 0.0, 0.0, 0.0])
                    st[0] += float(np.sum((o - o64) ** 2))
                    st[1] += float(np.sum(o64 ** 2))
                    st[2] = max(st[2], float(mag.max()))
                    st[3] = max(st[3], float(np.abs(sc).max()))
                    st[4] = max(st[4], float(np.abs(qg).max()))
        a = act(out.reshape(T, -1).astype(np.float32))
        h = h + a @ L.wo.T
        x = act(ref.rms_norm(h, L.ffn_norm, cfg.norm_eps).astype(np.float32))
        g = act((ref.silu(x @ L.w_gate.T) * (x @ L.w_up.T)).astype(np.float32))
        h = (h + g @ L.w_down.T).astype(np.float32)
    h = ref.rms_norm(h, model.out_norm, cfg.norm_eps)
    return (h[-1:] @ model.w_out.T)[0].astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--tokens", default="1,504,3575,282,4649,314")
    ap.add_argument("--cublas", action="store_true", help="bf16-round projection inputs")
    ap.add_argument("--variants", default="f64,split,mma2,mma3,mma33")
    ap.add_argument("--base-float", action="store_true",
                    help="compare with the f64-attention run on float projection inputs (the CPU engine)")
    args = ap.parse_args()
    model = ref.load_gguf(args.model, dtype=np.float32)
    for L in model.layers:  # the GPU holds bf16 weights
        for f in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"):
            setattr(L, f, bf16(getattr(L, f)))
    model.tok_embd = bf16(model.tok_embd)
    model.w_out = model.tok_embd
    tokens = [int(t) for t in args.tokens.split(",")]
    base = forward(model, tokens, "f64", False) if args.base_float else None
    for var in args.variants.split(","):
        stats = {}
        lg = forward(model, tokens, var, args.cublas, stats)
        if base is None:
            base = lg
        rel = float(np.linalg.norm(lg - base) / np.linalg.norm(base))
        worst = max(stats.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1e-300))
        print(f"{var:6s} logits rel L2 vs f64-attention run: {rel:.3g}; worst layer {worst[0]}: "
              f"attn rel L2 {math.sqrt(worst[1][0] / worst[1][1]):.3g}")
        if var == "f64":
            for li, st in sorted(stats.items()):
                print(f"  layer {li:2d}: max sum|q_i k_i|/sqrt(d) {st[2]:9.1f}  max |score| "
                      f"{st[3]:7.2f}  max |q| {st[4]:7.1f}")
        else:
            errs = ", ".join(f"{li}:{math.sqrt(st[0] / st[1]):.1e}" for li, st in sorted(stats.items()))
            print("  per-layer attn rel L2 (own inputs) " + errs)


if __name__ == "__main__":
    main()
