// Bytes of every weight and KV-cache format the planner knows. The layouts (bits per weight, group
// overheads) come from quant/layouts.h, the single source of truth; this table adds names,
// aliases and compute paths.
//
// A weight matrix is [out, in] (out rows of `in` weights; quantization groups run along `in`).
// A format stores each weight in `bits` bits, and each group of `group` consecutive weights of a
// row carries `group_overhead_bits` of scales/zeros. group == 0 means one group per row (a
// per-output-channel scale). Block formats (ggml) store whole blocks only, so a row is padded up
// to a multiple of the block. Tensor bytes = ceil(out * (padded_in * bits + groups * overhead) / 8)
// + tensor_overhead_bytes.
//
//   format      layout                                          bits/weight (in = multiple of group)
//   f32/f16/bf16  plain                                         32 / 16 / 16
//   fp8         E4M3 + one fp32 scale per tensor                8
//   int8        int8 + fp16 scale per output row                8 + 16/in
//   int4        int4, group 128 along in, fp16 scale (sym)      4.125
//   int4-asym   int4, group 128, fp16 scale + fp16 zero         4.25
//   int4-gptq   GPTQ/AWQ packing: fp16 scale + 4-bit zero       4.15625
//   q8_0        ggml: fp16 d + int8[32]        (34 B / 32)      8.5
//   q4_0        ggml: fp16 d + 16 B nibbles    (18 B / 32)      4.5
//   q4_1        ggml: fp16 d, m + 16 B         (20 B / 32)      5.0
//   q4_k        ggml: 144 B / 256                               4.5
//   q6_k        ggml: 210 B / 256                               6.5625
//
// KV-cache formats use the same description with `in` = head_dim (one K or V vector of one head).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "quant/layouts.h"

namespace frugal::planner {

// Which matrix-multiply peak a weight format runs at on a device that has it.
enum class ComputePath : uint8_t {
  kF32,   // fp32 vector units
  kBf16,  // 16-bit tensor cores (weight-only quantized formats dequantize to this)
  kFp8,   // FP8 tensor cores (W8A8 FP8)
};

enum class WeightFormat : uint8_t {
  kF32, kF16, kBF16, kFP8, kInt8, kInt4, kInt4Asym, kInt4Gptq,
  kQ8_0, kQ4_0, kQ4_1, kQ4_K, kQ6_K,
  kCount
};

enum class KvFormat : uint8_t {
  kF32, kF16, kBF16, kFP8, kInt8, kQ8_0, kQ4_0, kInt4,
  kCount
};

// Storage geometry shared by weight and KV formats: quant/layouts.h owns it.
using Layout = quant::Layout;

struct WeightFormatInfo {
  const char* name;          // canonical name, e.g. "int4"
  const char* aliases;       // comma-separated alternative names
  const char* description;   // one line for --help / tables
  Layout layout;
  bool quantized;            // needs dequantization before (or inside) the matmul
  ComputePath compute;       // peak used for its matmuls where the device has it
  // Vector-unit ops per weight to dequantize (0: none). Assumed: 1 for 8-bit formats (convert +
  // scale fused), 2 for 4-bit (unpack + convert/scale), 3 for K-quants (two-level scales).
  int dequant_ops;
};

struct KvFormatInfo {
  const char* name;
  const char* aliases;
  const char* description;
  Layout layout;
  bool quantized;
};

const WeightFormatInfo& weight_format_info(WeightFormat f);
const KvFormatInfo& kv_format_info(KvFormat f);
inline const char* weight_format_name(WeightFormat f) { return weight_format_info(f).name; }
inline const char* kv_format_name(KvFormat f) { return kv_format_info(f).name; }

// Case-insensitive lookup by name or alias ("F16", "q4_k", "int4-g128", "awq").
std::optional<WeightFormat> weight_format_from_name(std::string_view name);
std::optional<KvFormat> kv_format_from_name(std::string_view name);
// "f32, f16, bf16, ..." for error messages.
std::string weight_format_names();
std::string kv_format_names();

// Bytes of `rows` rows of `row_len` elements in a layout (see the header comment for the rule).
using quant::layout_bytes;
// Bytes of a weight matrix [out, in].
uint64_t weight_tensor_bytes(WeightFormat f, int64_t in, int64_t out);
// Bits per weight for a row of `in` weights, scale/zero overhead included (tensor overhead not).
double weight_bits_per_weight(WeightFormat f, int64_t in);
// Bytes of one K (or V) vector of one head of one token.
uint64_t kv_vector_bytes(KvFormat f, int64_t head_dim);

}  // namespace frugal::planner
