// CPU ops used by the forward pass. They know nothing about models: plain arrays in, arrays out.
// Every op has a float64 scalar reference in its unit test (tests/unit/ops_*_test.cpp).
// Row-major everywhere; "rows" of a weight are its output features.
#pragma once

#include <cstdint>
#include <span>

#include "base/thread_pool.h"
#include "tensor/tensor.h"

namespace frugal::cpu {

// Capability query: weight dtypes vec_dot/matvec/matmul accept: F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, I8_ROW, E4M3_ROW, E5M2_ROW, I4_G64(A), I4_G128(A) (not I8/I32). For a block dtype the row
// length must be a multiple of its block size (32, 64 or 128).
bool matmul_supports(DType t);

// Precision of the activation vector inside matvec.
//   kF32: x stays float32; weights are dequantized in registers (the exact-float path: the only
//         error is float32 accumulation, |y - ref| <~ 1e-6 * sum|w_i x_i|).
//   kQ8:  x is quantized once per matvec to int8 blocks of 32 (scale = max|x_block|/127, round
//         to nearest) and integer weight formats (Q8_0, Q4_0, Q4_1, I4_G*, I8_ROW) use integer
//         dot products, as llama.cpp does. Extra error: each x_i moves by at most d_k/2
//         (d_k = max|x| of its block / 127), so |Δy| <= sum_i |w_i| * d_k(i)/2. Measured on
//         random 4096-wide rows: relative RMS difference to kF32 of 5e-3 for Gaussian x, 8e-3
//         for heavy-tailed (Student-t, 3 dof) x. Float weight formats (F32/F16/BF16/FP8)
//         ignore it (float path).
enum class ActPrecision { kF32, kQ8 };

// dot(row of n weights stored in dtype t, x[0..n)) in float with float accumulation per block.
// Activations stay float32: quantized weights are dequantized in registers.
// Unsupported dtype: returns NaN.
float vec_dot(DType t, const void* row, const float* x, int64_t n);

// y[r] = dot(W[r, :], x) for r in [0, W.rows()). Parallel over output rows (chunks of >= 16).
// An unsupported dtype or a row length that is not a whole number of blocks fills y with NaN.
void matvec(const TensorView& W, const float* x, float* y, ThreadPool& pool,
            ActPrecision act = ActPrecision::kF32);

// Several matvecs reading the same x (q/k/v; gate/up in decode): *outs[i].y = *outs[i].W x.
// The same numbers as one matvec per W, but x is quantized once (kQ8) and all the matrices'
// rows go through one parallel_for (one hand-off to the pool instead of one per matrix). Every
// W must have x's length (taken as the first W's row length) as its row length; a W that does
// not, or that matvec rejects, gets NaN rows.
struct MatvecOut {
  const TensorView* W = nullptr;
  float* y = nullptr;
};
void matvec_multi(std::span<const MatvecOut> outs, const float* x, ThreadPool& pool,
                  ActPrecision act = ActPrecision::kF32);

// Y[i, r] = dot(W[r, :], X[i, :]) for i in [0, n_tokens): X is [n_tokens, W.cols()], Y is
// [n_tokens, W.rows()]. Parallel over output rows; each weight row is read (and dequantized
// into a per-thread float buffer) once per call and reused for all tokens. n_tokens == 1 is
// matvec (with the same act). Same NaN rule as matvec.
// act = kQ8 on an integer weight format (Q8_0, Q4_0, Q4_1, I4_G*, I8_ROW): every token's row
// is quantized once to int8 blocks of 32 exactly as matvec's kQ8 (same error bound per token),
// and the GEMM runs on integer dot products (backend/cpu/gemm_q8.h); other dtypes take the
// float path, and so do 8-bit weights (Q8_0, I8_ROW) on CPUs without AVX-512 VNNI, where the
// int8 GEMM measured no faster (kern::gemm_q8_wins). Bit-identical for any thread count.
void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool,
            ActPrecision act = ActPrecision::kF32);
// Several matmuls reading the same X (q/k/v, gate/up in prefill): *outs[i].y = X W_i^T, the
// same numbers as one matmul per W; when all of them take the int8 GEMM, X is quantized once.
// n_tokens == 1 is matvec_multi.
void matmul_multi(std::span<const MatvecOut> outs, const float* X, int64_t n_tokens,
                  ThreadPool& pool, ActPrecision act = ActPrecision::kF32);
// The feed-forward's gate and up projections and SwiGLU in one pass:
//   H[i, r] = silu(dot(Wg[r, :], X[i, :])) * dot(Wu[r, :], X[i, :])
// the same bits as matmul_multi({Wg, Wu}) then swiglu, without the two [n_tokens, rows]
// intermediates: per row panel, both products go to a per-thread tile and SwiGLU runs there,
// while it is in cache. Wg and Wu must have one shape (else H is NaN); n_tokens == 1 is
// matvec_multi then swiglu.
void matmul_swiglu(const TensorView& Wg, const TensorView& Wu, const float* X, int64_t n_tokens,
                   float* H, ThreadPool& pool, ActPrecision act = ActPrecision::kF32);

// W8A8 (SmoothQuant's int8 x int8 -> int32): Y[i, r] as matmul, for I8_ROW weights only, with each
// token's activation row X[i, :] quantized to int8 with ONE scale d_i = max|X[i, :]|/127
// (symmetric, dynamic, round to nearest even), an exact integer dot product over the whole row
// and one rescale: Y[i, r] = s_r * d_i * sum_k w[r, k] q[i, k]. Extra error vs float activations:
// each x moves by at most d_i/2, so |ΔY[i, r]| <= s_r * sum_k |w[r, k]| * d_i / 2. Any K (int32
// per 65536 columns, int64 across: backend/cpu/w8a8_kernels.h). Other dtypes: Y filled with NaN.
void matmul_i8_token(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool);

// y = x / sqrt(mean(x^2) + eps) * w   (n elements; y may alias x)
void rmsnorm(const float* x, const float* w, float eps, int64_t n, float* y);

// Rotary position embedding applied in place to n_heads vectors of head_dim at position `pos`.
// Pairs: kAdjacent rotates (x[2i], x[2i+1]) (GGUF/llama.cpp "normal" layout, llama2.c);
// kHalf rotates (x[i], x[i + head_dim/2]) (Hugging Face "rotate_half" layout).
// Angle for pair i: pos * base^(-2i/rot_dim) where rot_dim = head_dim, computed in float64 and
// rounded to float once (cos/sin too); the rotation itself is float. An odd head_dim leaves the
// last element unrotated.
enum class RopeStyle { kAdjacent, kHalf };
void rope(float* x, int n_heads, int head_dim, int64_t pos, float base, RopeStyle style);

// In-place numerically stable softmax over n elements.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]; out may alias gate or up.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

// Causal attention of one query token against keys/values [0, n_kv) of a contiguous cache.
//   q:   [n_heads, head_dim]
//   k,v: row t of head h at k + t*kv_stride + h*head_dim  (kv_stride >= n_kv_heads*head_dim)
//   out: [n_heads, head_dim]
// Query head h reads KV head h / (n_heads / n_kv_heads) (GQA/MQA: shared, never copied).
// scores = q·k / sqrt(head_dim); scratch needs n_kv floats per thread (allocated inside if null).
struct AttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int64_t n_kv = 0;       // number of cached positions to attend to (includes the current one)
  int64_t kv_stride = 0;  // floats between consecutive positions
};
void attention_decode(const AttentionParams& p, const float* q, const float* k, const float* v,
                      float* out, ThreadPool& pool);

// Causal attention for n_tokens query tokens at positions start_pos .. start_pos+n_tokens-1
// (prefill). q/out are [n_tokens, n_heads*head_dim]; token i attends to positions
// [0, start_pos + i]; p.n_kv is ignored. Parallel over (token, head).
void attention_prefill(const AttentionParams& p, int64_t n_tokens, int64_t start_pos,
                       const float* q, const float* k, const float* v, float* out,
                       ThreadPool& pool);

}  // namespace frugal::cpu
