// Private to backend/cpu: helpers shared by the paged decode and flash prefill kernels.
#pragma once

#include <string>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu::kvdetail {

// Checks shapes and that the table covers positions [0, n_positions) with valid block ids.
inline Status validate(const PagedKvView& kv, int n_heads, int64_t n_positions) {
  if (!kv.k || !kv.v) return InvalidArgument("attention: null KV cache pointers");
  if (kv.n_kv_heads <= 0 || n_heads <= 0 || n_heads % kv.n_kv_heads != 0)
    return InvalidArgument("attention: n_heads (" + std::to_string(n_heads) +
                           ") must be a positive multiple of n_kv_heads (" +
                           std::to_string(kv.n_kv_heads) + ")");
  if (kv_row_bytes(kv.dtype, kv.head_dim) < 0 || kv.block_size < kv_min_block_size(kv.dtype))
    return InvalidArgument("attention: head_dim " + std::to_string(kv.head_dim) +
                           " or block size " + std::to_string(kv.block_size) +
                           " is not supported by KV dtype " + kv_dtype_name(kv.dtype));
  if (kv.block_size < 1) return InvalidArgument("attention: block size must be >= 1");
  if (n_positions < 1) return InvalidArgument("attention: no KV positions to attend to");
  const int64_t need = (n_positions + kv.block_size - 1) / kv.block_size;
  if ((int64_t)kv.block_table.size() < need)
    return InvalidArgument("attention: block table has " + std::to_string(kv.block_table.size()) +
                           " blocks, positions need " + std::to_string(need));
  if (kv.dtype == KvDType::kInt4Kivi) {
    const int64_t full = n_positions / kv.block_size * kv.block_size;
    if (!kv.k_params) return InvalidArgument("attention: int4 (KIVI) keys need their parameters");
    if (full < n_positions && (!kv.k_tail || kv.tail_start != full))
      return InvalidArgument("attention: int4 (KIVI) keys of the partial last block need its f16 tail");
  }
  for (int64_t i = 0; i < need; ++i)
    if (kv.block_table[(size_t)i] < 0 || kv.block_table[(size_t)i] >= kv.n_blocks)
      return InvalidArgument("attention: block id out of range in the block table");
  return Status::Ok();
}

inline const uint8_t* row_ptr(const PagedKvView& kv, const uint8_t* base, int64_t pos, int h,
                              int64_t row_bytes) {
  const int64_t b = kv.block_table[(size_t)(pos / kv.block_size)];
  return base + ((b * kv.block_size + pos % kv.block_size) * kv.n_kv_heads + h) * row_bytes;
}

// Per-thread scratch of at least n floats; slot picks one of a few independent buffers.
inline float* scratch(int slot, int64_t n) {
  thread_local std::vector<float> bufs[6];
  auto& b = bufs[slot];
  if (b.size() < (size_t)n) b.resize((size_t)n);
  return b.data();
}

}  // namespace frugal::cpu::kvdetail
