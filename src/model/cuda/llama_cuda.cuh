// The Llama-family forward pass on one GPU (issue 7): BF16 weights uploaded once into one
// device arena sized up front (weights, then workspace, then the paged BF16 KV cache), float
// activations, a decode step that stays on the device from the token ids to the argmax, and a
// chunked prefill. Model-agnostic about where weights come from: llama_cuda_load.h fills it from
// a loaded Model (any CPU dtype) or with dummy weights for a preset architecture.
//
// One step, per layer (the PyTorch line each mirrors is in llama_cuda.cu):
//   fused residual + RMSNorm -> QKV projection (one fused [q|k|v] matrix) -> RoPE + K/V write
//   into the paged cache -> paged attention (decode: split-K, GQA; prefill: tensor-core
//   FlashAttention-2-style causal kernel over the same cache)
//   -> o-proj -> fused residual + RMSNorm -> gate|up projection (one fused matrix) -> SwiGLU ->
//   down-proj; then final norm, LM head, argmax on the device.
// Projections: our GEMV (float activations) below cublas_min_batch rows, cuBLAS BF16 GEMM
// (activations rounded to bf16) from there on (measured: bench/RESULTS.md "CUDA").
// When every projection is our GEMV (fuse_gemv), a layer is 6 kernels (5 with
// fuse_attention_merge): RMSNorm + QKV + RoPE + K/V write, split-K attention, its merge,
// o-proj + residual add, RMSNorm + gate|up + SwiGLU, down-proj + residual add
// (gemv_bf16_fused in backend/cuda/ops.cuh).
//
// Sequences live in slots 0..max_batch-1; slot s owns the blocks of row s of the block table
// (its own range of the pool, optionally in shuffled order, as a used pool would hand them out).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/sampling.cuh"
#include "base/status.h"

namespace frugal::cuda {

struct LlamaDims {
  int64_t vocab = 0;
  int64_t dim = 0;     // hidden size
  int64_t hidden = 0;  // FFN inner size
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;    // 64 or 128 (the paged attention kernel's sizes)
  float rope_base = 10000.0f;
  float norm_eps = 1e-5f;
  bool rope_half = false;        // Hugging Face rotate-half pairs; false: GGUF adjacent pairs
  bool tied_embeddings = false;  // LM head reads the embedding matrix

  int64_t q_dim() const { return (int64_t)n_heads * head_dim; }
  int64_t kv_dim() const { return (int64_t)n_kv_heads * head_dim; }
  int64_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  // Weight elements read by one decode step: every layer matrix plus the LM head (the
  // embedding contributes one row per token and is not counted).
  int64_t matmul_params() const;
  // K + V bytes of one position over all layers (bf16).
  int64_t kv_bytes_per_token() const { return 2LL * n_layers * kv_dim() * 2; }
  Status validate() const;
};


struct LlamaCudaOptions {
  int max_batch = 1;             // decode slots (sequences per step)
  int max_prefill_tokens = 512;  // tokens per prefill chunk (activation rows)
  int64_t max_seq_len = 2048;    // positions per sequence
  int block_size = 16;           // positions per KV block (a power of two)
  bool shuffle_blocks = false;   // hand each slot its blocks in a shuffled order
  bool use_graphs = true;        // decode steps replay a CUDA graph per batch size
  int cublas_min_batch = 3;      // rows from which projections use cuBLAS instead of our GEMV
  // Prefill chunks of at least this many tokens use the tensor-core prefill attention
  // (paged_attention_prefill: bf16 Q and P); shorter ones the split-K kernel with float Q.
  int flash_prefill_min_tokens = 16;
  // Launch the step's own kernels with programmatic dependent launch (backend/cuda/launch.cuh):
  // each may start while the previous one drains (GEMVs prefetch weights meanwhile).
  bool programmatic_launch = true;
  // When every projection of a forward pass is our GEMV (rows < cublas_min_batch): RMSNorm,
  // RoPE + K/V write, SwiGLU and the residual adds run inside the GEMVs (gemv_bf16_fused),
  // 4 kernels fewer per layer. false: the separate kernels (for A/B measurements).
  bool fuse_gemv = true;
  // Decode attention merges its split-K partials in the last split block (atomic tickets)
  // instead of a second kernel. Off by default: measured 0.95-0.99x of the two-kernel version
  // at batch 1 and 1.00-1.03x at batch 8-64 (attention alone, H200; dev/cuda/NOTES.md).
  bool fuse_attention_merge = false;
  // The RMSNorm weights are folded into the matrices that read the norm's output (W' = W diag(g):
  // QKV by the attention norm, gate|up by the FFN norm, the LM head by the output norm unless it
  // is the tied embedding) by fold_norm_weights(), which upload_model() and randomize_weights()
  // call; the folded norms become ones, so every path computes the same function and the fused
  // GEMVs skip the norm-weight loads (GemvInput::kRmsNormUnit). Costs one more bf16 rounding of
  // those matrices (tests/cuda/cuda_llama_test.cpp measures it against the CPU engine).
  bool fold_norm_weights = true;
  // > 0: the arena is sized from the device's memory x this fraction (vLLM's
  // --gpu-memory-utilization) through the planner (planner/device_split.h): weights, then the
  // workspace, then the KV pool gets whole blocks of the rest. The pool must hold max_batch
  // sequences of max_seq_len (else ResourceExhausted naming the shortfall in bytes); the slots'
  // block tables take the first of its blocks and the rest is held for a block manager.
  // 0: the KV pool is exactly max_batch x max_seq_len positions.
  double gpu_memory_utilization = 0.0;
  // Prefill keeps every row's logits (perplexity: prefill_logits), not only the last one's:
  // the workspace holds max(max_batch, max_prefill_tokens) x vocab floats of logits. Not for
  // generation: sample_logits after a prefill reads row 0.
  bool prefill_all_logits = false;
};

// Device bytes the runner takes, by purpose (one arena of `total`).
struct LlamaCudaMemory {
  size_t weights = 0, workspace = 0, kv = 0, total = 0;
  int64_t kv_blocks = 0;  // KV pool blocks (of block_size positions)
  std::string split;      // the planner's split when sized from a utilization, else empty
};
Result<LlamaCudaMemory> plan_llama_cuda_memory(const LlamaDims& d, const LlamaCudaOptions& o);

enum class LlamaTensor {
  kEmbedding,   // bf16 [vocab, dim]
  kAttnNorm,    // f32 [dim], per layer
  kQkv,         // bf16 [q_dim + 2 kv_dim, dim]: rows q | k | v, per layer
  kO,           // bf16 [dim, q_dim], per layer
  kFfnNorm,     // f32 [dim], per layer
  kGateUp,      // bf16 [2 hidden, dim]: rows gate | up, per layer
  kDown,        // bf16 [dim, hidden], per layer
  kOutputNorm,  // f32 [dim]
  kLmHead,      // bf16 [vocab, dim] (the embedding when tied)
};

class LlamaCuda {
 public:
  // Takes the whole arena (cudaMalloc once). Not enough device memory -> ResourceExhausted
  // naming the bytes needed (by purpose) and the bytes free.
  static Result<std::unique_ptr<LlamaCuda>> create(const LlamaDims& d, const LlamaCudaOptions& o);
  ~LlamaCuda();
  LlamaCuda(const LlamaCuda&) = delete;
  LlamaCuda& operator=(const LlamaCuda&) = delete;

  // Synchronous uploads. Matrices: `n_rows` bf16 rows (each `cols` wide) at `first_row` of the
  // tensor (fused tensors: q rows first, then k, then v; gate rows, then up). Norms: f32 [dim].
  // `layer` is ignored for the global tensors.
  Status upload_rows(LlamaTensor t, int layer, int64_t first_row, const uint16_t* bf16,
                     int64_t n_rows);
  Status upload_norm(LlamaTensor t, int layer, const float* w);
  // W' = W diag(g) for the norms not folded yet (see LlamaCudaOptions::fold_norm_weights), then
  // those norms = 1. Call once every weight is uploaded; uploads of a folded matrix or norm
  // fail afterwards (InvalidArgument). Synchronous.
  Status fold_norm_weights();
  // Dummy weights: every matrix uniform in [-1/sqrt(cols), 1/sqrt(cols)) from a counter hash,
  // the embedding in [-1, 1), norms 1.
  Status randomize_weights(uint64_t seed);
  // Benchmarks: fills the whole KV cache with random bf16 values (a long context without a
  // prefill of it).
  Status randomize_kv(uint64_t seed);

  // Runs tokens[0, n) of slot's sequence at positions [pos, pos + n) (chunks of
  // max_prefill_tokens), writing their K/V. Returns the argmax of the last token's logits;
  // logits (host, [vocab]) receives them when non-null.
  Result<int32_t> prefill(int slot, const int32_t* tokens, int64_t n, int64_t pos,
                          float* logits = nullptr);
  // prefill(), and logits (host, [n, vocab]) row i receives the logits after token i. Needs
  // options().prefill_all_logits (else InvalidArgument).
  Status prefill_logits(int slot, const int32_t* tokens, int64_t n, int64_t pos, float* logits);
  // One decode step of slots [0, batch): token tokens[b] at position positions[b]. next[b]
  // gets the argmax; logits (host [batch, vocab]) when non-null.
  Status decode(const int32_t* tokens, const int32_t* positions, int batch, int32_t* next,
                float* logits = nullptr);
  // `steps` decode steps of slots [0, batch) with no host round trip: each step's argmax is the
  // next step's token and positions advance on the device (for benchmarks). Asynchronous.
  Status decode_loop(const int32_t* tokens, const int32_t* positions, int batch, int steps);
  // Draws one token from each of the logits rows [0, rows) that the last prefill (rows = 1)
  // or decode (rows = its batch) left on the device: temperature, top-k, top-p, min-p with
  // CPU Sampler semantics (backend/cuda/sampling.cuh), uniforms[r] in [0, 1) the random number
  // of row r. Only the ids come back (out[rows]); synchronous.
  Status sample_logits(const SampleParams& p, const double* uniforms, int rows,
                       int32_t* out);
  // The repetition penalty (CPU Sampler semantics, backend/cuda/sampling.cuh) on logits row
  // `row` that the last prefill (row 0) or decode left on the device, before sample_logits:
  // ids are the distinct recent tokens (at most max_seq_len). Synchronous.
  Status penalize_logits(int row, const int32_t* ids, int n_ids, float penalty);
  Status synchronize();

  // Benchmarks: decode steps as graph replays (on) or eager launches (off).
  void set_use_graphs(bool on) { o_.use_graphs = on; }
  // Benchmarks: PDL on or off (drops the captured graphs, which bake the launch attributes in).
  void set_programmatic_launch(bool on);
  // Benchmarks: the fusions above on or off (drops the captured graphs).
  void set_fusion(bool gemv, bool attention_merge);
  // Benchmarks: with folded norms, whether the fused GEMVs use the unit-weight input (on, the
  // default) or load the norms (which are ones then: the same function, the old cost). Also
  // re-captures graphs, e.g. after set_gemv_tuning (backend/cuda/ops.cuh).
  void set_unit_norms(bool on);

  const LlamaDims& dims() const { return d_; }
  const LlamaCudaOptions& options() const { return o_; }
  const LlamaCudaMemory& memory() const { return mem_; }
  cudaStream_t stream() const;

  struct Impl;

 private:
  explicit LlamaCuda(std::unique_ptr<Impl> impl, const LlamaDims& d, const LlamaCudaOptions& o,
                     const LlamaCudaMemory& m);
  // prefill and prefill_logits: last_logits gets the last row's logits, all_logits every row's.
  Result<int32_t> prefill_chunks(int slot, const int32_t* tokens, int64_t n, int64_t pos,
                                 float* last_logits, float* all_logits);
  std::unique_ptr<Impl> impl_;
  LlamaDims d_;
  LlamaCudaOptions o_;
  LlamaCudaMemory mem_;
};

}  // namespace frugal::cuda
