// W8A8 kernels (see w8a8_kernels.h): per-token int8 quantization of activations and the I8_ROW
// x int8-token integer dot product, compiled once per SIMD target (hwy_targets.h).
#include "backend/cpu/hwy_targets.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/w8a8_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/w8a8_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
// Highway 1.0.3's AVX3_DL attribute string lacks avx512vnni although its CPU check requires it.
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE int8_t QuantOne(float x, float inv) {
  const float r = std::nearbyint(x * inv);  // default rounding mode: ties to even, as NearestInt
  return (int8_t)std::clamp(r, -127.0f, 127.0f);
}

float QuantizeTokenImpl(const float* HWY_RESTRICT x, int64_t n, int8_t* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const int64_t N = (int64_t)hn::Lanes(df);
  auto vmax = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + i)));
  float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float inv = d != 0.0f ? 1.0f / d : 0.0f;
  const auto vinv = hn::Set(df, inv);
  const auto lo = hn::Set(di32, -127), hi = hn::Set(di32, 127);
  for (i = 0; i + N <= n; i += N) {
    const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), vinv));
    hn::StoreU(hn::DemoteTo(di8, hn::Min(hn::Max(qi, lo), hi)), di8, q + i);
  }
  for (; i < n; ++i) q[i] = QuantOne(x[i], inv);
  return d;
}

// Exact sum of w[i]*x[i] for i in [b, e) in plain integers (tails and the scalar target).
HWY_INLINE int64_t DotTail(const int8_t* HWY_RESTRICT w, const int8_t* HWY_RESTRICT x, int64_t b, int64_t e) {
  int32_t s = 0;  // e - b < kI8ChunkCols
  for (int64_t i = b; i < e; ++i) s += (int32_t)w[i] * (int32_t)x[i];
  return s;
}

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// Software prefetch of the weight stream ahead of the loads (decode reads each weight once from
// DRAM; as in dot_q8_hwy.cpp, this doubled the DRAM-bound matvec rate on the dev VM).
constexpr int kPrefetchBytes = 1024;

HWY_INLINE int32_t HSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// acc += per-lane sums of 4 adjacent u8 x s8 products (exact: no saturation for |s| <= 127).
HWY_INLINE __m256i DotAcc(__m256i acc, __m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

template <int NT>
void DotTokens(const int8_t* HWY_RESTRICT w, const int8_t* const* xq, int64_t n, int64_t* out) {
  for (int t = 0; t < NT; ++t) out[t] = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kI8ChunkCols) {
    const int64_t c1 = std::min(n, c0 + kI8ChunkCols);
    __m256i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_si256();
    int64_t i = c0;
    for (; i + 32 <= c1; i += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(w + i) + kPrefetchBytes, _MM_HINT_T0);
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
      const __m256i aw = _mm256_sign_epi8(wv, wv);  // |w| as u8 (-128 -> 128)
      for (int t = 0; t < NT; ++t) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[t] + i));
        acc[t] = DotAcc(acc[t], aw, _mm256_sign_epi8(xv, wv));  // x * sign(w)
      }
    }
    for (int t = 0; t < NT; ++t) out[t] += (int64_t)HSumI32(acc[t]) + DotTail(w, xq[t], i, c1);
  }
}

// One token (decode): four independent accumulators over 128 bytes per step (a single chain would
// be bound by the dot instruction's latency, not by the weight stream).
template <>
void DotTokens<1>(const int8_t* HWY_RESTRICT w, const int8_t* const* xq, int64_t n, int64_t* out) {
  const int8_t* HWY_RESTRICT x = xq[0];
  auto step = [&](__m256i acc, int64_t i) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    return DotAcc(acc, _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
  };
  out[0] = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kI8ChunkCols) {
    const int64_t c1 = std::min(n, c0 + kI8ChunkCols);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = c0;
    for (; i + 128 <= c1; i += 128) {
      _mm_prefetch(reinterpret_cast<const char*>(w + i) + kPrefetchBytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + i) + kPrefetchBytes + 64, _MM_HINT_T0);
      a0 = step(a0, i);
      a1 = step(a1, i + 32);
      a2 = step(a2, i + 64);
      a3 = step(a3, i + 96);
    }
    for (; i + 32 <= c1; i += 32) a0 = step(a0, i);
    const __m256i a = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    out[0] += (int64_t)HSumI32(a) + DotTail(w, x, i, c1);
  }
}

#else  // the scalar target

template <int NT>
void DotTokens(const int8_t* HWY_RESTRICT w, const int8_t* const* xq, int64_t n, int64_t* out) {
  for (int t = 0; t < NT; ++t) {
    out[t] = 0;
    for (int64_t c0 = 0; c0 < n; c0 += kI8ChunkCols) out[t] += DotTail(w, xq[t], c0, std::min(n, c0 + kI8ChunkCols));
  }
}

#endif

void DotI8TokensImpl(const int8_t* w, const int8_t* const* xq, int nt, int64_t n, int64_t* out) {
  switch (nt) {
    case 1: return DotTokens<1>(w, xq, n, out);
    case 2: return DotTokens<2>(w, xq, n, out);
    case 3: return DotTokens<3>(w, xq, n, out);
    default: return DotTokens<4>(w, xq, n, out);
  }
}

void FillW8A8(W8A8KernelSet* ks) {
  ks->quantize = QuantizeTokenImpl;
  ks->dot = DotI8TokensImpl;
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
#include "hwy/targets.h"

namespace frugal::cpu::kern {

namespace {

bool fill_w8a8(int64_t target, W8A8KernelSet* ks) {
  FRUGAL_HWY_DISPATCH(target, FillW8A8(ks))
}

}  // namespace

const std::vector<W8A8KernelSet>& all_w8a8_kernel_sets() {
  static const std::vector<W8A8KernelSet> sets = [] {
    std::vector<W8A8KernelSet> v;
    const int64_t usable = hwy::SupportedTargets() & HWY_TARGETS;
    for (int64_t bits = usable; bits != 0; bits &= bits - 1) {
      const int64_t t = bits & -bits;  // Highway: a lower bit is a better target
      W8A8KernelSet ks;
      ks.target = t;
      ks.name = hwy::TargetName(t);
      if (fill_w8a8(t, &ks)) v.push_back(ks);
    }
    return v;
  }();
  return sets;
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
