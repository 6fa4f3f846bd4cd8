// Scalar reference (de)quantization of ggml block types. The quantizers follow ggml's
// quantize_row_*_ref step by step, in float32, so that the bytes match ggml and gguf-py's
// quants.py exactly (checked by tests/unit/quant_ggml_blocks_test.cpp against a golden file
// made with gguf-py). Hot-path dequantization for the matmul kernels lives in backend/cpu.
#include "quant/ggml_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/half.h"
#include "quant/row_blocks.h"

namespace frugal {

namespace {

// The reference quantizers compute `x*id + c` as two float32 roundings (no fused multiply-add).
// -march=native lets the compiler contract a*b+c into an FMA, which changes a Q4_0 code when the
// product is just below -7.5 (the golden test has such blocks), so the product is passed through
// an empty asm barrier first. (Dequantization needs none: d*q is exact, 11 x 4 bits.)
inline float unfused(float v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(v));
#elif defined(__GNUC__)
  __asm__("" : "+w"(v));
#else
  volatile float t = v;
  v = t;
#endif
  return v;
}

// (int)trunc(v) limited to [0, 15]; NaN gives 0. Equals ggml's MIN(15, (int8_t)v) for the
// values the reference produces (v >= 0).
inline uint8_t trunc_nibble(float v) {
  if (!(v >= 0.0f)) return 0;
  if (v >= 15.0f) return 15;
  return (uint8_t)(int)v;
}

void dequantize_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[i * kQK + j] = d * (float)b[i].qs[j];
  }
}

void dequantize_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = d * (float)((int)(b[i].qs[j] & 15) - 8);
      y[i * kQK + j + kQK / 2] = d * (float)((int)(b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_f32(b[i].d);
    const float m = fp16_to_f32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = d * (float)(b[i].qs[j] & 15) + m;
      y[i * kQK + j + kQK / 2] = d * (float)(b[i].qs[j] >> 4) + m;
    }
  }
}

// ggml quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d) (half away from zero).
void quantize_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) {
      float q = std::round(xb[j] * id);
      if (!(q >= -128.0f)) q = std::isnan(q) ? 0.0f : -128.0f;  // unreachable for finite input
      if (q > 127.0f) q = 127.0f;
      b[i].qs[j] = (int8_t)q;
    }
  }
}

// ggml quantize_row_q4_0_ref: max = the value with the largest |x| (first one on ties),
// d = max / -8, q = MIN(15, (int)(x/d + 8.5)).
void quantize_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = trunc_nibble(unfused(xb[j] * id) + 8.5f);
      const uint8_t q1 = trunc_nibble(unfused(xb[j + kQK / 2] * id) + 8.5f);
      b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

// ggml quantize_row_q4_1_ref: d = (max-min)/15, m = min, q = MIN(15, (int)((x-min)/d + 0.5)).
void quantize_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float min = std::numeric_limits<float>::max();
    float max = -std::numeric_limits<float>::max();
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, xb[j]);
      max = std::max(max, xb[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_fp16(d);
    b[i].m = f32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t q0 = trunc_nibble(unfused((xb[j] - min) * id) + 0.5f);
      const uint8_t q1 = trunc_nibble(unfused((xb[j + kQK / 2] - min) * id) + 0.5f);
      b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

// Round to nearest (ties to even, the default FP mode) and saturate; NaN gives 0.
template <class Int>
Int saturate_round(float v) {
  if (std::isnan(v)) return 0;
  const double r = std::nearbyint((double)v);
  if (r <= (double)std::numeric_limits<Int>::min()) return std::numeric_limits<Int>::min();
  if (r >= (double)std::numeric_limits<Int>::max()) return std::numeric_limits<Int>::max();
  return (Int)r;
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  if (dequantize_row_block(t, src, dst, n)) return;  // frugal's own layouts (row_blocks.h)
  const int64_t nb = n / kQK;
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, (size_t)n * sizeof(float));
      return;
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::Q8_0: dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb); return;
    case DType::Q4_0: dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb); return;
    case DType::Q4_1: dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb); return;
    case DType::I8: {
      const int8_t* s = static_cast<const int8_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = (float)s[i];
      return;
    }
    case DType::I32: {
      const int32_t* s = static_cast<const int32_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = (float)s[i];
      return;
    }
    default: break;  // the row_blocks.h dtypes returned above
  }
  std::fill(dst, dst + n, std::numeric_limits<float>::quiet_NaN());
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  if (quantize_row_block(t, src, dst, n)) return;  // frugal's own layouts (row_blocks.h)
  const int64_t nb = n / kQK;
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, (size_t)n * sizeof(float));
      return;
    case DType::F16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp16(src[i]);
      return;
    }
    case DType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0: quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), nb); return;
    case DType::Q4_0: quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), nb); return;
    case DType::Q4_1: quantize_q4_1(src, static_cast<BlockQ4_1*>(dst), nb); return;
    case DType::I8: {
      int8_t* d = static_cast<int8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = saturate_round<int8_t>(src[i]);
      return;
    }
    case DType::I32: {
      int32_t* d = static_cast<int32_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = saturate_round<int32_t>(src[i]);
      return;
    }
    default: break;  // the row_blocks.h dtypes returned above
  }
}

}  // namespace frugal
