#!/usr/bin/env python3
"""Golden data for src/quant/ggml_blocks.cpp, made with gguf-py's quants.py (llama.cpp's
independent numpy implementation of the ggml block formats).

Writes tests/golden/ggml_blocks.bin (little-endian):
  char[4] magic "FGQB", u32 version (1), u32 n (floats in the input, a multiple of 32),
  f32 input[n],
  u32 n_sections, then per section:
    u32 ggml type id (GGUFType: F16 1, Q4_0 2, Q4_1 3, Q8_0 8, BF16 30),
    u32 nbytes, u8 quantized[nbytes]   -- gguf.quants.quantize(input, type)
    f32 dequantized[n]                 -- gguf.quants.dequantize(quantized, type)

Usage: .venv/bin/python tests/reference/make_ggml_blocks_golden.py [out_path]
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

QK = 32


def codes(block: np.ndarray, kind: str, fused: bool) -> np.ndarray:
    """Q4_0/Q4_1 codes of one float32 block as ggml computes them; fused=True emulates an FMA
    (exact product + c rounded once: float64 holds the 48-bit product and the sum exactly)."""
    f32 = np.float32
    if kind == "q4_0":
        mx = block[np.argmax(np.abs(block))]
        d = f32(mx / f32(-8))
        base, c = block, f32(8.5)
    else:
        mn = block.min()
        d = f32((block.max() - mn) / f32(15))
        base, c = (block - mn).astype(f32), f32(0.5)
    idv = f32(1) / d if d != 0 else f32(0)
    if fused:
        v = (base.astype(np.float64) * np.float64(idv) + np.float64(c)).astype(f32)
    else:
        v = (base * idv).astype(f32) + c
    return np.clip(np.trunc(v), 0, 15).astype(np.int64)


def fma_sensitive_blocks(rng, kind: str, count: int) -> list:
    """Random blocks with one element moved, ulp by ulp, onto a code boundary until the fused and
    unfused computations disagree on some code."""
    found = []
    while len(found) < count:
        b = (rng.standard_normal(QK) * 0.3).astype(np.float32)
        if kind == "q4_0":
            b[0] = np.float32(1.0 + rng.random())           # the max: d = -b[0]/8
            target = b[0] * np.float32(15.0 / 16.0)         # x*id = -7.5: sum ~ 1.0
        else:
            b[0], b[1] = np.float32(0.0), np.float32(1.0 + rng.random())  # min 0, max b[1]
            k = rng.integers(1, 14)
            target = b[1] * np.float32((k + 0.5) / 15.0)    # (x-min)*id = k+0.5
        x = np.float32(target)
        for _ in range(64):
            b[5] = x
            if (codes(b, kind, False) != codes(b, kind, True)).any():
                found.append(b.copy())
                break
            x = np.nextafter(x, np.float32(np.inf) if rng.random() < 0.5 else np.float32(0))
    return found


def make_input() -> np.ndarray:
    rng = np.random.default_rng(20241129)
    blocks = []
    # Ordinary Gaussian blocks at different scales (weights are ~N(0, 0.02..1)).
    for scale in (1.0, 0.02, 3.5, 1e-3, 100.0):
        for _ in range(4):
            blocks.append(rng.standard_normal(QK) * scale)
    # Skewed blocks (all positive / all negative): min/max far from zero for Q4_1.
    blocks.append(rng.uniform(2.0, 3.0, QK))
    blocks.append(rng.uniform(-7.0, -6.5, QK))
    # Degenerate blocks.
    blocks.append(np.zeros(QK))                      # d = 0 everywhere
    blocks.append(np.full(QK, 0.75))                 # constant: Q4_1 d = 0
    blocks.append(np.full(QK, -1.25))
    tie = rng.standard_normal(QK) * 0.5              # +a and -a both present: first wins
    tie[3], tie[20] = -2.0, 2.0
    blocks.append(tie)
    tie2 = rng.standard_normal(QK) * 0.5
    tie2[1], tie2[30] = 2.0, -2.0
    blocks.append(tie2)
    # Values on the rounding grid (x/d lands on .5 boundaries often).
    grid = (np.arange(QK) - 15.5) * 0.25
    blocks.append(grid)
    blocks.append(rng.integers(-127, 128, QK) / 127.0)
    # Tiny magnitudes: fp16 scale becomes subnormal.
    blocks.append(rng.standard_normal(QK) * 1e-6)
    # One large outlier among small values.
    out = rng.standard_normal(QK) * 0.01
    out[17] = 5.0
    blocks.append(out)
    blocks.append(rng.standard_normal(QK))
    # Blocks where computing x*id + 8.5 with a fused multiply-add would change a Q4_0 code (ggml
    # and gguf-py round the product first): catches a compiler contracting the quantizer's math.
    # (Q4_1 cannot be affected: its product is >= 0, so adding 0.5 never moves it to a finer
    # binade, and rounding the product first gives the same code.)
    blocks += fma_sensitive_blocks(rng, "q4_0", 3)
    x = np.concatenate(blocks).astype(np.float32)
    assert x.size % QK == 0
    return x


def main() -> None:
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[1] / "golden" / "ggml_blocks.bin"
    x = make_input()
    types = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1]
    buf = bytearray()
    buf += b"FGQB" + struct.pack("<II", 1, x.size)
    buf += x.astype("<f4").tobytes()
    buf += struct.pack("<I", len(types))
    for t in types:
        q = np.ascontiguousarray(quants.quantize(x.reshape(1, -1), t)).view(np.uint8).ravel()
        deq = quants.dequantize(q.reshape(1, -1), t).astype(np.float32).ravel()
        assert deq.size == x.size
        buf += struct.pack("<II", int(t), q.size) + q.tobytes()
        buf += deq.astype("<f4").tobytes()
    out_path.write_bytes(bytes(buf))
    print(f"wrote {out_path} ({len(buf)} bytes, {x.size} floats, {len(types)} types)")


if __name__ == "__main__":
    main()
