// Int8-activation matvec kernels for the tiled 4-bit layout (repack.h): Q4_0, Q4_1, I4_G64(A),
// I4_G128(A) with whole tiles of 4 rows, compiled once per SIMD target (hwy_targets.h).
//
// In the tiled layout a 4-byte lane holds the same 4 qs bytes of the 4 rows in lanes j % 4 = r,
// so the rows of a tile are computed side by side in the lanes of one accumulator instead of one
// accumulator per row, and the nibble loads feed the integer dot products directly. x comes
// pre-expanded (ActQ8::q4: each 4-byte unit of x repeated 4 times), so its bytes line up with the
// lanes by a plain load. Per tile, a short vector pass converts the tile's contiguous fp16 D (2
// groups x 4 rows per 256-bit convert) times x's block scales into floats s[4g + r] and sums the
// rows' offsets; the main loop then takes a group's 4 row scales with one 128-bit broadcast load
// (a load-port op, no ALU). Compared with the row-major tiles (dot_q8_hwy.cpp) there is no
// per-row scale gather / insert pass and no per-row broadcast or nibble shuffle: the 4 rows' 128
// weights of an x block take 4 (AVX2) or 2 (AVX-512) loads.
//
// Per tile (sx: ActQ8's block sums of x, sxg: their group sums):
//   s[4g + r] = d(r, g) * dx_g (G = 32) or d(r, g) (G >= 64);  off[r] = sum_g m(r, g) * sxg_g
//   (m = -8 d for symmetric formats); then per group g, for its x blocks k:
//   t    = sum_k float(isum_k) * dx_k   (G >= 64; isum_k: 4-byte lane sums of q * xq)
//   acc += float(isum_g) * s_g          (G = 32)   or   acc += t * s_g   (G >= 64)
//   y[r] = sum of the lanes of row r of acc, + off[r].
// Integer sums: AVX2 / AVX3 vpmaddubsw (u8 nibble x s8 x: pair sums <= 2 * 15 * 127), four of
// them added in 16 bits (<= 15240, exact), then vpmaddwd by ones; AVX3_DL vpdpbusd. The scalar
// target follows the row-major scalar kernel's arithmetic exactly (bit-identical results).
#include "backend/cpu/hwy_targets.h"

#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/repack.h"
#include "base/half.h"
#include "quant/row_blocks.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/dot_q4_tiles_hwy.cpp"
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

// Bytes of one row's group (row-major) and of its qs.
template <int G, bool kAsym>
constexpr int kGroupBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);

// A tile's parts (repack.h): D[ng][4] fp16, M[ng][4] fp16 (asymmetric), Q[ng][2G] bytes.
template <int G, bool kAsym>
struct Tile {
  const uint8_t* d;
  const uint8_t* m;
  const uint8_t* q;
  Tile(const uint8_t* t, int64_t ng) : d(t), m(t + 8 * ng), q(t + 8 * ng * (kAsym ? 2 : 1)) {}
};

// x's sx summed per group of G (G/32 blocks, summed in block order as the row-major tiles do);
// xa.sx itself for G = 32.
template <int G>
HWY_INLINE const float* GroupSums(const ActQ8& xa, int64_t ng) {
  if constexpr (G == kActBlock) {
    return xa.sx.data();
  } else {
    thread_local std::vector<float> buf;
    if ((int64_t)buf.size() < ng) buf.resize((size_t)ng);
    constexpr int kSub = G / kActBlock;
    for (int64_t g = 0; g < ng; ++g) {
      float t = 0.0f;
      for (int j = 0; j < kSub; ++j) t += xa.sx[(size_t)(g * kSub + j)];
      buf[(size_t)g] = t;
    }
    return buf.data();
  }
}

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Software prefetch: PrefetchStreamLine (kernel_common-inl.h) on every Q line, T0 1 KiB and T1
// 3 KiB ahead in the tiles' one linear stream (which covers the next tile's D and M too). It
// replaced a T1 prefetch at the same offset 1 (G >= 64) or 2 (G = 32) tiles ahead, which had
// beaten T0 at that distance (session 6: AVX2 1 thread I4_G128 51-64% -> 76-78% of read).

// The per-tile scale pass (see the top): s[4g + r] = d(r, g) * dx4[4g + r] (dx4 = x's block
// scales repeated 4 times; nullptr: s = d), off[r] = sum_g m(r, g) * sxg4[4g + r].
template <bool kAsym>
HWY_INLINE void TileScales(const uint8_t* HWY_RESTRICT d, const uint8_t* HWY_RESTRICT m, int64_t ng,
                           const float* HWY_RESTRICT dx4, const float* HWY_RESTRICT sxg4,
                           float* HWY_RESTRICT s, float* HWY_RESTRICT off) {
  __m256 macc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 2 <= ng; g += 2) {
    const __m256 dv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + 8 * g)));
    const __m256 mv = kAsym ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m + 8 * g))) : dv;
    macc = _mm256_fmadd_ps(mv, _mm256_loadu_ps(sxg4 + 4 * g), macc);
    _mm256_storeu_ps(s + 4 * g, dx4 != nullptr ? _mm256_mul_ps(dv, _mm256_loadu_ps(dx4 + 4 * g)) : dv);
  }
  __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(macc), _mm256_extractf128_ps(macc, 1));
  if (g < ng) {
    const __m128 dv = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d + 8 * g)));
    const __m128 mv = kAsym ? _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m + 8 * g))) : dv;
    m4 = _mm_fmadd_ps(mv, _mm_loadu_ps(sxg4 + 4 * g), m4);
    _mm_storeu_ps(s + 4 * g, dx4 != nullptr ? _mm_mul_ps(dv, _mm_loadu_ps(dx4 + 4 * g)) : dv);
  }
  if (!kAsym) m4 = _mm_mul_ps(m4, _mm_set1_ps(-8.0f));
  _mm_storeu_ps(off, m4);
}

// Per-call tables: x's block scales (G = 32) and group sums of sx, each repeated 4 times, and
// the tile's scale scratch.
struct TileTables {
  const float* dx4;
  const float* sxg4;
  float* s;
};
template <int G>
HWY_INLINE TileTables MakeTables(const ActQ8& xa, int64_t ng, const float* sxg) {
  thread_local std::vector<float> buf;
  const size_t need = (size_t)(12 * ng + 16);
  if (buf.size() < need) buf.resize(need);
  float* dx4 = buf.data();
  float* sxg4 = dx4 + 4 * ng;
  for (int64_t g = 0; g < ng; ++g)
    for (int r = 0; r < 4; ++r) {
      if (G == 32) dx4[4 * g + r] = xa.d[(size_t)g];
      sxg4[4 * g + r] = sxg[g];
    }
  return {G == 32 ? dx4 : nullptr, sxg4, sxg4 + 4 * ng};
}

#endif

#if HWY_TARGET == HWY_AVX2
// ---------------------------------------------------------------------------------------------
// 256-bit: 8 lanes = the 4 rows twice.

HWY_INLINE __m256i Ld(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <int G, bool kAsym>
HWY_INLINE void TileDot(const uint8_t* tp, int64_t ng, const int8_t* HWY_RESTRICT xe,
                        const float* HWY_RESTRICT dx, const TileTables& tt, float* HWY_RESTRICT y) {
  constexpr int kQ = 2 * G;  // Q bytes per group (4 rows x G/2)
  const Tile<G, kAsym> t(tp, ng);
  HWY_ALIGN float off[4];
  TileScales<kAsym>(t.d, t.m, ng, tt.dx4, tt.sxg4, tt.s, off);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  auto lo = [&](__m256i raw) { return _mm256_and_si256(raw, m4); };
  auto hi = [&](__m256i raw) { return _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4); };
  __m256 acc = _mm256_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* q = t.q + g * kQ;
    for (int b = 0; b < kQ; b += 64) PrefetchStreamLine(q + b);
    __m256 tsum;
    if constexpr (G == 32) {
      // 64 bytes: loads 0 / 1 hold qs bytes 0-7 / 8-15 of the rows: low nibbles elements 0-7 /
      // 8-15, high nibbles 16-23 / 24-31.
      const int8_t* e = xe + 128 * g;
      const __m256i r0 = Ld(q), r1 = Ld(q + 32);
      __m256i p = _mm256_maddubs_epi16(lo(r0), Ld(e));
      p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo(r1), Ld(e + 32)));
      p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi(r0), Ld(e + 64)));
      p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi(r1), Ld(e + 96)));
      tsum = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));  // times s_g below
    } else {
      // Chunk c (128 bytes): low nibbles x block k0 + c, high nibbles block k0 + c + G/64.
      constexpr int kC = G / 64;
      const int64_t k0 = g * (G / kActBlock);
      for (int c = 0; c < kC; ++c) {
        const uint8_t* qc = q + 128 * c;
        const int8_t* el = xe + 128 * (k0 + c);
        const int8_t* eh = xe + 128 * (k0 + c + kC);
        __m256i pl = _mm256_setzero_si256(), ph = _mm256_setzero_si256();
        for (int i = 0; i < 4; ++i) {
          const __m256i raw = Ld(qc + 32 * i);
          pl = _mm256_add_epi16(pl, _mm256_maddubs_epi16(lo(raw), Ld(el + 32 * i)));
          ph = _mm256_add_epi16(ph, _mm256_maddubs_epi16(hi(raw), Ld(eh + 32 * i)));
        }
        const __m256 fl = _mm256_cvtepi32_ps(_mm256_madd_epi16(pl, ones));
        const __m256 fh = _mm256_cvtepi32_ps(_mm256_madd_epi16(ph, ones));
        tsum = c == 0 ? _mm256_mul_ps(fl, _mm256_set1_ps(dx[k0 + c]))
                      : _mm256_fmadd_ps(fl, _mm256_set1_ps(dx[k0 + c]), tsum);
        tsum = _mm256_fmadd_ps(fh, _mm256_set1_ps(dx[k0 + c + kC]), tsum);
      }
    }
    acc = _mm256_fmadd_ps(tsum, _mm256_broadcast_ps(reinterpret_cast<const __m128*>(tt.s + 4 * g)), acc);
  }
  const __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  _mm_storeu_ps(y, _mm_add_ps(v, _mm_load_ps(off)));
}

#elif HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// ---------------------------------------------------------------------------------------------
// 512-bit: 16 lanes = the 4 rows four times.

HWY_INLINE __m512i Ld(const void* p) { return _mm512_loadu_si512(p); }

// Lane sums of a * x + b * y (a, b unsigned nibbles, x, y signed).
HWY_INLINE __m512i Dot2(__m512i a, __m512i x, __m512i b, __m512i y) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), a, x), b, y);
#else
  return _mm512_madd_epi16(_mm512_add_epi16(_mm512_maddubs_epi16(a, x), _mm512_maddubs_epi16(b, y)),
                           _mm512_set1_epi16(1));
#endif
}

template <int G, bool kAsym>
HWY_INLINE void TileDot(const uint8_t* tp, int64_t ng, const int8_t* HWY_RESTRICT xe,
                        const float* HWY_RESTRICT dx, const TileTables& tt, float* HWY_RESTRICT y) {
  constexpr int kQ = 2 * G;
  const Tile<G, kAsym> t(tp, ng);
  HWY_ALIGN float off[4];
  TileScales<kAsym>(t.d, t.m, ng, tt.dx4, tt.sxg4, tt.s, off);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  auto lo = [&](__m512i raw) { return _mm512_and_si512(raw, m4); };
  auto hi = [&](__m512i raw) { return _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4); };
  __m512 acc = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; ++g) {
    const uint8_t* q = t.q + g * kQ;
    for (int b = 0; b < kQ; b += 64) PrefetchStreamLine(q + b);
    __m512 tsum;
    if constexpr (G == 32) {
      // 64 bytes: low nibbles elements 0-15, high nibbles 16-31 of the 4 rows.
      const int8_t* e = xe + 128 * g;
      const __m512i raw = Ld(q);
      tsum = _mm512_cvtepi32_ps(Dot2(lo(raw), Ld(e), hi(raw), Ld(e + 64)));  // times s_g below
    } else {
      // Chunk c (128 bytes = 2 loads): low nibbles x block k0 + c, high block k0 + c + G/64.
      constexpr int kC = G / 64;
      const int64_t k0 = g * (G / kActBlock);
      for (int c = 0; c < kC; ++c) {
        const uint8_t* qc = q + 128 * c;
        const int8_t* el = xe + 128 * (k0 + c);
        const int8_t* eh = xe + 128 * (k0 + c + kC);
        const __m512i r0 = Ld(qc), r1 = Ld(qc + 64);
        const __m512 fl = _mm512_cvtepi32_ps(Dot2(lo(r0), Ld(el), lo(r1), Ld(el + 64)));
        const __m512 fh = _mm512_cvtepi32_ps(Dot2(hi(r0), Ld(eh), hi(r1), Ld(eh + 64)));
        tsum = c == 0 ? _mm512_mul_ps(fl, _mm512_set1_ps(dx[k0 + c]))
                      : _mm512_fmadd_ps(fl, _mm512_set1_ps(dx[k0 + c]), tsum);
        tsum = _mm512_fmadd_ps(fh, _mm512_set1_ps(dx[k0 + c + kC]), tsum);
      }
    }
    acc = _mm512_fmadd_ps(tsum, _mm512_broadcast_f32x4(_mm_loadu_ps(tt.s + 4 * g)), acc);
  }
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
  const __m128 v = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  _mm_storeu_ps(y, _mm_add_ps(v, _mm_load_ps(off)));
}

#else
// ---------------------------------------------------------------------------------------------
// Scalar: per row, the arithmetic of the row-major scalar DotQ4Q8 (dot_q8_hwy.cpp) in the same
// order, reading the tile.

HWY_INLINE float F16At(const uint8_t* p) { return HalfToFloat(LoadU16(p)); }

template <int G, bool kAsym>
HWY_INLINE void TileDot(const uint8_t* tp, int64_t ng, const int8_t* /*xe*/,
                        const float* /*dx*/, const float* /*sxg*/, float* y, const ActQ8& xa) {
  constexpr int kQ = 2 * G;
  const Tile<G, kAsym> t(tp, ng);
  for (int r = 0; r < kTileRows; ++r) {
    float acc = 0.0f;
    for (int64_t g = 0; g < ng; ++g) {
      const uint8_t* q = t.q + g * kQ;
      auto qs = [&](int e) { return q[16 * (e / 4) + 4 * r + e % 4]; };
      float gacc = 0.0f, gs = 0.0f;
      for (int k = 0; k < G / kActBlock; ++k) {
        const int64_t xk = g * (G / kActBlock) + k;
        const int8_t* xq = xa.q.data() + xk * kActBlock;
        int32_t isum = 0, qsum = 0;
        for (int i = 0; i < kActBlock; ++i) {
          const int e = k * kActBlock + i;
          const int v = e < G / 2 ? (qs(e) & 15) : (qs(e - G / 2) >> 4);
          isum += v * xq[i];
          qsum += xq[i];
        }
        gacc += xa.d[(size_t)xk] * (float)isum;
        gs += xa.d[(size_t)xk] * (float)qsum;
      }
      const float d = F16At(t.d + 8 * g + 2 * r);
      const float m = kAsym ? F16At(t.m + 8 * g + 2 * r) : -8.0f * d;
      acc += d * gacc + m * gs;
    }
    y[r] = acc;
  }
}
#endif

template <int G, bool kAsym>
void DotQ4TilesQ8(const void* tiles, size_t rb, int64_t ntiles, const ActQ8& xa, int64_t n, float* y) {
  const uint8_t* base = static_cast<const uint8_t*>(tiles);
  const int64_t ng = n / G;
  const size_t tile_bytes = (size_t)kTileRows * rb;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const TileTables tt = MakeTables<G>(xa, ng, GroupSums<G>(xa, ng));
  for (int64_t i = 0; i < ntiles; ++i)
    TileDot<G, kAsym>(base + i * tile_bytes, ng, xa.q4.data(), xa.d.data(), tt, y + kTileRows * i);
#else
  for (int64_t i = 0; i < ntiles; ++i)
    TileDot<G, kAsym>(base + i * tile_bytes, ng, nullptr, nullptr, nullptr, y + kTileRows * i, xa);
#endif
}

void FillQ4TileKernels(KernelSet* ks) {
  ks->dot_q8_tiles[(int)DType::Q4_0] = DotQ4TilesQ8<32, false>;
  ks->dot_q8_tiles[(int)DType::Q4_1] = DotQ4TilesQ8<32, true>;
  ks->dot_q8_tiles[(int)DType::I4_G64] = DotQ4TilesQ8<64, false>;
  ks->dot_q8_tiles[(int)DType::I4_G64A] = DotQ4TilesQ8<64, true>;
  ks->dot_q8_tiles[(int)DType::I4_G128] = DotQ4TilesQ8<128, false>;
  ks->dot_q8_tiles[(int)DType::I4_G128A] = DotQ4TilesQ8<128, true>;
}

}  // namespace HWY_NAMESPACE
}  // namespace frugal::cpu::kern
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backend/cpu/hwy_dispatch.h"
namespace frugal::cpu::kern {

int64_t q4_tile_kernel_targets() { return HWY_TARGETS; }

bool fill_q4_tile_kernels(int64_t target, KernelSet* ks) {
  FRUGAL_HWY_DISPATCH(target, FillQ4TileKernels(ks))
}

}  // namespace frugal::cpu::kern
#endif  // HWY_ONCE
