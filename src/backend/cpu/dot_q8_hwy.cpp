// Int8-activation path (see matvec_kernels.h): quantize x to ActQ8 once per matvec, then integer
// dot products per 32-element block for the integer weight formats, compiled once per SIMD
// target (hwy_targets.h).
//
// Per x block k (32 elements) inside a weight group with scale d (and offset m):
//   sum_i w_i x_i ~= (d * dx_k) * sum_i q_i xq_i  +  m * sx_k        (sx_k = dx_k * sum_i xq_i)
// Per row, a first pass gathers the groups' fp16 d (and m) per block and converts them with
// vector ops: scale[k] = d * dx_k, and the offset term sum_k m * sx_k is one short vector dot
// (m = -8d for symmetric 4-bit blocks, w = d(q-8)). The main loop then per block only does the
// integer dot product and acc += float(isum) * scale[k] (a broadcast load). No shuffles on the
// hot path: fp16 scales never go through scalar conversions and broadcasts per block.
// Integer sums per block are 8 int32 lanes of 4 bytes: x86 AVX2 vpmaddubsw (u8 x s8 -> s16
// pairs) then vpmaddwd (-> s32), or one AVX-512 VNNI vpdpbusd (Highway 1.0.3 has no op for
// these, hence intrinsics guarded per target). Signed weights (Q8_0, I8_ROW) use |w| (u8) x
// sign(x, w) (s8): |w| <= 128 and |xq| <= 127 keep vpmaddubsw's s16 pair sums below 32767.
// The scalar target computes the same sums with plain integer loops.
#include "backend/cpu/hwy_targets.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/matvec_kernels.h"
#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "quant/row_blocks.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/dot_q8_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "backend/cpu/kernel_common-inl.h"

HWY_BEFORE_NAMESPACE();
// Highway 1.0.3's AVX3_DL attribute string lacks avx512vnni although its CPU check requires it.
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kPrefetchBytes = 1024;

// At most 8 lanes: the integer loop is 256-bit, and the per-row scale pass stays 256-bit too.
using DF = hn::CappedTag<float, 8>;
using VF = hn::Vec<DF>;

HWY_INLINE float F16At(const uint8_t* p) { return HalfToFloat(LoadU16(p)); }

// ---------------------------------------------------------------------------------------------
// Quantizing x (every target): per block amax, d = amax/127, q = NearestInt(x * (1/d)).

void QuantizeActImpl(const float* HWY_RESTRICT x, int64_t n, ActQ8* out) {
  out->resize(n);
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const int64_t N = (int64_t)hn::Lanes(df);
  HWY_ALIGN float pad[kActBlock];
  for (int64_t k = 0; k < out->nb; ++k) {
    const float* xb = x + k * kActBlock;
    if ((k + 1) * kActBlock > n) {  // last, partial block: zero padded copy
      const int64_t rest = n - k * kActBlock;
      for (int64_t i = 0; i < kActBlock; ++i) pad[i] = i < rest ? xb[i] : 0.0f;
      xb = pad;
    }
    auto vmax = hn::Zero(df);
    for (int64_t j = 0; j < kActBlock; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float d = amax / 127.0f;
    const auto vid = hn::Set(df, d != 0.0f ? 1.0f / d : 0.0f);
    int8_t* q = out->q.data() + k * kActBlock;
    for (int64_t j = 0; j < kActBlock; j += N) {
      const auto qi = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), vid));
      hn::StoreU(hn::DemoteTo(di8, hn::Min(hn::Max(qi, hn::Set(di32, -127)), hn::Set(di32, 127))), di8,
                 q + j);
    }
    out->d[k] = d;
    int32_t qsum = 0;
    for (int j = 0; j < kActBlock; ++j) qsum += q[j];
    out->sx[k] = d * (float)qsum;
  }
}

// Per row: scale[k] = d_k * dx_k for every x block k; returns the offset term sum_k m_k * sx_k
// (mh given: asymmetric m; else moff * d_k, e.g. -8d for symmetric 4-bit, 0 for none).
HWY_INLINE float BlockScales(const uint16_t* HWY_RESTRICT dh, const uint16_t* HWY_RESTRICT mh,
                             float moff, const ActQ8& xa, int64_t nb, float* HWY_RESTRICT scale) {
  const DF df;
  const hn::Rebind<uint16_t, DF> d16;
  const int64_t N = (int64_t)hn::Lanes(df);
  VF macc = hn::Zero(df);
  int64_t k = 0;
  for (; k + N <= nb; k += N) {
    const VF d = PromoteHalf(df, hn::LoadU(d16, dh + k));
    hn::StoreU(hn::Mul(d, hn::LoadU(df, xa.d.data() + k)), df, scale + k);
    const VF m = mh != nullptr ? PromoteHalf(df, hn::LoadU(d16, mh + k)) : d;
    macc = hn::MulAdd(m, hn::LoadU(df, xa.sx.data() + k), macc);
  }
  float mt = hn::GetLane(hn::SumOfLanes(df, macc));
  for (; k < nb; ++k) {
    const float d = HalfToFloat(dh[k]);
    scale[k] = d * xa.d[(size_t)k];
    mt += (mh != nullptr ? HalfToFloat(mh[k]) : d) * xa.sx[(size_t)k];
  }
  return mh != nullptr ? mt : moff * mt;
}

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// ---------------------------------------------------------------------------------------------
// x86: one x block = one 256-bit vector of 32 bytes.

HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lane j: sum over bytes 4j..4j+3 of u[i] * s[i] (u unsigned, s signed), as float.
HWY_INLINE __m256 DotU8S8(__m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s));
#else
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
// Both signed: |a| * sign(b, a).
HWY_INLINE __m256 DotS8S8(__m256i a, __m256i b) {
  return DotU8S8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

HWY_INLINE __m256i LoadBlock(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 bytes of nibbles -> 32 bytes [low nibbles | high nibbles] (a 32-element block in order),
// without cross-lane shuffles: a 128-bit broadcast load, then the upper half shifted.
HWY_INLINE __m256i NibblesToBytes16(const uint8_t* qs) {
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
#if HWY_TARGET == HWY_AVX2
  const __m256i both = _mm256_blend_epi32(raw, _mm256_srli_epi16(raw, 4), 0xF0);
#else
  const __m256i both = _mm256_srlv_epi16(raw, _mm256_setr_epi64x(0, 0, 0x0004000400040004LL,
                                                                  0x0004000400040004LL));
#endif
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Runs acc += product(k) * scale[k] over x blocks [0, nb), four blocks per step into four
// accumulators (the FMA latency would otherwise bound the loop).
template <class Product>
HWY_INLINE float ScaledBlockSum(int64_t nb, const float* HWY_RESTRICT scale, const Product& product) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= nb; k += 4) {
    a0 = _mm256_fmadd_ps(product(k), _mm256_set1_ps(scale[k]), a0);
    a1 = _mm256_fmadd_ps(product(k + 1), _mm256_set1_ps(scale[k + 1]), a1);
    a2 = _mm256_fmadd_ps(product(k + 2), _mm256_set1_ps(scale[k + 2]), a2);
    a3 = _mm256_fmadd_ps(product(k + 3), _mm256_set1_ps(scale[k + 3]), a3);
  }
  for (; k < nb; ++k) a0 = _mm256_fmadd_ps(product(k), _mm256_set1_ps(scale[k]), a0);
  return HSum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// 4-bit groups of G. x block k lies in group g = k / (G/32), sub-block j = k % (G/32): for G = 32
// the 16 qs bytes give [low | high] nibbles; for G >= 64 the 32-byte chunk j % (G/64) of qs holds
// it in its low (j < G/64) or high nibbles.
template <int G, bool kAsym>
float DotQ4Q8(const void* row, const ActQ8& xa, int64_t n) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  constexpr int kSub = G / kActBlock;
  const uint8_t* w = static_cast<const uint8_t*>(row);
  const int64_t nb = n / kActBlock;
  const RowScratch sc = GetRowScratch(nb);
  GatherHalfScales<G, kBytes, kAsym>(w, n, sc.dh, sc.mh);
  const float offset = BlockScales(sc.dh, kAsym ? sc.mh : nullptr, -8.0f, xa, nb, sc.f0);
  const int8_t* xq = xa.q.data();
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  auto product = [&](int64_t k) {
    const int64_t g = k / kSub;
    const uint8_t* qs = w + g * kBytes + kQs;
    const __m256i xk = LoadBlock(xq + k * kActBlock);
    if constexpr (G == 32) {
      _mm_prefetch(reinterpret_cast<const char*>(qs) + kPrefetchBytes, _MM_HINT_T0);
      return DotU8S8(NibblesToBytes16(qs), xk);
    } else {
      const int j = (int)(k % kSub);
      const __m256i raw = LoadBlock(qs + 32 * (j % (G / 64)));
      if (j == 0) _mm_prefetch(reinterpret_cast<const char*>(qs) + kPrefetchBytes, _MM_HINT_T0);
      const __m256i q = j < G / 64 ? raw : _mm256_srli_epi16(raw, 4);
      return DotU8S8(_mm256_and_si256(q, m4), xk);
    }
  };
  return ScaledBlockSum(nb, sc.f0, product) + offset;
}

float DotQ8_0Q8(const void* row, const ActQ8& xa, int64_t n) {
  const uint8_t* w = static_cast<const uint8_t*>(row);
  const int64_t nb = n / kQK;
  const RowScratch sc = GetRowScratch(nb);
  GatherHalfScales<kQK, (int)sizeof(BlockQ8_0), false>(w, n, sc.dh, nullptr);
  BlockScales(sc.dh, nullptr, 0.0f, xa, nb, sc.f0);
  auto product = [&](int64_t b) {
    const uint8_t* qs = w + b * (int64_t)sizeof(BlockQ8_0) + 2;
    _mm_prefetch(reinterpret_cast<const char*>(qs) + kPrefetchBytes, _MM_HINT_T0);
    return DotS8S8(LoadBlock(qs), LoadBlock(xa.q.data() + b * kActBlock));
  };
  return ScaledBlockSum(nb, sc.f0, product);
}

float DotI8RowQ8(const void* row, const ActQ8& xa, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  float s;
  std::memcpy(&s, r, 4);
  const int8_t* w = reinterpret_cast<const int8_t*>(r + 4);
  const int64_t nfull = n / kActBlock;
  const float* dx = xa.d.data();
  auto product = [&](int64_t b) {
    _mm_prefetch(reinterpret_cast<const char*>(w + b * kActBlock) + kPrefetchBytes, _MM_HINT_T0);
    return DotS8S8(LoadBlock(w + b * kActBlock), LoadBlock(xa.q.data() + b * kActBlock));
  };
  float tot = ScaledBlockSum(nfull, dx, product);
  if (nfull * kActBlock < n) {  // partial last block (the weight row is not padded)
    int32_t isum = 0;
    for (int64_t i = nfull * kActBlock; i < n; ++i) isum += (int32_t)w[i] * xa.q[(size_t)i];
    tot += dx[nfull] * (float)isum;
  }
  return s * tot;
}

#else  // the scalar target
// ---------------------------------------------------------------------------------------------

template <int G, bool kAsym>
float DotQ4Q8(const void* row, const ActQ8& xa, int64_t n) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  const uint8_t* w = static_cast<const uint8_t*>(row);
  float acc = 0.0f;
  for (int64_t g = 0; g < n / G; ++g) {
    const uint8_t* blk = w + g * kBytes;
    const uint8_t* qs = blk + kQs;
    float gacc = 0.0f, gs = 0.0f;
    for (int k = 0; k < G / kActBlock; ++k) {
      const int64_t xk = g * (G / kActBlock) + k;
      const int8_t* xq = xa.q.data() + xk * kActBlock;
      int32_t isum = 0, qsum = 0;
      for (int i = 0; i < kActBlock; ++i) {
        const int e = k * kActBlock + i;  // element within the group
        const int q = e < G / 2 ? (qs[e] & 15) : (qs[e - G / 2] >> 4);
        isum += q * xq[i];
        qsum += xq[i];
      }
      gacc += xa.d[(size_t)xk] * (float)isum;
      gs += xa.d[(size_t)xk] * (float)qsum;
    }
    const float d = F16At(blk);
    const float m = kAsym ? F16At(blk + 2) : -8.0f * d;
    acc += d * gacc + m * gs;
  }
  return acc;
}

float DotQ8_0Q8(const void* row, const ActQ8& xa, int64_t n) {
  const BlockQ8_0* w = static_cast<const BlockQ8_0*>(row);
  float acc = 0.0f;
  for (int64_t b = 0; b < n / kQK; ++b) {
    int32_t isum = 0;
    for (int i = 0; i < kQK; ++i) isum += (int32_t)w[b].qs[i] * xa.q[(size_t)(b * kQK + i)];
    acc += HalfToFloat(w[b].d) * xa.d[(size_t)b] * (float)isum;
  }
  return acc;
}

float DotI8RowQ8(const void* row, const ActQ8& xa, int64_t n) {
  const uint8_t* r = static_cast<const uint8_t*>(row);
  float s;
  std::memcpy(&s, r, 4);
  const int8_t* w = reinterpret_cast<const int8_t*>(r + 4);
  float acc = 0.0f;
  for (int64_t b = 0; b < xa.nb; ++b) {
    int32_t isum = 0;
    const int64_t end = std::min<int64_t>(n, (b + 1) * kActBlock);
    for (int64_t i = b * kActBlock; i < end; ++i) isum += (int32_t)w[i] * xa.q[(size_t)i];
    acc += xa.d[(size_t)b] * (float)isum;
  }
  return s * acc;
}

#endif

void FillQ8Kernels(KernelSet* ks) {
  ks->quantize_act = QuantizeActImpl;
  ks->dot_q8[(int)DType::Q8_0] = DotQ8_0Q8;
  ks->dot_q8[(int)DType::Q4_0] = DotQ4Q8<32, false>;
  ks->dot_q8[(int)DType::Q4_1] = DotQ4Q8<32, true>;
  ks->dot_q8[(int)DType::I4_G64] = DotQ4Q8<64, false>;
  ks->dot_q8[(int)DType::I4_G64A] = DotQ4Q8<64, true>;
  ks->dot_q8[(int)DType::I4_G128] = DotQ4Q8<128, false>;
  ks->dot_q8[(int)DType::I4_G128A] = DotQ4Q8<128, true>;
  ks->dot_q8[(int)DType::I8_ROW] = DotI8RowQ8;
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace frugal::cpu::kern {

int64_t q8_kernel_targets() { return HWY_TARGETS; }

bool fill_q8_kernels(int64_t target, KernelSet* ks) {
  switch (target) {
#define FRUGAL_FILL(TGT, NS) \
  case TGT: NS::FillQ8Kernels(ks); return true;
#if HWY_TARGETS & HWY_AVX3_DL
    FRUGAL_FILL(HWY_AVX3_DL, N_AVX3_DL)
#endif
#if HWY_TARGETS & HWY_AVX3
    FRUGAL_FILL(HWY_AVX3, N_AVX3)
#endif
#if HWY_TARGETS & HWY_AVX2
    FRUGAL_FILL(HWY_AVX2, N_AVX2)
#endif
#if HWY_TARGETS & HWY_EMU128
    FRUGAL_FILL(HWY_EMU128, N_EMU128)
#endif
#if HWY_TARGETS & HWY_SCALAR
    FRUGAL_FILL(HWY_SCALAR, N_SCALAR)
#endif
#undef FRUGAL_FILL
    default: return false;
  }
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
