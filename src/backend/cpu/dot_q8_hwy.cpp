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
//
// matvec goes through dot_q8_rows: row tiles of 4 rows per x block (x loads and loop overhead
// shared, 4 independent accumulators), rows left over through the same code with one row, so a
// row's sum never depends on the split over threads. The tiles build each row's scales with one
// gather per 16 groups (AVX-512, RowScales512) or 8 scalar-loaded dwords per 8 groups (AVX2,
// RowScales256). On AVX-512 the 4-bit
// and the Q8_0 tiles work on two x blocks per 512-bit instruction; with VNNI the 4-bit tile
// (DotQ4Q8TileVnni) keeps high nibbles in place (16 q) and folds the 1/16 into the float scales,
// and interleaves the two blocks of a G = 32 step per dword. Every tile prefetches the rows
// of a later tile (the scale pass touches all lines of its own rows first); the distance is per
// format, measured (kPrefetchTiles*). dot_q8 (one row per call) is the earlier kernel, kept for
// the comparison in bench/kernels (FRUGAL_BENCH_Q8ROW=1).
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

void QuantizeActTo(const float* HWY_RESTRICT x, int64_t n, int8_t* HWY_RESTRICT qout,
                   float* HWY_RESTRICT dout, float* HWY_RESTRICT sxout) {
  const int64_t nb = (n + kActBlock - 1) / kActBlock;
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const int64_t N = (int64_t)hn::Lanes(df);
  HWY_ALIGN float pad[kActBlock];
  for (int64_t k = 0; k < nb; ++k) {
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
    int8_t* q = qout + k * kActBlock;
    auto vsum = hn::Zero(di32);  // the block's sum of q, in int32 lanes (exact)
    for (int64_t j = 0; j < kActBlock; j += N) {
      const auto qi = hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), vid)),
                                      hn::Set(di32, -127)), hn::Set(di32, 127));
      hn::StoreU(hn::DemoteTo(di8, qi), di8, q + j);
      vsum = hn::Add(vsum, qi);
    }
    dout[k] = d;
    const int32_t qsum = hn::GetLane(hn::SumOfLanes(di32, vsum));
    sxout[k] = d * (float)qsum;
  }
}

void QuantizeActImpl(const float* HWY_RESTRICT x, int64_t n, ActQ8* out) {
  out->resize(n);
  QuantizeActTo(x, n, out->q.data(), out->d.data(), out->sx.data());
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

// Prefetch distance of the row tiles, in tiles ahead (each prefetch targets the same offset in
// the rows of a later tile), measured 2026-11-30 on the dev VM (frugal_bench_kernels 4096x4096,
// FRUGAL_BENCH_CPU_TIME=1; distances 1-4, 1 and 2 threads, AVX3_DL and AVX2): Q4_0 / Q4_1 (G = 32)
// best at 2 (2 threads: 22.0 vs 20.2 GB/s at 1), the G >= 64 formats at 1 (I4_G128 2 threads:
// 22.3 vs 21.5 at 2; AVX2 1 thread 11.0 vs 10.5), Q8_0 at 1 (2: -3..5%). _MM_HINT_T1 measured
// 1-5% slower than T0, _MM_HINT_NTA about half the speed.
// Whole tiles, not bytes: the same byte distances at 2048-wide rows (8192 x 2048: more tiles
// ahead) measured no faster there (Q4_0 9.8-10.2 vs 9.5-10.9 GB/s) and 5% slower in cache at 576.
template <int G>
constexpr int kPrefetchTilesQ4 = G == 32 ? 2 : 1;
// The Q8_0 tiles (256-bit here, 512-bit in dot_q8_tiles512-inl.h): ~16 KiB ahead, 1 or 2 tiles (a 4096-wide tile is 17 KiB, a 2048-wide
// one 8.5 KiB). Session 6 (2026-11-30, weights on huge pages, AVX2, 2 threads): `frugal bench
// --dummy llama-3.2-1b --dummy-layers 8 --formats q8_0 -n 48`, alternating runs, decode over the
// roofline 0.70 / 0.70 at 1 tile vs 0.74 / 0.76 at 2 tiles for the 2048-wide model; kernel
// 8192x2048 18.3-20.2 GB/s at 1 tile vs 20.0-20.8 at 2-3; AVX3_DL, the same command, 28.1 / 28.8
// tok/s at 1 tile vs 29.1 / 29.5 at 2.
HWY_INLINE size_t PrefetchDistanceQ8_0(size_t tile_bytes) {
  return tile_bytes * (tile_bytes >= 16384 ? 1 : 2);
}

HWY_INLINE void Prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

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
// without cross-lane shuffles: a 128-bit broadcast load, then the upper half shifted by one
// per-dword variable shift (vpsrlvd; was vpsrlw + vpblendd: 2026-11-30 dev VM, AVX2 target,
// 1 thread CPU-time GB/s: Q4_0 512x4096 in cache 17.7-17.8 -> 18.9-19.1, Q4_1 19.4-19.6 ->
// 20.8-20.9, 4096x4096 from DRAM 9.4-9.6 -> 9.8-9.9. Haswell runs vpsrlvd as 3 uops.)
HWY_INLINE __m256i NibblesToBytes16(const uint8_t* qs) {
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i both = _mm256_srlv_epi32(raw, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
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

// ---------------------------------------------------------------------------------------------
// Row tiles: R rows per x block. The x block is loaded once for R rows, the R accumulators are
// independent (no unrolling over blocks needed to hide the FMA latency), and the per-row scale
// passes run back to back before the main loop.

// x's sx summed per group of G (G/32 x blocks), once per tile: the offset term of a group is
// m_g * sum of its blocks' sx. Returns xa.sx itself for G = 32.
template <int G>
HWY_INLINE const float* GroupSx(const ActQ8& xa, int64_t ng, float* HWY_RESTRICT buf) {
  if constexpr (G == 32) {
    return xa.sx.data();
  } else {
    constexpr int kSub = G / kActBlock;
    for (int64_t g = 0; g < ng; ++g) {
      float t = 0.0f;
      for (int j = 0; j < kSub; ++j) t += xa.sx[(size_t)(g * kSub + j)];
      buf[g] = t;
    }
    return buf;
  }
}

// The per-row scale pass of the 256-bit tiles, as RowScales512 below, 8 groups at a time: one
// vector of the 32 bits at each group's first byte (fp16 d in the low half,
// an asymmetric group's fp16 m in the high half); the halves are packed with a byte shuffle and
// converted by F16C. G = 32: out[k] = d_k * dx_k per x block; G >= 64: out[g] = d_g (the main
// loop multiplies by dx; spreading d_g * dx_k over the blocks here instead measured no faster in
// cache and 4% slower from DRAM for I4_G128, 2026-11-30). With kOffset, returns sum_g m_g * sxg[g] (m = -8 d when symmetric);
// else 0 (Q8_0: no offset). Replaces a pass that stored fp16 scales and reloaded them as
// vectors (store-forwarding stalls, as on AVX-512 before).
template <int G, int kBytes, bool kAsym, bool kOffset>
HWY_INLINE float RowScales256(const uint8_t* HWY_RESTRICT w, int64_t ng, const float* HWY_RESTRICT dx,
                              const float* HWY_RESTRICT sxg, float* HWY_RESTRICT out) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // Per 128-bit half: bytes 0-1, 4-5, 8-9, 12-13 (the low 16 bits of each lane) to bytes 0-7,
  // and bytes 2-3, 6-7, ... (the high 16 bits) to bytes 8-15.
  const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  __m256 macc = _mm256_setzero_ps();
  // The 8 dwords by scalar loads (vpinsrd), not vpgatherdd, and masked loads / stores
  // (vmaskmovps: several uops) only for a last partial chunk: 2026-11-30 dev VM, AVX2 target,
  // 1 thread CPU-time GB/s, 512x4096 in cache: Q4_0 18.6 -> 19.6, Q4_1 20.8 -> 22.0, I4_G128
  // 19.8 -> 22.1, Q8_0 32.5 -> 32.2 (DRAM 4096x4096: within noise). An unmasked vpgatherdd
  // measured slower still (Q4_0 14.0), and on AVX-512 (RowScales512) 16 inserts were slower
  // than its gather (Q4_0 25.1 -> 20.3). Without any scale pass (not a kernel: a timing probe)
  // Q4_0 ran at 26.0 here (AVX3_DL: 36.4 vs 25.4): the pass is still ~30% of the in-cache time.
  auto chunk = [&](int64_t g, bool full) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)std::min<int64_t>(ng - g, 8)), lane);
    auto ld = [&](int i) {
      int v = 0;
      if (full || g + i < ng) std::memcpy(&v, w + (g + i) * kBytes, 4);
      return v;
    };
    const __m256i raw = _mm256_setr_epi32(ld(0), ld(1), ld(2), ld(3), ld(4), ld(5), ld(6), ld(7));
    const __m256i p = _mm256_shuffle_epi8(raw, pick);
    // [d0..d3 | m0..m3] [d4..d7 | m4..m7] -> d0..d7 and m0..m7.
    __m256 d = _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
    if constexpr (kOffset) {
      const __m256 mv =
          kAsym ? _mm256_cvtph_ps(_mm_unpackhi_epi64(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)))
                : d;
      macc = _mm256_fmadd_ps(mv, full ? _mm256_loadu_ps(sxg + g) : _mm256_maskload_ps(sxg + g, m), macc);
    }
    if (G == 32) d = _mm256_mul_ps(d, full ? _mm256_loadu_ps(dx + g) : _mm256_maskload_ps(dx + g, m));
    if (full) {
      _mm256_storeu_ps(out + g, d);
    } else {
      _mm256_maskstore_ps(out + g, m, d);
    }
  };
  int64_t g = 0;
  for (; g + 8 <= ng; g += 8) chunk(g, true);
  if (g < ng) chunk(g, false);
  if constexpr (!kOffset) return 0.0f;
  const float mt = HSum(macc);
  return kAsym ? mt : -8.0f * mt;
}

// 4-bit groups (layout as in DotQ4Q8), R rows, 256-bit (the AVX2 target).
template <int G, bool kAsym, int R>
HWY_INLINE void DotQ4Q8Tile(const uint8_t* HWY_RESTRICT w, size_t rb, const ActQ8& xa, int64_t n,
                            float* HWY_RESTRICT y) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  constexpr int kSub = G / kActBlock;
  const int64_t nb = n / kActBlock, ng = n / G;
  const RowScratch sc = GetRowScratch(nb * R + nb);
  const float* dx = xa.d.data();
  const float* sxg = GroupSx<G>(xa, ng, sc.f0 + nb * R);
  float offset[R];
  for (int r = 0; r < R; ++r)
    offset[r] = RowScales256<G, kBytes, kAsym, true>(w + r * rb, ng, dx, sxg, sc.f0 + r * nb);
  const int8_t* xq = xa.q.data();
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* qs0 = w + g * kBytes + kQs;
    // Prefetch the rows kPrefetchTilesQ4 tiles ahead at this offset: the scale pass touches
    // every line of a tile's rows up front, so prefetching within the current rows (as before
    // session 3) left the next tiles' misses to be taken in that pass, serialized with compute.
    // At most 64 bytes apart so that no line is skipped: every group for G >= 64 (34+ bytes),
    // every other one for G = 32 (36 / 40 bytes; every 4th, as before, skipped 1 line in 9 for
    // Q4_0 and 1 in 5 for Q4_1).
    if (G >= 64 || (g & 1) == 0) {
      for (int r = 0; r < R; ++r)
        Prefetch(qs0 + (r + kPrefetchTilesQ4<G> * R) * rb);
    }
    if constexpr (G == 32) {
      const __m256i xk = LoadBlock(xq + g * kActBlock);
      for (int r = 0; r < R; ++r)
        acc[r] = _mm256_fmadd_ps(DotU8S8(NibblesToBytes16(qs0 + r * rb), xk), _mm256_set1_ps(sc.f0[r * nb + g]), acc[r]);
    } else {
      // Per row and group: t = sum_j c_j * dx_j over the group's x blocks, then acc += t * d_g
      // (G = 128: 5 float ops per 4 blocks instead of 8); each 32-byte chunk is loaded once for
      // its low-nibble block j and its high-nibble block j + G/64. Was acc += c_j * (d_g * dx_j)
      // per block: 2026-11-30 dev VM, 1 thread CPU-time GB/s, 512x4096 in cache I4_G128 19.3 ->
      // 20.8, I4_G64 18.1 -> 19.7; 4096x4096 from DRAM I4_G128 10.5 -> 10.6.
      constexpr int kChunks = G / 64;
      const int64_t k0 = g * kSub;
      for (int r = 0; r < R; ++r) {
        const uint8_t* qs = qs0 + r * rb;
        __m256 t = _mm256_setzero_ps();
        for (int c = 0; c < kChunks; ++c) {
          const __m256i raw = LoadBlock(qs + 32 * c);
          const __m256 lo = DotU8S8(_mm256_and_si256(raw, m4), LoadBlock(xq + (k0 + c) * kActBlock));
          t = c == 0 ? _mm256_mul_ps(lo, _mm256_set1_ps(dx[k0])) : _mm256_fmadd_ps(lo, _mm256_set1_ps(dx[k0 + c]), t);
          const __m256 hi = DotU8S8(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4),
                                    LoadBlock(xq + (k0 + c + kChunks) * kActBlock));
          t = _mm256_fmadd_ps(hi, _mm256_set1_ps(dx[k0 + c + kChunks]), t);
        }
        acc[r] = _mm256_fmadd_ps(t, _mm256_set1_ps(sc.f0[r * nb + g]), acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) y[r] = HSum(acc[r]) + offset[r];
}

template <int R>
HWY_INLINE void DotQ8_0Q8Tile(const uint8_t* HWY_RESTRICT w, size_t rb, const ActQ8& xa, int64_t n,
                              float* HWY_RESTRICT y) {
  const int64_t nb = n / kQK;
  const RowScratch sc = GetRowScratch(nb * R);
  for (int r = 0; r < R; ++r)
    RowScales256<kQK, (int)sizeof(BlockQ8_0), false, false>(w + r * rb, nb, xa.d.data(), nullptr, sc.f0 + r * nb);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  const size_t pf = PrefetchDistanceQ8_0(R * rb);
  for (int64_t k = 0; k < nb; ++k) {
    const __m256i xk = LoadBlock(xa.q.data() + k * kActBlock);
    for (int r = 0; r < R; ++r) {
      const uint8_t* qs = w + r * rb + k * (int64_t)sizeof(BlockQ8_0) + 2;
      Prefetch(qs + pf);  // every 34 bytes: 2026-11-30 +1..5% over every 68
      acc[r] = _mm256_fmadd_ps(DotS8S8(LoadBlock(qs), xk), _mm256_set1_ps(sc.f0[r * nb + k]), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = HSum(acc[r]);
}

#include "backend/cpu/dot_q8_tiles512-inl.h"  // the AVX-512 tiles

// Rows left over after the 4-row tiles go through the same code with R = 1: each row's sum is
// accumulated in the same order either way, so y does not depend on how rows were split over
// threads.
constexpr int kTileRows = 4;

template <int G, bool kAsym>
void DotQ4Q8Rows(const void* rows, size_t rb, int64_t nrows, const ActQ8& xa, int64_t n, float* y) {
  const uint8_t* w = static_cast<const uint8_t*>(rows);
  int64_t r = 0;
#if HWY_TARGET == HWY_AVX3_DL
  for (; r + kTileRows <= nrows; r += kTileRows) DotQ4Q8TileVnni<G, kAsym, kTileRows>(w + r * rb, rb, xa, n, y + r);
  for (; r < nrows; ++r) DotQ4Q8TileVnni<G, kAsym, 1>(w + r * rb, rb, xa, n, y + r);
#elif HWY_TARGET == HWY_AVX3
  for (; r + kTileRows <= nrows; r += kTileRows) DotQ4Q8Tile512<G, kAsym, kTileRows>(w + r * rb, rb, xa, n, y + r);
  for (; r < nrows; ++r) DotQ4Q8Tile512<G, kAsym, 1>(w + r * rb, rb, xa, n, y + r);
#else
  for (; r + kTileRows <= nrows; r += kTileRows) DotQ4Q8Tile<G, kAsym, kTileRows>(w + r * rb, rb, xa, n, y + r);
  for (; r < nrows; ++r) DotQ4Q8Tile<G, kAsym, 1>(w + r * rb, rb, xa, n, y + r);
#endif
}

void DotQ8_0Q8Rows(const void* rows, size_t rb, int64_t nrows, const ActQ8& xa, int64_t n, float* y) {
  const uint8_t* w = static_cast<const uint8_t*>(rows);
  int64_t r = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // 2026-11-30 dev VM (4096x4096, CPU-time GB/s): in cache 34.3-35.8 vs 32.7-33.5 for the 256-bit
  // tile; from DRAM at 2 threads 26.2-27.1 vs 25.4-25.9.
  for (; r + kTileRows <= nrows; r += kTileRows) DotQ8_0Q8Tile512<kTileRows>(w + r * rb, rb, xa, n, y + r);
  for (; r < nrows; ++r) DotQ8_0Q8Tile512<1>(w + r * rb, rb, xa, n, y + r);
#else
  for (; r + kTileRows <= nrows; r += kTileRows) DotQ8_0Q8Tile<kTileRows>(w + r * rb, rb, xa, n, y + r);
  for (; r < nrows; ++r) DotQ8_0Q8Tile<1>(w + r * rb, rb, xa, n, y + r);
#endif
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

template <int G, bool kAsym>
void DotQ4Q8Rows(const void* rows, size_t rb, int64_t nrows, const ActQ8& xa, int64_t n, float* y) {
  for (int64_t r = 0; r < nrows; ++r) y[r] = DotQ4Q8<G, kAsym>(static_cast<const uint8_t*>(rows) + r * rb, xa, n);
}
void DotQ8_0Q8Rows(const void* rows, size_t rb, int64_t nrows, const ActQ8& xa, int64_t n, float* y) {
  for (int64_t r = 0; r < nrows; ++r) y[r] = DotQ8_0Q8(static_cast<const uint8_t*>(rows) + r * rb, xa, n);
}

#endif

// I8_ROW: one row at a time on every target.
void DotI8RowQ8Rows(const void* rows, size_t rb, int64_t nrows, const ActQ8& xa, int64_t n, float* y) {
  for (int64_t r = 0; r < nrows; ++r) y[r] = DotI8RowQ8(static_cast<const uint8_t*>(rows) + r * rb, xa, n);
}

void FillQ8Kernels(KernelSet* ks) {
  ks->quantize_act = QuantizeActImpl;
  ks->quantize_act_to = QuantizeActTo;
  ks->dot_q8[(int)DType::Q8_0] = DotQ8_0Q8;
  ks->dot_q8[(int)DType::Q4_0] = DotQ4Q8<32, false>;
  ks->dot_q8[(int)DType::Q4_1] = DotQ4Q8<32, true>;
  ks->dot_q8[(int)DType::I4_G64] = DotQ4Q8<64, false>;
  ks->dot_q8[(int)DType::I4_G64A] = DotQ4Q8<64, true>;
  ks->dot_q8[(int)DType::I4_G128] = DotQ4Q8<128, false>;
  ks->dot_q8[(int)DType::I4_G128A] = DotQ4Q8<128, true>;
  ks->dot_q8[(int)DType::I8_ROW] = DotI8RowQ8;
  ks->dot_q8_rows[(int)DType::Q8_0] = DotQ8_0Q8Rows;
  ks->dot_q8_rows[(int)DType::Q4_0] = DotQ4Q8Rows<32, false>;
  ks->dot_q8_rows[(int)DType::Q4_1] = DotQ4Q8Rows<32, true>;
  ks->dot_q8_rows[(int)DType::I4_G64] = DotQ4Q8Rows<64, false>;
  ks->dot_q8_rows[(int)DType::I4_G64A] = DotQ4Q8Rows<64, true>;
  ks->dot_q8_rows[(int)DType::I4_G128] = DotQ4Q8Rows<128, false>;
  ks->dot_q8_rows[(int)DType::I4_G128A] = DotQ4Q8Rows<128, true>;
  ks->dot_q8_rows[(int)DType::I8_ROW] = DotI8RowQ8Rows;
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
namespace frugal::cpu::kern {

int64_t q8_kernel_targets() { return HWY_TARGETS; }

bool fill_q8_kernels(int64_t target, KernelSet* ks) {
  FRUGAL_HWY_DISPATCH(target, FillQ8Kernels(ks))
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
