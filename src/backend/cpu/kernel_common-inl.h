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

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Software prefetch for a weight stream read once, front to back (the decode tiles, whose
// matrix is one contiguous run of tiles): called once per 64-byte line as it is consumed, it
// asks for the line 1 KiB ahead into L1 (T0) and the line 3 KiB ahead into L2 (T1). One linear
// stream, so the next tile's scales are covered by the run-ahead from the end of this one.
// Measured (2026-11-30 session 7, dev VM, AVX2, GB/s from DRAM on huge pages; the study is
// bench/prefetch_stream_bench.cpp, a loop with this kernel's ops per 32 bytes, 2 / 1 threads,
// read 31-32 / 17): T0 1K + T1 3K 27.8-29.2 / 14.5-14.6; T1 16-17 KiB alone (the previous rule,
// one tile ahead) 25.2-26.0 / 13.2-13.6; T0 1K alone 26.4-27.3 / 12.7-13.0; T1 3K alone
// 27.8-28.2 / 14.3-14.4; none 21.8-23.4 / 11.4-11.7. Distances 4 KiB apart from the loads or
// from each other lose (T0 4K: 10.9-11.1 at 1 thread; T0 1K + T1 5K 24.7-26.3 / 13.2-13.3),
// so 1K / 3K, not 1K / 5K.
// In the kernels, 2 threads, old rule -> this (frugal_bench_kernels, 14336x4096 / 8192x2048):
// Q8_0 22.1-22.9 -> 24.4-26.6, I4_G128 20.2-22.1 -> 24.2-25.4 (read 28-30); 1 thread Q8_0
// 12.7-13.2 -> 14.3-14.8 (read 16.0), I4_G128 11.5-12.1 -> 12.5-13.5; Q4_0 +1-4%;
// AVX3_DL 0-7% faster. End to end (`frugal bench --dummy llama-3.2-1b --dummy-layers 8 -p 0
// -n 48 -t 2 --reps 3 --cpu-isa avx2`, old and new binaries alternating): q8_0 29.6 / 30.5 ->
// 33.1 / 33.3 tok/s, q4_0 58.2 / 59.0 -> 59.2 / 59.4, i4_g128 62.7 / 64.3 -> 67.2 / 67.6.
HWY_INLINE void PrefetchStreamLine(const void* line) {
  const char* p = static_cast<const char*>(line);
  _mm_prefetch(p + 1024, _MM_HINT_T0);
  _mm_prefetch(p + 3072, _MM_HINT_T1);
}
#endif

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
