// The one allocation that holds every KV byte. Per layer: the K plane
// [n_blocks][block_size][n_kv_heads] K rows, the V plane (same shape, V rows), then (INT4_KIVI
// only) the K parameter plane [n_blocks][n_kv_heads] (head_dim fp16 scale/min pairs each). Row
// formats: backend/cpu/kv_quant.h. One layer's planes are the pointers the paged attention
// kernels take (backend/cpu/attention_kv.h). Blocks are handed out by an allocator
// (kv_allocator.h); this class only turns (block table, position) into bytes.
// INT4_KIVI quantizes a block's keys per channel once the block is full; until then they are
// kept as f16 in a staging buffer per partial block ([n_layers][block_size][n_kv_heads][head_dim],
// allocated on the first write to the block, freed when the last layer fills it) — KIVI's
// full-precision residual, at most one block per growing sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
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
  KvStorage(KvStorage&&) = default;
  KvStorage& operator=(KvStorage&&) = default;
  KvStorage(const KvStorage&) = delete;
  KvStorage& operator=(const KvStorage&) = delete;
  // Bytes of one block over all layers, K and V (and K parameters); -1 for invalid parameters.
  static int64_t bytes_per_block(const KvStorageParams& p);
  // floor(budget / bytes_per_block); InvalidArgument when that is < 1 (n_blocks is ignored).
  static Result<int32_t> blocks_for_budget(const KvStorageParams& p, int64_t budget_bytes);

  const KvStorageParams& params() const { return p_; }
  int64_t bytes() const;  // the allocation plus any INT4_KIVI staging

  // Quantizes and writes the K/V of n tokens at sequence positions [pos, pos + n):
  //   k, v: [n, n_kv_heads * head_dim] floats; table: the sequence's block table.
  // FP8: the first write to a layer fixes its per-head scales (max|x| * 4 / 448 per KV head,
  // unless set_fp8_scales was called); later values beyond 448*scale saturate.
  // INT4_KIVI: layers of the same positions are written in order 0..n_layers-1.
  Status write(int layer, std::span<const int32_t> table, int64_t pos, int64_t n, const float* k,
               const float* v);
  // Copy-on-write / fork copies, all layers.
  void copy(const CopyOp& op);
  // Per-head FP8 scales of one layer ([n_kv_heads] each, > 0).
  Status set_fp8_scales(int layer, std::span<const float> k_scales, std::span<const float> v_scales);
  // The kernel's view of one layer for a sequence of n_tokens positions (INT4_KIVI needs it to
  // find the partial last block's staging; -1: no partial block).
  cpu::PagedKvView view(int layer, std::span<const int32_t> table, int64_t n_tokens = -1) const;

 private:
  KvStorage() = default;
  // which: 0 = K rows, 1 = V rows, 2 = K parameters.
  uint8_t* base(int layer, int which) {
    return static_cast<uint8_t*>(buf_.get()) + layer * layer_bytes_ + plane_off_[which];
  }
  const uint8_t* base(int layer, int which) const {
    return static_cast<const uint8_t*>(buf_.get()) + layer * layer_bytes_ + plane_off_[which];
  }
  Status write_kivi_keys(int layer, std::span<const int32_t> table, int64_t pos, int64_t n,
                         const float* k);

  KvStorageParams p_;
  int64_t k_row_ = 0, v_row_ = 0, k_params_ = 0;  // bytes: K row, V row, K params per (block, head)
  size_t plane_off_[3] = {0, 0, 0};
  size_t layer_bytes_ = 0;
  std::unordered_map<int32_t, std::vector<uint16_t>> stage_;  // INT4_KIVI partial blocks
  // One zeroed block of all layers' K/V, on transparent huge pages where the kernel allows
  // (base/huge_pages.h): attention streams it every decode step, and over 4 KiB pages such a
  // stream is bound by page walks on this project's VMs. Owned alone (no copies of a storage).
  std::shared_ptr<void> buf_;
  size_t data_bytes_ = 0;
  std::vector<float> scales_;  // FP8: [n_layers][K, V][n_kv_heads]
  std::vector<uint8_t> scales_set_;  // per layer
};

}  // namespace frugal::kv
