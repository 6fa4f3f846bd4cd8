"""Independent float64 NumPy GPTQ (Frantar et al., 2022, Algorithm 1), written from the paper.

Not a transcription of frugal's C++ (src/quant/gptq.cpp) nor of the authors' PyTorch: the column loop is
done in the paper's plain form (every update applied immediately; no lazy block batching, which the paper
shows is the same arithmetic reordered), so a bug in our blocking would show up as a mismatch.

Quantization grid (frugal's, src/quant/rtn.h; it is a convention, not part of GPTQ):
  asymmetric: min <= 0 <= max forced; scale = (max - min) / (2^b - 1) rounded UP to an fp16 value;
              zero = clamp(round_half_even(-min / scale), 0, 2^b - 1)
  symmetric:  scale = max|w| / (2^(b-1) - 1) rounded up to fp16; zero = 2^(b-1)
  code = clamp(round_half_even(w / scale) + zero, 0, 2^b - 1);  w_hat = scale * (code - zero)
  an all-zero group gets scale 1, zero 0 (asymmetric).
Group parameters are taken when a group starts, from the weights as updated so far (all earlier
columns' error feedback applied): the paper's "group-wise ... determined during quantization".

API:
  hessian(X)                       H = 2/N X^T X for X [N, cols]
  rtn(W, bits, group, sym)         -> codes, scales, zeros  (per-group, no error feedback)
  gptq(W, H, bits, group, sym, damp=0.01, act_order=False)
                                   -> codes [rows, cols] (original column order), scales, zeros
                                      [rows, n_groups], g_idx [cols] (group of each original column)
  dequant(codes, scales, zeros, g_idx)
"""
from __future__ import annotations

import numpy as np


def fp16_round_up(s: np.ndarray) -> np.ndarray:
    """Smallest fp16 value >= s (s > 0), as float64; clamped to [2^-24, 65504]."""
    s = np.asarray(s, dtype=np.float64)
    h = s.astype(np.float16)
    lo = h.astype(np.float64) < s
    h = np.where(lo, np.nextafter(h, np.float16(np.inf)), h)
    out = h.astype(np.float64)
    out = np.where(~(out > 0), 2.0 ** -24, out)
    return np.minimum(out, 65504.0)


def group_params(w: np.ndarray, bits: int, sym: bool) -> tuple[np.ndarray, np.ndarray]:
    """w [rows, n] -> (scale [rows], zero [rows]) for each row's group of n values."""
    w = w.astype(np.float32).astype(np.float64)  # frugal computes params from float32 values
    maxq = 2 ** bits - 1
    if sym:
        amax = np.max(np.abs(w), axis=1)
        qmax = 2 ** (bits - 1) - 1
        scale = np.where(amax > 0, fp16_round_up(np.where(amax > 0, amax / qmax, 1.0)), 1.0)
        zero = np.full_like(scale, 2 ** (bits - 1))
        return scale, zero
    mn = np.minimum(w.min(axis=1), 0.0)
    mx = np.maximum(w.max(axis=1), 0.0)
    flat = mx == mn
    scale = np.where(flat, 1.0, fp16_round_up(np.where(flat, 1.0, (mx - mn) / maxq)))
    zero = np.where(flat, 0.0, np.clip(np.round(-mn / scale), 0, maxq))
    return scale, zero


def quantize(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """Codes of the column w [rows] (float32 division, as frugal's quantize_code)."""
    q = np.round((w.astype(np.float32) / scale.astype(np.float32)).astype(np.float32)) + zero
    return np.clip(q, 0, 2 ** bits - 1).astype(np.int64)


def dequant_col(q: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    return (scale.astype(np.float32) * (q.astype(np.float32) - zero.astype(np.float32))).astype(np.float64)


def hessian(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 2.0 / x.shape[0] * (x.T @ x)


def rtn(w: np.ndarray, bits: int, group: int, sym: bool = False):
    rows, cols = w.shape
    ng = cols // group
    codes = np.zeros((rows, cols), np.int64)
    scales = np.zeros((rows, ng))
    zeros = np.zeros((rows, ng))
    for g in range(ng):
        sl = slice(g * group, (g + 1) * group)
        s, z = group_params(w[:, sl], bits, sym)
        scales[:, g], zeros[:, g] = s, z
        for c in range(g * group, (g + 1) * group):
            codes[:, c] = quantize(w[:, c], s, z, bits)
    return codes, scales, zeros, np.arange(cols) // group


def dequant(codes, scales, zeros, g_idx) -> np.ndarray:
    rows, cols = codes.shape
    out = np.zeros((rows, cols))
    for c in range(cols):
        g = g_idx[c]
        out[:, c] = dequant_col(codes[:, c], scales[:, g], zeros[:, g])
    return out


def gptq(w: np.ndarray, h: np.ndarray, bits: int, group: int, sym: bool = False, damp: float = 0.01,
         act_order: bool = False):
    W = np.array(w, dtype=np.float64)
    H = np.array(h, dtype=np.float64)
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = np.arange(cols)
    if act_order:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[np.ix_(perm, perm)]
    H = H + damp * np.mean(np.diag(H)) * np.eye(cols)
    # Paper: the rows of the upper Cholesky factor of H^-1 give, for each step, the inverse Hessian
    # of the remaining columns (its row i, scaled, is H_F^-1[:, i] / sqrt([H_F^-1]_ii)).
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky(Hinv).T  # upper: Hinv = U^T U
    ng = cols // group
    codes = np.zeros((rows, cols), np.int64)
    scales = np.zeros((rows, ng))
    zeros = np.zeros((rows, ng))
    g_of_pos = np.zeros(cols, np.int64)
    s = z = None
    for k in range(cols):
        if k % group == 0:
            s, z = group_params(W[:, k:k + group], bits, sym)
            scales[:, k // group], zeros[:, k // group] = s, z
        g_of_pos[k] = k // group
        q = quantize(W[:, k], s, z, bits)
        codes[:, perm[k]] = q
        err = (W[:, k] - dequant_col(q, s, z)) / U[k, k]
        W[:, k + 1:] -= np.outer(err, U[k, k + 1:])
    g_idx = np.zeros(cols, np.int64)
    g_idx[perm] = g_of_pos
    return codes, scales, zeros, g_idx


def output_error(w: np.ndarray, wq: np.ndarray, x: np.ndarray) -> float:
    """||(W - Wq) X^T||_F^2 / ||W X^T||_F^2 for X [N, cols]."""
    d = x @ (w - wq).T
    y = x @ w.T
    return float(np.sum(d * d) / np.sum(y * y))


if __name__ == "__main__":
    # Self-check on a small correlated problem: GPTQ must beat RTN on the calibration error, and the
    # error it minimizes is exactly what the per-column update tracks.
    rng = np.random.default_rng(0)
    rows, cols, n = 37, 96, 400
    a = rng.standard_normal((cols, cols // 4))
    x = rng.standard_normal((n, cols // 4)) @ a.T + 0.05 * rng.standard_normal((n, cols))
    w = rng.standard_normal((rows, cols))
    H = hessian(x)
    for bits in (3, 4):
        r = dequant(*rtn(w, bits, 32))
        g = dequant(*gptq(w, H, bits, 32))
        ga = dequant(*gptq(w, H, bits, 32, act_order=True))
        print(f"{bits}-bit g32: rel. output error RTN {output_error(w, r, x):.3e}  GPTQ {output_error(w, g, x):.3e}"
              f"  GPTQ act-order {output_error(w, ga, x):.3e}")
