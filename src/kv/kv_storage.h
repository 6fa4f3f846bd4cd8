// The one allocation that holds every KV byte: [n_layers][K, V][n_blocks][block_size][n_kv_heads]
// rows of the KV dtype (backend/cpu/kv_quant.h), so one layer's K (or V) is the base pointer the
// paged attention kernels take (backend/cpu/attention_kv.h). Blocks are handed out by an
// allocator (kv_allocator.h); this class only turns (block table, position) into bytes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cpu/kv_quant.h"
#include "base/status.h"
#include "kv/kv_allocator.h"

namespace frugal::kv {

struct KvStorageParams {
  int n_layers = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int32_t block_size = 16;  // a power of two
  int32_t n_blocks = 0;
  cpu::KvDType dtype = cpu::KvDType::kF16;
};

class KvStorage {
 public:
  // Errors: bad shapes, block size, dtype/head_dim mismatch (InvalidArgument); allocation
  // failure (ResourceExhausted).
  static Result<KvStorage> create(const KvStorageParams& p);
  // Bytes of one block over all layers, K and V; -1 for invalid parameters.
  static int64_t bytes_per_block(const KvStorageParams& p);
  // floor(budget / bytes_per_block); InvalidArgument when that is < 1 (n_blocks is ignored).
  static Result<int32_t> blocks_for_budget(const KvStorageParams& p, int64_t budget_bytes);

  const KvStorageParams& params() const { return p_; }
  int64_t bytes() const { return (int64_t)data_.size(); }

  // Quantizes and writes the K/V of n tokens at sequence positions [pos, pos + n):
  //   k, v: [n, n_kv_heads * head_dim] floats; table: the sequence's block table.
  // FP8: the first write to a layer fixes its per-head scales (max|x| * 4 / 448 per KV head,
  // unless set_fp8_scales was called); later values beyond 448*scale saturate.
  Status write(int layer, std::span<const int32_t> table, int64_t pos, int64_t n, const float* k,
               const float* v);
  // Copy-on-write / fork copies, all layers.
  void copy(const CopyOp& op);
  // Per-head FP8 scales of one layer ([n_kv_heads] each, > 0).
  Status set_fp8_scales(int layer, std::span<const float> k_scales, std::span<const float> v_scales);
  // The kernel's view of one layer for a sequence.
  cpu::PagedKvView view(int layer, std::span<const int32_t> table) const;

 private:
  uint8_t* base(int layer, int kv) { return data_.data() + ((size_t)layer * 2 + kv) * plane_; }
  const uint8_t* base(int layer, int kv) const {
    return data_.data() + ((size_t)layer * 2 + kv) * plane_;
  }

  KvStorageParams p_;
  int64_t row_bytes_ = 0;
  size_t plane_ = 0;  // bytes of one layer's K (or V): n_blocks * block_size * n_kv_heads * row
  std::vector<uint8_t> data_;
  std::vector<float> scales_;  // FP8: [n_layers][K, V][n_kv_heads]
  std::vector<uint8_t> scales_set_;  // per layer
};

}  // namespace frugal::kv
