// The int8 GEMM's micro-kernels (gemm_q8.h), compiled once per SIMD target (hwy_targets.h).
//
// A register tile is Rv row vectors (Rv * V rows) x T tokens. Per x block and plane: 8 steps,
// each loads Rv weight vectors (4 k of V rows) and broadcasts 4 bytes of each of the T tokens;
// Rv * T integer dots accumulate (int16 pairs by vpmaddubsw then vpaddw, or int32 by VNNI
// vpdpbusd). After the 8 steps each of the Rv * T sums is converted once and scaled:
//   acc += float(isum) * (d_w * dx_t)   and, once per x block,   acc += m_w * sx_t.
// Each output lane goes through the same operations in the same order whatever the tile shape,
// so results do not depend on how tokens or rows are split (threads, tails).
// Highway 1.0.3 has no u8 x s8 dot product op, hence intrinsics per x86 target; the scalar
// target runs the same arithmetic in plain loops.
#include "backend/cpu/hwy_targets.h"  // first: which targets to compile

#include <algorithm>
#include <cstring>
#include <utility>

#include "backend/cpu/gemm_q8.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/gemm_q8_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "hwy/targets.h"

HWY_BEFORE_NAMESPACE();
// Highway 1.0.3's AVX3_DL attribute string lacks avx512vnni although its CPU check requires it.
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {

constexpr int kSteps = kActBlock / 4;  // 8 steps of 4 k per x block

#if HWY_TARGET == HWY_AVX2
// 256-bit: V = 8 rows per vector; vpmaddubsw (u8 weights x s8 x) -> int16 pairs, added for the
// 8 steps, then vpmaddwd by 1 -> int32 per row.
struct Ops {
  static constexpr int V = 8;
  static constexpr bool kBytes = false;
  // Tile: Rv row vectors x T tokens; Rv*T int16 + Rv*T float accumulators + Rv weights + 1
  // broadcast within 16 ymm registers. Measured (2026-11-30 dev VM, Q4_0 8192x2048x512, 1
  // thread, GFLOP/s per core-second): 2x3 153, 1x4 140, 2x2 138, 1x6 122.
  static constexpr int kRv = 2, kT = 3;
  using I = __m256i;
  using F = __m256;
  static HWY_INLINE I LoadW(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static HWY_INLINE I BcastX(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static HWY_INLINE I Dot(I w, I x) { return _mm256_maddubs_epi16(w, x); }
  // The empty asm keeps each partial sum in a register: without it GCC reassociates the chain
  // of (plain C) vector adds into a tree and keeps every product live.
  static HWY_INLINE I DotAcc(I acc, I w, I x) {
    I r = _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, x));
    asm("" : "+x"(r));
    return r;
  }
  static HWY_INLINE F ToFloat(I acc) { return _mm256_cvtepi32_ps(_mm256_madd_epi16(acc, _mm256_set1_epi16(1))); }
  static HWY_INLINE F Zero() { return _mm256_setzero_ps(); }
  static HWY_INLINE F LoadF(const float* p) { return _mm256_loadu_ps(p); }
  static HWY_INLINE F Set(float v) { return _mm256_set1_ps(v); }
  static HWY_INLINE F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static HWY_INLINE F MulAdd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  // y[0..n) (+)= v, n <= V.
  static HWY_INLINE void Store(float* y, F v, int n, bool accumulate) {
    if (n == V) {
      if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(y));
      _mm256_storeu_ps(y, v);
      return;
    }
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (accumulate) v = _mm256_add_ps(v, _mm256_maskload_ps(y, mask));
    _mm256_maskstore_ps(y, mask, v);
  }
};
#elif HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// 512-bit: V = 16 rows per vector. AVX3: vpmaddubsw + vpaddw as AVX2; AVX3_DL: vpdpbusd into
// int32 (no saturation: 8-bit weights in one plane).
struct Ops {
  static constexpr int V = 16;
#if HWY_TARGET == HWY_AVX3_DL
  static constexpr bool kBytes = true;
#else
  static constexpr bool kBytes = false;
#endif
  // 2*Rv*T accumulators + Rv weights + 1 broadcast within 32 zmm registers. Measured as the
  // AVX2 tile (AVX3_DL / AVX3 Q4_0): 2x6 248 / 207, 2x4 238 / 192, 1x8 220 / 200.
  static constexpr int kRv = 2, kT = 6;
  using I = __m512i;
  using F = __m512;
  static HWY_INLINE I LoadW(const uint8_t* p) { return _mm512_load_si512(p); }
  static HWY_INLINE I BcastX(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
#if HWY_TARGET == HWY_AVX3_DL
  static HWY_INLINE I Dot(I w, I x) { return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x); }
  static HWY_INLINE I DotAcc(I acc, I w, I x) { return _mm512_dpbusd_epi32(acc, w, x); }
  static HWY_INLINE F ToFloat(I acc) { return _mm512_cvtepi32_ps(acc); }
#else
  static HWY_INLINE I Dot(I w, I x) { return _mm512_maddubs_epi16(w, x); }
  static HWY_INLINE I DotAcc(I acc, I w, I x) {  // asm: as in the AVX2 Ops
    I r = _mm512_add_epi16(acc, _mm512_maddubs_epi16(w, x));
    asm("" : "+v"(r));
    return r;
  }
  static HWY_INLINE F ToFloat(I acc) { return _mm512_cvtepi32_ps(_mm512_madd_epi16(acc, _mm512_set1_epi16(1))); }
#endif
  static HWY_INLINE F Zero() { return _mm512_setzero_ps(); }
  static HWY_INLINE F LoadF(const float* p) { return _mm512_loadu_ps(p); }
  static HWY_INLINE F Set(float v) { return _mm512_set1_ps(v); }
  static HWY_INLINE F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static HWY_INLINE F MulAdd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static HWY_INLINE void Store(float* y, F v, int n, bool accumulate) {
    const __mmask16 mask = n >= V ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, y));
    _mm512_mask_storeu_ps(y, mask, v);
  }
};
#endif

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kV = Ops::V;
constexpr int kNP = 2 * kV;  // rows per panel

// Rows [g0 * V, (g0 + Rv) * V) of the panel x tokens [ti, ti + T) of the call.
template <int Rv, int T, int P>
HWY_INLINE void Tile(const PanelQ8Args& a, int64_t ti, int g0) {
  using I = Ops::I;
  using F = Ops::F;
  const ActQ8Batch& x = *a.x;
  const int8_t* xq[T];
  const float* xd[T];
  const float* xs[T];
  for (int t = 0; t < T; ++t) {
    const int64_t tok = a.t0 + ti + t;
    xq[t] = x.q.data() + (tok * x.nb + a.k0) * kActBlock;
    xd[t] = x.d.data() + tok * x.nb + a.k0;
    xs[t] = x.sx.data() + tok * x.nb + a.k0;
  }
  F acc[Rv][T];
  for (int rv = 0; rv < Rv; ++rv)
    for (int t = 0; t < T; ++t) acc[rv][t] = Ops::Zero();
  for (int64_t k = 0; k < a.nxb; ++k) {
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) {
      const int64_t j = k * P + p;
      const uint8_t* qb = a.w.q + (j * kNP + g0 * kV) * kActBlock;
      I ia[Rv][T];
      {
        I w[Rv];
        for (int rv = 0; rv < Rv; ++rv) w[rv] = Ops::LoadW(qb + rv * kV * kActBlock);
        for (int t = 0; t < T; ++t) {
          const I xb = Ops::BcastX(xq[t] + k * kActBlock);
          for (int rv = 0; rv < Rv; ++rv) ia[rv][t] = Ops::Dot(w[rv], xb);
        }
      }
      // Unrolled. Without the asm in DotAcc GCC reassociated the 7 integer adds into a tree
      // with all Rv*T*8 products spilled to the stack (2026-11-30 dev VM, Q4_0 8192x2048x512, 1
      // thread, GFLOP/s per core-second, AVX2: 105; not unrolled 153, but with register moves
      // around every destructive vpdpbusd on AVX3_DL).
#pragma GCC unroll 8
      for (int s = 1; s < kSteps; ++s) {
        I w[Rv];
        for (int rv = 0; rv < Rv; ++rv) w[rv] = Ops::LoadW(qb + rv * kV * kActBlock + s * kV * 4);
        for (int t = 0; t < T; ++t) {
          const I xb = Ops::BcastX(xq[t] + k * kActBlock + 4 * s);
          for (int rv = 0; rv < Rv; ++rv) ia[rv][t] = Ops::DotAcc(ia[rv][t], w[rv], xb);
        }
      }
      const float* dj = a.w.d + j * kNP + g0 * kV;
      for (int rv = 0; rv < Rv; ++rv) {
        const F dw = Ops::LoadF(dj + rv * kV);
        for (int t = 0; t < T; ++t)
          acc[rv][t] = Ops::MulAdd(Ops::ToFloat(ia[rv][t]), Ops::Mul(dw, Ops::Set(xd[t][k])), acc[rv][t]);
      }
      if (p == 0) {
        const float* mk = a.w.m + k * kNP + g0 * kV;
        for (int rv = 0; rv < Rv; ++rv) {
          const F mw = Ops::LoadF(mk + rv * kV);
          for (int t = 0; t < T; ++t) acc[rv][t] = Ops::MulAdd(mw, Ops::Set(xs[t][k]), acc[rv][t]);
        }
      }
    }
  }
  for (int rv = 0; rv < Rv; ++rv) {
    const int r = (g0 + rv) * kV;
    const int n = (int)std::min<int64_t>(kV, a.n_rows - r);
    if (n <= 0) continue;
    for (int t = 0; t < T; ++t) Ops::Store(a.y + (ti + t) * a.ldy + r, acc[rv][t], n, a.accumulate);
  }
}

// All row vectors with valid rows, for tokens [ti, ti + T).
template <int T, int P>
HWY_INLINE void TokenTile(const PanelQ8Args& a, int64_t ti) {
  const int nrv = (int)((a.n_rows + kV - 1) / kV);
  int g = 0;
  for (; g + Ops::kRv <= nrv; g += Ops::kRv) Tile<Ops::kRv, T, P>(a, ti, g);
  for (; g < nrv; ++g) Tile<1, T, P>(a, ti, g);
}

template <int P, int... Ts>
void TailTokens(int n, const PanelQ8Args& a, int64_t ti, std::integer_sequence<int, Ts...>) {
  ((n == Ts + 1 ? (TokenTile<Ts + 1, P>(a, ti), 0) : 0), ...);
}

template <int P>
void PanelQ8P(const PanelQ8Args& a) {
  int64_t t = 0;
  for (; t + Ops::kT <= a.n_tokens; t += Ops::kT) TokenTile<Ops::kT, P>(a, t);
  const int rest = (int)(a.n_tokens - t);
  if (rest > 0) TailTokens<P>(rest, a, t, std::make_integer_sequence<int, Ops::kT - 1>());
}

void PanelQ8(const PanelQ8Args& a) {
  if (a.planes == 2) {
    if constexpr (!Ops::kBytes) PanelQ8P<2>(a);
  } else {
    PanelQ8P<1>(a);
  }
}

PanelShape Shape() { return PanelShape{kV, kNP, Ops::kBytes}; }

#else  // the scalar target: the same arithmetic in plain loops (int32 sums: one plane always)

constexpr int kV = 8;
constexpr int kNP = 16;

void PanelQ8(const PanelQ8Args& a) {
  const ActQ8Batch& x = *a.x;
  for (int64_t ti = 0; ti < a.n_tokens; ++ti) {
    const int64_t tok = a.t0 + ti;
    const int8_t* xq = x.q.data() + (tok * x.nb + a.k0) * kActBlock;
    const float* xd = x.d.data() + tok * x.nb + a.k0;
    const float* xs = x.sx.data() + tok * x.nb + a.k0;
    for (int64_t r = 0; r < a.n_rows; ++r) {
      const int64_t g = r / kV, v = r % kV;
      float acc = 0.0f;
      for (int64_t k = 0; k < a.nxb; ++k) {
        for (int p = 0; p < a.planes; ++p) {
          const int64_t j = k * a.planes + p;
          const uint8_t* qb = a.w.q + (j * kNP + g * kV) * kActBlock;
          int32_t isum = 0;
          for (int s = 0; s < kSteps; ++s)
            for (int b = 0; b < 4; ++b)
              isum += (int32_t)qb[(s * kV + v) * 4 + b] * (int32_t)xq[k * kActBlock + 4 * s + b];
          acc += (float)isum * (a.w.d[j * kNP + r] * xd[k]);
          if (p == 0) acc += a.w.m[k * kNP + r] * xs[k];
        }
      }
      float* y = a.y + ti * a.ldy + r;
      *y = a.accumulate ? *y + acc : acc;
    }
  }
}

PanelShape Shape() { return PanelShape{kV, kNP, true}; }

#endif

void FillGemmQ8(GemmQ8Set* ks) {
  ks->shape = Shape();
  ks->panel = PanelQ8;
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
namespace frugal::cpu::kern {

namespace {
bool fill_gemm_q8(int64_t target, GemmQ8Set* ks) { FRUGAL_HWY_DISPATCH(target, FillGemmQ8(ks)) }
}  // namespace

const std::vector<GemmQ8Set>& all_gemm_q8_sets() {
  // From the matvec kernel sets (built before any ISA cap narrowed Highway's target list),
  // whose quantize_act each set shares.
  static const std::vector<GemmQ8Set> sets = [] {
    std::vector<GemmQ8Set> v;
    for (const KernelSet& k : all_kernel_sets()) {
      GemmQ8Set s;
      s.target = k.target;
      s.name = k.name;
      s.quantize_act = k.quantize_act;
      s.quantize_act_to = k.quantize_act_to;
      if (fill_gemm_q8(k.target, &s)) v.push_back(s);
    }
    return v;
  }();
  return sets;
}

const GemmQ8Set& best_gemm_q8_set() {
  const auto& sets = all_gemm_q8_sets();
  const int64_t cap = kernel_target_cap();
  for (const GemmQ8Set& s : sets)
    if (s.target >= cap) return s;
  return sets.back();
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
