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
  // Optional: n_seqs * n_kv_heads int32 counters, zero before the first call (each call leaves
  // them zero). With them the last split block of each (sequence, KV head) to finish merges the
  // partials itself (an atomic ticket), so there is no second kernel; null: a merge kernel.
  int32_t* split_counters = nullptr;
  // Which kernel: kDecodeAuto (the thread's default, see set_decode_attention_kernel),
  // kDecodeSplit (v4: CUDA cores) or kDecodeMma (tensor cores, attention_decode_mma.cu: q and
  // the probabilities as three bf16 terms each, so the float kernel's accuracy; ignores
  // split_counters and always merges with the merge kernel), kDecodeCluster (the mma
  // kernel's tile loop in one kernel with its merge, a thread-block cluster per (sequence, KV
  // head), attention_decode_cluster.cu: for small batches; needs no workspace and ignores
  // split_size and split_counters; it reads block_tables before the PDL wait, so they must
  // not be written by the previous kernel in the stream).
  int kernel = 0;
  // kDecodeCluster (or kDecodeAuto, which it then forces): blocks per cluster, 1..16; 0 =
  // choose (plan_paged_decode). For tests and A/B benchmarks.
  int cluster_size = 0;
  // kDecodeMma, for A/B benchmarks (both on by default): a warp with
  // two 16-position tiles takes them in one 32-position softmax step (one serial chain, not
  // two), and the merge kernel lets the next kernel launch early (griddepcontrol) when its
  // grid (n_heads x n_seqs blocks) fits on the multiprocessors at once (batch 1..4 of 8B).
  bool mma_tile_pairs = true;
  bool merge_early_launch = true;
  // kDecodeMma, A/B only: the split kernel exactly as of v10c (per-row checked tile loads, q
  // split before the first loads, per-element warp merge, one tile per step; NOTES attn v11).
  bool mma_v10 = false;
};

constexpr int kDecodeAuto = 0, kDecodeSplit = 1, kDecodeMma = 2, kDecodeCluster = 3;
// Per host thread: the kernel kDecodeAuto means, for A/B benchmarks. kDecodeAuto (the
// default): the measured rule of plan_paged_decode (kDecodeCluster at head_dim 128, query
// groups <= 4, when its clusters, all resident at once, fill the device: e.g. 8 or 16
// sequences of Llama-3.1-8B heads on an H200; kDecodeMma otherwise).
void set_decode_attention_kernel(int kernel);
int decode_attention_kernel();

// The split ("flash-decoding"): grid = (n_splits, n_kv_heads, n_seqs); each block reads the K/V
// rows of one KV head over split_size positions once and scores every query head of the
// group against them (online softmax, base-2 exponentials), writing a partial
// (max, sum, acc[head_dim]) per query head; a merge kernel combines the partials with
// log-sum-exp weights.
//
// The mma kernel (kDecodeMma): the same grid and partials; each warp streams its own 16-position
// K/V tiles of the split through the block table with cp.async into a 3-stage shared-memory
// pipeline and computes S = q K^T and O += P V with mma.sync m16n8k16 (rows 0..7: the query
// group's bf16 parts, the other rows (or a second fragment for groups > 4) the bf16
// remainders: three terms in all), online softmax in registers; the block's warps merge in
// shared memory. At least 128 positions per split (4 warps x 2 tiles).
//
// The cluster kernel (kDecodeCluster): grid (cluster_size, n_kv_heads, n_seqs), one cluster of
// cluster_size blocks per (sequence, KV head); the sequence's 16-position tiles are dealt to
// the cluster's warps round-robin, each warp runs the mma kernel's tile loop, the blocks merge
// their partials through distributed shared memory and write the output: one launch, no
// workspace.
struct PagedDecodePlan {
  int split_size = 0;
  int n_splits = 0;
  size_t workspace_bytes = 0;
  int kernel = 0;        // kDecodeSplit, kDecodeMma or kDecodeCluster: the kernel that will run
  int cluster_size = 0;  // kDecodeCluster: blocks per (sequence, KV head), 1..16
};
Result<PagedDecodePlan> plan_paged_decode(const PagedDecodeParams& p);

Status paged_attention_decode(const PagedDecodeParams& p, cudaStream_t stream = nullptr);

// Naive reference: one block per (query head, sequence), one thread per dimension, a float64
// online softmax over positions in order. Ignores split_size and workspace.
Status paged_attention_decode_reference(const PagedDecodeParams& p,
                                        cudaStream_t stream = nullptr);

// Causal prefill attention of one sequence over its paged BF16 cache, FlashAttention-2 style on
// tensor cores (attention_prefill.cu): grid (n_heads, query tiles of 64 or 128 rows); each warp
// owns 16 or 32 query rows as mma.sync m16n8k16 fragments; K/V tiles of 64 positions
// are gathered through the block table with cp.async into a 2-stage shared-memory pipeline;
// S = Q K^T, the online softmax (base 2) and O += P V stay in registers (float accumulation).
// At head_dim 128 on Hopper the default is the FlashAttention-3-structured kernel
// (attention_prefill_fa3.cu: the same math with wgmma, 2 consumer warpgroups x 64 query rows,
// K/V tiles of 128 by TMA from a producer warpgroup), or the warpgroup-MMA kernel
// (attention_prefill_wgmma.cu, K/V by cp.async) where the block size allows no tensor map;
// see `kernel`.
// Q and P are rounded to bf16 (the error vs float64: rel L2 ~1e-3). Token t (position
// pos0 + t) attends to positions [0, pos0 + t]; the K/V of all of them must already be in the
// cache. q, out and the caches must be 16-byte aligned.
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
  int config = 0;                       // FA2 query tile: 1 = 64 rows (4 warps x 16), 2 = 128
                                        // rows (8 warps x 16), 3 = 128 rows (4 warps x 32); 0:
                                        // auto (a nonzero config makes kPrefillAuto pick FA2)
  // Which kernel: kPrefillAuto, kPrefillFa2 (the mma.sync kernel above, `config` applies),
  // kPrefillWgmma / kPrefillWgmmaDeep / kPrefillWgmmaOverlap (Hopper warpgroup MMA, head_dim
  // 128 only, attention_prefill_wgmma.cu: K/V one tile ahead / two tiles ahead / one ahead
  // with FlashAttention-3's overlap of the softmax with the previous tile's P V product), and
  // the FA3-structured kernels below (kPrefillWgmmaTma ... kPrefillWgmmaFa3Deep).
  int kernel = 0;
};
constexpr int kPrefillAuto = 0, kPrefillFa2 = 1, kPrefillWgmma = 2, kPrefillWgmmaOverlap = 3,
              kPrefillWgmmaDeep = 4;
// FlashAttention-3's structure (attention_prefill_fa3.cu, head_dim 128, Hopper): K/V by TMA
// over the paged cache, a producer warpgroup feeding 2 consumer warpgroups through mbarriers;
// kPrefillWgmmaTma: no overlap; kPrefillWgmmaTmaOverlap: + softmax / P V overlap;
// kPrefillWgmmaFa3: + the consumers' GEMMs ping-ponged (kPrefillWgmmaFa3Deep: with a 3-stage
// K/V ring instead of 2). A block_size that is not a power of two >= 8 runs kPrefillWgmma.
constexpr int kPrefillWgmmaTma = 5, kPrefillWgmmaTmaOverlap = 6, kPrefillWgmmaFa3 = 7,
              kPrefillWgmmaFa3Deep = 8;
// kPrefillWgmmaFa3Grouped (kPrefillWgmmaFa3GroupedDeep: 3-stage ring): kPrefillWgmmaFa3 with
// fewer, larger TMA copies: one box per KV block for both 64-column halves (K/V tiles in
// shared memory as groups of 8 positions), one box per 128-position tile where the tile's
// blocks are consecutive in the table; K and V issued by separate producer warps.
constexpr int kPrefillWgmmaFa3Grouped = 9, kPrefillWgmmaFa3GroupedDeep = 10;
// Per host thread: what kPrefillAuto means (kPrefillAuto, the default: the measured rule in
// attention_prefill.cu), e.g. for A/B benchmarks of the whole prefill. A wgmma kernel set here
// applies at head_dim 128 only (the FA2 kernel otherwise).
void set_prefill_attention_kernel(int kernel);
int prefill_attention_kernel();
Status paged_attention_prefill(const PagedPrefillParams& p, cudaStream_t stream = nullptr);

}  // namespace frugal::cuda
