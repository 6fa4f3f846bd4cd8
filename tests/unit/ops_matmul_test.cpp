// vec_dot / matvec / matmul against a float64 reference. For quantized weights the reference is
// the float64 dot of the *dequantized* weights (quant/ggml_blocks.h), so the only error allowed
// is float32 accumulation: |y - ref| <= 2e-5 * sum_i |w_i x_i|.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"
#include "quant/ggml_blocks.h"
#include "ops_test_util.h"
namespace frugal::cpu {
namespace {

using test::random_vec;
using test::make_weights;
using Weights = test::QuantWeights;

constexpr double kRelTol = 2e-5;




struct RefDot {
  double value;
  double abs_sum;  // sum |w_i x_i|, the scale of the rounding error
};
RefDot ref_dot(const float* w, const float* x, int64_t n) {
  RefDot r{0.0, 0.0};
  for (int64_t i = 0; i < n; ++i) {
    r.value += (double)w[i] * (double)x[i];
    r.abs_sum += std::fabs((double)w[i] * (double)x[i]);
  }
  return r;
}

void expect_close(float got, const RefDot& ref, const char* what) {
  EXPECT_LE(std::fabs((double)got - ref.value), kRelTol * ref.abs_sum + 1e-30)
      << what << ": got " << got << " want " << ref.value;
}

const DType kAllTypes[] = {DType::F32, DType::F16, DType::BF16,
                           DType::Q8_0, DType::Q4_0, DType::Q4_1};

TEST(OpsMatmul, Capabilities) {
  for (DType t : kAllTypes) EXPECT_TRUE(matmul_supports(t)) << dtype_name(t);
  EXPECT_FALSE(matmul_supports(DType::I8));
  EXPECT_FALSE(matmul_supports(DType::I32));
}

TEST(OpsMatmul, VecDotAllTypesAwkwardLengths) {
  std::mt19937 rng(11);
  for (DType t : kAllTypes) {
    const bool blocked = dtype_is_quantized(t);
    const std::vector<int64_t> lengths = blocked
        ? std::vector<int64_t>{32, 64, 96, 576, 1536, 32 * 37}
        : std::vector<int64_t>{1, 3, 7, 17, 64, 65, 577};
    for (int64_t n : lengths) {
      SCOPED_TRACE(::testing::Message() << dtype_name(t) << " n=" << n);
      Weights w = make_weights(t, 1, n, rng);
      const std::vector<float> x = random_vec(n, rng);
      expect_close(vec_dot(t, w.bytes.data(), x.data(), n), ref_dot(w.deq.data(), x.data(), n),
                   "vec_dot");
    }
  }
}

// Float rows: every length 0..70 and every start misalignment 0..3 floats (the SIMD loops
// have 32-, 8-wide and scalar tails; unaligned loads).
TEST(OpsMatmul, VecDotFloatTypesAllLengthsMisaligned) {
  std::mt19937 rng(14);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t n = 0; n <= 70; ++n) {
      for (int64_t off = 0; off < 4; ++off) {
        Weights w = make_weights(t, 1, n + off, rng);
        const std::vector<float> x = random_vec(n + off, rng);
        const size_t eb = (size_t)dtype_info(t).block_bytes;
        const float got = vec_dot(t, w.bytes.data() + off * eb, x.data() + off, n);
        SCOPED_TRACE(::testing::Message() << dtype_name(t) << " n=" << n << " off=" << off);
        expect_close(got, ref_dot(w.deq.data() + off, x.data() + off, n), "vec_dot");
      }
    }
  }
}

TEST(OpsMatmul, MatvecAndMatmulAllTypesRowsThreads) {
  std::mt19937 rng(12);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (DType t : kAllTypes) {
      for (int64_t rows : {1, 5, 17, 192}) {
        for (int64_t cols : {96, 576}) {
          Weights w = make_weights(t, rows, cols, rng);
          for (int64_t n_tok : {1, 2, 3, 7, 33}) {
            SCOPED_TRACE(::testing::Message() << dtype_name(t) << " rows=" << rows << " cols="
                                              << cols << " tokens=" << n_tok << " threads="
                                              << threads);
            const std::vector<float> X = random_vec(n_tok * cols, rng);
            std::vector<float> Y((size_t)(n_tok * rows), -1.0f);
            if (n_tok == 1)
              matvec(w.view, X.data(), Y.data(), pool);
            else
              matmul(w.view, X.data(), n_tok, Y.data(), pool);
            for (int64_t i = 0; i < n_tok; ++i)
              for (int64_t r = 0; r < rows; ++r)
                expect_close(Y[(size_t)(i * rows + r)],
                             ref_dot(w.deq.data() + r * cols, X.data() + i * cols, cols),
                             n_tok == 1 ? "matvec" : "matmul");
          }
        }
      }
    }
  }
}

// Float weights with a row length that is not a multiple of the SIMD width.
TEST(OpsMatmul, FloatWeightsOddColumns) {
  std::mt19937 rng(13);
  ThreadPool pool(2);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    for (int64_t cols : {1, 7, 65, 577}) {
      Weights w = make_weights(t, 17, cols, rng);
      const std::vector<float> X = random_vec(5 * cols, rng);
      std::vector<float> Y(5 * 17);
      matmul(w.view, X.data(), 5, Y.data(), pool);
      for (int64_t i = 0; i < 5; ++i)
        for (int64_t r = 0; r < 17; ++r)
          expect_close(Y[(size_t)(i * 17 + r)],
                       ref_dot(w.deq.data() + r * cols, X.data() + i * cols, cols), "matmul");
    }
  }
}

// The matmul path dequantizes rows with the SIMD routine: it must equal the reference exactly.
TEST(OpsMatmul, SimdDequantizeIsBitExact) {
  std::mt19937 rng(15);
  for (DType t : kAllTypes) {
    for (int64_t n : {32, 96, 576, 32 * 37}) {
      Weights w = make_weights(t, 1, n, rng);
      std::vector<float> y((size_t)n, -1.0f);
      simd::dequantize_row_fast(t, w.bytes.data(), y.data(), n);
      EXPECT_EQ(y, w.deq) << dtype_name(t) << " n=" << n;
    }
  }
}

// Bad input gives NaN outputs, never a crash.
TEST(OpsMatmul, UnsupportedInputsGiveNaN) {
  ThreadPool pool(1);
  std::vector<int32_t> ints(4 * 8, 1);
  TensorView v;
  v.dtype = DType::I32;
  v.shape = {4, 8};
  v.data = ints.data();
  std::vector<float> x(8 * 2, 1.0f), y(8, 0.0f);
  matvec(v, x.data(), y.data(), pool);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(y[i]));
  matmul(v, x.data(), 2, y.data(), pool);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(std::isnan(y[i]));
  EXPECT_TRUE(std::isnan(vec_dot(DType::I8, ints.data(), x.data(), 8)));
  // Q4_1 with 40 columns: not a whole number of blocks.
  std::vector<uint8_t> q(200);
  v.dtype = DType::Q4_1;
  v.shape = {2, 40};
  v.data = q.data();
  matvec(v, x.data(), y.data(), pool);
  EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]));
}

}  // namespace
}  // namespace frugal::cpu
