// The single source of truth for the bytes of every weight layout frugal knows (bits per weight
// including scales and zeros). The planner's format tables and the quantizers both read these.
//
// A weight matrix is [out, in]: `out` rows of `in` weights; quantization groups run along `in`.
// A layout stores each weight in `bits` bits; each group of `group` consecutive weights of a row
// carries `group_overhead_bits` of scale/zero. group == 0 means one group per row (per output
// channel); group == 1 with overhead 0 is a plain float type. Block layouts (ggml) store whole
// blocks only, so a row is padded up to a multiple of the block. Per-tensor scales are
// `tensor_overhead_bytes`.
//   tensor bytes = ceil(out * (padded_in * bits + groups_per_row * group_overhead_bits) / 8)
//                  + tensor_overhead_bytes
//
//   layout              element      per group / row / tensor              bits/weight (in % g == 0)
//   f32 / f16 / bf16    float        —                                    32 / 16 / 16
//   fp8 (tensor)        E4M3 or E5M2 one fp32 scale per tensor            8 (+ 4 bytes)
//   fp8 (channel)       E4M3 or E5M2 one fp32 scale per output row        8 + 32/in
//   int8 (channel)      int8         fp16 scale per output row (sym)      8 + 16/in
//   intB gG sym         B-bit        fp16 scale per group                 B + 16/G
//   intB gG asym        B-bit        fp16 scale + fp16 zero per group     B + 32/G
//   intB gG packed-zero B-bit        fp16 scale + B-bit zero (GPTQ/AWQ)   B + (16+B)/G
//   q8_0 (ggml)         int8         fp16 d per 32                        8.5
//   q4_0 (ggml)         4-bit        fp16 d per 32                        4.5
//   q4_1 (ggml)         4-bit        fp16 d + fp16 m per 32               5.0
//   q4_k (ggml)         144 B / 256                                       4.5
//   q6_k (ggml)         210 B / 256                                       6.5625
#pragma once

#include <cstdint>
#include <string>

#include "tensor/dtype.h"

namespace frugal::quant {

// Storage geometry of one layout (see the header comment for the byte rule).
struct Layout {
  double bits = 16;               // bits per stored element
  int64_t group = 1;              // elements per group along the row; 0 = whole row
  double group_overhead_bits = 0; // scale/zero bits per group
  bool pad_to_group = false;      // ggml blocks: rows padded to whole blocks
  int64_t tensor_overhead_bytes = 0;
};

inline constexpr Layout kLayoutF32{32, 1, 0, false, 0};
inline constexpr Layout kLayoutF16{16, 1, 0, false, 0};
inline constexpr Layout kLayoutBF16{16, 1, 0, false, 0};
inline constexpr Layout kLayoutFp8Tensor{8, 1, 0, false, 4};    // fp32 scale per tensor
inline constexpr Layout kLayoutFp8Channel{8, 0, 32, false, 0};  // fp32 scale per row
inline constexpr Layout kLayoutInt8Channel{8, 0, 16, false, 0}; // fp16 scale per row
inline constexpr Layout kLayoutQ8_0{8, 32, 16, true, 0};
inline constexpr Layout kLayoutQ4_0{4, 32, 16, true, 0};
inline constexpr Layout kLayoutQ4_1{4, 32, 32, true, 0};
inline constexpr Layout kLayoutQ4_K{4, 256, 128, true, 0};      // 128 B nibbles + 16 B scales
inline constexpr Layout kLayoutQ6_K{6, 256, 144, true, 0};      // 192 B + 16 B scales + fp16 d

// How the zero point of an integer layout is stored.
enum class ZeroStorage : uint8_t {
  kNone,    // symmetric: no zero stored
  kFp16,    // asymmetric, fp16 zero (or min) per group
  kPacked,  // asymmetric, zero stored in `bits` bits per group (AutoGPTQ / AutoAWQ packing)
};

// Integer group-wise layout: `bits` in {2,3,4,8}; group in {0 (per row), 32, 64, 128, ...};
// one fp16 scale per group plus the zero as `zeros` says.
constexpr Layout int_layout(int bits, int64_t group, ZeroStorage zeros) {
  const double zero_bits = zeros == ZeroStorage::kNone ? 0.0 : zeros == ZeroStorage::kFp16 ? 16.0 : (double)bits;
  return Layout{(double)bits, group, 16.0 + zero_bits, false, 0};
}

// The ggml layout of a DType (plain floats included; I8/I32 as plain integers).
Layout dtype_layout(DType t);

// Bytes of `rows` rows of `row_len` elements (0 for empty shapes).
uint64_t layout_bytes(const Layout& l, int64_t row_len, int64_t rows);
// Bits per weight of one row of `row_len` weights, group overhead included, tensor overhead not.
double layout_bits_per_weight(const Layout& l, int64_t row_len);
// "4.125 bpw (4-bit, g128, 16 overhead bits/group)" for logs and docs.
std::string layout_description(const Layout& l);

}  // namespace frugal::quant
