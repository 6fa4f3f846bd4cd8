// The int8-activation GEMM (backend/cpu/gemm_q8.h; matmul with ActPrecision::kQ8) on every SIMD
// target this CPU supports (all_gemm_q8_sets) x every integer weight format x awkward shapes
// (tokens 2, 3, 5, 13, 33 around the register tiles; rows not a multiple of the tile or panel;
// odd block counts), against float64 references:
//   vs the quantized activations xhat (= dx_k * q_i, the set's own quantize_act):
//     |y - sum_i w_i xhat_i| <= 1e-5 * sum_i (|d q_i| + |m|) |xhat_i|   (float32 accumulation
//     only; w = d q + m as unpack_block gives it, whose two terms are summed apart)
//   vs the float activations:  |y - sum_i w_i x_i| <= sum_i |w_i| d_k(i) / 2 + the above
//     (each x_i moves by at most half its block's step, ops.h).
// Plus unpack_block against the scalar dequantizer, bit-identical results for 1-3 threads, K
// slices, n_tokens = 1 equal to matvec, and the float fallback for other dtypes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/gemm_q8.h"
#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "ops_test_util.h"

namespace frugal::cpu {
namespace {

using kern::ActQ8;
using kern::GemmQ8Set;
using test::make_weights;
using test::random_vec;

constexpr double kAccumTol = 1e-5;

const DType kTypes[] = {DType::Q8_0,    DType::Q4_0,    DType::Q4_1,     DType::I4_G64,
                        DType::I4_G64A, DType::I4_G128, DType::I4_G128A, DType::I8_ROW};

// Row lengths: one block, an odd number of 32-blocks (3 or 5 groups for G = 64 / 128); I8_ROW
// (any length) also a partial last 32-block.
std::vector<int64_t> lengths_for(DType t) {
  const int64_t g = dtype_info(t).block_elems;
  if (g == 1) return {32, 96, 77};
  if (g == 32) return {32, 160};
  return {g, 3 * g};
}

// Per weight element: |d q| + |m| from unpack_block (the magnitude the tolerance scales with).
std::vector<double> term_magnitudes(const test::QuantWeights& w, int64_t rows, int64_t cols) {
  std::vector<double> mag((size_t)(rows * cols));
  const int64_t nb = (cols + 31) / 32;
  uint8_t q[32];
  float d, m;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < nb; ++k) {
      kern::unpack_block(w.view.dtype, w.view.row(r), w.view.row_bytes(), 1, k, cols, q, &d, &m);
      for (int64_t i = 0; i < 32 && 32 * k + i < cols; ++i)
        mag[(size_t)(r * cols + 32 * k + i)] = std::fabs((double)d * q[i]) + std::fabs((double)m);
    }
  return mag;
}

// unpack_block reproduces the scalar dequantizer (d q + m in float64 vs dequantize_row), for
// row counts 1..5 from any row; I8_ROW's padding is w = 0.
TEST(OpsGemmQ8, UnpackBlockMatchesDequantize) {
  std::mt19937 rng(11);
  for (DType t : kTypes) {
    for (int64_t cols : lengths_for(t)) {
      const int64_t rows = 7;
      test::QuantWeights w = make_weights(t, rows, cols, rng);
      const int64_t nb = (cols + 31) / 32;
      for (int nr = 1; nr <= 5; ++nr) {
        for (int64_t k = 0; k < nb; ++k) {
          uint8_t q[5 * 32];
          float d[5], m[5];
          const int maxq = kern::unpack_block(t, w.view.row(2), w.view.row_bytes(), nr, k, cols, q, d, m);
          ASSERT_EQ(maxq, t == DType::Q8_0 || t == DType::I8_ROW ? 255 : 15) << dtype_name(t);
          for (int r = 0; r < nr; ++r)
            for (int i = 0; i < 32; ++i) {
              ASSERT_LE(q[r * 32 + i], maxq);
              const double got = (double)d[r] * q[r * 32 + i] + (double)m[r];
              const int64_t c = 32 * k + i;
              const double want = c < cols ? (double)w.deq[(size_t)((2 + r) * cols + c)] : 0.0;
              ASSERT_NEAR(got, want, 1e-6 * (std::fabs(want) + std::fabs((double)m[r])) + 1e-30)
                  << dtype_name(t) << " cols=" << cols << " row=" << 2 + r << " col=" << c;
            }
        }
      }
    }
    uint8_t q[32];
    float d, m;
    EXPECT_EQ(kern::unpack_block(DType::F16, nullptr, 0, 1, 0, 32, q, &d, &m), 0);
  }
}

// The two float64 bounds of the file comment, for every token and row.
void expect_q8_result(const GemmQ8Set& ks, const test::QuantWeights& w, int64_t rows, int64_t cols,
                      const std::vector<float>& X, int64_t n_tok, const std::vector<float>& Y) {
  const std::vector<double> mag = term_magnitudes(w, rows, cols);
  ActQ8 xa;
  for (int64_t t = 0; t < n_tok; ++t) {
    ks.quantize_act(X.data() + t * cols, cols, &xa);
    for (int64_t r = 0; r < rows; ++r) {
      double ref_q = 0, tol_q = 0, ref_f = 0, act_err = 0;
      for (int64_t i = 0; i < cols; ++i) {
        const double wi = w.deq[(size_t)(r * cols + i)];
        const double dk = xa.d[(size_t)(i / 32)];
        const double xhat = dk * xa.q[(size_t)i];
        ref_q += wi * xhat;
        tol_q += mag[(size_t)(r * cols + i)] * std::fabs(xhat);
        ref_f += wi * (double)X[(size_t)(t * cols + i)];
        act_err += std::fabs(wi) * dk / 2;
      }
      const double got = Y[(size_t)(t * rows + r)];
      ASSERT_LE(std::fabs(got - ref_q), kAccumTol * tol_q + 1e-30)
          << "vs quantized x: token " << t << " row " << r << " got " << got << " want " << ref_q;
      ASSERT_LE(std::fabs(got - ref_f), act_err * (1 + 1e-6) + kAccumTol * tol_q + 1e-30)
          << "vs float x: token " << t << " row " << r;
    }
  }
}

TEST(OpsGemmQ8, EveryTargetFormatAwkwardShapes) {
  std::mt19937 rng(12);
  ThreadPool pool(2);
  ASSERT_FALSE(kern::all_gemm_q8_sets().empty());
  for (const GemmQ8Set& ks : kern::all_gemm_q8_sets()) {
    for (DType t : kTypes) {
      for (int64_t cols : lengths_for(t)) {
        for (int64_t rows : {1, 9, 17, 50}) {
          test::QuantWeights w = make_weights(t, rows, cols, rng);
          for (int64_t n_tok : {2, 3, 5, 13, 33}) {
            SCOPED_TRACE(::testing::Message() << ks.name << " " << dtype_name(t) << " rows=" << rows
                                              << " cols=" << cols << " tokens=" << n_tok);
            const std::vector<float> X = random_vec(n_tok * cols, rng);
            std::vector<float> Y((size_t)(n_tok * rows), -1.0f);
            kern::matmul_q8_with(ks, w.view, X.data(), n_tok, Y.data(), pool);
            expect_q8_result(ks, w, rows, cols, X, n_tok, Y);
          }
        }
      }
    }
  }
}

// quantize_tokens writes each token's blocks straight into the batch (quantize_act_to): the same
// bytes as quantize_act of that token alone, on every target, with a partial last block.
TEST(OpsGemmQ8, QuantizeTokensEqualsQuantizeActPerToken) {
  std::mt19937 rng(21);
  ThreadPool pool(2);
  for (const GemmQ8Set& ks : kern::all_gemm_q8_sets())
    for (int64_t cols : {32, 77, 256}) {
      const int64_t n_tok = 9;
      const std::vector<float> X = random_vec(n_tok * cols, rng);
      kern::ActQ8Batch xb;
      kern::quantize_tokens(ks, X.data(), n_tok, cols, &xb, pool);
      ActQ8 one;
      for (int64_t t = 0; t < n_tok; ++t) {
        ks.quantize_act(X.data() + t * cols, cols, &one);
        ASSERT_EQ(one.nb, xb.nb);
        EXPECT_EQ(std::memcmp(one.q.data(), xb.q.data() + t * xb.nb * 32, (size_t)(xb.nb * 32)), 0) << ks.name << " " << cols;
        EXPECT_EQ(std::memcmp(one.d.data(), xb.d.data() + t * xb.nb, (size_t)xb.nb * 4), 0) << ks.name;
        EXPECT_EQ(std::memcmp(one.sx.data(), xb.sx.data() + t * xb.nb, (size_t)xb.nb * 4), 0) << ks.name;
      }
    }
}

// Weights in the decode tiles (repack.h) pack into the same panels as their row-major bytes,
// byte for byte: every panel (whole tiles through pack_panel_tiles; a panel with the rows past
// the last whole tile through the row-major reader), both plane counts of 8-bit weights, K
// slices starting past block 0; and matmul gives the same bits on both layouts.
TEST(OpsGemmQ8, PanelsFromDecodeTilesEqualRowMajor) {
  std::mt19937 rng(19);
  ThreadPool pool(2);
  for (const GemmQ8Set& ks : kern::all_gemm_q8_sets()) {
    for (DType t : kTypes) {
      if (!tile_layout_supported(t)) continue;
      const int64_t g = dtype_info(t).block_elems;
      for (int64_t rows : {4, 8, 50, 67}) {
        const int64_t cols = 3 * g, nb = cols / 32;
        SCOPED_TRACE(::testing::Message() << ks.name << " " << dtype_name(t) << " rows=" << rows);
        test::QuantWeights w = make_weights(t, rows, cols, rng);
        std::vector<uint8_t> tiles(w.bytes.size());
        pack_matrix(t, rows, cols, w.bytes.data(), tiles.data());
        TensorView tv = w.view;
        tv.data = tiles.data();
        tv.layout = WeightLayout::kTiles4;
        const int64_t NP = ks.shape.rows;
        for (int planes : {1, 2}) {
          if (planes != kern::panel_planes(ks.shape, t) && !(t == DType::Q8_0 && planes == 1)) continue;
          for (int64_t k0 : {int64_t{0}, int64_t{1}}) {
            const int64_t nxb = nb - k0;
            const size_t bytes = kern::panel_bytes(ks.shape, planes, nxb);
            std::vector<uint8_t> a(bytes + 64, 0xAB), b(bytes + 64, 0xCD);
            uint8_t* pa = a.data() + (64 - (uintptr_t)a.data() % 64) % 64;
            uint8_t* pb = b.data() + (64 - (uintptr_t)b.data() % 64) % 64;
            for (int64_t r0 = 0; r0 < rows; r0 += NP) {
              const int64_t nr = std::min(NP, rows - r0);
              kern::PackedPanel ra, rb;
              ASSERT_TRUE(kern::pack_panel_q8(ks.shape, planes, w.view, r0, nr, k0, nxb, pa, &ra));
              ASSERT_TRUE(kern::pack_panel_q8(ks.shape, planes, tv, r0, nr, k0, nxb, pb, &rb));
              const size_t nq = (size_t)(nxb * planes * NP * 32), nd = (size_t)(nxb * planes * NP);
              ASSERT_EQ(std::memcmp(ra.q, rb.q, nq), 0) << "q, planes " << planes << " r0 " << r0 << " k0 " << k0;
              ASSERT_EQ(std::memcmp(ra.d, rb.d, nd * sizeof(float)), 0) << "d, r0 " << r0;
              ASSERT_EQ(std::memcmp(ra.m, rb.m, (size_t)(nxb * NP) * sizeof(float)), 0) << "m, r0 " << r0;
            }
          }
        }
        const int64_t n_tok = 5;
        const std::vector<float> X = random_vec(n_tok * cols, rng);
        std::vector<float> ya((size_t)(n_tok * rows)), yb((size_t)(n_tok * rows));
        kern::matmul_q8_with(ks, w.view, X.data(), n_tok, ya.data(), pool);
        kern::matmul_q8_with(ks, tv, X.data(), n_tok, yb.data(), pool);
        EXPECT_EQ(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)), 0);
      }
    }
  }
}

// Heavy-tailed activations (a few outliers per row, as real hidden states have): the per-block
// scales differ by orders of magnitude between blocks.
TEST(OpsGemmQ8, OutlierActivations) {
  std::mt19937 rng(13);
  ThreadPool pool(1);
  const int64_t rows = 19, cols = 384, n_tok = 7;
  for (const GemmQ8Set& ks : kern::all_gemm_q8_sets()) {
    for (DType t : {DType::Q8_0, DType::Q4_1, DType::I4_G128}) {
      SCOPED_TRACE(::testing::Message() << ks.name << " " << dtype_name(t));
      test::QuantWeights w = make_weights(t, rows, cols, rng);
      std::vector<float> X = random_vec(n_tok * cols, rng);
      for (int64_t i = 0; i < n_tok * cols; i += 97) X[(size_t)i] *= 300.0f;
      std::vector<float> Y((size_t)(n_tok * rows));
      kern::matmul_q8_with(ks, w.view, X.data(), n_tok, Y.data(), pool);
      expect_q8_result(ks, w, rows, cols, X, n_tok, Y);
    }
  }
}

// Rows longer than one K slice (256 x blocks = 8192 columns): later slices accumulate.
TEST(OpsGemmQ8, RowsLongerThanAKSlice) {
  std::mt19937 rng(14);
  ThreadPool pool(2);
  const int64_t rows = 21, cols = 8192 + 384, n_tok = 4;
  for (const GemmQ8Set& ks : kern::all_gemm_q8_sets()) {
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::I4_G128A}) {
      SCOPED_TRACE(::testing::Message() << ks.name << " " << dtype_name(t));
      test::QuantWeights w = make_weights(t, rows, cols, rng);
      const std::vector<float> X = random_vec(n_tok * cols, rng);
      std::vector<float> Y((size_t)(n_tok * rows));
      kern::matmul_q8_with(ks, w.view, X.data(), n_tok, Y.data(), pool);
      expect_q8_result(ks, w, rows, cols, X, n_tok, Y);
    }
  }
}

// Any thread count (which also changes the split of tokens into chunks) gives the same bits.
TEST(OpsGemmQ8, BitIdenticalForAnyThreadCount) {
  std::mt19937 rng(15);
  for (DType t : kTypes) {
    const int64_t rows = 37, cols = dtype_info(t).block_elems == 128 ? 384 : 192, n_tok = 45;
    test::QuantWeights w = make_weights(t, rows, cols, rng);
    const std::vector<float> X = random_vec(n_tok * cols, rng);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> Y((size_t)(n_tok * rows));
      matmul(w.view, X.data(), n_tok, Y.data(), pool, ActPrecision::kQ8);
      if (first.empty()) {
        first = Y;
        continue;
      }
      EXPECT_EQ(std::memcmp(first.data(), Y.data(), Y.size() * sizeof(float)), 0)
          << dtype_name(t) << " threads=" << threads;
    }
  }
}

// matmul with one token is matvec with the same activation precision (bit for bit); kQ8 on a
// float weight format is the float GEMM; an unsupported dtype through the q8 set gives NaN.
TEST(OpsGemmQ8, OneTokenFloatFallbackAndErrors) {
  std::mt19937 rng(16);
  ThreadPool pool(2);
  for (DType t : kTypes) {
    const int64_t rows = 29, cols = 256;
    test::QuantWeights w = make_weights(t, rows, cols, rng);
    const std::vector<float> x = random_vec(cols, rng);
    std::vector<float> a((size_t)rows), b((size_t)rows);
    matmul(w.view, x.data(), 1, a.data(), pool, ActPrecision::kQ8);
    matvec(w.view, x.data(), b.data(), pool, ActPrecision::kQ8);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << dtype_name(t);
  }
  const int64_t rows = 20, cols = 96, n_tok = 5;
  test::QuantWeights w = make_weights(DType::F16, rows, cols, rng);
  const std::vector<float> X = random_vec(n_tok * cols, rng);
  std::vector<float> a((size_t)(rows * n_tok)), b((size_t)(rows * n_tok));
  matmul(w.view, X.data(), n_tok, a.data(), pool, ActPrecision::kQ8);
  matmul(w.view, X.data(), n_tok, b.data(), pool, ActPrecision::kF32);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_FALSE(kern::gemm_q8_supports(DType::F16));
  kern::matmul_q8_with(kern::best_gemm_q8_set(), w.view, X.data(), n_tok, a.data(), pool);
  for (float v : a) ASSERT_TRUE(std::isnan(v));
}

// matmul(kQ8) takes the int8 GEMM where gemm_q8_wins says so (bit for bit the best set's
// result), else the float GEMM; every matvec target has an int8 GEMM set.
TEST(OpsGemmQ8, MatmulPicksTheInt8GemmWhereItWins) {
  EXPECT_EQ(kern::all_gemm_q8_sets().size(), kern::all_kernel_sets().size());
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const GemmQ8Set& best = kern::best_gemm_q8_set();
  for (DType t : kTypes) {
    const int64_t rows = 23, cols = 256, n_tok = 6;
    test::QuantWeights w = make_weights(t, rows, cols, rng);
    const std::vector<float> X = random_vec(n_tok * cols, rng);
    std::vector<float> got((size_t)(rows * n_tok)), want((size_t)(rows * n_tok));
    matmul(w.view, X.data(), n_tok, got.data(), pool, ActPrecision::kQ8);
    if (kern::gemm_q8_wins(best, t)) kern::matmul_q8_with(best, w.view, X.data(), n_tok, want.data(), pool);
    else matmul(w.view, X.data(), n_tok, want.data(), pool, ActPrecision::kF32);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << dtype_name(t);
    EXPECT_EQ(kern::gemm_q8_wins(best, t),
              best.shape.bytes || (t != DType::Q8_0 && t != DType::I8_ROW)) << dtype_name(t);
  }
}

// matmul_swiglu (gate, up and SwiGLU in one pass) gives bit for bit matmul_multi then swiglu, for
// every weight format (int8 GEMM, float GEMM, both mixed), both precisions, decode (1 token) and
// prefill, row counts around the panels, in the decode tiles and row-major, any thread count; a
// pair of different shapes gives NaN.
TEST(OpsGemmQ8, MatmulSwigluEqualsMatmulThenSwiglu) {
  std::mt19937 rng(20);
  const int64_t cols = 256;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (DType a : {DType::Q4_0, DType::Q8_0, DType::I4_G128A, DType::Q4_1, DType::I8_ROW, DType::F16})
      for (DType b : {a, DType::Q4_0})
        for (int64_t rows : {9, 50}) {
          test::QuantWeights wg = make_weights(a, rows, cols, rng), wu = make_weights(b, rows, cols, rng);
          std::vector<uint8_t> tg(wg.bytes.size()), tu(wu.bytes.size());
          TensorView vg = wg.view, vu = wu.view;
          if (tile_layout_supported(a) && threads == 2) {  // as a model holds them on the CPU
            pack_matrix(a, rows, cols, wg.bytes.data(), tg.data());
            vg.data = tg.data();
            vg.layout = WeightLayout::kTiles4;
          }
          if (tile_layout_supported(b) && threads == 2) {
            pack_matrix(b, rows, cols, wu.bytes.data(), tu.data());
            vu.data = tu.data();
            vu.layout = WeightLayout::kTiles4;
          }
          for (ActPrecision act : {ActPrecision::kQ8, ActPrecision::kF32})
            for (int64_t n : {1, 2, 7, 33}) {
              SCOPED_TRACE(::testing::Message() << dtype_name(a) << " + " << dtype_name(b) << " rows "
                                                << rows << " n " << n << " threads " << threads
                                                << (act == ActPrecision::kQ8 ? " q8" : " f32"));
              const std::vector<float> X = random_vec(n * cols, rng);
              std::vector<float> g((size_t)(n * rows)), u((size_t)(n * rows)), h((size_t)(n * rows), -1.0f);
              const MatvecOut outs[] = {{&vg, g.data()}, {&vu, u.data()}};
              matmul_multi(outs, X.data(), n, pool, act);
              swiglu(g.data(), u.data(), g.data(), n * rows);
              matmul_swiglu(vg, vu, X.data(), n, h.data(), pool, act);
              ASSERT_EQ(std::memcmp(g.data(), h.data(), h.size() * sizeof(float)), 0);
            }
        }
  }
  ThreadPool pool(2);
  test::QuantWeights wa = make_weights(DType::Q4_0, 8, cols, rng), wb = make_weights(DType::Q4_0, 16, cols, rng);
  const std::vector<float> X = random_vec(4 * cols, rng);
  std::vector<float> h(8 * 4);
  matmul_swiglu(wa.view, wb.view, X.data(), 4, h.data(), pool, ActPrecision::kQ8);
  for (float v : h) ASSERT_TRUE(std::isnan(v));
}

// matmul_multi (q/k/v, gate/up in prefill: the input quantized once) gives bit for bit what one
// matmul per matrix gives, for every pair of formats (int8 GEMM for both, float for one or
// both) and both precisions; n_tokens == 1 is matvec_multi; a matrix of another width gets NaN
// on the shared path, as matmul_q8_quantized rejects it.
TEST(OpsGemmQ8, MatmulMultiEqualsOneMatmulEach) {
  std::mt19937 rng(18);
  ThreadPool pool(2);
  const int64_t cols = 256, n_tok = 7;
  const std::vector<float> X = random_vec(n_tok * cols, rng);
  for (DType a : kTypes)
    for (DType b : {DType::Q4_0, DType::Q8_0, DType::I4_G128, DType::F16})
      for (ActPrecision act : {ActPrecision::kQ8, ActPrecision::kF32}) {
        test::QuantWeights wa = make_weights(a, 19, cols, rng), wb = make_weights(b, 40, cols, rng);
        for (int64_t n : {n_tok, int64_t{1}}) {
          std::vector<float> ya((size_t)(19 * n)), yb((size_t)(40 * n));
          std::vector<float> wa_y(ya.size()), wb_y(yb.size());
          const MatvecOut outs[] = {{&wa.view, ya.data()}, {&wb.view, yb.data()}};
          matmul_multi(outs, X.data(), n, pool, act);
          matmul(wa.view, X.data(), n, wa_y.data(), pool, act);
          matmul(wb.view, X.data(), n, wb_y.data(), pool, act);
          EXPECT_EQ(std::memcmp(ya.data(), wa_y.data(), ya.size() * sizeof(float)), 0)
              << dtype_name(a) << " + " << dtype_name(b) << " n " << n;
          EXPECT_EQ(std::memcmp(yb.data(), wb_y.data(), yb.size() * sizeof(float)), 0)
              << dtype_name(a) << " + " << dtype_name(b) << " n " << n;
        }
      }
  const GemmQ8Set& best = kern::best_gemm_q8_set();
  kern::ActQ8Batch xb;
  kern::quantize_tokens(best, X.data(), n_tok, cols, &xb, pool);
  test::QuantWeights wide = make_weights(DType::Q4_0, 8, 2 * cols, rng);
  std::vector<float> y((size_t)(8 * n_tok));
  kern::matmul_q8_quantized(best, wide.view, xb, y.data(), pool);
  for (float v : y) ASSERT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace frugal::cpu
