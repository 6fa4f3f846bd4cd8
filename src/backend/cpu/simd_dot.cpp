// SIMD inner loops (see simd_dot.h). AVX2+FMA+F16C path when the compiler targets it (the build
// uses -march=native), scalar otherwise. Both paths accumulate in float32.
#include "backend/cpu/simd_dot.h"

#include <cstring>

#include "base/half.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define FRUGAL_CPU_AVX2 1
#include <immintrin.h>
#else
#define FRUGAL_CPU_AVX2 0
#endif

namespace frugal::cpu::simd {

namespace {

// ---------------------------------------------------------------------------------------------
// Scalar pieces (the whole fallback, and the tails of the SIMD loops).

float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += fp16_to_f32(w[i]) * x[i];
  return s;
}

float dot_bf16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

#if FRUGAL_CPU_AVX2

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

// Weights stream from DRAM once per token; the hardware prefetcher alone leaves the FMA loop
// waiting, so each block also prefetches the weight bytes kPrefetchBytes ahead (past the end of
// the row is fine: rows of a matrix are contiguous and prefetches never fault).
constexpr int kPrefetchBytes = 4096;
inline void prefetch_ahead(const void* p) {
  _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
}

// 16 bytes of nibbles -> the 32 weights' q values as four vectors of 8 floats, in ggml order:
// q[0..15] are the low nibbles of qs[0..15], q[16..31] the high nibbles.
struct Nibbles {
  __m256 q0, q1, q2, q3;
};
inline Nibbles unpack_nibbles(const uint8_t* qs) {
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(raw, m4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
  Nibbles n;
  n.q0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
  n.q1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
  n.q2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
  n.q3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
  return n;
}

inline __m256 load_q8(const int8_t* q) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

// w = q*d + m for a Q4 block; four FMAs of w against x into four accumulators.
inline void fma_q4_block(const uint8_t* qs, __m256 d, __m256 m, const float* x, __m256* acc) {
  const Nibbles q = unpack_nibbles(qs);
  acc[0] = _mm256_fmadd_ps(_mm256_fmadd_ps(q.q0, d, m), _mm256_loadu_ps(x), acc[0]);
  acc[1] = _mm256_fmadd_ps(_mm256_fmadd_ps(q.q1, d, m), _mm256_loadu_ps(x + 8), acc[1]);
  acc[2] = _mm256_fmadd_ps(_mm256_fmadd_ps(q.q2, d, m), _mm256_loadu_ps(x + 16), acc[2]);
  acc[3] = _mm256_fmadd_ps(_mm256_fmadd_ps(q.q3, d, m), _mm256_loadu_ps(x + 24), acc[3]);
}

inline float sum4(const __m256* acc) {
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

#endif  // FRUGAL_CPU_AVX2

}  // namespace

const char* kernel_isa() { return FRUGAL_CPU_AVX2 ? "avx2-fma-f16c" : "scalar"; }

// ---------------------------------------------------------------------------------------------
// Dot products.

float dot_f32(const float* a, const float* b, int64_t n) {
#if FRUGAL_CPU_AVX2
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead(a + i);  // a is the weight row in matvec (streams from memory)
    for (int k = 0; k < 4; ++k)
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k),
                               acc[k]);
  }
  for (; i + 8 <= n; i += 8)
    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  return sum4(acc) + dot_f32_scalar(a + i, b + i, n - i);
#else
  return dot_f32_scalar(a, b, n);
#endif
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
#if FRUGAL_CPU_AVX2
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead(w + i);
    for (int k = 0; k < 4; ++k) {
      const __m256 wv = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8 * k)));
      acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    acc[0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), acc[0]);
  }
  return sum4(acc) + dot_f16_scalar(w + i, x + i, n - i);
#else
  return dot_f16_scalar(w, x, n);
#endif
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
#if FRUGAL_CPU_AVX2
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    prefetch_ahead(w + i);
    for (int k = 0; k < 2; ++k) {
      const __m256i u = _mm256_cvtepu16_epi32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8 * k)));
      const __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
      acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    }
  }
  return hsum(_mm256_add_ps(acc[0], acc[1])) + dot_bf16_scalar(w + i, x + i, n - i);
#else
  return dot_bf16_scalar(w, x, n);
#endif
}

float dot_q8_0(const BlockQ8_0* w, const float* x, int64_t nb) {
#if FRUGAL_CPU_AVX2
  // Per block: s = sum(q*x) in one vector (4 FMAs), then total += d*s. Two totals over
  // even/odd blocks hide the FMA latency of the scaling step.
  __m256 tot[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    const int8_t* q = w[b].qs;
    prefetch_ahead(q);
    __m256 s = _mm256_mul_ps(load_q8(q), _mm256_loadu_ps(xb));
    s = _mm256_fmadd_ps(load_q8(q + 8), _mm256_loadu_ps(xb + 8), s);
    s = _mm256_fmadd_ps(load_q8(q + 16), _mm256_loadu_ps(xb + 16), s);
    s = _mm256_fmadd_ps(load_q8(q + 24), _mm256_loadu_ps(xb + 24), s);
    tot[b & 1] = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b].d)), s, tot[b & 1]);
  }
  return hsum(_mm256_add_ps(tot[0], tot[1]));
#else
  float total = 0;
  for (int64_t b = 0; b < nb; ++b) {
    float s = 0;
    for (int j = 0; j < kQK; ++j) s += (float)w[b].qs[j] * x[b * kQK + j];
    total += fp16_to_f32(w[b].d) * s;
  }
  return total;
#endif
}

float dot_q4_0(const BlockQ4_0* w, const float* x, int64_t nb) {
#if FRUGAL_CPU_AVX2
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int64_t b = 0; b < nb; ++b) {
    const float d = f16(w[b].d);
    prefetch_ahead(&w[b]);
    fma_q4_block(w[b].qs, _mm256_set1_ps(d), _mm256_set1_ps(-8.0f * d), x + b * kQK, acc);
  }
  return sum4(acc);
#else
  float total = 0;
  for (int64_t b = 0; b < nb; ++b) {
    float s = 0;
    const float* xb = x + b * kQK;
    for (int j = 0; j < kQK / 2; ++j)
      s += (float)((w[b].qs[j] & 15) - 8) * xb[j] + (float)((w[b].qs[j] >> 4) - 8) * xb[j + 16];
    total += fp16_to_f32(w[b].d) * s;
  }
  return total;
#endif
}

float dot_q4_1(const BlockQ4_1* w, const float* x, int64_t nb) {
#if FRUGAL_CPU_AVX2
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_ahead(&w[b]);
    fma_q4_block(w[b].qs, _mm256_set1_ps(f16(w[b].d)), _mm256_set1_ps(f16(w[b].m)),
                 x + b * kQK, acc);
  }
  return sum4(acc);
#else
  float total = 0;
  for (int64_t b = 0; b < nb; ++b) {
    float sq = 0, sx = 0;
    const float* xb = x + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      sq += (float)(w[b].qs[j] & 15) * xb[j] + (float)(w[b].qs[j] >> 4) * xb[j + 16];
      sx += xb[j] + xb[j + 16];
    }
    total += fp16_to_f32(w[b].d) * sq + fp16_to_f32(w[b].m) * sx;
  }
  return total;
#endif
}

// ---------------------------------------------------------------------------------------------
// Vector updates.

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
#if FRUGAL_CPU_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] += a * x[i];
}

void scale_f32(float a, float* y, int64_t n) {
  int64_t i = 0;
#if FRUGAL_CPU_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
#endif
  for (; i < n; ++i) y[i] *= a;
}

// ---------------------------------------------------------------------------------------------
// Row dequantization for matmul.

void dequantize_row_fast(DType t, const void* src, float* dst, int64_t n) {
#if FRUGAL_CPU_AVX2
  const int64_t nb = n / kQK;
  switch (t) {
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
      for (; i < n; ++i) dst[i] = fp16_to_f32(s[i]);
      return;
    }
    case DType::Q8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < nb; ++i) {
        const __m256 d = _mm256_set1_ps(f16(b[i].d));
        for (int k = 0; k < 4; ++k)
          _mm256_storeu_ps(dst + i * kQK + 8 * k, _mm256_mul_ps(load_q8(b[i].qs + 8 * k), d));
      }
      return;
    }
    case DType::Q4_0:
    case DType::Q4_1: {
      const bool q41 = t == DType::Q4_1;
      const uint8_t* base = static_cast<const uint8_t*>(src);
      const int bytes = q41 ? (int)sizeof(BlockQ4_1) : (int)sizeof(BlockQ4_0);
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* blk = base + i * bytes;
        uint16_t dh, mh = 0;
        std::memcpy(&dh, blk, 2);
        if (q41) std::memcpy(&mh, blk + 2, 2);
        const float df = f16(dh);
        const __m256 d = _mm256_set1_ps(df);
        const __m256 m = _mm256_set1_ps(q41 ? f16(mh) : -8.0f * df);
        const Nibbles q = unpack_nibbles(blk + (q41 ? 4 : 2));
        float* o = dst + i * kQK;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(q.q0, d, m));
        _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(q.q1, d, m));
        _mm256_storeu_ps(o + 16, _mm256_fmadd_ps(q.q2, d, m));
        _mm256_storeu_ps(o + 24, _mm256_fmadd_ps(q.q3, d, m));
      }
      return;
    }
    default:
      break;
  }
#endif
  dequantize_row(t, src, dst, n);
}

// ---------------------------------------------------------------------------------------------
// Matmul tile: 4 rows x 2 tokens of dot products per register tile.

namespace {

#if FRUGAL_CPU_AVX2
// out[t][r] for R rows x T tokens, n a multiple of 8 handled in vector form, rest scalar.
template <int R, int T>
void tile_kernel(const float* const* w, const float* const* x, int64_t n, float out[4][2]) {
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x[t] + i);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_loadu_ps(w[r] + i);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t j = i; j < n; ++j) s += w[r][j] * x[t][j];
      out[r][t] = s;
    }
}
#endif

}  // namespace

void dot_tile(const DotTile& p) {
  for (int t0 = 0; t0 < p.nt; t0 += 2) {
    const int nt = p.nt - t0 >= 2 ? 2 : 1;
    for (int r0 = 0; r0 < p.nr; r0 += 4) {
      const int nr = p.nr - r0 >= 4 ? 4 : p.nr - r0;
      const float* w[4];
      const float* x[2];
      for (int r = 0; r < nr; ++r) w[r] = p.w + (r0 + r) * p.ldw;
      for (int t = 0; t < nt; ++t) x[t] = p.x + (t0 + t) * p.ldx;
      float out[4][2];
#if FRUGAL_CPU_AVX2
      if (nr == 4 && nt == 2) {
        tile_kernel<4, 2>(w, x, p.n, out);
      } else if (nt == 2) {
        for (int r = 0; r < nr; ++r) tile_kernel<1, 2>(w + r, x, p.n, out + r);
      } else if (nr == 4) {
        tile_kernel<4, 1>(w, x, p.n, out);
      } else {
        for (int r = 0; r < nr; ++r) tile_kernel<1, 1>(w + r, x, p.n, out + r);
      }
#else
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) out[r][t] = dot_f32_scalar(w[r], x[t], p.n);
#endif
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < nt; ++t) p.out[(t0 + t) * p.ldo + r0 + r] = out[r][t];
    }
  }
}

}  // namespace frugal::cpu::simd
