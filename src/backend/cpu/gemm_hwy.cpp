// The blocked GEMM micro-kernel (see gemm.h), compiled per CPU target with Highway.
#include "backend/cpu/hwy_targets.h"  // first: which targets to compile
#include "backend/cpu/gemm.h"

#include <algorithm>
#include <cstddef>
#include <utility>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/gemm_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "hwy/targets.h"

HWY_BEFORE_NAMESPACE();
namespace frugal::cpu::gemm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = decltype(hn::Zero(DF()));

// Tokens per register tile: 2*kTokens accumulators + 2 weight vectors + 1 broadcast must fit
// the register file (32 vector registers on AVX-512 and Arm, 16 on AVX2/SSE).
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || \
                     HWY_TARGET == HWY_SSSE3 || HWY_TARGET == HWY_EMU128 || \
                     HWY_TARGET == HWY_SCALAR)
constexpr int kTokens = 6;
#else
constexpr int kTokens = 12;
#endif

int64_t PanelRows() { return (int64_t)(2 * hn::Lanes(DF())); }

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

void PackPanel(const float* HWY_RESTRICT src, int64_t ld_src, int64_t nr, int64_t k0, int64_t kc,
               float* HWY_RESTRICT panel) {
  const int64_t NR = PanelRows();
  // Blocks of 16 k: each source row contributes one cache line per block, and the panel's
  // 16 output rows (16 * NR floats) are written while those lines are in L1.
  constexpr int64_t kBlock = 16;
  for (int64_t kb = 0; kb < kc; kb += kBlock) {
    const int64_t ke = std::min(kc, kb + kBlock);
    for (int64_t r = 0; r < nr; ++r) {
      const float* s = src + r * ld_src + k0;
      for (int64_t k = kb; k < ke; ++k) panel[k * NR + r] = s[k];
    }
    for (int64_t k = kb; k < ke; ++k)
      for (int64_t r = nr; r < NR; ++r) panel[k * NR + r] = 0.0f;
  }
}

// One register tile: T tokens x 2 vectors of rows over the whole K slice.
template <int T>
HWY_INLINE void Tile(const float* HWY_RESTRICT panel, int64_t kc, const float* HWY_RESTRICT x,
                     int64_t ldx, float* HWY_RESTRICT y, int64_t ldy, size_t n_rows,
                     bool accumulate) {
  const DF d;
  const size_t L = hn::Lanes(d);
  const size_t NR = 2 * L;
  VF a0[T], a1[T];
  const float* xp[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    a0[t] = hn::Zero(d);
    a1[t] = hn::Zero(d);
    xp[t] = x + t * ldx;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const VF w0 = hn::LoadU(d, panel + k * NR);
    const VF w1 = hn::LoadU(d, panel + k * NR + L);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const VF xb = hn::Set(d, xp[t][k]);
      a0[t] = hn::MulAdd(w0, xb, a0[t]);
      a1[t] = hn::MulAdd(w1, xb, a1[t]);
    }
  }
  if (n_rows == NR) {
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      float* yt = y + t * ldy;
      if (accumulate) {
        a0[t] = hn::Add(a0[t], hn::LoadU(d, yt));
        a1[t] = hn::Add(a1[t], hn::LoadU(d, yt + L));
      }
      hn::StoreU(a0[t], d, yt);
      hn::StoreU(a1[t], d, yt + L);
    }
  } else {
    const auto m0 = hn::FirstN(d, std::min(n_rows, L));
    const auto m1 = hn::FirstN(d, n_rows > L ? n_rows - L : 0);
    for (int t = 0; t < T; ++t) {
      float* yt = y + t * ldy;
      if (accumulate) {
        a0[t] = hn::Add(a0[t], hn::MaskedLoad(m0, d, yt));
        a1[t] = hn::Add(a1[t], hn::MaskedLoad(m1, d, yt + L));
      }
      hn::BlendedStore(a0[t], m0, d, yt);
      hn::BlendedStore(a1[t], m1, d, yt + L);
    }
  }
}

template <int T>
void TailTile(const PanelArgs& a, int64_t t0) {
  Tile<T>(a.panel, a.kc, a.x + t0 * a.ldx, a.ldx, a.y + t0 * a.ldy, a.ldy, (size_t)a.n_rows,
          a.accumulate);
}

template <int... Ts>
void Tail(int n, const PanelArgs& a, int64_t t0, std::integer_sequence<int, Ts...>) {
  // Calls TailTile<n> for the n in 1..kTokens-1 that matches.
  ((n == Ts + 1 ? (TailTile<Ts + 1>(a, t0), 0) : 0), ...);
}

void PanelGemm(const PanelArgs& a) {
  int64_t t = 0;
  for (; t + kTokens <= a.n_tokens; t += kTokens) TailTile<kTokens>(a, t);
  const int rest = (int)(a.n_tokens - t);
  if (rest > 0) Tail(rest, a, t, std::make_integer_sequence<int, kTokens - 1>());
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::gemm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace frugal::cpu::gemm {

HWY_EXPORT(PanelRows);
HWY_EXPORT(PackPanel);
HWY_EXPORT(PanelGemm);
HWY_EXPORT(TargetName);

int64_t panel_rows() { return HWY_DYNAMIC_DISPATCH(PanelRows)(); }

void pack_panel(const float* src, int64_t ld_src, int64_t nr, int64_t k0, int64_t kc,
                float* panel) {
  HWY_DYNAMIC_DISPATCH(PackPanel)(src, ld_src, nr, k0, kc, panel);
}

void panel_gemm(const PanelArgs& a) { HWY_DYNAMIC_DISPATCH(PanelGemm)(a); }

const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace frugal::cpu::gemm
#endif  // HWY_ONCE
