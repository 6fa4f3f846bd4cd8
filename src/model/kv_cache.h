// The engine's KV cache for one sequence, in one of two kinds:
//   paged (default): kv::KvStorage blocks handed out by kv::PagedAllocator, any KV dtype
//     (backend/cpu/kv_quant.h), read by the paged decode / flash prefill kernels
//     (backend/cpu/attention_kv.h). Memory is bounded by the budget, not by n_ctx.
//   contiguous: for every layer, n_ctx float32 rows of K and of V, each row holding
//     n_kv_heads*head_dim floats, reserved up front (the baseline the paged cache replaces;
//     read by attention_decode / attention_prefill in backend/cpu/ops.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "backend/cpu/kv_quant.h"
#include "base/status.h"
#include "kv/kv_storage.h"
#include "kv/paged_allocator.h"
#include "model/config.h"

namespace frugal {

enum class KvCacheKind { kPaged, kContiguous };
const char* kv_cache_kind_name(KvCacheKind k);
Result<KvCacheKind> parse_kv_cache_kind(std::string_view s);            // "paged" | "contiguous"
Result<cpu::KvDType> parse_kv_cache_dtype(std::string_view s);         // kv_quant.h names
// "auto" -> 0; otherwise bytes, with an optional K/M/G/KiB/MiB/GiB suffix (powers of 1024).
Result<int64_t> parse_kv_budget(std::string_view s);

struct KvCacheOptions {
  KvCacheKind kind = KvCacheKind::kPaged;
  // Paged: any KV dtype, default F32 (F16 moves SmolLM2 logits by >1e-3). Contiguous: F32 only.
  std::optional<cpu::KvDType> dtype;
  int32_t block_size = 16;  // paged: tokens per block, a power of two
  int64_t budget_bytes = 0; // paged: KV bytes; 0 = auto (room for n_ctx tokens)
};

class KvCache {
 public:
  // Errors: n_ctx <= 0 or past the model's context (OutOfRange); bad block size, dtype that does
  // not suit head_dim, a budget smaller than one block, a dtype with the contiguous kind
  // (InvalidArgument); allocation failure (ResourceExhausted).
  static Result<KvCache> create(const ModelConfig& c, int64_t n_ctx,
                                const KvCacheOptions& o = {});

  // Positions the cache can hold: n_ctx, or less when a paged budget is smaller.
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const;
  bool paged() const { return storage_ != nullptr; }
  cpu::KvDType dtype() const { return dtype_; }

  // Contiguous kind only: float rows (stride row_floats()).
  int64_t row_floats() const { return kv_dim_; }
  float* k(int layer, int64_t pos) { return data_.data() + offset(layer, 0, pos); }
  float* v(int layer, int64_t pos) { return data_.data() + offset(layer, 1, pos); }

  // Paged kind only. Makes room for `tokens` at positions [pos, pos + n): pos == 0 restarts
  // the sequence, pos == length() appends; other positions are InvalidArgument. A budget that
  // cannot hold them is ResourceExhausted with the allocator's reason.
  Status prepare(std::span<const int32_t> tokens, int64_t pos);
  int64_t length() const;
  kv::KvStorage& storage() { return *storage_; }
  std::span<const int32_t> block_table() const;

 private:
  size_t offset(int layer, int kv, int64_t pos) const {
    return ((size_t)(layer * 2 + kv) * n_ctx_ + pos) * kv_dim_;
  }
  int64_t n_ctx_ = 0;
  int64_t kv_dim_ = 0;
  cpu::KvDType dtype_ = cpu::KvDType::kF32;
  std::vector<float> data_;                      // contiguous
  std::unique_ptr<kv::KvStorage> storage_;       // paged
  std::unique_ptr<kv::PagedAllocator> alloc_;    // paged: one sequence, id 0
};

}  // namespace frugal
