// CUDA ops the whole-model runner needs beyond ops.cuh: embedding lookup, RoPE fused with the
// write of K/V into a paged BF16 cache, SwiGLU over fused gate|up rows, float -> bf16
// conversion, argmax, and deterministic random fills (dummy weights). Like ops.cuh they know
// nothing about models: device pointers in and out, validated arguments, launch errors as
// Status, no synchronization. Tests: tests/cuda/cuda_model_ops_test.cpp (CPU references).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "base/status.h"

namespace frugal::cuda {

// x[t, :] = float(table[tokens[t], :]) for t in [0, n); table bf16 [vocab, dim]. A token
// outside [0, vocab) gives a row of NaN (callers validate ids on the host first).
// When positions and seq_lens are non-null it also writes seq_lens[t] = positions[t] + 1 (the
// attention length of a token at that position), so one launch prepares a step's metadata.
struct EmbeddingParams {
  const uint16_t* table = nullptr;
  int64_t vocab = 0;
  int64_t dim = 0;
  const int32_t* tokens = nullptr;     // device [n]
  int n = 0;
  float* x = nullptr;                  // [n, dim]
  const int32_t* positions = nullptr;  // device [n] or null
  int32_t* seq_lens = nullptr;         // device [n] or null
};
Status embedding_bf16(const EmbeddingParams& p, cudaStream_t stream = nullptr);

// cos/sin table for RoPE: table[pos * (head_dim/2) + i] = (cos, sin) of pos * base^(-2i/head_dim),
// angle and both values computed in float64 and rounded to float once (cpu::rope's rule).
// table: float2 [n_pos, head_dim / 2].
Status rope_table(float2* table, int64_t n_pos, int head_dim, float base,
                  cudaStream_t stream = nullptr);

// For each token t (row t of qkv = [q (n_heads*hd) | k (n_kv*hd) | v (n_kv*hd)] floats):
//   q_out[t] = rope(q), and rope(k), v rounded to bf16 into the paged caches of one layer at
//   position positions[t] (layout of attention.cuh: block block_tables[row * max_blocks +
//   pos / block_size], slot pos % block_size), where row = table_row if >= 0, else t.
// A block id outside [0, n_blocks) or a position outside [0, rope_positions) skips the write
// (the attention kernels turn such a table into NaN).
struct RopeKvWriteParams {
  const float* qkv = nullptr;          // [n, qkv_stride]
  int64_t qkv_stride = 0;              // floats per token; >= (n_heads + 2 n_kv) * head_dim
  float* q_out = nullptr;              // [n, n_heads * head_dim]
  uint16_t* k_cache = nullptr;         // bf16, one layer
  uint16_t* v_cache = nullptr;
  const int32_t* positions = nullptr;  // device [n]
  const int32_t* block_tables = nullptr;  // device [rows, max_blocks_per_seq]
  int table_row = -1;                  // >= 0: every token uses this row (one sequence)
  int max_blocks_per_seq = 0;
  int64_t n_blocks = 0;
  int block_size = 16;
  const float2* rope = nullptr;        // rope_table of rope_positions rows
  int64_t rope_positions = 0;
  bool rope_half = false;              // rotate (i, i + hd/2) instead of (2i, 2i + 1)
  int n = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;                    // even
};
Status rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream = nullptr);

// out[r, i] = silu(gu[r, i]) * gu[r, hidden + i] for r < rows, i < hidden. gu: [rows, 2*hidden]
// floats (gate | up, one fused projection). Writes out_f32 [rows, hidden] and/or out_bf16.
Status swiglu_fused(const float* gu, int64_t rows, int64_t hidden, float* out_f32,
                    uint16_t* out_bf16, cudaStream_t stream = nullptr);

// dst[i] = bf16(src[i]) (round to nearest even) for i < n.
Status convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n,
                           cudaStream_t stream = nullptr);

// For each row r < rows of x [rows, n]: out[r] = the smallest index of the row's maximum
// (NaN never wins; a row of NaN gives 0). When advance_positions is non-null, also
// advance_positions[r] += 1 (a device-resident decode loop moves to the next position).
Status argmax_rows(const float* x, int64_t rows, int64_t n, int32_t* out,
                   int32_t* advance_positions = nullptr, cudaStream_t stream = nullptr);

// Deterministic pseudo-random fills from a counter hash (the same (seed, i) gives the same value
// on every device): bf16 uniform in [-scale, scale); float constant.
Status fill_random_bf16(uint16_t* p, size_t n, uint64_t seed, float scale,
                        cudaStream_t stream = nullptr);
Status fill_f32(float* p, size_t n, float value, cudaStream_t stream = nullptr);

}  // namespace frugal::cuda
