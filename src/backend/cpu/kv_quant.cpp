#include "backend/cpu/kv_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/fp8.h"
#include "base/half.h"

namespace frugal::cpu {

const char* kv_dtype_name(KvDType t) {
  switch (t) {
    case KvDType::kF32: return "f32";
    case KvDType::kF16: return "f16";
    case KvDType::kBF16: return "bf16";
    case KvDType::kInt8: return "int8";
    case KvDType::kFp8: return "fp8";
    case KvDType::kInt4: return "int4tok";
    case KvDType::kInt4Kivi: return "int4";
  }
  return "?";
}

bool parse_kv_dtype(std::string_view s, KvDType* out) {
  static const struct { const char* name; KvDType t; } kNames[] = {
      {"f32", KvDType::kF32},   {"f16", KvDType::kF16}, {"bf16", KvDType::kBF16},
      {"int8", KvDType::kInt8}, {"fp8", KvDType::kFp8}, {"fp8_e4m3", KvDType::kFp8},
      {"int4tok", KvDType::kInt4}, {"int4", KvDType::kInt4Kivi}, {"int4kivi", KvDType::kInt4Kivi}};
  for (const auto& n : kNames)
    if (s == n.name) {
      *out = n.t;
      return true;
    }
  return false;
}

int64_t kv_row_bytes(KvDType t, int d, bool value) {
  if (d < 1 || d > 1024) return -1;
  if (t == KvDType::kInt4Kivi) {
    if (d % kKvInt4Group) return -1;
    return value ? kv_row_bytes(KvDType::kInt4, d) : d / 2;
  }
  switch (t) {
    case KvDType::kF32: return 4LL * d;
    case KvDType::kF16:
    case KvDType::kBF16: return 2LL * d;
    case KvDType::kInt8: return d + 4LL;
    case KvDType::kFp8: return d;
    case KvDType::kInt4:
      if (d % kKvInt4Group) return -1;
      return d / 2 + (d / kKvInt4Group) * 4LL;
    case KvDType::kInt4Kivi: break;
  }
  return -1;
}

int64_t kv_k_params_bytes(KvDType t, int d) { return t == KvDType::kInt4Kivi ? 4LL * d : 0; }

int kv_min_block_size(KvDType t) { return t == KvDType::kInt4Kivi ? 16 : 1; }

void kv_quantize_k_channels(const float* x, int64_t ldx, int n, int d, uint8_t* dst, int64_t ldd,
                            uint8_t* params) {
  for (int j = 0; j < n; ++j) std::memset(dst + j * ldd, 0, (size_t)d / 2);
  for (int c = 0; c < d; ++c) {
    float lo = x[c], hi = x[c];
    for (int j = 1; j < n; ++j) {
      lo = std::min(lo, x[j * ldx + c]);
      hi = std::max(hi, x[j * ldx + c]);
    }
    const uint16_t s16 = f32_to_fp16((hi - lo) / 15.0f), m16 = f32_to_fp16(lo);
    const float s = fp16_to_f32(s16), m = fp16_to_f32(m16);
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int j = 0; j < n; ++j) {
      const int q = std::clamp((int)std::nearbyint((x[j * ldx + c] - m) * inv), 0, 15);
      dst[j * ldd + c / 2] |= (uint8_t)(c % 2 ? q << 4 : q);
    }
    std::memcpy(params + c * 4, &s16, 2);
    std::memcpy(params + c * 4 + 2, &m16, 2);
  }
}

void kv_dequantize_k_channels(const uint8_t* row, const uint8_t* params, int d, float* out) {
  for (int c = 0; c < d; ++c) {
    uint16_t s16, m16;
    std::memcpy(&s16, params + c * 4, 2);
    std::memcpy(&m16, params + c * 4 + 2, 2);
    const int q = c % 2 ? row[c / 2] >> 4 : row[c / 2] & 15;
    out[c] = fp16_to_f32(s16) * (float)q + fp16_to_f32(m16);
  }
}

float fp8_e4m3_to_f32(uint8_t b) { return fp8_e4m3_to_float(b); }

// The KV cache saturates ±inf to ±448 (OCP's saturating conversion mode); NaN stays NaN.
uint8_t f32_to_fp8_e4m3(float x) {
  return fp8_e4m3_from_float(std::isinf(x) ? std::copysign(448.0f, x) : x);
}

namespace {

void quantize_int8(const float* x, int d, uint8_t* dst) {
  float amax = 0.0f;
  for (int i = 0; i < d; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax / 127.0f;
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  int8_t* q = reinterpret_cast<int8_t*>(dst);
  for (int i = 0; i < d; ++i)
    q[i] = (int8_t)std::clamp((int)std::nearbyint(x[i] * inv), -127, 127);
  std::memcpy(dst + d, &scale, 4);
}

void quantize_int4(const float* x, int d, uint8_t* dst) {
  uint8_t* params = dst + d / 2;
  for (int g = 0; g < d / kKvInt4Group; ++g) {
    const float* xg = x + g * kKvInt4Group;
    float lo = xg[0], hi = xg[0];
    for (int j = 1; j < kKvInt4Group; ++j) {
      lo = std::min(lo, xg[j]);
      hi = std::max(hi, xg[j]);
    }
    // Parameters are stored as fp16: quantize against the values the reader will see.
    const uint16_t s16 = f32_to_fp16((hi - lo) / 15.0f), m16 = f32_to_fp16(lo);
    const float s = fp16_to_f32(s16), m = fp16_to_f32(m16);
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    uint8_t* qs = dst + g * (kKvInt4Group / 2);
    for (int j = 0; j < kKvInt4Group / 2; ++j) {
      const int a = std::clamp((int)std::nearbyint((xg[j] - m) * inv), 0, 15);
      const int b = std::clamp((int)std::nearbyint((xg[j + 16] - m) * inv), 0, 15);
      qs[j] = (uint8_t)(a | (b << 4));
    }
    std::memcpy(params + g * 4, &s16, 2);
    std::memcpy(params + g * 4 + 2, &m16, 2);
  }
}

}  // namespace

void kv_quantize_row(KvDType t, const float* x, int d, float head_scale, uint8_t* dst) {
  switch (t) {
    case KvDType::kF32: std::memcpy(dst, x, 4 * (size_t)d); return;
    case KvDType::kF16:
      for (int i = 0; i < d; ++i) {
        const uint16_t h = f32_to_fp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvDType::kBF16:
      for (int i = 0; i < d; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case KvDType::kInt8: return quantize_int8(x, d, dst);
    case KvDType::kFp8: {
      const float inv = 1.0f / head_scale;
      for (int i = 0; i < d; ++i) dst[i] = f32_to_fp8_e4m3(x[i] * inv);
      return;
    }
    case KvDType::kInt4:
    case KvDType::kInt4Kivi: return quantize_int4(x, d, dst);
  }
}

void kv_dequantize_row(KvDType t, const uint8_t* src, int d, float head_scale, float* out) {
  switch (t) {
    case KvDType::kF32: std::memcpy(out, src, 4 * (size_t)d); return;
    case KvDType::kF16:
      for (int i = 0; i < d; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = fp16_to_f32(h);
      }
      return;
    case KvDType::kBF16:
      for (int i = 0; i < d; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case KvDType::kInt8: {
      float scale;
      std::memcpy(&scale, src + d, 4);
      const int8_t* q = reinterpret_cast<const int8_t*>(src);
      for (int i = 0; i < d; ++i) out[i] = scale * (float)q[i];
      return;
    }
    case KvDType::kFp8: {
      // 256-entry decode table, built once.
      static const auto table = [] {
        struct T { float v[256]; } t{};
        for (int b = 0; b < 256; ++b) t.v[b] = fp8_e4m3_to_f32((uint8_t)b);
        return t;
      }();
      for (int i = 0; i < d; ++i) out[i] = table.v[src[i]] * head_scale;
      return;
    }
    case KvDType::kInt4:
    case KvDType::kInt4Kivi: {
      const uint8_t* params = src + d / 2;
      for (int g = 0; g < d / kKvInt4Group; ++g) {
        uint16_t s16, m16;
        std::memcpy(&s16, params + g * 4, 2);
        std::memcpy(&m16, params + g * 4 + 2, 2);
        const float s = fp16_to_f32(s16), m = fp16_to_f32(m16);
        const uint8_t* qs = src + g * (kKvInt4Group / 2);
        float* o = out + g * kKvInt4Group;
        for (int j = 0; j < kKvInt4Group / 2; ++j) {
          o[j] = s * (float)(qs[j] & 15) + m;
          o[j + 16] = s * (float)(qs[j] >> 4) + m;
        }
      }
      return;
    }
  }
}

}  // namespace frugal::cpu
