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
//   INT4_KIVI  V rows as INT4. K is quantized per channel over the tokens of a whole block
//         (KIVI): a K row is uint8 qs[D/2] (element 2i = low nibble of qs[i], 2i+1 = high), and
//         each (block, KV head) has D pairs (fp16 scale, fp16 min) in a separate parameter
//         plane: k[d] = scale[d]*q[d] + min[d]. Until a block is full its K rows live in an f16
//         staging area (KIVI's full-precision residual); see kv/kv_storage.h.
#pragma once

#include <cstdint>
#include <string_view>

namespace frugal::cpu {

enum class KvDType : uint8_t { kF32, kF16, kBF16, kInt8, kFp8, kInt4, kInt4Kivi };
inline constexpr int kKvInt4Group = 32;

// "f32", "f16", "bf16", "int8", "fp8", "int4tok" (kInt4), "int4" (kInt4Kivi, the better INT4:
// see docs/KV_CACHE.md).
const char* kv_dtype_name(KvDType t);
// Accepts the names above ("fp8" also as "fp8_e4m3", "int4" also as "int4kivi"). Returns
// false for anything else.
bool parse_kv_dtype(std::string_view name, KvDType* out);
// Bytes of one K (value = false) or V row, or -1 when head_dim does not suit the format (INT4
// kinds: a multiple of 32; all: 1..1024).
int64_t kv_row_bytes(KvDType t, int head_dim, bool value = false);
// INT4_KIVI: bytes of the K parameters of one (block, KV head): head_dim * 4. Else 0.
int64_t kv_k_params_bytes(KvDType t, int head_dim);
// Smallest block size a dtype accepts (INT4_KIVI: 16, its per-channel group; else 1).
int kv_min_block_size(KvDType t);

// INT4_KIVI keys of one (block, KV head): quantizes n rows x[j*ldx + d] (j < n, d < D) per
// channel into K rows dst[j*ldd ...] and params (D pairs of fp16 scale, min).
void kv_quantize_k_channels(const float* x, int64_t ldx, int n, int head_dim, uint8_t* dst,
                            int64_t ldd, uint8_t* params);
// Dequantizes one INT4_KIVI K row with its (block, head) params.
void kv_dequantize_k_channels(const uint8_t* row, const uint8_t* params, int head_dim, float* out);

// OCP FP8 E4M3FN: round to nearest even, saturating to +-448; NaN stays NaN (0x7f / 0xff).
uint8_t f32_to_fp8_e4m3(float x);
float fp8_e4m3_to_f32(uint8_t b);

// Quantize D floats into one row (head_scale: FP8 only, > 0). INT4_KIVI: V rows only.
void kv_quantize_row(KvDType t, const float* x, int head_dim, float head_scale, uint8_t* dst);
// Dequantize one row into D floats.
void kv_dequantize_row(KvDType t, const uint8_t* src, int head_dim, float head_scale, float* out);

}  // namespace frugal::cpu
