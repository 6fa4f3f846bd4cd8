// Scalar reference (de)quantization of frugal's row/group layouts (see row_blocks.h). The SIMD
// kernels in backend/cpu must agree with dequantize_row_block bit for bit.
#include "quant/row_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp8.h"
#include "base/half.h"

namespace frugal {

namespace {

inline float load_scale(const void* row) {
  float s;
  std::memcpy(&s, row, sizeof s);
  return s;
}

inline int clamp_code(double v, int lo, int hi) {
  if (!(v >= lo)) return lo;  // NaN -> lo (only reachable for non-finite input)
  if (v > hi) return hi;
  return (int)v;
}

template <int G, bool kAsym>
void dequantize_i4(const uint8_t* src, float* y, int64_t n) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  for (int64_t b = 0; b < n / G; ++b) {
    const uint8_t* blk = src + b * kBytes;
    uint16_t dh, mh = 0;
    std::memcpy(&dh, blk, 2);
    if (kAsym) std::memcpy(&mh, blk + 2, 2);
    const uint8_t* qs = blk + (kAsym ? 4 : 2);
    const float d = fp16_to_f32(dh), m = fp16_to_f32(mh);
    float* o = y + b * G;
    for (int j = 0; j < G / 2; ++j) {
      const int lo = qs[j] & 15, hi = qs[j] >> 4;
      if (kAsym) {
        o[j] = d * (float)lo + m;
        o[j + G / 2] = d * (float)hi + m;
      } else {
        o[j] = d * (float)(lo - 8);
        o[j + G / 2] = d * (float)(hi - 8);
      }
    }
  }
}

template <int G, bool kAsym>
void quantize_i4(const float* x, uint8_t* dst, int64_t n) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  for (int64_t b = 0; b < n / G; ++b) {
    const float* xb = x + b * G;
    uint8_t* blk = dst + b * kBytes;
    int q[G];
    if (kAsym) {
      float mn = xb[0], mx = xb[0];
      for (int j = 1; j < G; ++j) {
        mn = std::min(mn, xb[j]);
        mx = std::max(mx, xb[j]);
      }
      const uint16_t dh = f32_to_fp16((mx - mn) / 15.0f), mh = f32_to_fp16(mn);
      const double d = fp16_to_f32(dh), m = fp16_to_f32(mh);
      for (int j = 0; j < G; ++j)
        q[j] = d > 0 ? clamp_code(std::nearbyint(((double)xb[j] - m) / d), 0, 15) : 0;
      std::memcpy(blk, &dh, 2);
      std::memcpy(blk + 2, &mh, 2);
    } else {
      float amax = 0.0f;
      for (int j = 0; j < G; ++j) amax = std::max(amax, std::fabs(xb[j]));
      const uint16_t dh = f32_to_fp16(amax / 7.0f);
      const double d = fp16_to_f32(dh);
      for (int j = 0; j < G; ++j)
        q[j] = d > 0 ? clamp_code(std::nearbyint((double)xb[j] / d) + 8.0, 0, 15) : 8;
      std::memcpy(blk, &dh, 2);
    }
    uint8_t* qs = blk + (kAsym ? 4 : 2);
    for (int j = 0; j < G / 2; ++j) qs[j] = (uint8_t)(q[j] | (q[j + G / 2] << 4));
  }
}

// Row layouts: f32 scale, then one byte per weight.
enum class RowCode { kInt8, kE4M3, kE5M2 };

void dequantize_row8(RowCode c, const uint8_t* src, float* y, int64_t n) {
  const float s = load_scale(src);
  const uint8_t* q = src + 4;
  for (int64_t i = 0; i < n; ++i) {
    switch (c) {
      case RowCode::kInt8: y[i] = s * (float)(int8_t)q[i]; break;
      case RowCode::kE4M3: y[i] = s * fp8_e4m3_to_float(q[i]); break;
      case RowCode::kE5M2: y[i] = s * fp8_e5m2_to_float(q[i]); break;
    }
  }
}

void quantize_row8(RowCode c, const float* x, uint8_t* dst, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float range = c == RowCode::kInt8 ? 127.0f : c == RowCode::kE4M3 ? 448.0f : 57344.0f;
  const float s = amax / range;
  std::memcpy(dst, &s, sizeof s);
  uint8_t* q = dst + 4;
  for (int64_t i = 0; i < n; ++i) {
    if (s == 0.0f) {
      q[i] = 0;
      continue;
    }
    const float v = x[i] / s;
    switch (c) {
      case RowCode::kInt8: q[i] = (uint8_t)(int8_t)clamp_code(std::nearbyint((double)v), -127, 127); break;
      case RowCode::kE4M3: q[i] = fp8_e4m3_from_float(v); break;
      case RowCode::kE5M2: q[i] = fp8_e5m2_from_float(v); break;
    }
  }
}

}  // namespace

bool is_row_block_dtype(DType t) {
  switch (t) {
    case DType::I8_ROW: case DType::E4M3_ROW: case DType::E5M2_ROW:
    case DType::I4_G64: case DType::I4_G64A: case DType::I4_G128: case DType::I4_G128A:
      return true;
    default:
      return false;
  }
}

bool dequantize_row_block(DType t, const void* src, float* dst, int64_t n) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::I8_ROW: dequantize_row8(RowCode::kInt8, s, dst, n); return true;
    case DType::E4M3_ROW: dequantize_row8(RowCode::kE4M3, s, dst, n); return true;
    case DType::E5M2_ROW: dequantize_row8(RowCode::kE5M2, s, dst, n); return true;
    case DType::I4_G64: dequantize_i4<64, false>(s, dst, n); return true;
    case DType::I4_G64A: dequantize_i4<64, true>(s, dst, n); return true;
    case DType::I4_G128: dequantize_i4<128, false>(s, dst, n); return true;
    case DType::I4_G128A: dequantize_i4<128, true>(s, dst, n); return true;
    default: return false;
  }
}

bool quantize_row_block(DType t, const float* src, void* dst, int64_t n) {
  uint8_t* d = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::I8_ROW: quantize_row8(RowCode::kInt8, src, d, n); return true;
    case DType::E4M3_ROW: quantize_row8(RowCode::kE4M3, src, d, n); return true;
    case DType::E5M2_ROW: quantize_row8(RowCode::kE5M2, src, d, n); return true;
    case DType::I4_G64: quantize_i4<64, false>(src, d, n); return true;
    case DType::I4_G64A: quantize_i4<64, true>(src, d, n); return true;
    case DType::I4_G128: quantize_i4<128, false>(src, d, n); return true;
    case DType::I4_G128A: quantize_i4<128, true>(src, d, n); return true;
    default: return false;
  }
}

}  // namespace frugal
