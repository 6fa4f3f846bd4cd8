// Paged decode attention on the GPU over a BF16 KV cache, for a batch of sequences.
//
// Cache layout of one layer (K and V alike; the same as cpu::PagedKvView with KvDType::kBF16):
//   row of (block b, slot s, KV head h) at cache + ((b * block_size + s) * n_kv_heads + h) * head_dim
// Position p of sequence i lives in block block_tables[i * max_blocks_per_seq + p / block_size],
// slot p % block_size. Query head h reads KV head h / (n_heads / n_kv_heads) (GQA/MQA).
// scores = scale * q.k (scale 0 means 1/sqrt(head_dim)); softmax over [0, seq_lens[i]).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "base/status.h"

namespace frugal::cuda {

struct PagedDecodeParams {
  const float* q = nullptr;            // [n_seqs, n_heads, head_dim]
  float* out = nullptr;                // [n_seqs, n_heads, head_dim]
  const uint16_t* k_cache = nullptr;   // bf16 bits, layout above, 16-byte aligned
  const uint16_t* v_cache = nullptr;
  const int32_t* block_tables = nullptr;  // device [n_seqs, max_blocks_per_seq]
  const int32_t* seq_lens = nullptr;      // device [n_seqs], each in 1..max_seq_len
  int max_blocks_per_seq = 0;
  int64_t n_blocks = 0;                // blocks in the pool: a table entry outside
                                       // [0, n_blocks) makes that sequence's output NaN
  int n_seqs = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;                    // 64 or 128 (the reference takes any 1..1024)
  int block_size = 16;
  int max_seq_len = 0;                 // host-side bound on seq_lens (sizes the split)
  float scale = 0.0f;
  int split_size = 0;                  // positions per split (multiple of 32); 0 = choose
  void* workspace = nullptr;           // plan().workspace_bytes, 16-byte aligned
  size_t workspace_bytes = 0;
  // true: every "sequence" reads row 0 of block_tables. Causal prefill of one sequence runs as
  // n_seqs = its tokens, each with seq_lens[t] = position + 1, over the same table.
  bool shared_block_table = false;
};

// The split ("flash-decoding"): grid = (n_splits, n_kv_heads, n_seqs); each block reads the K/V
// rows of one KV head over split_size positions once and scores every query head of the
// group against them (online softmax, base-2 exponentials), writing a partial
// (max, sum, acc[head_dim]) per query head; a merge kernel combines the partials with
// log-sum-exp weights.
struct PagedDecodePlan {
  int split_size = 0;
  int n_splits = 0;
  size_t workspace_bytes = 0;
};
Result<PagedDecodePlan> plan_paged_decode(const PagedDecodeParams& p);

Status paged_attention_decode(const PagedDecodeParams& p, cudaStream_t stream = nullptr);

// Naive reference: one block per (query head, sequence), one thread per dimension, a float64
// online softmax over positions in order. Ignores split_size and workspace.
Status paged_attention_decode_reference(const PagedDecodeParams& p,
                                        cudaStream_t stream = nullptr);

// Causal prefill attention of one sequence over its paged BF16 cache, FlashAttention-2 style on
// tensor cores: grid (ceil(n_tokens / 64), n_heads), 4 warps; each warp owns 16 query rows,
// K/V tiles of 64 positions are staged in shared memory, S = Q K^T and O += P V run as bf16
// WMMA 16x16x16 products with float accumulation, online softmax (base 2) in float. Q and P are
// rounded to bf16 (the error vs float64: rel L2 ~1e-3). Token t (position pos0 + t) attends
// to positions [0, pos0 + t]; the K/V of all of them must already be in the cache.
struct PagedPrefillParams {
  const float* q = nullptr;             // [n_tokens, n_heads, head_dim]
  float* out = nullptr;                 // [n_tokens, n_heads, head_dim]
  const uint16_t* k_cache = nullptr;    // layout of PagedDecodeParams, 16-byte aligned
  const uint16_t* v_cache = nullptr;
  const int32_t* block_table = nullptr; // device, this sequence's row: >= ceil((pos0 +
                                        // n_tokens) / block_size) entries
  int64_t n_blocks = 0;                 // an entry outside [0, n_blocks): NaN output
  int n_tokens = 0;
  int pos0 = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;                     // 64 or 128
  int block_size = 16;
  float scale = 0.0f;                   // 0: 1/sqrt(head_dim)
};
Status paged_attention_prefill(const PagedPrefillParams& p, cudaStream_t stream = nullptr);

}  // namespace frugal::cuda
