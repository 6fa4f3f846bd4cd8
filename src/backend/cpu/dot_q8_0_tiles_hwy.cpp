// Int8-activation matvec kernel for Q8_0 in the tiled layout (repack.h), whole tiles of 4 rows,
// compiled once per SIMD target (hwy_targets.h). The 4-bit tiles' scheme (dot_q4_tiles_hwy.cpp)
// with 8-bit weights: a 4-byte lane holds 4 qs bytes of one row (lane j: row j % 4), x comes
// pre-expanded (ActQ8::q4) so its bytes line up with the lanes by a plain load, and the 4 rows of
// a tile are computed side by side in the lanes of one accumulator. A group (x block) is 128 bytes
// of Q: 4 loads (AVX2) or 2 (AVX-512) for the 4 rows.
//
// No per-row scale pass and no scale scratch: the integer lane sums of 2 groups (AVX2) or 4
// (AVX-512) are folded into one vector of [group g rows 0-3 | group g + 1 rows 0-3 | ...] by
// 128-bit lane shuffles and adds (exact, int32), converted once, and multiplied by the tile's D
// of those groups (contiguous fp16: one 128- or 256-bit load and convert) times x's block scales
// (a per-call table dx4[4g + r] = dx_g). Per row r: y[r] = sum_g d(r, g) dx_g isum(r, g).
//
// Integer sums (signed weights x signed x):
//   AVX2 / AVX3: vpmaddubsw(|w|, sign(x, w)), pair sums <= 2 * 128 * 127 = 32512 (no int16
//     saturation, w = -128 included), then vpmaddwd by ones per load (two vpmaddubsw results
//     added in 16 bits could overflow).
//   AVX3_DL: vpdpbusd((w xor 0x80) = w + 128 unsigned, x), whose accumulator starts at
//     -128 * sum(x's block) in lanes 0-3 (one lane per row; a per-call table), so the row's
//     lane sum is exactly sum w x.
// The scalar target follows the row-major scalar kernel's arithmetic (bit-identical results).
#include "backend/cpu/hwy_targets.h"

#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/repack.h"
#include "base/half.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/dot_q8_0_tiles_hwy.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "backend/cpu/kernel_common-inl.h"

HWY_BEFORE_NAMESPACE();
// Highway 1.0.3's AVX3_DL attribute string lacks avx512vnni although its CPU check requires it.
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace frugal::cpu::kern {
namespace HWY_NAMESPACE {

constexpr int kQ8Group = 32;                  // Q8_0 block = one x block
constexpr int kQ8GroupQ = 4 * kQ8Group;       // Q bytes of a group of a tile (4 rows)

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// Per-call tables (x only): dx4[4g + r] = dx_g (padded with zeros to a multiple of 16 floats)
// and, for VNNI, corr[g] = -128 * sum of x's block g (int32).
struct Q8Tables {
  const float* dx4;
  const int32_t* corr;
};
HWY_INLINE Q8Tables MakeQ8Tables(const ActQ8& xa, int64_t ng) {
  thread_local std::vector<float> dx4;
  thread_local std::vector<int32_t> corr;
  const size_t nf = (size_t)((4 * ng + 15) / 16 * 16);
  dx4.assign(nf, 0.0f);
  for (int64_t g = 0; g < ng; ++g)
    for (int r = 0; r < 4; ++r) dx4[(size_t)(4 * g + r)] = xa.d[(size_t)g];
#if HWY_TARGET == HWY_AVX3_DL
  corr.resize((size_t)ng);
  for (int64_t g = 0; g < ng; ++g) {
    int32_t s = 0;
    for (int i = 0; i < kQ8Group; ++i) s += xa.q[(size_t)(g * kQ8Group + i)];
    corr[(size_t)g] = -128 * s;
  }
#endif
  return {dx4.data(), corr.data()};
}

// The group's 2 Q lines: PrefetchStreamLine (kernel_common-inl.h). The T1 prefetch one tile
// (~16 KiB) ahead that it replaced had beaten T0 at that distance by 15-25% (session 6); at
// 1 and 3 KiB both together win. End to end (the lead, quiet VM, AVX2, 2 threads, `frugal bench
// --dummy llama-3.2-1b --dummy-layers 8 --formats q8_0 -p 0 -n 48 --reps 3`, alternating runs):
// 29.6 / 30.5 tok/s (0.76 / 0.78 of the roofline) before, 33.1 / 33.3 (0.84 / 0.84) after.
HWY_INLINE void PrefetchGroup(const uint8_t* q) {
  PrefetchStreamLine(q);
  PrefetchStreamLine(q + 64);
}
#endif

#if HWY_TARGET == HWY_AVX2
// ---------------------------------------------------------------------------------------------
// 256-bit: 8 lanes = the 4 rows twice.

HWY_INLINE __m256i Ld(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Lane j: the sum over the group of row j % 4's w * x on 2 of its 8 4-byte units.
HWY_INLINE __m256i GroupSum(const uint8_t* q, const int8_t* e) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    const __m256i w = Ld(q + 32 * i);
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(Ld(e + 32 * i), w));
    s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
  }
  return s;
}

HWY_INLINE void TileDot(const uint8_t* tp, int64_t ng, const int8_t* HWY_RESTRICT xe, const Q8Tables& tb,
                        float* HWY_RESTRICT y) {
  const uint8_t* d = tp;
  const uint8_t* q = tp + 8 * ng;
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 2 <= ng; g += 2) {
    PrefetchGroup(q + kQ8GroupQ * g);
    PrefetchGroup(q + kQ8GroupQ * (g + 1));
    const __m256i a = GroupSum(q + kQ8GroupQ * g, xe + kQ8GroupQ * g);
    const __m256i b = GroupSum(q + kQ8GroupQ * (g + 1), xe + kQ8GroupQ * (g + 1));
    // [a0 + a1 | b0 + b1]: rows 0-3 of group g, then of group g + 1.
    const __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
    const __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + 8 * g))),
                                    _mm256_loadu_ps(tb.dx4 + 4 * g));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc);
  }
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  if (g < ng) {  // an odd last group
    const __m256i a = GroupSum(q + kQ8GroupQ * g, xe + kQ8GroupQ * g);
    const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    const __m128 sc = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d + 8 * g))),
                                 _mm_loadu_ps(tb.dx4 + 4 * g));
    v = _mm_fmadd_ps(_mm_cvtepi32_ps(s), sc, v);
  }
  _mm_storeu_ps(y, v);
}

#elif HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// ---------------------------------------------------------------------------------------------
// 512-bit: 16 lanes = the 4 rows four times.

HWY_INLINE __m512i Ld(const void* p) { return _mm512_loadu_si512(p); }

// Lane j: the sum over the group of row j % 4's w * x on 2 of its 8 4-byte units (VNNI: plus
// the row's correction in lanes 0-3).
HWY_INLINE __m512i GroupSum(const uint8_t* q, const int8_t* e, const int32_t* corr) {
#if HWY_TARGET == HWY_AVX3_DL
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  __m512i s = _mm512_zextsi128_si512(_mm_set1_epi32(*corr));
  s = _mm512_dpbusd_epi32(s, _mm512_xor_si512(Ld(q), flip), Ld(e));
  return _mm512_dpbusd_epi32(s, _mm512_xor_si512(Ld(q + 64), flip), Ld(e + 64));
#else
  (void)corr;
  auto dot = [](__m512i w, __m512i x) {
    const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
    return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), sx), _mm512_set1_epi16(1));
  };
  return _mm512_add_epi32(dot(Ld(q), Ld(e)), dot(Ld(q + 64), Ld(e + 64)));
#endif
}

// [a | b | c | d] 128-bit lanes, each the sum of its group's four 128-bit lanes.
HWY_INLINE __m512i Fold4(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x44), _mm512_shuffle_i32x4(a, b, 0xEE));
  const __m512i cd = _mm512_add_epi32(_mm512_shuffle_i32x4(c, d, 0x44), _mm512_shuffle_i32x4(c, d, 0xEE));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(ab, cd, 0x88), _mm512_shuffle_i32x4(ab, cd, 0xDD));
}

HWY_INLINE void TileDot(const uint8_t* tp, int64_t ng, const int8_t* HWY_RESTRICT xe, const Q8Tables& tb,
                        float* HWY_RESTRICT y) {
  const uint8_t* d = tp;
  const uint8_t* q = tp + 8 * ng;
  __m512 acc = _mm512_setzero_ps();
  auto sum = [&](int64_t g) { return GroupSum(q + kQ8GroupQ * g, xe + kQ8GroupQ * g, tb.corr + g); };
  int64_t g = 0;
  for (; g + 4 <= ng; g += 4) {
    for (int j = 0; j < 4; ++j) PrefetchGroup(q + kQ8GroupQ * (g + j));
    const __m512i s = Fold4(sum(g), sum(g + 1), sum(g + 2), sum(g + 3));
    const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + 8 * g))),
                                    _mm512_loadu_ps(tb.dx4 + 4 * g));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
  }
  if (g < ng) {  // 1-3 last groups: the missing ones zero, their D not read
    const int rest = (int)(ng - g);
    const __m512i z = _mm512_setzero_si512();
    const __m512i s = Fold4(sum(g), rest > 1 ? sum(g + 1) : z, rest > 2 ? sum(g + 2) : z, z);
    const __mmask16 m = (__mmask16)((1u << (4 * rest)) - 1);
    const __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, d + 8 * g)),
                                    _mm512_maskz_loadu_ps(m, tb.dx4 + 4 * g));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc);
  }
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
  _mm_storeu_ps(y, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

#else
// ---------------------------------------------------------------------------------------------
// Scalar: per row, the arithmetic of the row-major scalar DotQ8_0Q8 (dot_q8_hwy.cpp) in the same
// order, reading the tile.

HWY_INLINE void TileDotScalar(const uint8_t* tp, int64_t ng, const ActQ8& xa, float* y) {
  const uint8_t* d = tp;
  const uint8_t* q = tp + 8 * ng;
  for (int r = 0; r < kTileRows; ++r) {
    float acc = 0.0f;
    for (int64_t g = 0; g < ng; ++g) {
      const uint8_t* qg = q + kQ8GroupQ * g;
      const int8_t* xq = xa.q.data() + g * kQ8Group;
      int32_t isum = 0;
      for (int e = 0; e < kQ8Group; ++e) isum += (int32_t)(int8_t)qg[16 * (e / 4) + 4 * r + e % 4] * xq[e];
      acc += HalfToFloat(LoadU16(d + 8 * g + 2 * r)) * xa.d[(size_t)g] * (float)isum;
    }
    y[r] = acc;
  }
}
#endif

void DotQ8_0TilesQ8(const void* tiles, size_t rb, int64_t ntiles, const ActQ8& xa, int64_t n, float* y) {
  const uint8_t* base = static_cast<const uint8_t*>(tiles);
  const int64_t ng = n / kQ8Group;
  const size_t tile_bytes = (size_t)kTileRows * rb;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const Q8Tables tb = MakeQ8Tables(xa, ng);
  for (int64_t i = 0; i < ntiles; ++i) TileDot(base + i * tile_bytes, ng, xa.q4.data(), tb, y + kTileRows * i);
#else
  for (int64_t i = 0; i < ntiles; ++i) TileDotScalar(base + i * tile_bytes, ng, xa, y + kTileRows * i);
#endif
}

void FillQ8_0TileKernels(KernelSet* ks) { ks->dot_q8_tiles[(int)DType::Q8_0] = DotQ8_0TilesQ8; }

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
namespace frugal::cpu::kern {

int64_t q8_0_tile_kernel_targets() { return HWY_TARGETS; }

bool fill_q8_0_tile_kernels(int64_t target, KernelSet* ks) {
  FRUGAL_HWY_DISPATCH(target, FillQ8_0TileKernels(ks))
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
