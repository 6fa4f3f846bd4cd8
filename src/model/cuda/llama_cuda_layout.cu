// LlamaCuda's arena layout and memory sizing: LlamaDims' derived sizes, carve() (the one
// function that lays out weights, workspace and the paged KV cache, run once counting and once
// allocating), the option checks and plan_llama_cuda_memory (optionally through the planner's
// split of the device's memory).
#include "model/cuda/llama_cuda_layout.cuh"

#include <algorithm>
#include <string>
#include <type_traits>

#include "backend/cuda/check.cuh"
#include "backend/cuda/memory.cuh"
#include "planner/device_split.h"

namespace frugal::cuda {

int64_t LlamaDims::matmul_params() const {
  const int64_t per_layer = qkv_dim() * dim + dim * q_dim() + 2 * hidden * dim + dim * hidden;
  return per_layer * n_layers + vocab * dim;
}

Status LlamaDims::validate() const {
  if (vocab < 1 || dim < 1 || hidden < 1 || n_layers < 1 || n_heads < 1 || n_kv_heads < 1)
    return InvalidArgument("LlamaDims: sizes must be >= 1");
  if (head_dim != 64 && head_dim != 128)
    return Unsupported("LlamaCuda: head_dim " + std::to_string(head_dim) +
                       " (the paged attention kernel takes 64 or 128)");
  if (n_heads % n_kv_heads != 0 || n_heads / n_kv_heads > 8)
    return Unsupported("LlamaCuda: " + std::to_string(n_heads) + " query heads over " +
                       std::to_string(n_kv_heads) + " KV heads (groups of 1..8 supported)");
  if (dim > 0x7fffffff || hidden > 0x7fffffff || vocab > 0x7fffffff)
    return InvalidArgument("LlamaDims: a dimension exceeds 2^31");
  return Status::Ok();
}

namespace {

// Blocks the slots' tables need: max_batch sequences of max_seq_len.
int64_t table_blocks(const LlamaCudaOptions& o) {
  return (int64_t)o.max_batch * ((o.max_seq_len + o.block_size - 1) / o.block_size);
}

// kv_blocks: the KV pool's size in blocks (>= table_blocks(o)).
template <class Take>
Status carve(const LlamaDims& d, const LlamaCudaOptions& o, int sms, int64_t kv_blocks, Layout& L,
             LlamaCudaMemory& mem, Take take) {
  size_t mark = 0, used = 0;
  auto grab = [&](auto*& ptr, size_t bytes) -> Status {
    FRUGAL_ASSIGN_OR_RETURN(void* p, take(bytes, used));
    ptr = static_cast<std::remove_reference_t<decltype(ptr)>>(p);
    return Status::Ok();
  };
  // Weights.
  const size_t bf = 2;
  FRUGAL_RETURN_IF_ERROR(grab(L.embd, (size_t)d.vocab * d.dim * bf));
  L.layers.assign((size_t)d.n_layers, {});
  for (LayerPtrs& lp : L.layers) {
    FRUGAL_RETURN_IF_ERROR(grab(lp.attn_norm, (size_t)d.dim * 4));
    FRUGAL_RETURN_IF_ERROR(grab(lp.qkv, (size_t)d.qkv_dim() * d.dim * bf));
    FRUGAL_RETURN_IF_ERROR(grab(lp.o, (size_t)d.dim * d.q_dim() * bf));
    FRUGAL_RETURN_IF_ERROR(grab(lp.ffn_norm, (size_t)d.dim * 4));
    FRUGAL_RETURN_IF_ERROR(grab(lp.gate_up, (size_t)2 * d.hidden * d.dim * bf));
    FRUGAL_RETURN_IF_ERROR(grab(lp.down, (size_t)d.dim * d.hidden * bf));
  }
  FRUGAL_RETURN_IF_ERROR(grab(L.out_norm, (size_t)d.dim * 4));
  if (d.tied_embeddings) {
    L.lm_head = L.embd;
  } else {
    FRUGAL_RETURN_IF_ERROR(grab(L.lm_head, (size_t)d.vocab * d.dim * bf));
  }
  mem.weights = used - mark;
  mark = used;

  // Workspace: RoPE table, activations, attention and cuBLAS workspaces, ids, block tables.
  const int64_t R = std::max(o.max_batch, o.max_prefill_tokens);
  L.rows = (int)R;
  L.max_blocks_per_seq = (int)((o.max_seq_len + o.block_size - 1) / o.block_size);
  L.table_entries = (int64_t)o.max_batch * L.max_blocks_per_seq;
  L.n_blocks = kv_blocks;
  const int64_t wide = std::max({d.dim, d.q_dim(), d.hidden});
  FRUGAL_RETURN_IF_ERROR(grab(L.rope, (size_t)o.max_seq_len * (d.head_dim / 2) * sizeof(float2)));
  FRUGAL_RETURN_IF_ERROR(grab(L.x, (size_t)R * d.dim * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.dbuf, (size_t)R * d.dim * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.xb, (size_t)R * std::max(d.dim, d.q_dim()) * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.xb16, (size_t)R * wide * bf));
  FRUGAL_RETURN_IF_ERROR(grab(L.qkv, (size_t)R * d.qkv_dim() * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.q, (size_t)R * d.q_dim() * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.att, (size_t)R * d.q_dim() * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.gu, (size_t)R * 2 * d.hidden * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.h, (size_t)R * d.hidden * 4));
  const int64_t logit_rows = o.prefill_all_logits ? R : o.max_batch;
  FRUGAL_RETURN_IF_ERROR(grab(L.logits, (size_t)logit_rows * d.vocab * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.tokens, (size_t)R * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.pos, (size_t)R * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.lens, (size_t)R * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.next, (size_t)o.max_batch * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.tables, (size_t)L.table_entries * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.uniforms, (size_t)o.max_batch * sizeof(double)));
  FRUGAL_RETURN_IF_ERROR(grab(L.sampled, (size_t)o.max_batch * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.penalty_ids, (size_t)o.max_seq_len * 4));
  // Split-K partials: n_seqs * n_splits <= rows + the splits one full wave holds (at most 16
  // blocks of 128 threads per multiprocessor), each (head_dim + 2) floats per query head.
  L.attn_ws_bytes = (size_t)(R + 16 * (int64_t)sms) * d.n_heads * (d.head_dim + 2) * 4;
  FRUGAL_RETURN_IF_ERROR(grab(L.attn_ws, L.attn_ws_bytes));
  FRUGAL_RETURN_IF_ERROR(grab(L.attn_counters, (size_t)R * d.n_kv_heads * 4));
  FRUGAL_RETURN_IF_ERROR(grab(L.cublas_ws, kCublasWorkspace));
  mem.workspace = used - mark;
  mark = used;

  // KV cache: K then V of every layer.
  L.kv_elems_per_layer = (size_t)L.n_blocks * o.block_size * d.kv_dim();
  FRUGAL_RETURN_IF_ERROR(grab(L.kv_base, L.kv_elems_per_layer * 2 * d.n_layers * bf));
  for (int l = 0; l < d.n_layers; ++l) {
    L.layers[(size_t)l].k = L.kv_base + (size_t)(2 * l) * L.kv_elems_per_layer;
    L.layers[(size_t)l].v = L.kv_base + (size_t)(2 * l + 1) * L.kv_elems_per_layer;
  }
  mem.kv = used - mark;
  mem.kv_blocks = L.n_blocks;
  mem.total = used;
  return Status::Ok();
}

Status check_options(const LlamaDims& d, const LlamaCudaOptions& o) {
  FRUGAL_RETURN_IF_ERROR(d.validate());
  if (o.max_batch < 1 || o.max_prefill_tokens < 1 || o.max_seq_len < 1)
    return InvalidArgument("LlamaCuda: max_batch, max_prefill_tokens and max_seq_len must be >= 1");
  if (o.max_prefill_tokens > 65535)
    return InvalidArgument("LlamaCuda: max_prefill_tokens " + std::to_string(o.max_prefill_tokens) +
                           " > 65535 (one attention grid row per token)");
  if (o.block_size < 1 || (o.block_size & (o.block_size - 1)) != 0)
    return InvalidArgument("LlamaCuda: block_size " + std::to_string(o.block_size) +
                           " is not a power of two");
  if (o.max_seq_len > 0x7fffffff / 2)
    return InvalidArgument("LlamaCuda: max_seq_len too large");
  return Status::Ok();
}

}  // namespace

std::string bytes_str(size_t b) {
  return std::to_string(b) + " bytes (" + std::to_string((double)b / (1 << 30)).substr(0, 6) +
         " GiB)";
}

Status carve_arena(const LlamaDims& d, const LlamaCudaOptions& o, int sms, int64_t kv_blocks,
                   DeviceArena& arena, Layout& L, LlamaCudaMemory& mem) {
  return carve(d, o, sms, kv_blocks, L, mem, [&](size_t bytes, size_t& used) -> Result<void*> {
    FRUGAL_ASSIGN_OR_RETURN(void* p, arena.take(bytes, 256));
    used = arena.used();
    return p;
  });
}

namespace {
// Counting pass of carve() for a pool of kv_blocks: offsets from a fake, aligned, non-null base
// (never dereferenced).
Result<LlamaCudaMemory> count_memory(const LlamaDims& d, const LlamaCudaOptions& o, int sms,
                                     int64_t kv_blocks) {
  Layout L;
  LlamaCudaMemory mem;
  FRUGAL_RETURN_IF_ERROR(carve(d, o, sms, kv_blocks, L, mem, [](size_t bytes, size_t& used) -> Result<void*> {
    const size_t start = (used + 255) / 256 * 256;
    used = start + bytes;
    return reinterpret_cast<void*>((uintptr_t)(start + 256));
  }));
  mem.total += 256;  // the arena's own alignment slack
  return mem;
}

// The KV pool size: max_batch x max_seq_len, or (gpu_memory_utilization > 0) the planner's
// split of the device's memory (planner/device_split.h), with its summary in mem.split.
Result<LlamaCudaMemory> size_memory(const LlamaDims& d, const LlamaCudaOptions& o, int sms) {
  FRUGAL_ASSIGN_OR_RETURN(LlamaCudaMemory mem, count_memory(d, o, sms, table_blocks(o)));
  if (o.gpu_memory_utilization <= 0.0) return mem;
  size_t free_b = 0, total_b = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
  planner::DeviceSplitInput in;
  in.device_total = total_b;
  in.device_in_use = total_b - free_b;
  in.utilization = o.gpu_memory_utilization;
  in.weight_bytes = mem.weights;
  // alignment: the KV range may start up to 255 bytes later, plus the arena's own slack
  in.workspace_bytes = mem.workspace + 512;
  in.kv_block_bytes = (uint64_t)o.block_size * (uint64_t)d.kv_bytes_per_token();
  in.block_size = o.block_size;
  in.min_kv_blocks = table_blocks(o);
  auto split = planner::split_device_memory(in);
  if (!split.ok())
    return Status(split.status().code(), "LlamaCuda: " + split.status().message());
  FRUGAL_ASSIGN_OR_RETURN(LlamaCudaMemory sized, count_memory(d, o, sms, split->kv_blocks));
  sized.split = split->summary(in);
  return sized;
}
}  // namespace

Result<LlamaCudaMemory> plan_llama_cuda_memory(const LlamaDims& d, const LlamaCudaOptions& o) {
  FRUGAL_RETURN_IF_ERROR(check_options(d, o));
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  return size_memory(d, o, sms);
}

}  // namespace frugal::cuda
