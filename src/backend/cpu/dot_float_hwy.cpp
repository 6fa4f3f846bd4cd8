// Float-activation row dots and row dequantization for every weight dtype, compiled once per
// SIMD target (hwy_targets.h). Weights are decoded in registers and multiplied with float32 x;
// accumulation is float32 in several vector accumulators. The decoders are shared by the dot and
// the dequantizer, and give exactly the values of the scalar reference (quant/ggml_blocks.h,
// quant/row_blocks.h):
//   F16 / E5M2: hardware (or Highway's exact software) fp16 -> f32; an E5M2 byte is the top
//     byte of an fp16.
//   E4M3: rebuilt as the fp16 with the same sign, exponent and mantissa bits (exponent bias 15
//     instead of 7, so the value is 2^-8 times the E4M3 value; the factor is exact and folded
//     into the row scale); codes 0x7F/0xFF become NaN as in the codec.
//   BF16: shift into the top half of an f32.
//   Q4_*, I4_*: w = fma(q, d, m) with m = -8d for the symmetric ones (d*q is exact in f32).
#include "backend/cpu/hwy_targets.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/matvec_kernels.h"
#include "base/fp8.h"
#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "quant/row_blocks.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/dot_float_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "backend/cpu/kernel_common-inl.h"

HWY_BEFORE_NAMESPACE();
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Weights stream from memory once per token: prefetch this far ahead of the block being read
// (past the end of the matrix is harmless: prefetches never fault).
constexpr int kPrefetchBytes = 1024;

HWY_INLINE float ReduceSum(DF df, VF v) { return hn::GetLane(hn::SumOfLanes(df, v)); }

HWY_INLINE float LoadScale(const void* p) {
  float s;
  std::memcpy(&s, p, sizeof s);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Element decoders: Lanes(df) weights starting at element i of a row body.

struct DecodeF32 {
  static constexpr int kBytes = 4;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    return hn::LoadU(df, reinterpret_cast<const float*>(p) + i);
  }
  static float Scalar(const uint8_t* p, int64_t i) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
};

struct DecodeF16 {
  static constexpr int kBytes = 2;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    const hn::Rebind<uint16_t, DF> d16;
    return PromoteHalf(df, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p) + i));
  }
  static float Scalar(const uint8_t* p, int64_t i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return fp16_to_f32(h);
  }
};

struct DecodeBF16 {
  static constexpr int kBytes = 2;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    const hn::Rebind<uint16_t, DF> d16;
    const hn::RebindToUnsigned<DF> du32;
    const auto u = hn::PromoteTo(du32, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p) + i));
    return hn::BitCast(df, hn::ShiftLeft<16>(u));
  }
  static float Scalar(const uint8_t* p, int64_t i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return bf16_to_f32(h);
  }
};

struct DecodeI8 {
  static constexpr int kBytes = 1;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    const hn::Rebind<int8_t, DF> d8;
    const hn::RebindToSigned<DF> di32;
    return hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p) + i)));
  }
  static float Scalar(const uint8_t* p, int64_t i) { return (float)(int8_t)p[i]; }
};

// E5M2: the byte is the top half of an fp16.
struct DecodeE5M2 {
  static constexpr int kBytes = 1;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    const hn::Rebind<uint8_t, DF> d8;
    const hn::Rebind<uint16_t, DF> d16;
    return PromoteHalf(df, hn::ShiftLeft<8>(hn::PromoteTo(d16, hn::LoadU(d8, p + i))));
  }
  static float Scalar(const uint8_t* p, int64_t i) { return fp8_e5m2_to_float(p[i]); }
};

// E4M3 as 2^-8 times its value (see the file comment); multiply the result by 256.
struct DecodeE4M3 {
  static constexpr int kBytes = 1;
  HWY_INLINE VF operator()(DF df, const uint8_t* p, int64_t i) const {
    const hn::Rebind<uint8_t, DF> d8;
    const hn::Rebind<uint16_t, DF> d16;
    const auto c = hn::PromoteTo(d16, hn::LoadU(d8, p + i));
    const auto mag = hn::And(c, hn::Set(d16, 0x7F));
    const auto sign = hn::ShiftLeft<8>(hn::And(c, hn::Set(d16, 0x80)));
    auto h = hn::Or(sign, hn::ShiftLeft<7>(mag));
    h = hn::IfThenElse(hn::Eq(mag, hn::Set(d16, 0x7F)), hn::Or(sign, hn::Set(d16, 0x7E00)), h);
    return PromoteHalf(df, h);
  }
  static float Scalar(const uint8_t* p, int64_t i) { return fp8_e4m3_to_float(p[i]) * (1.0f / 256); }
};

// ---------------------------------------------------------------------------------------------
// Element-wise rows (plain floats, and the *_ROW dtypes after their scale): any n.

template <class Decode>
HWY_INLINE float DotElems(const uint8_t* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t n) {
  const DF df;
  const Decode dec;
  const int64_t N = (int64_t)hn::Lanes(df);
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    hwy::Prefetch(w + (i * Decode::kBytes + kPrefetchBytes));
    a0 = hn::MulAdd(dec(df, w, i), hn::LoadU(df, x + i), a0);
    a1 = hn::MulAdd(dec(df, w, i + N), hn::LoadU(df, x + i + N), a1);
    a2 = hn::MulAdd(dec(df, w, i + 2 * N), hn::LoadU(df, x + i + 2 * N), a2);
    a3 = hn::MulAdd(dec(df, w, i + 3 * N), hn::LoadU(df, x + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(dec(df, w, i), hn::LoadU(df, x + i), a0);
  float s = ReduceSum(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)));
  for (; i < n; ++i) s += Decode::Scalar(w, i) * x[i];
  return s;
}

template <class Decode>
HWY_INLINE void DequantElems(const uint8_t* HWY_RESTRICT w, float scale, float* HWY_RESTRICT y,
                             int64_t n) {
  const DF df;
  const Decode dec;
  const int64_t N = (int64_t)hn::Lanes(df);
  const VF vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(dec(df, w, i), vs), df, y + i);
  for (; i < n; ++i) y[i] = Decode::Scalar(w, i) * scale;
}

float DotF32(const void* row, const float* x, int64_t n) {
  return DotElems<DecodeF32>(static_cast<const uint8_t*>(row), x, n);
}
float DotF16(const void* row, const float* x, int64_t n) {
  return DotElems<DecodeF16>(static_cast<const uint8_t*>(row), x, n);
}
float DotBF16(const void* row, const float* x, int64_t n) {
  return DotElems<DecodeBF16>(static_cast<const uint8_t*>(row), x, n);
}
float DotI8Row(const void* row, const float* x, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  return LoadScale(r) * DotElems<DecodeI8>(r + 4, x, n);
}
float DotE4M3Row(const void* row, const float* x, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  return LoadScale(r) * (256.0f * DotElems<DecodeE4M3>(r + 4, x, n));
}
float DotE5M2Row(const void* row, const float* x, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  return LoadScale(r) * DotElems<DecodeE5M2>(r + 4, x, n);
}

void DequantF32(const void* row, float* y, int64_t n) { std::memcpy(y, row, (size_t)n * 4); }
void DequantF16(const void* row, float* y, int64_t n) {
  DequantElems<DecodeF16>(static_cast<const uint8_t*>(row), 1.0f, y, n);
}
void DequantBF16(const void* row, float* y, int64_t n) {
  DequantElems<DecodeBF16>(static_cast<const uint8_t*>(row), 1.0f, y, n);
}
void DequantI8Row(const void* row, float* y, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  DequantElems<DecodeI8>(r + 4, LoadScale(r), y, n);
}
void DequantE5M2Row(const void* row, float* y, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  DequantElems<DecodeE5M2>(r + 4, LoadScale(r), y, n);
}
// (value * 2^-8) * 256 is exact, then one rounding in * s: the reference's s * value.
void DequantE4M3Row(const void* row, float* y, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  DequantElems<DecodeE4M3>(r + 4, 256.0f, y, n);
  const float s = LoadScale(r);
  const DF df;
  const int64_t N = (int64_t)hn::Lanes(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, y + i), hn::Set(df, s)), df, y + i);
  for (; i < n; ++i) y[i] *= s;
}

// ---------------------------------------------------------------------------------------------
// Blocks of G weights with an fp16 scale: Q8_0 (int8), and 4-bit with fp16 d [, fp16 m] where
// byte j holds element j (low nibble) and element j + G/2 (high nibble).

// fp16 values dh[0..n) -> f32 (vectorized: no per-block scalar conversions on the hot path).
HWY_INLINE void HalfsToFloats(const uint16_t* HWY_RESTRICT dh, int64_t n, float* HWY_RESTRICT out) {
  const DF df;
  const hn::Rebind<uint16_t, DF> d16;
  const int64_t N = (int64_t)hn::Lanes(df);
  int64_t k = 0;
  for (; k + N <= n; k += N) hn::StoreU(PromoteHalf(df, hn::LoadU(d16, dh + k)), df, out + k);
  for (; k < n; ++k) out[k] = HalfToFloat(dh[k]);
}

HWY_INLINE float F16Scalar(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfToFloat(h);
}

// q of Lanes(df) bytes starting at p, as floats: low or high nibbles.
HWY_INLINE VF NibblesLo(DF df, const uint8_t* p) {
  const hn::Rebind<uint8_t, DF> d8;
  const hn::RebindToSigned<DF> di32;
  const auto b = hn::And(hn::LoadU(d8, p), hn::Set(d8, 0x0F));
  return hn::ConvertTo(df, hn::BitCast(di32, hn::PromoteTo(hn::RebindToUnsigned<DF>(), b)));
}
HWY_INLINE VF NibblesHi(DF df, const uint8_t* p) {
  const hn::Rebind<uint8_t, DF> d8;
  const hn::RebindToSigned<DF> di32;
  const auto b = hn::ShiftRight<4>(hn::LoadU(d8, p));
  return hn::ConvertTo(df, hn::BitCast(di32, hn::PromoteTo(hn::RebindToUnsigned<DF>(), b)));
}

template <int G, bool kAsym>
struct Q4Layout {
  static constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  static constexpr int kQsOffset = kAsym ? 4 : 2;
  // d and m of the block (m = -8d for symmetric blocks: w = d*q + m).
  static HWY_INLINE void Scales(const uint8_t* blk, float* d, float* m) {
    *d = F16Scalar(blk);
    *m = kAsym ? F16Scalar(blk + 2) : -8.0f * *d;
  }
};
static_assert(sizeof(BlockQ4_0) == sizeof(BlockI4Sym<32>) && sizeof(BlockQ4_1) == sizeof(BlockI4Asym<32>));

// The row's d (and m) per group, gathered and converted first (GatherHalfScales: entry
// g*G/32 belongs to group g).
// The row's d (and m) per group, gathered and converted first (GatherHalfScales: entry
// g*G/32 belongs to group g). (Four accumulators instead of two measured slower here.)
template <int G, bool kAsym>
float DotQ4(const void* row, const float* HWY_RESTRICT x, int64_t n) {
  using L = Q4Layout<G, kAsym>;
  constexpr int kSub = G / 32;
  const DF df;
  const int64_t N = (int64_t)hn::Lanes(df);
  const uint8_t* w = static_cast<const uint8_t*>(row);
  const RowScratch sc = GetRowScratch(n / 32);
  GatherHalfScales<G, L::kBytes, kAsym>(w, n, sc.dh, sc.mh);
  HalfsToFloats(sc.dh, n / 32, sc.f0);
  if (kAsym) HalfsToFloats(sc.mh, n / 32, sc.f1);
  VF acc[2] = {hn::Zero(df), hn::Zero(df)};
  for (int64_t b = 0; b < n / G; ++b) {
    const uint8_t* blk = w + b * L::kBytes;
    hwy::Prefetch(blk + kPrefetchBytes);
    const float d = sc.f0[b * kSub];
    const VF vd = hn::Set(df, d), vm = hn::Set(df, kAsym ? sc.f1[b * kSub] : -8.0f * d);
    const uint8_t* qs = blk + L::kQsOffset;
    const float* xb = x + b * G;
    for (int64_t j = 0; j < G / 2; j += N) {
      acc[0] = hn::MulAdd(hn::MulAdd(NibblesLo(df, qs + j), vd, vm), hn::LoadU(df, xb + j), acc[0]);
      acc[1] = hn::MulAdd(hn::MulAdd(NibblesHi(df, qs + j), vd, vm), hn::LoadU(df, xb + G / 2 + j),
                          acc[1]);
    }
  }
  return ReduceSum(df, hn::Add(acc[0], acc[1]));
}

template <int G, bool kAsym>
void DequantQ4(const void* row, float* HWY_RESTRICT y, int64_t n) {
  using L = Q4Layout<G, kAsym>;
  const DF df;
  const int64_t N = (int64_t)hn::Lanes(df);
  const uint8_t* w = static_cast<const uint8_t*>(row);
  for (int64_t b = 0; b < n / G; ++b) {
    const uint8_t* blk = w + b * L::kBytes;
    float d, m;
    L::Scales(blk, &d, &m);
    const VF vd = hn::Set(df, d), vm = hn::Set(df, m);
    const uint8_t* qs = blk + L::kQsOffset;
    float* yb = y + b * G;
    for (int64_t j = 0; j < G / 2; j += N) {
      hn::StoreU(hn::MulAdd(NibblesLo(df, qs + j), vd, vm), df, yb + j);
      hn::StoreU(hn::MulAdd(NibblesHi(df, qs + j), vd, vm), df, yb + G / 2 + j);
    }
  }
}

// Q8_0: s = sum(q*x) per block, then acc += d*s (two accumulators over even/odd blocks).
float DotQ8_0(const void* row, const float* HWY_RESTRICT x, int64_t n) {
  const DF df;
  const DecodeI8 dec;
  const int64_t N = (int64_t)hn::Lanes(df);
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(row);
  const RowScratch sc = GetRowScratch(n / kQK);
  GatherHalfScales<kQK, (int)sizeof(BlockQ8_0), false>(static_cast<const uint8_t*>(row), n, sc.dh, nullptr);
  HalfsToFloats(sc.dh, n / kQK, sc.f0);
  VF tot[2] = {hn::Zero(df), hn::Zero(df)};
  for (int64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* qs = reinterpret_cast<const uint8_t*>(w[b].qs);
    hwy::Prefetch(qs + kPrefetchBytes);
    const float* xb = x + b * kQK;
    VF s = hn::Mul(dec(df, qs, 0), hn::LoadU(df, xb));
    for (int64_t j = N; j < kQK; j += N) s = hn::MulAdd(dec(df, qs, j), hn::LoadU(df, xb + j), s);
    tot[b & 1] = hn::MulAdd(hn::Set(df, sc.f0[b]), s, tot[b & 1]);
  }
  return ReduceSum(df, hn::Add(tot[0], tot[1]));
}

void DequantQ8_0(const void* row, float* HWY_RESTRICT y, int64_t n) {
  const DF df;
  const DecodeI8 dec;
  const int64_t N = (int64_t)hn::Lanes(df);
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(row);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const VF vd = hn::Set(df, HalfToFloat(w[b].d));
    const uint8_t* qs = reinterpret_cast<const uint8_t*>(w[b].qs);
    for (int64_t j = 0; j < kQK; j += N) hn::StoreU(hn::Mul(dec(df, qs, j), vd), df, y + b * kQK + j);
  }
}

void FillFloatKernels(KernelSet* ks) {
  auto set = [&](DType t, RowDotF32 dot, DequantRow deq) {
    ks->dot_f32[(int)t] = dot;
    ks->dequant[(int)t] = deq;
  };
  set(DType::F32, DotF32, DequantF32);
  set(DType::F16, DotF16, DequantF16);
  set(DType::BF16, DotBF16, DequantBF16);
  set(DType::Q8_0, DotQ8_0, DequantQ8_0);
  set(DType::Q4_0, DotQ4<32, false>, DequantQ4<32, false>);
  set(DType::Q4_1, DotQ4<32, true>, DequantQ4<32, true>);
  set(DType::I4_G64, DotQ4<64, false>, DequantQ4<64, false>);
  set(DType::I4_G64A, DotQ4<64, true>, DequantQ4<64, true>);
  set(DType::I4_G128, DotQ4<128, false>, DequantQ4<128, false>);
  set(DType::I4_G128A, DotQ4<128, true>, DequantQ4<128, true>);
  set(DType::I8_ROW, DotI8Row, DequantI8Row);
  set(DType::E4M3_ROW, DotE4M3Row, DequantE4M3Row);
  set(DType::E5M2_ROW, DotE5M2Row, DequantE5M2Row);
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
namespace frugal::cpu::kern {

int64_t float_kernel_targets() { return HWY_TARGETS; }

bool fill_float_kernels(int64_t target, KernelSet* ks) {
  FRUGAL_HWY_DISPATCH(target, FillFloatKernels(ks))
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
