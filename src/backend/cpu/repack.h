// The CPU decode layout of the 4-bit block weights and Q8_0 (WeightLayout::kTiles4): rows in
// tiles of kTileRows, each tile's scales contiguous and its quants interleaved across the rows, so
// that the int8-activation tile kernels (dot_q4_tiles_hwy.cpp, dot_q8_0_tiles_hwy.cpp) load a
// step's scales and weights for all the tile's rows with one vector load each, with no per-row
// scale pass. The same bytes as the row-major tensor (a permutation within each tile): no memory
// cost.
//
// Dtypes: Q4_0, Q4_1, I4_G64, I4_G64A, I4_G128, I4_G128A (groups of G weights, fp16 d, for the
// asymmetric ones fp16 m, then G/2 bytes qs; H = G/2). A tile of R = 4 rows and ng = cols / G
// groups takes 4 * row_bytes bytes:
//   D[ng][4]  fp16   D[g][r] = d of row r, group g             (8 ng bytes)
//   M[ng][4]  fp16   M[g][r] = m of row r, group g (asym only)  (8 ng bytes)
//   Q[ng][4H] bytes  Q[g][16 (e/4) + 4 r + e%4] = qs byte e of row r, group g
// i.e. per group the rows' qs bytes interleaved in 4-byte units: one 32-bit lane per row, so a
// vector of 4-byte lanes holds the same 4 qs bytes (8 weights) of the 4 rows in lanes j%4 = r.
// Q8_0 (blocks of G = 32: fp16 d, then 32 int8 qs) takes the same layout with H = G = 32 qs
// bytes per row and group (no M): D[ng][4] fp16, then Q[ng][128] with
// Q[g][16 (e/4) + 4 r + e%4] = qs byte e of row r, group g; the x bytes of a group line up
// with Q[g] by a plain load of ActQ8::q4 (dot_q8_0_tiles_hwy.cpp).
// Rows past the last whole tile (rows % 4 of them) stay row-major after the tiles.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/tensor.h"

namespace frugal::cpu {

constexpr int kTileRows = 4;

// True for the dtypes the tiled layout exists for.
bool tile_layout_supported(DType t);

// Bytes of the parts of a tile per group, for a supported dtype.
struct TileGeometry {
  int group = 0;       // G: weights per group
  int block_bytes = 0; // bytes of one group of one row (row-major)
  bool asym = false;   // M present
  int qs_bytes = 0;    // H: qs bytes of one group of one row (G / 2; Q8_0: G)
};
TileGeometry tile_geometry(DType t);

// Where the parts of a tile start (bytes from the tile's first byte), for a supported dtype:
// group g's D at d_off + 8 g, M at m_off + 8 g, Q at q_off + q_group_bytes * g.
struct TileParts {
  TileGeometry geo;
  int64_t ng = 0;
  size_t d_off = 0, m_off = 0, q_off = 0, q_group_bytes = 0;
  TileParts(DType t, int64_t cols);
  // Offset of row r's qs byte e within Q[g].
  static size_t qpos(int r, int e) { return (size_t)(16 * (e / 4) + 4 * r + e % 4); }
};

// Packs one tile: 4 row-major rows of `cols` weights at src (row_bytes apart) into 4 * row_bytes
// bytes at dst (no overlap). unpack_tile is its inverse.
void pack_tile(DType t, int64_t cols, const uint8_t* src, uint8_t* dst);
void unpack_tile(DType t, int64_t cols, const uint8_t* src, uint8_t* dst);

// A whole [rows, cols] matrix: whole tiles packed, the remaining rows copied.
void pack_matrix(DType t, int64_t rows, int64_t cols, const uint8_t* src, uint8_t* dst);

// Row r of W as row-major bytes: W.row(r) for a row-major view or a tail row; else unpacked into
// scratch (row_bytes() bytes) and scratch returned.
const uint8_t* weight_row_bytes(const TensorView& W, int64_t r, uint8_t* scratch);
// Rows [r0, r0 + nr) of W as row-major bytes into dst (nr * row_bytes() bytes), any layout:
// whole tiles unpacked 4 rows at a time.
void weight_rows_bytes(const TensorView& W, int64_t r0, int64_t nr, uint8_t* dst);
// The float GEMM's panel (gemm::pack_panel's layout, panel[k * NR + r] for k < cols, rows
// [nr, NR) zero) of rows [r0, r0 + nr) of a tiled Q8_0 matrix, dequantized straight from the
// tiles: each 16-byte tile unit is 4 rows x 4 k, so one 4 x 4 transpose puts it in place. The
// same floats as dequantize_row then pack_panel. False (nothing written) unless W is Q8_0 in
// tiles and the rows are whole tiles (r0 and nr multiples of 4, nr <= NR, NR a multiple of 4).
bool dequantize_tiles_to_panel(const TensorView& W, int64_t r0, int64_t nr, int64_t NR, float* panel);
// Row r of W dequantized to dst[0, cols): dequantize_row of its row-major bytes, any layout.
void dequantize_weight_row(const TensorView& W, int64_t r, float* dst);

}  // namespace frugal::cpu
