#!/usr/bin/env python3
"""Per-layer GPTQ vs RTN on real SmolLM2 layers: calibration error vs held-out error (issue 6).

Runs the float64 NumPy model (llama_ref.py) over calibration windows (tinyshakespeare, chosen as
`frugal eval --table` chooses them) and held-out windows (wikitext-2 test, the first windows of ctx 512
that `frugal eval --chunks 8` scores), captures the inputs of q_proj / o_proj / gate_proj / down_proj
of a few layers, and reports for RTN and GPTQ (gptq_ref.py) the relative output error
    ||(W - Q) X^T||^2 / ||W X^T||^2
on the calibration inputs (what GPTQ minimizes) and on the held-out inputs (what matters).

    .venv/bin/python tests/reference/gptq_layer_check.py [--layers 0,10,29] [--calib-windows 16]
        [--calib-len 256] [--bits 4] [--group 64] [--damp 0.01,0.1] [--dump DIR]

--dump DIR writes, for the first layer's down_proj: W.f32 [rows, cols], H.f64 [cols, cols] (from the
calibration inputs), and the reference GPTQ result codes.i32 / scales.f64 / zeros.f64, plus meta.txt,
for tests/reference/gptq_compare.cpp (frugal's C++ GPTQ on the same W and H).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import gptq_ref  # noqa: E402
import llama_ref  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DATA = os.path.join(ROOT, "..", "shared", "data")


def tokens_of(path: str, n_bytes: int, from_end: bool = False) -> list[int]:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(ROOT, "tests", "golden", "smollm2_tokenizer.json"))
    with open(path, "rb") as f:
        data = f.read()
    text = (data[-n_bytes:] if from_end else data[:n_bytes]).decode("utf-8", errors="ignore")
    return tok.encode(text, add_special_tokens=False).ids


def calib_windows(toks: list[int], n: int, length: int) -> list[list[int]]:
    """As quant::calibration_windows: n windows of `length` at evenly spaced offsets."""
    stride = (len(toks) - length) // (n - 1) if n > 1 else 0
    return [toks[i * stride:i * stride + length] for i in range(n)]


def capture(model: llama_ref.Model, windows: list[list[int]], layers: set[int]) -> dict:
    """{(layer, name): X [N, cols]} for name in q (attn-norm out), o (attention out), gate (ffn-norm
    out), down (SwiGLU out), over all tokens of all windows (float model)."""
    cfg = model.config
    out: dict = {}
    rope = llama_ref.rope_adjacent
    last = max(layers)
    for win in windows:
        h = model.tok_embd[np.asarray(win)]
        T = h.shape[0]
        cos, sin = llama_ref.rope_cos_sin(np.arange(T), cfg.head_dim, cfg.rope_base, h.dtype)
        for li, L in enumerate(model.layers[:last + 1]):
            xn = llama_ref.rms_norm(h, L.attn_norm, cfg.norm_eps)
            hd = cfg.head_dim
            q = rope((xn @ L.wq.T).reshape(T, cfg.n_heads, hd).transpose(1, 0, 2), cos, sin)
            k = rope((xn @ L.wk.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2), cos, sin)
            v = (xn @ L.wv.T).reshape(T, cfg.n_kv_heads, hd).transpose(1, 0, 2)
            k = np.repeat(k, cfg.kv_groups, axis=0)
            v = np.repeat(v, cfg.kv_groups, axis=0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            s = np.where(np.tri(T, dtype=bool)[None], s, -np.inf)
            att = (llama_ref.softmax_last(s) @ v).transpose(1, 0, 2).reshape(T, -1)
            h = h + att @ L.wo.T
            xf = llama_ref.rms_norm(h, L.ffn_norm, cfg.norm_eps)
            g = llama_ref.silu(xf @ L.w_gate.T) * (xf @ L.w_up.T)
            h = h + g @ L.w_down.T
            if li in layers:
                for name, x in (("q", xn), ("o", att), ("gate", xf), ("down", g)):
                    out.setdefault((li, name), []).append(x)
    return {k: np.concatenate(v) for k, v in out.items()}


def weight(model, li, name):
    L = model.layers[li]
    return {"q": L.wq, "o": L.wo, "gate": L.w_gate, "down": L.w_down}[name]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default="0,10,29")
    ap.add_argument("--linears", default="q,o,gate,down")
    ap.add_argument("--calib-windows", type=int, default=16)
    ap.add_argument("--calib-len", type=int, default=256)
    ap.add_argument("--eval-windows", type=int, default=8)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--damp", default="0.01,0.1")
    ap.add_argument("--held-out", default="wikitext", choices=["wikitext", "shakespeare"],
                    help="held-out text: wikitext-2 test (first windows) or the END of tinyshakespeare "
                         "(disjoint from the calibration windows when they cover < 90%% of the file)")
    ap.add_argument("--skip-first", type=int, default=0, help="drop the first N tokens of each window from X")
    ap.add_argument("--dump", default="")
    a = ap.parse_args()
    layers = [int(x) for x in a.layers.split(",")]
    damps = [float(x) for x in a.damp.split(",")]
    t0 = time.time()
    model = llama_ref.load_gguf(MODEL)
    n_cal = a.calib_windows * a.calib_len
    cal = calib_windows(tokens_of(os.path.join(DATA, "tinyshakespeare.txt"), n_cal * 16), a.calib_windows,
                        a.calib_len)
    if a.held_out == "wikitext":
        ev_t = tokens_of(os.path.join(DATA, "wikitext-2-raw-test.txt"), a.eval_windows * 512 * 16)
    else:
        ev_t = tokens_of(os.path.join(DATA, "tinyshakespeare.txt"), a.eval_windows * 512 * 8, from_end=True)
    ev = [ev_t[i * 512:(i + 1) * 512] for i in range(a.eval_windows)]
    Xc = capture(model, cal, set(layers))
    Xe = capture(model, ev, set(layers))
    if a.skip_first:
        def drop(X, n_win, length):
            keep = np.ones(n_win * length, bool)
            for w in range(n_win):
                keep[w * length:w * length + a.skip_first] = False
            return {k: v[keep] for k, v in X.items()}
        Xc = drop(Xc, a.calib_windows, a.calib_len)
        Xe = drop(Xe, a.eval_windows, 512)
    print(f"# {a.bits}-bit g{a.group}; calib {a.calib_windows}x{a.calib_len} tinyshakespeare, held-out "
          f"{a.eval_windows}x512 {a.held_out}; skip-first {a.skip_first}; forward {time.time() - t0:.0f} s")
    print("| layer | linear | RTN calib | RTN held-out | " +
          " | ".join(f"GPTQ d={d} calib | GPTQ d={d} held-out" for d in damps) + " |")
    print("|---|---|---|---|" + "---|---|" * len(damps))
    for li in layers:
        for name in a.linears.split(","):
            W = weight(model, li, name)
            xc, xe = Xc[(li, name)], Xe[(li, name)]
            H = gptq_ref.hessian(xc)
            R = gptq_ref.dequant(*gptq_ref.rtn(W, a.bits, a.group))
            cells = [gptq_ref.output_error(W, R, xc), gptq_ref.output_error(W, R, xe)]
            for d in damps:
                res = gptq_ref.gptq(W, H, a.bits, a.group, damp=d)
                G = gptq_ref.dequant(*res)
                cells += [gptq_ref.output_error(W, G, xc), gptq_ref.output_error(W, G, xe)]
                if a.dump and li == layers[0] and name == "down" and d == damps[0]:
                    os.makedirs(a.dump, exist_ok=True)
                    W.astype("<f4").tofile(os.path.join(a.dump, "W.f32"))
                    H.astype("<f8").tofile(os.path.join(a.dump, "H.f64"))
                    res[0].astype("<i4").tofile(os.path.join(a.dump, "codes.i32"))
                    res[1].astype("<f8").tofile(os.path.join(a.dump, "scales.f64"))
                    res[2].astype("<f8").tofile(os.path.join(a.dump, "zeros.f64"))
                    xe.astype("<f4").tofile(os.path.join(a.dump, "Xheld.f32"))
                    with open(os.path.join(a.dump, "meta.txt"), "w") as f:
                        f.write(f"{W.shape[0]} {W.shape[1]} {a.bits} {a.group} {d} {xe.shape[0]}\n")
            print(f"| {li} | {name} | " + " | ".join(f"{c:.3e}" for c in cells) + " |", flush=True)
    print(f"# total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
