// Private to dot_q8_hwy.cpp: its AVX-512 row tiles (4-bit pairs of x blocks, the VNNI 4-bit
// tile, the Q8_0 tile), included by it once per Highway target inside its per-target
// namespace, after the 256-bit tiles and helpers they use (Prefetch, GroupSx, GetRowScratch,
// the prefetch distances). Highway's "-inl.h" pattern: no #pragma once.
#if defined(FRUGAL_BACKEND_CPU_DOT_Q8_TILES512_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FRUGAL_BACKEND_CPU_DOT_Q8_TILES512_INL_H_
#undef FRUGAL_BACKEND_CPU_DOT_Q8_TILES512_INL_H_
#else
#define FRUGAL_BACKEND_CPU_DOT_Q8_TILES512_INL_H_
#endif

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// AVX-512: two x blocks per instruction. A 512-bit op issues on the two 512-bit ports (p0+p1
// fused, p5) where a 256-bit integer multiply, convert or FMA issues on p0/p1 only, so the
// dot / convert / scale chain (the part that bounds the 4-bit kernels in cache) runs at up to
// twice the lanes per cycle. Lanes 0-7 carry x block k, lanes 8-15 block k + 1.
HWY_INLINE __m512 DotU8S8x2(__m512i u, __m512i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s));
#else
  return _mm512_cvtepi32_ps(_mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// Two 4-bit sub-blocks (x blocks k, k + 1 of a row) as 64 bytes 0..15. G = 32: the qs of two
// consecutive blocks a, b -> [a lo | a hi | b lo | b hi]. G = 64: one 32-byte chunk -> [lo | hi].
// G >= 128: 64 bytes of qs -> [chunk 0 | chunk 1], low or high nibbles.
template <int G, int kBytes>
HWY_INLINE __m512i NibblePair(const uint8_t* qs, int j) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  if constexpr (G == 32) {
    const __m512i a = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    const __m512i ab = _mm512_mask_broadcast_i32x4(
        a, 0xFF00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + kBytes)));
    return _mm512_and_si512(_mm512_srlv_epi16(ab, _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0, 0,
                                                                 0x0004000400040004LL, 0x0004000400040004LL, 0, 0)),
                            m4);
  } else if constexpr (G == 64) {
    const __m512i raw = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
    return _mm512_and_si512(_mm512_srlv_epi16(raw, _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL,
                                                                  0x0004000400040004LL, 0x0004000400040004LL, 0, 0, 0, 0)),
                            m4);
  } else {
    static_assert(G % 128 == 0);
    const __m512i raw = _mm512_loadu_si512(qs + 32 * (j % (G / 64)));
    return _mm512_and_si512(j < G / 64 ? raw : _mm512_srli_epi16(raw, 4), m4);
  }
}

// A last, odd 32-weight block (16 bytes of qs) as 32 bytes 0..15 in lanes 0-7 (low nibbles,
// then high: natural order), the upper lanes zero.
HWY_INLINE __m512i OddBlockNibbles512(const uint8_t* qs) {
  const __m512i a =
      _mm512_maskz_broadcast_i32x4(0x00FF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm512_and_si512(
      _mm512_srlv_epi16(a, _mm512_set_epi64(0, 0, 0, 0, 0x0004000400040004LL, 0x0004000400040004LL, 0, 0)),
      _mm512_set1_epi8(0x0F));
}

// The per-row scale pass with one 16-lane gather per 16 groups (32-bit loads at the groups'
// first bytes: d in the low half, an asymmetric group's m in the high half), converted with
// vector ops; no fp16 ever goes through memory (a pass that stores 16-bit scales and reloads
// them as vectors stalls on store forwarding). G = 32: out[k] = d_k * dx_k for every x block.
// G >= 64: out[g] = d_g per group (the main loop multiplies by the x blocks' dx). Returns the
// offset term sum_g m_g * sxg[g] (m = -8 d when symmetric; sxg = x's sx summed per group).
template <int G, int kBytes, bool kAsym, bool kOffset = true>
HWY_INLINE float RowScales512(const uint8_t* HWY_RESTRICT w, int64_t ng, const float* HWY_RESTRICT dx,
                              const float* HWY_RESTRICT sxg, float* HWY_RESTRICT out) {
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(kBytes));
  __m512 macc = _mm512_setzero_ps();
  for (int64_t g = 0; g < ng; g += 16) {
    const __mmask16 m = ng - g >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ng - g)) - 1);
    const __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, w + g * kBytes, 1);
    __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
    const __m512 mv = kAsym ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(raw, 16))) : d;
    if constexpr (kOffset) macc = _mm512_fmadd_ps(mv, _mm512_maskz_loadu_ps(m, sxg + g), macc);
    if (G == 32) d = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(m, dx + g));
    _mm512_mask_storeu_ps(out + g, m, d);
  }
  if constexpr (!kOffset) return 0.0f;
  const float mt = _mm512_reduce_add_ps(macc);
  return kAsym ? mt : -8.0f * mt;
}

template <int G, bool kAsym, int R>
HWY_INLINE void DotQ4Q8Tile512(const uint8_t* HWY_RESTRICT w, size_t rb, const ActQ8& xa, int64_t n,
                               float* HWY_RESTRICT y) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  constexpr int kSub = G / kActBlock;
  const int64_t nb = n / kActBlock, ng = n / G;
  const RowScratch sc = GetRowScratch(nb * R + nb);
  const float* dx = xa.d.data();
  const float* sxg = GroupSx<G>(xa, ng, sc.f0 + nb * R);  // shared by the R rows
  float offset[R];
  for (int r = 0; r < R; ++r)
    offset[r] = RowScales512<G, kBytes, kAsym>(w + r * rb, ng, dx, sxg, sc.f0 + r * nb);
  const int8_t* xq = xa.q.data();
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 2 <= nb; k += 2) {  // x blocks k, k + 1 (one group of G = 32 each, or one group)
    const int64_t g = k / kSub;
    const int j = (int)(k % kSub);
    const uint8_t* qs0 = w + g * kBytes + kQs;
    {  // every step (<= 36 bytes per row): every line of the rows kPrefetchTilesQ4 tiles ahead
       // (see the 256-bit tile); session 3: decode/roofline q4_0 0.64 -> ~0.8, i4_g128 0.66 -> ~0.85
      for (int r = 0; r < R; ++r)
        Prefetch(qs0 + (r + kPrefetchTilesQ4<G> * R) * rb);
    }
    const __m512i xk = _mm512_loadu_si512(xq + k * kActBlock);
    // G >= 64: [dx_k x 8 | dx_k+1 x 8], shared by the R rows, times the row's group d.
    __m512 dxv = _mm512_setzero_ps();
    if constexpr (G > 32) dxv = _mm512_mask_broadcastss_ps(_mm512_set1_ps(dx[k]), 0xFF00, _mm_load_ss(dx + k + 1));
    for (int r = 0; r < R; ++r) {
      const float* f = sc.f0 + r * nb;
      __m512 scale;
      if constexpr (G == 32) {
        scale = _mm512_mask_broadcastss_ps(_mm512_set1_ps(f[k]), 0xFF00, _mm_load_ss(f + k + 1));
      } else {
        scale = _mm512_mul_ps(_mm512_set1_ps(f[g]), dxv);
      }
      acc[r] = _mm512_fmadd_ps(DotU8S8x2(NibblePair<G, kBytes>(qs0 + r * rb, j), xk), scale, acc[r]);
    }
  }
  if (k < nb) {  // a last, odd x block (G = 32 only): the upper lanes stay as they are
    const uint8_t* qs0 = w + k * kBytes + kQs;
    const __m512i xk = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, xq + k * kActBlock);
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_mask3_fmadd_ps(DotU8S8x2(OddBlockNibbles512(qs0 + r * rb), xk),
                                     _mm512_set1_ps(sc.f0[r * nb + k]), acc[r], 0x00FF);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]) + offset[r];
}
#endif

#if HWY_TARGET == HWY_AVX3_DL
// The 4-bit tile with VNNI: fewer vector ALU uops per row and step (2 x blocks) than
// DotQ4Q8Tile512 (in cache the 4-bit tiles are bound by those, not by loads):
// (1) High nibbles stay in place: byte & 0xF0 = 16 q. vpdpbusd's int32 lane sums are then 16x
//     the true ones (at most 4 * 240 * 127, exact; vpmaddubsw would saturate, hence VNNI only)
//     and the factor 1/16 goes into the x scales (G >= 64, shared by the R rows) or into one
//     multiply of the accumulator lanes at the end (G = 32). Powers of two: no extra rounding.
//     Saves the variable shift per row and step.
// (2) G = 32: the two blocks' dwords interleaved (lane 2i: block k, lane 2i + 1: block k + 1;
//     lanes 0-7 low nibbles, 8-15 high), the weights by one two-source dword permute of the two
//     16-byte qs loads (replacing a masked broadcast load), x by one dword permute per step shared
//     by the R rows, so the row's scale pair (f[k], f[k+1]) is one 64-bit broadcast load instead
//     of a broadcast plus a masked broadcast (a shuffle uop).
// (3) G = 128: the group's two steps read one 64-byte load (low nibbles, then high), and the
//     row's group scale is applied once per group: t = c0 * dx0 + c1 * dx1, acc += t * d_g.
// Per row and step G = 32 now issues vpermt2d, vpandd, vpdpbusd, vcvtdq2ps, vfmadd (7 vector
// ALU uops before: + vpsrlvw + the masked broadcasts). Measured 2026-11-30 on the dev VM against
// DotQ4Q8Tile512 (frugal_bench_kernels, FRUGAL_BENCH_CPU_TIME=1, GB/s, best of 3): in cache
// (512x4096/hot, 1 thread) Q4_0 20.5 -> 25.7, Q4_1 22.9 -> 28.6, I4_G64 24.8 -> 28.9,
// I4_G128 24.2 -> 30.7; from DRAM 4096x4096 2 threads Q4_0 22.0 -> 23.9, I4_G128 22.1 -> 24.0
// (read 21.9 / 22.5 in the same runs); frugal bench decode/roofline q4_0 0.75-0.77 -> 0.80-0.83,
// i4_g128 0.73-0.76 -> 0.80-0.81.
template <int G, bool kAsym, int R>
HWY_INLINE void DotQ4Q8TileVnni(const uint8_t* HWY_RESTRICT w, size_t rb, const ActQ8& xa, int64_t n,
                                float* HWY_RESTRICT y) {
  static_assert(G == 32 || G == 64 || G == 128);
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  const int64_t nb = n / kActBlock, ng = n / G;
  const RowScratch sc = GetRowScratch(nb * R + nb);
  const float* dx = xa.d.data();
  const float* sxg = GroupSx<G>(xa, ng, sc.f0 + nb * R);  // shared by the R rows
  float offset[R];
  for (int r = 0; r < R; ++r)
    offset[r] = RowScales512<G, kBytes, kAsym>(w + r * rb, ng, dx, sxg, sc.f0 + r * nb);
  const int8_t* xq = xa.q.data();
  // Bytes of lanes 0-7: low nibbles; lanes 8-15: high nibbles (in place).
  const __m512i nib = _mm512_inserti64x4(_mm512_set1_epi8(0x0F), _mm256_set1_epi8((char)0xF0), 1);
  auto dot = [](__m512i q, __m512i x) { return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x)); };
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  if constexpr (G == 32) {
    const __m512i xperm = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    const __m512i wperm = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 0, 16, 1, 17, 2, 18, 3, 19);
    int64_t k = 0;
    for (; k + 2 <= nb; k += 2) {
      const uint8_t* qs0 = w + k * kBytes + kQs;
      for (int r = 0; r < R; ++r) Prefetch(qs0 + (r + kPrefetchTilesQ4<G> * R) * rb);
      const __m512i xk = _mm512_permutexvar_epi32(xperm, _mm512_loadu_si512(xq + k * kActBlock));
      for (int r = 0; r < R; ++r) {
        const uint8_t* qs = qs0 + r * rb;
        const __m512i a = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
        const __m512i b = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + kBytes)));
        const __m512i q = _mm512_and_si512(_mm512_permutex2var_epi32(a, wperm, b), nib);
        const __m512 scale = _mm512_castsi512_ps(
            _mm512_broadcastq_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc.f0 + r * nb + k))));
        acc[r] = _mm512_fmadd_ps(dot(q, xk), scale, acc[r]);
      }
    }
    if (k < nb) {  // a last, odd x block: into lanes 0-7 (natural order, nibbles shifted)
      const uint8_t* qs0 = w + k * kBytes + kQs;
      const __m512i xk = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, xq + k * kActBlock);
      for (int r = 0; r < R; ++r) {
        acc[r] = _mm512_mask3_fmadd_ps(dot(OddBlockNibbles512(qs0 + r * rb), xk),
                                       _mm512_set1_ps(sc.f0[r * nb + k]), acc[r], 0x00FF);
      }
    }
    const __m512 unscale = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f / 16.0f));
    for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(_mm512_mul_ps(acc[r], unscale)) + offset[r];
  } else {
    constexpr int kSteps = G / 64;  // steps of 2 x blocks per group
    const __m512 sixteenth = _mm512_set1_ps(1.0f / 16.0f);
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t k = g * (G / kActBlock);
      const uint8_t* qs0 = w + g * kBytes + kQs;
      for (int r = 0; r < R; ++r) Prefetch(qs0 + (r + kPrefetchTilesQ4<G> * R) * rb);
      // Per step [dx_k x 8 | dx_k+1 x 8], times 1/16 where the weights are high nibbles in place.
      __m512 dxv[kSteps];
      __m512i xk[kSteps];
      for (int s = 0; s < kSteps; ++s) {
        dxv[s] = _mm512_mask_broadcastss_ps(_mm512_set1_ps(dx[k + 2 * s]), 0xFF00, _mm_load_ss(dx + k + 2 * s + 1));
        xk[s] = _mm512_loadu_si512(xq + (k + 2 * s) * kActBlock);
      }
      if constexpr (G == 64) {
        dxv[0] = _mm512_mask_mul_ps(dxv[0], 0xFF00, dxv[0], sixteenth);
      } else {
        dxv[1] = _mm512_mul_ps(dxv[1], sixteenth);
      }
      for (int r = 0; r < R; ++r) {
        const uint8_t* qs = qs0 + r * rb;
        __m512 t;
        if constexpr (G == 64) {  // one 32-byte chunk: low nibbles block k, high block k + 1
          const __m512i raw = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)));
          t = _mm512_mul_ps(dot(_mm512_and_si512(raw, nib), xk[0]), dxv[0]);
        } else {  // 64 bytes: low nibbles blocks k, k + 1; high nibbles blocks k + 2, k + 3
          const __m512i raw = _mm512_loadu_si512(qs);
          t = _mm512_mul_ps(dot(_mm512_and_si512(raw, _mm512_set1_epi8(0x0F)), xk[0]), dxv[0]);
          t = _mm512_fmadd_ps(dot(_mm512_and_si512(raw, _mm512_set1_epi8((char)0xF0)), xk[1]), dxv[1], t);
        }
        acc[r] = _mm512_fmadd_ps(t, _mm512_set1_ps(sc.f0[r * nb + g]), acc[r]);
      }
    }
    for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]) + offset[r];
  }
}
#endif

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Q8_0, 512-bit: two x blocks (k, k + 1) per instruction, each row's two 32-byte qs loaded into
// the halves of one register. Signed x signed: with VNNI, w + 128 (= w xor 0x80, unsigned) times
// x through vpdpbusd whose accumulator starts at -128 * (x's 4-byte sums), computed once per
// step for all R rows, so the int32 sums are exact; without VNNI, |w| x sign(x, w) as on AVX2
// (AVX-512 has no vpsignb: a masked negate).
template <int R>
HWY_INLINE void DotQ8_0Q8Tile512(const uint8_t* HWY_RESTRICT w, size_t rb, const ActQ8& xa, int64_t n,
                                 float* HWY_RESTRICT y) {
  constexpr int64_t kB = (int64_t)sizeof(BlockQ8_0);
  const int64_t nb = n / kQK;
  const RowScratch sc = GetRowScratch(nb * R);
  for (int r = 0; r < R; ++r)
    RowScales512<kQK, (int)kB, false, false>(w + r * rb, nb, xa.d.data(), nullptr, sc.f0 + r * nb);
  const int8_t* xq = xa.q.data();
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  auto dot = [&](__m512i wv, __m512i xk, __m512i negc) {
#if HWY_TARGET == HWY_AVX3_DL
    return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(negc, _mm512_xor_si512(wv, _mm512_set1_epi8((char)0x80)), xk));
#else
    (void)negc;
    const __m512i sx = _mm512_mask_sub_epi8(xk, _mm512_movepi8_mask(wv), _mm512_setzero_si512(), xk);
    return _mm512_cvtepi32_ps(_mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(wv), sx), _mm512_set1_epi16(1)));
#endif
  };
  auto neg_c = [](__m512i xk) {
#if HWY_TARGET == HWY_AVX3_DL
    return _mm512_sub_epi32(_mm512_setzero_si512(),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), xk));
#else
    (void)xk;
    return _mm512_setzero_si512();
#endif
  };
  const size_t pf = PrefetchDistanceQ8_0(R * rb);  // 2048-wide rows: 29.1-29.5 vs 28.1-28.8 tok/s
  int64_t k = 0;
  for (; k + 2 <= nb; k += 2) {
    const __m512i xk = _mm512_loadu_si512(xq + k * kActBlock);
    const __m512i negc = neg_c(xk);
    for (int r = 0; r < R; ++r) {
      const uint8_t* qs = w + r * rb + k * kB + 2;
      Prefetch(qs + pf);  // both lines of the step's 68 bytes
      Prefetch(qs + 64 + pf);
      const __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(LoadBlock(qs)), LoadBlock(qs + kB), 1);
      const float* f = sc.f0 + r * nb;
      const __m512 scale = _mm512_mask_broadcastss_ps(_mm512_set1_ps(f[k]), 0xFF00, _mm_load_ss(f + k + 1));
      acc[r] = _mm512_fmadd_ps(dot(wv, xk, negc), scale, acc[r]);
    }
  }
  if (k < nb) {  // a last, odd x block: the upper lanes stay as they are
    const __m512i xk = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, xq + k * kActBlock);
    const __m512i negc = neg_c(xk);
    for (int r = 0; r < R; ++r) {
      const __m512i wv = _mm512_castsi256_si512(LoadBlock(w + r * rb + k * kB + 2));
      acc[r] = _mm512_mask3_fmadd_ps(dot(_mm512_maskz_mov_epi64(0x0F, wv), xk, negc),
                                     _mm512_set1_ps(sc.f0[r * nb + k]), acc[r], 0x00FF);
    }
  }
  for (int r = 0; r < R; ++r) y[r] = _mm512_reduce_add_ps(acc[r]);
}
#endif

#endif  // per-target include guard
