// The int8 GEMM's weight side (gemm_q8.h): unpack_block, the one reader of row-major weight
// bytes, and the panel packing built on it; plus the direct path from the decode tiles
// (repack.h), whose 16-byte units are already the panel's [step][4 rows][4 bytes]. Portable
// code (SSE2 where the compiler has it), run once per panel per call.
#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/repack.h"
#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "quant/row_blocks.h"

namespace frugal::cpu::kern {

namespace {

constexpr int kB = kActBlock;  // 32

uint16_t load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// 4-bit groups of G (Q4_0 / Q4_1 are G = 32): element e of a group is qs[e] & 15 for e < G/2,
// qs[e - G/2] >> 4 after. x block k is sub-block k % (G/32) of group k / (G/32).
template <int G, bool kAsym>
void unpack_i4(const uint8_t* row0, size_t rb, int nr, int64_t k, uint8_t* q, float* d, float* m) {
  constexpr int kBytes = kAsym ? (int)sizeof(BlockI4Asym<G>) : (int)sizeof(BlockI4Sym<G>);
  constexpr int kQs = kAsym ? 4 : 2;
  const int64_t g = k / (G / kB);
  const int e0 = (int)(k % (G / kB)) * kB;  // first element of the block within its group
  for (int r = 0; r < nr; ++r) {
    const uint8_t* blk = row0 + r * rb + g * kBytes;
    const uint8_t* qs = blk + kQs;
    const float dr = fp16_to_f32(load_u16(blk));
    d[r] = dr;
    m[r] = kAsym ? fp16_to_f32(load_u16(blk + 2)) : -8.0f * dr;
    uint8_t* out = q + r * kB;
    if (e0 < G / 2 && e0 + kB > G / 2) {  // G = 32: low nibbles, then high
      for (int i = 0; i < G / 2; ++i) out[i] = qs[i] & 15;
      for (int i = 0; i < G / 2; ++i) out[G / 2 + i] = qs[i] >> 4;
    } else if (e0 < G / 2) {
      for (int i = 0; i < kB; ++i) out[i] = qs[e0 + i] & 15;
    } else {
      for (int i = 0; i < kB; ++i) out[i] = qs[e0 - G / 2 + i] >> 4;
    }
  }
}

void unpack_q8_0(const uint8_t* row0, size_t rb, int nr, int64_t k, uint8_t* q, float* d, float* m) {
  for (int r = 0; r < nr; ++r) {
    const uint8_t* blk = row0 + r * rb + k * (int64_t)sizeof(BlockQ8_0);
    d[r] = fp16_to_f32(load_u16(blk));
    m[r] = -128.0f * d[r];
    for (int i = 0; i < kB; ++i) q[r * kB + i] = (uint8_t)(blk[2 + i] ^ 0x80);  // w + 128
  }
}

void unpack_i8_row(const uint8_t* row0, size_t rb, int nr, int64_t k, int64_t n, uint8_t* q, float* d,
                   float* m) {
  const int64_t end = std::min<int64_t>(n, (k + 1) * kB) - k * kB;
  for (int r = 0; r < nr; ++r) {
    const uint8_t* row = row0 + r * rb;
    float s;
    std::memcpy(&s, row, 4);
    d[r] = s;
    m[r] = -128.0f * s;
    const uint8_t* w = row + 4 + k * kB;
    for (int64_t i = 0; i < end; ++i) q[r * kB + i] = (uint8_t)(w[i] ^ 0x80);
    for (int64_t i = end; i < kB; ++i) q[r * kB + i] = 128;  // w = 0
  }
}

bool is_8bit(DType t) { return t == DType::Q8_0 || t == DType::I8_ROW; }

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// n 16-byte units from src (16 bytes apart) to dst (dst_stride apart), transformed per byte:
// 4-bit weights take one nibble (kLo, kHi); 8-bit weights are first made w + 128 (byte ^ 0x80),
// then kept whole (kByte) or split into the two planes' nibbles (kByteLo, kByteHi).
enum class Nib { kLo, kHi, kByte, kByteLo, kByteHi };
template <Nib N>
void move_units(const uint8_t* src, uint8_t* dst, int64_t dst_stride, int n) {
  constexpr bool kFlip = N == Nib::kByte || N == Nib::kByteLo || N == Nib::kByteHi;
  constexpr bool kShift = N == Nib::kHi || N == Nib::kByteHi;
  for (int u = 0; u < n; ++u, src += 16, dst += dst_stride) {
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    if constexpr (kFlip) v = _mm_xor_si128(v, _mm_set1_epi8((char)0x80));
    if constexpr (kShift) v = _mm_srli_epi16(v, 4);
    if constexpr (N != Nib::kByte) v = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v);
#else
    for (int i = 0; i < 16; ++i) {
      uint8_t b = src[i];
      if constexpr (kFlip) b ^= 0x80;
      if constexpr (kShift) b >>= 4;
      if constexpr (N != Nib::kByte) b &= 15;
      dst[i] = b;
    }
#endif
  }
}

void move_units(Nib nib, const uint8_t* src, uint8_t* dst, int64_t dst_stride, int n) {
  switch (nib) {
    case Nib::kLo: return move_units<Nib::kLo>(src, dst, dst_stride, n);
    case Nib::kHi: return move_units<Nib::kHi>(src, dst, dst_stride, n);
    case Nib::kByte: return move_units<Nib::kByte>(src, dst, dst_stride, n);
    case Nib::kByteLo: return move_units<Nib::kByteLo>(src, dst, dst_stride, n);
    case Nib::kByteHi: return move_units<Nib::kByteHi>(src, dst, dst_stride, n);
  }
}

// pack_panel_q8 straight from the decode tiles, for panels whose rows all lie in whole tiles:
// step s of an x block for a tile's 4 rows is one 16-byte unit of the tile's Q (the rows'
// 4-byte units of the same 4 k), so the panel is moved unit by unit with no row-major copy
// (frugal_bench_kernels gemm_pack/*/8192x2048, AVX2, 2026-11-30: Q4_0 2.1-2.3 ms, I4_G128
// 1.2-1.3 ms per matrix; through unpack_tile and unpack_block 5.3 and 2.8-2.9 ms). The bytes
// equal unpack_block's (ops_gemm_q8_test checks).
bool pack_panel_tiles(const PanelShape& s, int planes, const TensorView& W, int64_t r0, int64_t nr,
                      int64_t k0, int64_t nxb, uint8_t* qp, float* dp, float* mp) {
  const int NP = s.rows, V = s.lanes;
  const int64_t full = W.rows() / kTileRows * kTileRows;
  if (W.row_major() || r0 % kTileRows != 0 || nr % kTileRows != 0 || r0 + nr > full ||
      NP % kTileRows != 0 || V % kTileRows != 0 || !tile_layout_supported(W.dtype))
    return false;
  const TileParts tp(W.dtype, W.cols());
  const bool q8 = W.dtype == DType::Q8_0;
  const int subs = tp.geo.group / kB, H = tp.geo.qs_bytes;
  const size_t rb = W.row_bytes(), tile_bytes = kTileRows * rb;
  const int ntiles = (int)(nr / kTileRows);
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + r0 * rb;
  float d[64], m[64];  // the panel's rows' d and m for the current group (NP <= 64)
  int64_t have = -1;
  for (int64_t kk = 0; kk < nxb; ++kk) {
    const int64_t k = k0 + kk, gi = k / subs;
    if (gi != have) {
      for (int r = 0; r < NP; ++r) d[r] = m[r] = 0.0f;
      for (int t = 0; t < ntiles; ++t)
        for (int rr = 0; rr < kTileRows; ++rr) {
          const uint8_t* tile = base + t * tile_bytes;
          const int r = t * kTileRows + rr;
          d[r] = fp16_to_f32(load_u16(tile + tp.d_off + 8 * gi + 2 * rr));
          m[r] = tp.geo.asym ? fp16_to_f32(load_u16(tile + tp.m_off + 8 * gi + 2 * rr))
                             : (q8 ? -128.0f : -8.0f) * d[r];
        }
      have = gi;
    }
    // Steps [0, 8) read elements e0 + 4 s of the group: qs bytes e < H as low nibbles, then
    // bytes e - H as high ones (the switch lies at a multiple of 16, so at step 0 or 4).
    const int e0 = (int)(k % subs) * kB;
    for (int p = 0; p < planes; ++p) {
      const int64_t j = kk * planes + p;
      uint8_t* dst = qp + j * NP * kB;
      for (int t = 0; t < NP / kTileRows; ++t) {
        uint8_t* o = dst + ((t * kTileRows / V) * (kB / 4) * V + t * kTileRows % V) * 4;
        if (t >= ntiles) {  // rows past the matrix: zero
          for (int st = 0; st < kB / 4; ++st) std::memset(o + st * V * 4, 0, 16);
          continue;
        }
        const uint8_t* q = base + t * tile_bytes + tp.q_off + tp.q_group_bytes * (size_t)gi;
        if (q8) {
          move_units(planes == 1 ? Nib::kByte : (p == 0 ? Nib::kByteLo : Nib::kByteHi), q, o, V * 4, kB / 4);
          continue;
        }
        for (int st = 0; st < kB / 4;) {
          const int e = e0 + 4 * st;
          const bool hi = e >= H;
          const int n = hi ? kB / 4 - st : std::min(kB / 4 - st, (H - e) / 4);
          move_units(hi ? Nib::kHi : Nib::kLo, q + 4 * (hi ? e - H : e), o + st * V * 4, V * 4, n);
          st += n;
        }
      }
      const float f = p == 1 ? 16.0f : 1.0f;
      for (int r = 0; r < NP; ++r) dp[j * NP + r] = f * d[r];
    }
    std::copy(m, m + NP, mp + kk * NP);
  }
  return true;
}

}  // namespace

bool gemm_q8_supports(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::I8_ROW:
    case DType::I4_G64: case DType::I4_G64A: case DType::I4_G128: case DType::I4_G128A:
      return true;
    default:
      return false;
  }
}

int unpack_block(DType t, const uint8_t* row0, size_t rb, int nr, int64_t k, int64_t n, uint8_t* q,
                 float* d, float* m) {
  switch (t) {
    case DType::Q8_0: unpack_q8_0(row0, rb, nr, k, q, d, m); return 255;
    case DType::I8_ROW: unpack_i8_row(row0, rb, nr, k, n, q, d, m); return 255;
    case DType::Q4_0: unpack_i4<32, false>(row0, rb, nr, k, q, d, m); return 15;
    case DType::Q4_1: unpack_i4<32, true>(row0, rb, nr, k, q, d, m); return 15;
    case DType::I4_G64: unpack_i4<64, false>(row0, rb, nr, k, q, d, m); return 15;
    case DType::I4_G64A: unpack_i4<64, true>(row0, rb, nr, k, q, d, m); return 15;
    case DType::I4_G128: unpack_i4<128, false>(row0, rb, nr, k, q, d, m); return 15;
    case DType::I4_G128A: unpack_i4<128, true>(row0, rb, nr, k, q, d, m); return 15;
    default: return 0;
  }
}

bool gemm_q8_wins(const GemmQ8Set& s, DType t) {
  return gemm_q8_supports(t) && (s.shape.bytes || !is_8bit(t));
}

int panel_planes(const PanelShape& s, DType t) { return is_8bit(t) && !s.bytes ? 2 : 1; }

size_t panel_bytes(const PanelShape& s, int planes, int64_t nxb) {
  const size_t nwb = (size_t)(nxb * planes), NP = (size_t)s.rows;
  return align64(nwb * NP * kB) + align64(nwb * NP * sizeof(float)) + align64((size_t)nxb * NP * sizeof(float));
}

bool pack_panel_q8(const PanelShape& s, int planes, const TensorView& W, int64_t r0, int64_t nr,
                   int64_t k0, int64_t nxb, uint8_t* buf, PackedPanel* out) {
  const int NP = s.rows, V = s.lanes;
  const size_t nwb = (size_t)(nxb * planes);
  uint8_t* qp = buf;
  float* dp = reinterpret_cast<float*>(buf + align64(nwb * NP * kB));
  float* mp = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(dp) + align64(nwb * NP * sizeof(float)));
  constexpr int kMaxRows = 64;
  if (NP > kMaxRows || nr > NP || !gemm_q8_supports(W.dtype)) return false;
  out->q = qp;
  out->d = dp;
  out->m = mp;
  if (pack_panel_tiles(s, planes, W, r0, nr, k0, nxb, qp, dp, mp)) return true;
  uint8_t tmp[kMaxRows * kB];
  float d[kMaxRows], m[kMaxRows];
  std::fill(tmp + nr * kB, tmp + NP * kB, 0);
  std::fill(d + nr, d + NP, 0.0f);
  std::fill(m + nr, m + NP, 0.0f);
  const uint8_t* row0 = W.row(r0);
  if (!W.row_major()) {
    // Decode tiles (repack.h): the panel's rows as row-major bytes first (unpack_block reads
    // rows row_bytes() apart). One copy per panel and K slice, small next to the tile work.
    thread_local std::vector<uint8_t> rows;
    const size_t rb = W.row_bytes();
    if (rows.size() < (size_t)nr * rb) rows.resize((size_t)nr * rb);
    weight_rows_bytes(W, r0, nr, rows.data());
    row0 = rows.data();
  }
  for (int64_t kk = 0; kk < nxb; ++kk) {
    unpack_block(W.dtype, row0, W.row_bytes(), (int)nr, k0 + kk, W.cols(), tmp, d, m);
    for (int p = 0; p < planes; ++p) {
      const int64_t j = kk * planes + p;
      uint8_t* dst = qp + j * NP * kB;
      // [row vector g][step s][row v][4 bytes], moved as 32-bit words (lo plane: q & 15 per
      // byte, hi plane: q >> 4).
      const uint32_t mask = planes == 1 ? 0xFFFFFFFFu : 0x0F0F0F0Fu;
      const int shift = p == 1 ? 4 : 0;
      for (int g = 0; g < NP / V; ++g)
        for (int v = 0; v < V; ++v) {
          const uint8_t* src = tmp + (g * V + v) * kB;
          uint8_t* o = dst + (g * (kB / 4) * V + v) * 4;
          for (int st = 0; st < kB / 4; ++st) {
            uint32_t word;
            std::memcpy(&word, src + 4 * st, 4);
            word = (word >> shift) & mask;
            std::memcpy(o + st * V * 4, &word, 4);
          }
        }
      const float f = p == 1 ? 16.0f : 1.0f;
      for (int r = 0; r < NP; ++r) dp[j * NP + r] = f * d[r];
    }
    std::copy(m, m + NP, mp + kk * NP);
  }
  return true;
}

}  // namespace frugal::cpu::kern
