// Private to LlamaCuda (llama_cuda.cu, llama_cuda_layout.cu): every device pointer of the runner
// and how the one arena is carved into weights, workspace and the paged KV cache. The counting
// pass (plan_llama_cuda_memory) and the allocation (LlamaCuda::create) run the same carve(), so
// the plan and the arena cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/memory.cuh"
#include "base/status.h"
#include "model/cuda/llama_cuda.cuh"

namespace frugal::cuda {

struct LayerPtrs {
  float* attn_norm = nullptr;
  uint16_t* qkv = nullptr;
  uint16_t* o = nullptr;
  float* ffn_norm = nullptr;
  uint16_t* gate_up = nullptr;
  uint16_t* down = nullptr;
  uint16_t* k = nullptr;  // this layer's K cache [n_blocks, block_size, n_kv, head_dim]
  uint16_t* v = nullptr;
};

// Every device pointer of the runner. carve() fills it from a "take(bytes) -> pointer"
// function: once counting (plan_llama_cuda_memory), once from the arena (create), so the plan
// and the allocation cannot disagree.
struct Layout {
  uint16_t* embd = nullptr;
  std::vector<LayerPtrs> layers;
  float* out_norm = nullptr;
  uint16_t* lm_head = nullptr;

  float2* rope = nullptr;
  float *x = nullptr, *dbuf = nullptr, *xb = nullptr, *qkv = nullptr, *q = nullptr,
        *att = nullptr, *gu = nullptr, *h = nullptr, *logits = nullptr;
  uint16_t* xb16 = nullptr;
  int32_t *tokens = nullptr, *pos = nullptr, *lens = nullptr, *tables = nullptr, *next = nullptr;
  double* uniforms = nullptr;   // sample_logits: one per row
  int32_t* sampled = nullptr;   // sample_logits: the drawn ids
  int32_t* penalty_ids = nullptr;  // penalize_logits: distinct recent ids (max_seq_len)
  void* attn_ws = nullptr;
  size_t attn_ws_bytes = 0;
  int32_t* attn_counters = nullptr;  // [rows * n_kv_heads], zero between launches
  void* cublas_ws = nullptr;
  uint16_t* kv_base = nullptr;

  int rows = 0;  // activation rows: max(max_batch, max_prefill_tokens)
  int max_blocks_per_seq = 0;
  int64_t n_blocks = 0;       // KV pool blocks
  int64_t table_entries = 0;  // max_batch * max_blocks_per_seq (the slots' block tables)
  size_t kv_elems_per_layer = 0;
};

inline constexpr size_t kCublasWorkspace = size_t{32} << 20;

// The allocating pass of carve(): L's pointers from `arena` (256-byte aligned) for a KV pool of
// kv_blocks blocks (plan_llama_cuda_memory's kv_blocks); mem gets the bytes by purpose.
Status carve_arena(const LlamaDims& d, const LlamaCudaOptions& o, int sms, int64_t kv_blocks,
                   DeviceArena& arena, Layout& L, LlamaCudaMemory& mem);

// "N bytes (x.xxxx GiB)", for the out-of-memory messages.
std::string bytes_str(size_t b);

}  // namespace frugal::cuda
