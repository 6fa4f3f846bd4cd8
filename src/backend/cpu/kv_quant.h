// KV cache element formats ("rows"): one row holds the head_dim values of one (token, KV head).
// Written once when the token's K/V are appended (quantize on write); read by the attention
// kernels one row at a time (dequantize in the kernel, into a tile-sized buffer at most).
//
// Row layouts, D = head_dim:
//   F32   float[D]
//   F16   uint16 (IEEE half)[D]
//   BF16  uint16 (bfloat16)[D]
//   INT8  int8 q[D], float32 scale            x = scale*q, scale = max|x|/127 (symmetric,
//                                               per token per head)
//   FP8   uint8 (OCP E4M3FN)[D]                 x = e4m3(b) * head_scale; head_scale is one float
//                                               per (layer, KV head, K or V) kept outside the row,
//                                               values saturate at +-448*head_scale
//   INT4  uint8 qs[D/2], then per group of 32: fp16 scale, fp16 min     x = scale*q + min,
//         asymmetric, groups of 32 along the head dim; group g's nibbles are qs[16g .. 16g+16):
//         element 32g+j (j < 16) is the low nibble of qs[16g+j], element 32g+16+j the high one.
#pragma once

#include <cstdint>
#include <string_view>

namespace frugal::cpu {

enum class KvDType : uint8_t { kF32, kF16, kBF16, kInt8, kFp8, kInt4 };
inline constexpr int kKvInt4Group = 32;

const char* kv_dtype_name(KvDType t);  // "f32", "f16", "bf16", "int8", "fp8", "int4"
// Accepts the names above ("fp8" also as "fp8_e4m3"). Returns false for anything else.
bool parse_kv_dtype(std::string_view name, KvDType* out);
// Bytes of one row, or -1 when head_dim does not suit the format (INT4: a multiple of 32;
// all: 1..1024).
int64_t kv_row_bytes(KvDType t, int head_dim);

// OCP FP8 E4M3FN: round to nearest even, saturating to +-448; NaN stays NaN (0x7f / 0xff).
uint8_t f32_to_fp8_e4m3(float x);
float fp8_e4m3_to_f32(uint8_t b);

// Quantize D floats into one row (head_scale: FP8 only, > 0).
void kv_quantize_row(KvDType t, const float* x, int head_dim, float head_scale, uint8_t* dst);
// Dequantize one row into D floats.
void kv_dequantize_row(KvDType t, const uint8_t* src, int head_dim, float head_scale, float* out);

}  // namespace frugal::cpu
