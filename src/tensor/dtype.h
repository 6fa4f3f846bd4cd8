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
  kCount
};

struct DTypeInfo {
  const char* name;
  int block_elems;  // weights per block
  int block_bytes;  // bytes per block
};

const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
std::optional<DType> dtype_from_name(std::string_view name);  // case-insensitive

// Bytes for n elements; n must be a multiple of block_elems (checked by callers that parse files).
inline size_t dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  return (size_t)(n / i.block_elems) * (size_t)i.block_bytes;
}
inline double dtype_bits_per_weight(DType t) {
  const DTypeInfo& i = dtype_info(t);
  return 8.0 * i.block_bytes / i.block_elems;
}
inline bool dtype_is_quantized(DType t) { return dtype_info(t).block_elems > 1; }

}  // namespace frugal
