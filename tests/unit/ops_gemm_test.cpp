// The blocked GEMM behind matmul (backend/cpu/gemm.h, matmul.cpp) against a float64 reference:
// the packed-panel micro-kernel on its own (every tail: K slices, token tiles, rows of a panel,
// accumulate), then matmul on awkward shapes for every weight dtype matmul_supports(), with 1-3
// threads (which also exercises the split of tokens into chunks when panels are few).
// For quantized weights the reference uses the dequantized weights, so the only error allowed
// is float32 accumulation: |y - ref| <= 2e-5 * sum_i |w_i x_i|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "quant/ggml_blocks.h"
#include "ops_test_util.h"
namespace frugal::cpu {
namespace {

using test::random_vec;
using test::make_weights;
using Weights = test::QuantWeights;

constexpr double kRelTol = 2e-5;


// |got - (base + sum_k w[k] x[k])| within float32 accumulation error, the sums in float64.
void expect_dot(float got, const float* w, int64_t w_stride, const float* x, int64_t n,
                const char* what, float base = 0.0f) {
  double ref = base, mag = std::fabs((double)base);
  for (int64_t k = 0; k < n; ++k) {
    const double p = (double)w[k * w_stride] * (double)x[k];
    ref += p;
    mag += std::fabs(p);
  }
  EXPECT_LE(std::fabs((double)got - ref), kRelTol * mag + 1e-30)
      << what << ": got " << got << " want " << ref;
}

TEST(OpsGemm, PanelRowsIsTwoVectors) {
  const int64_t nr = gemm::panel_rows();
  EXPECT_GE(nr, 2);
  EXPECT_EQ(nr % 2, 0);
  EXPECT_GT(std::strlen(gemm::target_name()), 0u);
}

// pack_panel: k-major, rows past nr zero, any k0 offset.
TEST(OpsGemm, PackPanelLayout) {
  std::mt19937 rng(3);
  const int64_t NR = gemm::panel_rows(), ld = 37;
  const std::vector<float> src = random_vec(NR * ld, rng);
  for (int64_t nr : {int64_t{1}, NR - 1, NR}) {
    for (int64_t k0 : {0, 5}) {
      const int64_t kc = ld - k0 - 3;
      std::vector<float> panel((size_t)(kc * NR), -7.0f);
      gemm::pack_panel(src.data(), ld, nr, k0, kc, panel.data());
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t r = 0; r < NR; ++r)
          ASSERT_EQ(panel[k * NR + r], r < nr ? src[r * ld + k0 + k] : 0.0f)
              << "nr=" << nr << " k0=" << k0 << " k=" << k << " r=" << r;
    }
  }
}

// The micro-kernel alone: token counts around the register tile (6 or 12), every row count
// of a panel, K slices that are not multiples of anything, and accumulate onto earlier values.
// Outputs outside [n_tokens, n_rows] must stay untouched.
TEST(OpsGemm, PanelKernelTailsAndAccumulate) {
  std::mt19937 rng(5);
  const int64_t NR = gemm::panel_rows();
  for (int64_t kc : {1, 7, 33, 261}) {
    const std::vector<float> w = random_vec(NR * kc, rng);  // row-major [NR, kc]
    std::vector<float> panel((size_t)(kc * NR));
    for (int64_t n_rows = 1; n_rows <= NR; n_rows += (n_rows < 3 || n_rows > NR - 3) ? 1 : 5) {
      gemm::pack_panel(w.data(), kc, n_rows, 0, kc, panel.data());
      for (int64_t n_tok : {1, 2, 5, 6, 7, 11, 12, 13, 25}) {
        for (bool acc : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "kc=" << kc << " rows=" << n_rows
                                            << " tokens=" << n_tok << " acc=" << acc);
          const int64_t ldx = kc + 3, ldy = NR + 5;
          const std::vector<float> x = random_vec(n_tok * ldx, rng);
          const std::vector<float> y0 = random_vec(n_tok * ldy, rng);
          std::vector<float> y = y0;
          gemm::PanelArgs a;
          a.panel = panel.data();
          a.kc = kc;
          a.x = x.data();
          a.ldx = ldx;
          a.n_tokens = n_tok;
          a.y = y.data();
          a.ldy = ldy;
          a.n_rows = n_rows;
          a.accumulate = acc;
          gemm::panel_gemm(a);
          for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t r = 0; r < ldy; ++r) {
              const float got = y[t * ldy + r];
              if (r >= n_rows) {
                ASSERT_EQ(got, y0[t * ldy + r]) << "wrote outside the tile: t=" << t << " r=" << r;
                continue;
              }
              expect_dot(got, w.data() + r * kc, 1, x.data() + t * ldx, kc, "panel",
                         acc ? y0[t * ldy + r] : 0.0f);
            }
          }
        }
      }
    }
  }
}



// Every supported dtype; rows around panel multiples (the panel is 16 or 32 rows), columns that
// are whole 128-blocks but not whole 256-wide K slices, tokens around the register tiles.
TEST(OpsGemm, MatmulAwkwardShapesAllDtypesThreads) {
  std::mt19937 rng(7);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int ti = 0; ti < (int)DType::kCount; ++ti) {
      const DType t = (DType)ti;
      if (!matmul_supports(t)) continue;
      for (int64_t rows : {1, 31, 33, 47, 100}) {
        for (int64_t cols : {128, 640}) {
          Weights w = make_weights(t, rows, cols, rng);
          for (int64_t n_tok : {2, 13, 70}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(t) << " rows=" << rows << " cols="
                                              << cols << " tokens=" << n_tok
                                              << " threads=" << threads);
            const std::vector<float> X = random_vec(n_tok * cols, rng);
            std::vector<float> Y((size_t)(n_tok * rows), -1.0f);
            matmul(w.view, X.data(), n_tok, Y.data(), pool);
            for (int64_t i = 0; i < n_tok; ++i)
              for (int64_t r = 0; r < rows; ++r)
                expect_dot(Y[(size_t)(i * rows + r)], w.deq.data() + r * cols, 1,
                           X.data() + i * cols, cols, "matmul");
          }
        }
      }
    }
  }
}

// Rows longer than one K slice (2048): later slices accumulate onto the first.
TEST(OpsGemm, MatmulRowsLongerThanAKSlice) {
  std::mt19937 rng(8);
  ThreadPool pool(2);
  for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_1}) {
    const int64_t rows = 33, cols = 2048 + 128 + 32, n_tok = 13;
    Weights w = make_weights(t, rows, cols, rng);
    const std::vector<float> X = random_vec(n_tok * cols, rng);
    std::vector<float> Y((size_t)(n_tok * rows));
    matmul(w.view, X.data(), n_tok, Y.data(), pool);
    for (int64_t i = 0; i < n_tok; ++i)
      for (int64_t r = 0; r < rows; ++r)
        expect_dot(Y[(size_t)(i * rows + r)], w.deq.data() + r * cols, 1, X.data() + i * cols,
                   cols, dtype_name(t));
  }
}

// Weights in the decode tiles (repack.h) give the same bits as row-major through the float GEMM:
// Q8_0 panels dequantized straight from the tiles (dequantize_tiles_to_panel; the last panel,
// with rows past the last whole tile, through the row-major path), the other tiled formats
// through their rows; plus the direct panel against pack_panel of dequantized rows.
TEST(OpsGemm, DecodeTilesGiveTheSameBits) {
  std::mt19937 rng(10);
  ThreadPool pool(2);
  const int64_t NR = gemm::panel_rows();
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::I4_G128A}) {
    for (int64_t rows : {4, 8, 50, 67}) {
      const int64_t cols = t == DType::I4_G128A ? 256 : 160, n_tok = 7;
      SCOPED_TRACE(::testing::Message() << dtype_name(t) << " rows=" << rows);
      Weights w = make_weights(t, rows, cols, rng);
      std::vector<uint8_t> tiles(w.bytes.size());
      pack_matrix(t, rows, cols, w.bytes.data(), tiles.data());
      TensorView tv = w.view;
      tv.data = tiles.data();
      tv.layout = WeightLayout::kTiles4;
      const std::vector<float> X = random_vec(n_tok * cols, rng);
      std::vector<float> ya((size_t)(n_tok * rows)), yb((size_t)(n_tok * rows));
      matmul(w.view, X.data(), n_tok, ya.data(), pool, ActPrecision::kF32);
      matmul(tv, X.data(), n_tok, yb.data(), pool, ActPrecision::kF32);
      EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0);
      if (t != DType::Q8_0) continue;
      for (int64_t r0 = 0; r0 + 4 <= rows / 4 * 4; r0 += NR) {
        const int64_t nr = std::min(NR, rows / 4 * 4 - r0);
        std::vector<float> deq((size_t)(nr * cols)), want((size_t)(cols * NR)), got((size_t)(cols * NR), -1.0f);
        for (int64_t r = 0; r < nr; ++r) dequantize_row(t, w.view.row(r0 + r), deq.data() + r * cols, cols);
        gemm::pack_panel(deq.data(), cols, nr, 0, cols, want.data());
        ASSERT_TRUE(dequantize_tiles_to_panel(tv, r0, nr, NR, got.data()));
        EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)), 0) << "r0 " << r0;
      }
      float one = 0.0f;
      EXPECT_FALSE(dequantize_tiles_to_panel(w.view, 0, 4, NR, &one)) << "row-major";
      EXPECT_FALSE(dequantize_tiles_to_panel(tv, 2, 4, NR, &one)) << "not at a tile";
    }
  }
}

// Float weights with odd row lengths (no block constraint): tails of every residue.
TEST(OpsGemm, MatmulFloatOddColumns) {
  std::mt19937 rng(9);
  ThreadPool pool(2);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t cols : {1, 3, 255, 257, 515}) {
      Weights w = make_weights(t, 35, cols, rng);
      const std::vector<float> X = random_vec(14 * cols, rng);
      std::vector<float> Y(14 * 35);
      matmul(w.view, X.data(), 14, Y.data(), pool);
      for (int64_t i = 0; i < 14; ++i)
        for (int64_t r = 0; r < 35; ++r)
          expect_dot(Y[(size_t)(i * 35 + r)], w.deq.data() + r * cols, 1, X.data() + i * cols,
                     cols, "matmul");
    }
  }
}

}  // namespace
}  // namespace frugal::cpu
