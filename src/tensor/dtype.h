// Element types of weights and activations. Block-quantized types store `block_elems` weights in
// `block_bytes` bytes; plain types have block_elems == 1. The byte layouts of the ggml block types
// are documented in quant/ggml_blocks.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace frugal {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q8_0,  // ggml: fp16 d + int8[32]            (34 B / 32)
  Q4_0,  // ggml: fp16 d + 16 B nibbles        (18 B / 32)
  Q4_1,  // ggml: fp16 d, fp16 m + 16 B nibbles (20 B / 32)
  I8,
  I32,
  // frugal's in-memory layouts for quantized weights that ggml has no type for (the layouts of
  // quant/layouts.h). Rows stay self-contained so every row-wise kernel can treat them alike.
  I8_ROW,    // INT8 per output channel: row = f32 scale s, int8 q[n]; w = s*q   (8 + 32/n bpw)
  E4M3_ROW,  // FP8 E4M3 per output channel: row = f32 scale s, fp8 q[n]; w = s*q (a per-tensor
  E5M2_ROW,  //   scale is stored once per row); E5M2 likewise
  I4_G64,    // INT4 sym, groups of 64: fp16 d + 32 B nibbles; w = d*(q-8)         (4.25 bpw)
  I4_G64A,   // INT4 asym, groups of 64: fp16 d, fp16 m + 32 B nibbles; w = d*q+m  (4.5 bpw)
  I4_G128,   // as I4_G64 with groups of 128 (4.125 bpw)
  I4_G128A,  // as I4_G64A with groups of 128 (4.25 bpw)
  kCount
};

struct DTypeInfo {
  const char* name;
  int block_elems;         // weights per block
  int block_bytes;         // bytes per block
  int row_overhead_bytes;  // bytes at the start of every row (the *_ROW scale), else 0
};

const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
std::optional<DType> dtype_from_name(std::string_view name);  // case-insensitive

// Bytes of one row of n elements; n must be a multiple of block_elems (checked by callers that
// parse files). Includes the row's scale for the *_ROW types.
inline size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  return (size_t)(n / i.block_elems) * (size_t)i.block_bytes + (size_t)i.row_overhead_bytes;
}
// Bits per weight, excluding any per-row overhead (see dtype_row_bytes for exact bytes).
inline double dtype_bits_per_weight(DType t) {
  const DTypeInfo& i = dtype_info(t);
  return 8.0 * i.block_bytes / i.block_elems;
}
inline bool dtype_is_quantized(DType t) { return dtype_info(t).block_elems > 1; }

}  // namespace frugal
