// The tiled layout of the 4-bit formats and Q8_0 (backend/cpu/repack.h) and its kernels, on every SIMD target this CPU
// supports: the layout's bytes, pack / unpack round trips, the row accessors, the int8 path
// against the float64 reference of the dequantized weights (the bounds of
// ops_matvec_formats_test.cpp), the same bits for any thread count, the scalar target
// bit-identical to the row-major kernel, the float path and matmul bit-identical to row-major,
// and the 16-bit integer sums at the ends of their ranges.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "base/half.h"
#include "ops_test_util.h"
#include "quant/ggml_blocks.h"

namespace frugal::cpu {
namespace {

using kern::ActQ8;
using kern::KernelSet;
using test::random_vec;

constexpr double kAccumTol = 2e-5;
const DType kTiledTypes[] = {DType::Q4_0,   DType::Q4_1,    DType::I4_G64,   DType::I4_G64A,
                             DType::I4_G128, DType::I4_G128A, DType::Q8_0};

bool is_asym(DType t) { return t == DType::Q4_1 || t == DType::I4_G64A || t == DType::I4_G128A; }

// Row lengths with an odd number of groups (and of 32-element x blocks for G = 32): G, 3G,
// 576 rounded up to G, 1536 + G.
std::vector<int64_t> lengths_for(DType t) {
  const int64_t g = dtype_info(t).block_elems;
  return {g, 3 * g, (576 + g - 1) / g * g, 1536 + g};
}

// A matrix row-major and tiled (the same bytes), with its dequantized values and |m| per element.
struct Pair {
  std::vector<uint8_t> rm, tiled;
  std::vector<float> deq, moff;
  TensorView v_rm, v_tiled;
};

Pair make_pair(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  Pair p;
  std::vector<float> src = random_vec(rows * cols, rng, 0.5f);
  if (rows > 2) {  // a shifted row (asymmetric range) and an outlier
    for (int64_t c = 0; c < cols; ++c) src[(size_t)(cols + c)] += 1.5f;
    src[(size_t)(2 * cols + cols / 2)] = 9.0f;
  }
  const size_t rb = dtype_row_bytes(t, cols);
  p.rm.resize(rb * (size_t)rows);
  p.deq.resize((size_t)(rows * cols));
  p.moff.assign((size_t)(rows * cols), 0.0f);
  const int64_t g = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = p.rm.data() + r * rb;
    quantize_row(t, src.data() + r * cols, row, cols);
    dequantize_row(t, row, p.deq.data() + r * cols, cols);
    if (is_asym(t))
      for (int64_t c = 0; c < cols; ++c) {
        uint16_t mh;
        std::memcpy(&mh, row + (c / g) * bb + 2, 2);
        p.moff[(size_t)(r * cols + c)] = std::fabs(fp16_to_f32(mh));
      }
  }
  p.tiled.resize(p.rm.size());
  pack_matrix(t, rows, cols, p.rm.data(), p.tiled.data());
  p.v_rm.name = "w";
  p.v_rm.dtype = t;
  p.v_rm.shape = {rows, cols};
  p.v_rm.data = p.rm.data();
  p.v_rm.nbytes = p.rm.size();
  p.v_tiled = p.v_rm;
  p.v_tiled.data = p.tiled.data();
  p.v_tiled.layout = WeightLayout::kTiles4;
  return p;
}

std::vector<float> run(const KernelSet& ks, const TensorView& W, const float* x, ThreadPool& pool,
                       ActPrecision act) {
  std::vector<float> y((size_t)W.rows(), -12345.0f);
  kern::matvec_with(ks, W, x, y.data(), pool, act);
  return y;
}

TEST(TiledLayout, BytesWhereTheLayoutSaysAndRoundTrips) {
  std::mt19937 rng(31);
  for (DType t : kTiledTypes) {
    ASSERT_TRUE(tile_layout_supported(t));
    const TileGeometry geo = tile_geometry(t);
    const int64_t cols = 3 * geo.group;
    for (int64_t rows : {1, 3, 4, 5, 7, 33}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(t) << " rows=" << rows);
      const Pair p = make_pair(t, rows, cols, rng);
      const size_t rb = dtype_row_bytes(t, cols);
      const int64_t ng = cols / geo.group, full = rows / 4 * 4;
      // Every byte of the whole tiles where repack.h puts it; rows after them unchanged.
      for (int64_t r = 0; r < full; ++r) {
        const uint8_t* tile = p.tiled.data() + (r / 4) * 4 * rb;
        const int ri = (int)(r % 4);
        const uint8_t* row = p.rm.data() + r * rb;
        for (int64_t g = 0; g < ng; ++g) {
          const uint8_t* blk = row + g * geo.block_bytes;
          ASSERT_EQ(0, std::memcmp(tile + 8 * g + 2 * ri, blk, 2)) << "d of row " << r << " group " << g;
          if (geo.asym) {
            ASSERT_EQ(0, std::memcmp(tile + 8 * ng + 8 * g + 2 * ri, blk + 2, 2));
          }
          const uint8_t* q = tile + 8 * ng * (geo.asym ? 2 : 1) + g * 4 * geo.qs_bytes;
          for (int e = 0; e < geo.qs_bytes; ++e)
            ASSERT_EQ(q[16 * (e / 4) + 4 * ri + e % 4], blk[(geo.asym ? 4 : 2) + e]) << "qs byte " << e;
        }
      }
      EXPECT_EQ(0, std::memcmp(p.tiled.data() + full * rb, p.rm.data() + full * rb, (rows - full) * rb));
      // Row accessors: the row-major bytes and the dequantized row of every row.
      std::vector<uint8_t> scratch(rb);
      std::vector<float> f((size_t)cols);
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* b = weight_row_bytes(p.v_tiled, r, scratch.data());
        ASSERT_EQ(0, std::memcmp(b, p.rm.data() + r * rb, rb)) << "row " << r;
        dequantize_weight_row(p.v_tiled, r, f.data());
        ASSERT_EQ(0, std::memcmp(f.data(), p.deq.data() + r * cols, cols * sizeof(float))) << "row " << r;
      }
      // unpack_tile inverts pack_tile.
      if (full > 0) {
        std::vector<uint8_t> back(4 * rb);
        unpack_tile(t, cols, p.tiled.data(), back.data());
        EXPECT_EQ(0, std::memcmp(back.data(), p.rm.data(), 4 * rb));
      }
      // weight_rows_bytes: every run of rows (whole tiles, parts of tiles, the row-major tail).
      for (int64_t r0 = 0; r0 < rows; ++r0)
        for (int64_t nr = 1; r0 + nr <= rows; ++nr) {
          std::vector<uint8_t> got((size_t)nr * rb, 0xAB);
          weight_rows_bytes(p.v_tiled, r0, nr, got.data());
          ASSERT_EQ(0, std::memcmp(got.data(), p.rm.data() + r0 * rb, (size_t)nr * rb))
              << "rows " << r0 << " + " << nr;
        }
    }
  }
}

// Every target has the tile kernels (matvec would otherwise take the float path for tiles).
TEST(TiledMatvec, EveryTargetHasTileKernels) {
  for (const KernelSet& ks : kern::all_kernel_sets())
    for (DType t : kTiledTypes) EXPECT_NE(ks.dot_q8_tiles[(int)t], nullptr) << ks.name << " " << dtype_name(t);
}

TEST(TiledMatvec, Int8PathAllTargetsVsFloat64) {
  std::mt19937 rng(32);
  ThreadPool pool1(1), pool2(2);
  for (DType t : kTiledTypes) {
    for (int64_t n : lengths_for(t)) {
      for (int64_t rows : {1, 3, 5, 7, 33}) {
        const Pair p = make_pair(t, rows, n, rng);
        std::vector<float> x = random_vec(n, rng);
        x[(size_t)(n / 2)] = 6.0f;  // an outlier: coarse steps for its block
        for (const KernelSet& ks : kern::all_kernel_sets()) {
          ActQ8 a;
          ks.quantize_act(x.data(), n, &a);
          for (ThreadPool* pool : {&pool1, &pool2}) {
            const std::vector<float> y = run(ks, p.v_tiled, x.data(), *pool, ActPrecision::kQ8);
            const std::vector<float> y_rm = run(ks, p.v_rm, x.data(), *pool, ActPrecision::kQ8);
            for (int64_t r = 0; r < rows; ++r) {
              double v_hat = 0, abs_hat = 0;
              for (int64_t i = 0; i < n; ++i) {
                const double wi = p.deq[(size_t)(r * n + i)];
                const double xh = (double)a.d[(size_t)(i / 32)] * a.q[(size_t)i];
                v_hat += wi * xh;
                abs_hat += (std::fabs(wi) + p.moff[(size_t)(r * n + i)]) * std::fabs(xh);
              }
              ASSERT_LE(std::fabs(y[(size_t)r] - v_hat), kAccumTol * abs_hat + 1e-30)
                  << ks.name << " " << dtype_name(t) << " n=" << n << " rows=" << rows
                  << " threads=" << pool->size() << " row " << r;
              // Tiled vs row-major: both within the float64 bound, so within twice it of each other.
              ASSERT_LE(std::fabs((double)y[(size_t)r] - y_rm[(size_t)r]), 2 * kAccumTol * abs_hat + 1e-30)
                  << ks.name << " " << dtype_name(t) << " n=" << n << " row " << r;
            }
            // Rows after the last whole tile go through the row-major kernel: identical.
            for (int64_t r = rows / 4 * 4; r < rows; ++r) ASSERT_EQ(y[(size_t)r], y_rm[(size_t)r]);
          }
        }
      }
    }
  }
}

// The scalar target runs the row-major scalar kernel's arithmetic on the tiles: same bits. On
// every target the tiled result does not depend on the thread count.
TEST(TiledMatvec, ScalarBitIdenticalAndSameBitsForAnyThreadCount) {
  std::mt19937 rng(33);
  ThreadPool pool1(1), pool2(2), pool3(3);
  int scalar_sets = 0;
  for (DType t : kTiledTypes) {
    for (int64_t n : {lengths_for(t)[1], lengths_for(t)[3]}) {
      const Pair p = make_pair(t, 37, n, rng);
      const std::vector<float> x = random_vec(n, rng);
      for (const KernelSet& ks : kern::all_kernel_sets()) {
        const std::vector<float> y1 = run(ks, p.v_tiled, x.data(), pool1, ActPrecision::kQ8);
        EXPECT_EQ(y1, run(ks, p.v_tiled, x.data(), pool2, ActPrecision::kQ8)) << ks.name << " " << dtype_name(t);
        EXPECT_EQ(y1, run(ks, p.v_tiled, x.data(), pool3, ActPrecision::kQ8)) << ks.name << " " << dtype_name(t);
        const std::string name = ks.name;
        if (name == "SCALAR" || name == "EMU128") {
          ++scalar_sets;
          EXPECT_EQ(y1, run(ks, p.v_rm, x.data(), pool1, ActPrecision::kQ8)) << ks.name << " " << dtype_name(t);
        }
      }
    }
  }
  EXPECT_GT(scalar_sets, 0);
}

// The float path (tiles unpacked, then the row-major float kernel) and matmul (rows unpacked,
// then dequantized) give the row-major bits.
TEST(TiledMatvec, FloatPathAndMatmulBitIdentical) {
  std::mt19937 rng(34);
  ThreadPool pool(2);
  for (DType t : kTiledTypes) {
    const int64_t n = lengths_for(t)[1];
    const Pair p = make_pair(t, 7, n, rng);
    const std::vector<float> x = random_vec(3 * n, rng);
    for (const KernelSet& ks : kern::all_kernel_sets())
      EXPECT_EQ(run(ks, p.v_tiled, x.data(), pool, ActPrecision::kF32),
                run(ks, p.v_rm, x.data(), pool, ActPrecision::kF32))
          << ks.name << " " << dtype_name(t);
    // prefill: the float GEMM and the int8 GEMM (gemm_q8.h) read the tiles' rows bit for bit
    for (ActPrecision act : {ActPrecision::kF32, ActPrecision::kQ8}) {
      std::vector<float> y_t(3 * 7), y_r(3 * 7);
      matmul(p.v_tiled, x.data(), 3, y_t.data(), pool, act);
      matmul(p.v_rm, x.data(), 3, y_r.data(), pool, act);
      EXPECT_EQ(y_t, y_r) << dtype_name(t) << (act == ActPrecision::kQ8 ? " q8" : " f32");
      for (float v : y_t) EXPECT_TRUE(std::isfinite(v)) << dtype_name(t);
    }
  }
}

// Every nibble 15 (or 0, or mixed) times x at +-127 after quantization: the AVX2 / AVX3 tiles
// add four vpmaddubsw results in 16 bits (up to 4 * 2 * 15 * 127 = 15240), which must not wrap.
// Q8_0: every weight -128 (vpmaddubsw pair sums 2 * 128 * 127 = 32512 with the sign trick; VNNI's
// w + 128 = 0), 127, -127, 0, and -128 / 127 alternating per byte. d = 1, m = 0: the references
// are exact.
TEST(TiledMatvec, ExtremeNibbles) {
  ThreadPool pool(1);
  constexpr int64_t kRows = 5;
  for (DType t : kTiledTypes) {
    const bool q8 = t == DType::Q8_0;
    const uint8_t patterns[kRows] = {uint8_t(q8 ? 0x80 : 0xFF), uint8_t(q8 ? 0x7F : 0xF0),
                                     uint8_t(q8 ? 0x81 : 0x0F), 0x00, 0x8F};
    const int64_t g = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
    const int64_t hdr = is_asym(t) ? 4 : 2;
    const int64_t n = 3 * g;
    const size_t rb = dtype_row_bytes(t, n);
    std::vector<uint8_t> rm(rb * kRows, 0), tiled(rb * kRows);
    std::vector<float> deq((size_t)(kRows * n));
    for (int64_t r = 0; r < kRows; ++r) {
      uint8_t* row = rm.data() + r * (int64_t)rb;
      for (int64_t b = 0; b < n / g; ++b) {
        const uint16_t one = f32_to_fp16(1.0f);
        std::memcpy(row + b * bb, &one, 2);
        std::memset(row + b * bb + hdr, patterns[(size_t)r], (size_t)(bb - hdr));
        if (q8 && r == 4)
          for (int64_t i = hdr; i < bb; ++i) row[b * bb + i] = i % 2 == 0 ? 0x80 : 0x7F;
      }
      dequantize_row(t, row, deq.data() + r * n, n);
    }
    pack_matrix(t, kRows, n, rm.data(), tiled.data());
    TensorView v;
    v.dtype = t;
    v.shape = {kRows, n};
    v.data = tiled.data();
    v.nbytes = tiled.size();
    v.layout = WeightLayout::kTiles4;
    for (int sign_pattern = 0; sign_pattern < 2; ++sign_pattern) {
      std::vector<float> x((size_t)n);
      for (int64_t i = 0; i < n; ++i) x[(size_t)i] = sign_pattern == 1 && (i / 3) % 2 == 1 ? -1.0f : 1.0f;
      for (const KernelSet& ks : kern::all_kernel_sets()) {
        ActQ8 a;
        ks.quantize_act(x.data(), n, &a);
        const std::vector<float> y = run(ks, v, x.data(), pool, ActPrecision::kQ8);
        for (int64_t r = 0; r < kRows; ++r) {
          double v_hat = 0, abs_hat = 0;
          for (int64_t i = 0; i < n; ++i) {
            const double xh = (double)a.d[(size_t)(i / 32)] * a.q[(size_t)i];
            v_hat += deq[(size_t)(r * n + i)] * xh;
            abs_hat += std::fabs(deq[(size_t)(r * n + i)] * xh);
          }
          EXPECT_LE(std::fabs(y[(size_t)r] - v_hat), kAccumTol * abs_hat + 1e-30)
              << ks.name << " " << dtype_name(t) << " byte " << (int)patterns[(size_t)r] << " signs " << sign_pattern;
        }
      }
    }
  }
}

// matvec_multi over tiled and row-major matrices (q/k/v-like, shared x) gives the bits of one
// matvec per matrix, 1-3 threads.
TEST(TiledMatvec, MultiEqualsSeparateMatvecs) {
  std::mt19937 rng(36);
  const int64_t n = 576;
  const DType types[] = {DType::Q4_1, DType::Q8_0, DType::Q4_0, DType::I4_G64A};
  const int64_t rows[] = {576, 192, 45, 33};
  std::vector<Pair> ps;
  for (int i = 0; i < 4; ++i) ps.push_back(make_pair(types[i], rows[i], n, rng));
  const std::vector<float> x = random_vec(n, rng);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::vector<float>> ys(4);
    std::vector<MatvecOut> outs;
    for (int i = 0; i < 4; ++i) {
      ys[(size_t)i].assign((size_t)rows[i], -1.0f);
      outs.push_back({i == 3 ? &ps[(size_t)i].v_rm : &ps[(size_t)i].v_tiled, ys[(size_t)i].data()});
    }
    matvec_multi(outs, x.data(), pool, ActPrecision::kQ8);
    for (int i = 0; i < 4; ++i) {
      std::vector<float> y1((size_t)rows[i]);
      matvec(*outs[(size_t)i].W, x.data(), y1.data(), pool, ActPrecision::kQ8);
      EXPECT_EQ(ys[(size_t)i], y1) << "part " << i << " threads " << threads;
    }
  }
}

// A tiled view of a dtype without the layout is refused (NaN rows), never read as garbage.
TEST(TiledMatvec, UnsupportedTiledDtypeGivesNaN) {
  std::mt19937 rng(35);
  const int64_t n = 64, rows = 8;
  ASSERT_FALSE(tile_layout_supported(DType::F32));
  std::vector<float> src = random_vec(n * rows, rng);
  std::vector<uint8_t> bytes(src.size() * sizeof(float));
  std::memcpy(bytes.data(), src.data(), bytes.size());
  TensorView v;
  v.dtype = DType::F32;
  v.shape = {rows, n};
  v.data = bytes.data();
  v.nbytes = bytes.size();
  v.layout = WeightLayout::kTiles4;
  ThreadPool pool(1);
  const std::vector<float> x = random_vec(n, rng);
  std::vector<float> y((size_t)rows, 0.0f);
  matvec(v, x.data(), y.data(), pool, ActPrecision::kQ8);
  for (float f : y) EXPECT_TRUE(std::isnan(f));
}

}  // namespace
}  // namespace frugal::cpu
