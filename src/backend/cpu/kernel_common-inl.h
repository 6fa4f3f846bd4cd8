// Private to backend/cpu: per-target helpers shared by the *_hwy.cpp kernel files (Highway's
// "-inl.h" pattern: included once per target after hwy/highway.h, so no #pragma once).
#if defined(FRUGAL_BACKEND_CPU_KERNEL_COMMON_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FRUGAL_BACKEND_CPU_KERNEL_COMMON_INL_H_
#undef FRUGAL_BACKEND_CPU_KERNEL_COMMON_INL_H_
#else
#define FRUGAL_BACKEND_CPU_KERNEL_COMMON_INL_H_
#endif

#include <cstring>
#include <vector>

#include "base/half.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// fp16 -> f32 of one scale: F16C on the x86 SIMD targets, the exact software conversion
// otherwise.
HWY_INLINE float HalfToFloat(uint16_t h) {
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  return _cvtsh_ss(h);
#else
  return fp16_to_f32(h);
#endif
}

HWY_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// fp16 bit patterns -> f32. The scalar target converts in software with frugal's exact
// conversion (Highway 1.0.3's software PromoteTo turns inf/NaN patterns into finite numbers).
template <class DF>
HWY_INLINE hn::Vec<DF> PromoteHalf(DF df, hn::Vec<hn::Rebind<uint16_t, DF>> bits) {
#if HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
  const hn::Rebind<uint16_t, DF> d16;
  constexpr size_t kMax = 64 / sizeof(float);
  static_assert(HWY_LANES(float) <= kMax);
  HWY_ALIGN uint16_t in[kMax];
  HWY_ALIGN float out[kMax];
  hn::Store(bits, d16, in);
  for (size_t j = 0; j < hn::Lanes(df); ++j) out[j] = fp16_to_f32(in[j]);
  return hn::Load(df, out);
#else
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::BitCast(dh, bits));
#endif
}

// The fp16 scale d (and offset m) of every group of G weights of a row, repeated once per
// 32-element sub-block: dh[k] is the d of elements [32k, 32k+32). Scalar loads and stores only
// (no shuffles); the conversion to float happens vectorized afterwards.
template <int G, int kBlockBytes, bool kAsym>
HWY_INLINE void GatherHalfScales(const uint8_t* HWY_RESTRICT w, int64_t n, uint16_t* HWY_RESTRICT dh,
                                 uint16_t* HWY_RESTRICT mh) {
  constexpr int kSub = G / 32;
  for (int64_t g = 0; g < n / G; ++g) {
    const uint8_t* blk = w + g * kBlockBytes;
    const uint16_t d = LoadU16(blk);
    const uint16_t m = kAsym ? LoadU16(blk + 2) : 0;
    for (int k = 0; k < kSub; ++k) {
      dh[g * kSub + k] = d;
      if (kAsym) mh[g * kSub + k] = m;
    }
  }
}

// Growable per-thread scratch for the per-row scale tables.
struct RowScratch {
  uint16_t* dh;
  uint16_t* mh;
  float* f0;
  float* f1;
};
HWY_INLINE RowScratch GetRowScratch(int64_t nb) {
  struct Bufs {
    std::vector<uint16_t> dh, mh;
    std::vector<float> f0, f1;
  };
  thread_local Bufs b;
  const size_t need = (size_t)nb + 64;  // slack: vector loops may read whole vectors
  if (b.dh.size() < need) {
    b.dh.assign(need, 0);
    b.mh.assign(need, 0);
    b.f0.assign(need, 0.0f);
    b.f1.assign(need, 0.0f);
  }
  return {b.dh.data(), b.mh.data(), b.f0.data(), b.f1.data()};
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#endif  // FRUGAL_BACKEND_CPU_KERNEL_COMMON_INL_H_
