// The tiled decode layout (repack.h): pack / unpack and the row accessors.
#include "backend/cpu/repack.h"

#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

#include "base/half.h"

#include "quant/ggml_blocks.h"

namespace frugal::cpu {

bool tile_layout_supported(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q4_1:
    case DType::I4_G64: case DType::I4_G64A: case DType::I4_G128: case DType::I4_G128A:
    case DType::Q8_0:
      return true;
    default:
      return false;
  }
}

TileGeometry tile_geometry(DType t) {
  TileGeometry g;
  if (!tile_layout_supported(t)) return g;
  const DTypeInfo& i = dtype_info(t);
  g.group = i.block_elems;
  g.block_bytes = i.block_bytes;
  g.asym = t == DType::Q4_1 || t == DType::I4_G64A || t == DType::I4_G128A;
  g.qs_bytes = t == DType::Q8_0 ? g.group : g.group / 2;
  return g;
}

TileParts::TileParts(DType t, int64_t cols) : geo(tile_geometry(t)) {
  ng = geo.group > 0 ? cols / geo.group : 0;
  d_off = 0;
  m_off = (size_t)(8 * ng);
  q_off = m_off + (geo.asym ? (size_t)(8 * ng) : 0);
  q_group_bytes = (size_t)(4 * geo.qs_bytes);
}

namespace {

// Row r of a tile from its row-major bytes, and back.
void row_to_tile(const TileParts& p, int r, const uint8_t* row, uint8_t* tile) {
  const int kb = p.geo.block_bytes, hq = p.geo.qs_bytes, qs0 = p.geo.asym ? 4 : 2;
  for (int64_t g = 0; g < p.ng; ++g) {
    const uint8_t* blk = row + g * kb;
    std::memcpy(tile + p.d_off + (size_t)(8 * g + 2 * r), blk, 2);
    if (p.geo.asym) std::memcpy(tile + p.m_off + (size_t)(8 * g + 2 * r), blk + 2, 2);
    uint8_t* q = tile + p.q_off + p.q_group_bytes * (size_t)g;
    for (int e = 0; e < hq; e += 4) std::memcpy(q + TileParts::qpos(r, e), blk + qs0 + e, 4);
  }
}

void tile_to_row(const TileParts& p, int r, const uint8_t* tile, uint8_t* row) {
  const int kb = p.geo.block_bytes, hq = p.geo.qs_bytes, qs0 = p.geo.asym ? 4 : 2;
  for (int64_t g = 0; g < p.ng; ++g) {
    uint8_t* blk = row + g * kb;
    std::memcpy(blk, tile + p.d_off + (size_t)(8 * g + 2 * r), 2);
    if (p.geo.asym) std::memcpy(blk + 2, tile + p.m_off + (size_t)(8 * g + 2 * r), 2);
    const uint8_t* q = tile + p.q_off + p.q_group_bytes * (size_t)g;
    for (int e = 0; e < hq; e += 4) std::memcpy(blk + qs0 + e, q + TileParts::qpos(r, e), 4);
  }
}

}  // namespace

void pack_tile(DType t, int64_t cols, const uint8_t* src, uint8_t* dst) {
  const TileParts p(t, cols);
  const size_t rb = dtype_row_bytes(t, cols);
  for (int r = 0; r < kTileRows; ++r) row_to_tile(p, r, src + r * rb, dst);
}

// All 4 rows of a tile at once: each 16 bytes of Q[g] (one 4-byte unit of each row) are read
// once, and 4 such chunks are a 4 x 4 transpose of 32-bit words into 16 contiguous qs bytes of
// each row. (Prefill reads the tiles back as rows for the GEMM panels: row by row, tile_to_row
// read every chunk 4 times with 4-byte copies; it was ~2.5% of a 512-token prefill.)
void unpack_tile(DType t, int64_t cols, const uint8_t* src, uint8_t* dst) {
  const TileParts p(t, cols);
  const size_t rb = dtype_row_bytes(t, cols);
#if defined(__SSE2__)
  const int kb = p.geo.block_bytes, hq = p.geo.qs_bytes, qs0 = p.geo.asym ? 4 : 2;
  for (int64_t g = 0; g < p.ng; ++g) {
    const uint8_t* q = src + p.q_off + p.q_group_bytes * (size_t)g;
    for (int r = 0; r < kTileRows; ++r) {
      uint8_t* blk = dst + r * rb + g * kb;
      std::memcpy(blk, src + p.d_off + (size_t)(8 * g + 2 * r), 2);
      if (p.geo.asym) std::memcpy(blk + 2, src + p.m_off + (size_t)(8 * g + 2 * r), 2);
    }
    for (int u = 0; u < hq / 4; u += 4) {  // hq / 4 is 4, 8 or 16
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * u));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * (u + 1)));
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * (u + 2)));
      const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * (u + 3)));
      const __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
      const __m128i cd0 = _mm_unpacklo_epi32(c, d), cd1 = _mm_unpackhi_epi32(c, d);
      const __m128i rows[4] = {_mm_unpacklo_epi64(ab0, cd0), _mm_unpackhi_epi64(ab0, cd0),
                               _mm_unpacklo_epi64(ab1, cd1), _mm_unpackhi_epi64(ab1, cd1)};
      for (int r = 0; r < kTileRows; ++r)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + r * rb + g * kb + qs0 + 4 * u), rows[r]);
    }
  }
#else
  for (int r = 0; r < kTileRows; ++r) tile_to_row(p, r, src, dst + r * rb);
#endif
}

void pack_matrix(DType t, int64_t rows, int64_t cols, const uint8_t* src, uint8_t* dst) {
  const size_t rb = dtype_row_bytes(t, cols);
  const int64_t full = rows / kTileRows * kTileRows;
  for (int64_t r = 0; r < full; r += kTileRows) pack_tile(t, cols, src + r * rb, dst + r * rb);
  if (full < rows) std::memcpy(dst + full * rb, src + full * rb, (size_t)(rows - full) * rb);
}

const uint8_t* weight_row_bytes(const TensorView& W, int64_t r, uint8_t* scratch) {
  const int64_t full = W.rows() / kTileRows * kTileRows;
  if (W.row_major() || r >= full) return W.row(r);
  const TileParts p(W.dtype, W.cols());
  const size_t rb = W.row_bytes();
  const uint8_t* tile = static_cast<const uint8_t*>(W.data) + (r / kTileRows) * kTileRows * rb;
  tile_to_row(p, (int)(r % kTileRows), tile, scratch);
  return scratch;
}

void weight_rows_bytes(const TensorView& W, int64_t r0, int64_t nr, uint8_t* dst) {
  const size_t rb = W.row_bytes();
  const int64_t full = W.row_major() ? 0 : W.rows() / kTileRows * kTileRows;
  int64_t r = r0;
  const int64_t end = r0 + nr;
  while (r < end) {
    uint8_t* out = dst + (r - r0) * rb;
    if (r < full && r % kTileRows == 0 && r + kTileRows <= end) {  // a whole tile
      unpack_tile(W.dtype, W.cols(), static_cast<const uint8_t*>(W.data) + r * rb, out);
      r += kTileRows;
      continue;
    }
    const uint8_t* src = weight_row_bytes(W, r, out);
    if (src != out) std::memcpy(out, src, rb);
    ++r;
  }
}

bool dequantize_tiles_to_panel(const TensorView& W, int64_t r0, int64_t nr, int64_t NR, float* panel) {
  const int64_t full = W.rows() / kTileRows * kTileRows, cols = W.cols();
  if (W.dtype != DType::Q8_0 || W.row_major() || r0 % kTileRows != 0 || nr % kTileRows != 0 ||
      r0 + nr > full || nr > NR || NR % kTileRows != 0)
    return false;
  const TileParts p(W.dtype, cols);
  const size_t rb = W.row_bytes();
  if (nr < NR)
    for (int64_t k = 0; k < cols; ++k) std::memset(panel + k * NR + nr, 0, (size_t)(NR - nr) * sizeof(float));
  for (int64_t t = 0; t < nr / kTileRows; ++t) {
    const uint8_t* tile = static_cast<const uint8_t*>(W.data) + (r0 + t * kTileRows) * rb;
    for (int64_t g = 0; g < p.ng; ++g) {
      float d[kTileRows];
      for (int r = 0; r < kTileRows; ++r) {
        uint16_t h;
        std::memcpy(&h, tile + p.d_off + 8 * g + 2 * r, 2);
        d[r] = fp16_to_f32(h);
      }
      const uint8_t* q = tile + p.q_off + p.q_group_bytes * (size_t)g;
      for (int u = 0; u < p.geo.qs_bytes / 4; ++u) {  // unit u: k = 32 g + 4 u + i, byte 4 r + i
        const uint8_t* unit = q + 16 * u;
        float* out = panel + (p.geo.group * g + 4 * u) * NR + t * kTileRows;
#if defined(__SSE2__)
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(unit));
        const __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);  // rows 0, 1 as int16
        const __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8);  // rows 2, 3
        __m128 f0 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpacklo_epi16(lo, lo), 16)), _mm_set1_ps(d[0]));
        __m128 f1 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpackhi_epi16(lo, lo), 16)), _mm_set1_ps(d[1]));
        __m128 f2 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpacklo_epi16(hi, hi), 16)), _mm_set1_ps(d[2]));
        __m128 f3 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_unpackhi_epi16(hi, hi), 16)), _mm_set1_ps(d[3]));
        _MM_TRANSPOSE4_PS(f0, f1, f2, f3);  // f_i: k = 4 u + i of the 4 rows
        _mm_storeu_ps(out, f0);
        _mm_storeu_ps(out + NR, f1);
        _mm_storeu_ps(out + 2 * NR, f2);
        _mm_storeu_ps(out + 3 * NR, f3);
#else
        for (int i = 0; i < 4; ++i)
          for (int r = 0; r < kTileRows; ++r) out[i * NR + r] = (float)(int8_t)unit[4 * r + i] * d[r];
#endif
      }
    }
  }
  return true;
}

void dequantize_weight_row(const TensorView& W, int64_t r, float* dst) {
  if (W.row_major()) return dequantize_row(W.dtype, W.row(r), dst, W.cols());
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < W.row_bytes()) scratch.resize(W.row_bytes());
  dequantize_row(W.dtype, weight_row_bytes(W, r, scratch.data()), dst, W.cols());
}

}  // namespace frugal::cpu
