// Attention over a paged, possibly quantized KV cache. The kernels walk the block table and
// dequantize K/V rows inside the kernel (into tile-sized buffers only); the S x S score matrix
// is never materialized.
//
// Cache layout of one layer (K and V alike), R = row bytes of the dtype for K or V (kv_quant.h):
//   row of (block b, slot s, KV head h) at base + ((b * block_size + s) * n_kv_heads + h) * R
// INT4_KIVI keys also read k_params + (b * n_kv_heads + h) * head_dim * 4, and positions
// >= tail_start (the partial last block) read f16 rows k_tail + ((p - tail_start) * n_kv_heads
// + h) * head_dim instead of the block.
// Position p of the sequence is block block_table[p / block_size], slot p % block_size.
// Query head h reads KV head h / (n_heads / n_kv_heads) (GQA/MQA: shared, never copied).
// scores = q.k / sqrt(head_dim); softmax over the causal window.
#pragma once

#include <cstdint>
#include <span>

#include "backend/cpu/kv_quant.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace frugal::cpu {

struct PagedKvView {
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  KvDType dtype = KvDType::kF32;
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
  const float* k_scale = nullptr;  // FP8: [n_kv_heads] per-head scales; null means 1
  const float* v_scale = nullptr;
  std::span<const int32_t> block_table;
  int64_t n_blocks = 0;            // blocks in the pool (bounds check of table entries)
  // INT4_KIVI only: per-(block, head) channel parameters, and the f16 tail of a partial block.
  const uint8_t* k_params = nullptr;
  const uint16_t* k_tail = nullptr;
  int64_t tail_start = INT64_MAX;
};

// Dequantizes K (value = false) or V rows of positions [t0, t0 + n) of KV head h into
// dst ([n, head_dim] floats). The view must be valid for those positions.
void kv_load_rows(const PagedKvView& kv, bool value, int h, int64_t t0, int n, float* dst);

// One query token (decode): attends to positions [0, n_kv).
//   q, out: [n_heads, head_dim]
// Flash-decoding split: work items are (KV head, chunk of positions); each computes a partial
// (max, sum, acc) for the query heads of its group with online softmax; partials are merged.
// Errors (InvalidArgument): inconsistent shapes, n_kv < 1, a table too short or out of range.
Status attention_paged_decode(const PagedKvView& kv, int n_heads, int64_t n_kv, const float* q,
                              float* out, ThreadPool& pool);

// Prefill of n_tokens queries at positions start_pos .. start_pos + n_tokens - 1; token i
// attends to [0, start_pos + i] (its own K/V must already be in the cache).
//   q, out: [n_tokens, n_heads * head_dim]
// FlashAttention-style: work items are (KV head, tile of q_tile tokens); the rows of an item are
// (token, query head of the group); KV is visited in tiles of kv_tile positions, dequantized once
// per tile for the whole group, with a running max and sum per row (rescaling the accumulator
// when the max grows).
struct FlashTiles {
  int q_tile = 16;
  int kv_tile = 64;
};
Status attention_flash_prefill(const PagedKvView& kv, int n_heads, int64_t n_tokens,
                               int64_t start_pos, const float* q, float* out, ThreadPool& pool,
                               FlashTiles tiles = {});

}  // namespace frugal::cpu
