// W8A8 kernels (matmul_i8_token, backend/cpu/w8a8_kernels.h) on every SIMD target this CPU
// supports, against float64 scalar references:
//   quantizer: d = max|x|/127 and q = nearest_even(x * (1/d)) exactly, |x - d q| <= d/2;
//   matmul:    |y - s d sum w q| <= 1e-6 * s d sum |w q|   (the integer sum is exact; three float
//              roundings remain) and vs float activations |y - s sum w x| <= s sum |w| d/2 + that;
//   int64 chunking: sums beyond int32 (K = 140,000 of -128 x 127) are exact.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/w8a8_kernels.h"
#include "ops_test_util.h"

namespace frugal::cpu {
namespace {

using kern::W8A8KernelSet;
using test::random_vec;

// Raw I8_ROW rows: f32 scale then int8 codes over the whole range [-128, 127].
struct I8Rows {
  std::vector<uint8_t> bytes;
  std::vector<int8_t> q;
  std::vector<float> s;
  TensorView view;
};

I8Rows make_rows(int64_t rows, int64_t cols, std::mt19937& rng) {
  I8Rows w;
  std::uniform_int_distribution<int> code(-128, 127);
  std::uniform_real_distribution<float> scale(1e-3f, 2e-2f);
  const int64_t rb = 4 + cols;
  w.bytes.resize((size_t)(rows * rb));
  w.q.resize((size_t)(rows * cols));
  w.s.resize((size_t)rows);
  for (int64_t r = 0; r < rows; ++r) {
    w.s[(size_t)r] = scale(rng);
    std::memcpy(w.bytes.data() + r * rb, &w.s[(size_t)r], 4);
    for (int64_t c = 0; c < cols; ++c) {
      w.q[(size_t)(r * cols + c)] = (int8_t)code(rng);
      w.bytes[(size_t)(r * rb + 4 + c)] = (uint8_t)w.q[(size_t)(r * cols + c)];
    }
  }
  EXPECT_EQ((size_t)rb, dtype_row_bytes(DType::I8_ROW, cols));
  w.view.name = "w";
  w.view.dtype = DType::I8_ROW;
  w.view.shape = {rows, cols};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  return w;
}

// The definition, in scalar code.
float ref_quantize(const float* x, int64_t n, std::vector<int8_t>& q) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  q.resize((size_t)n);
  for (int64_t i = 0; i < n; ++i) q[(size_t)i] = (int8_t)std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f);
  return d;
}

TEST(W8A8Kernels, QuantizeTokenMatchesDefinitionAllTargets) {
  std::mt19937 rng(61);
  ASSERT_FALSE(kern::all_w8a8_kernel_sets().empty());
  for (int64_t n : {1, 7, 31, 33, 67, 577, 1537}) {
    std::vector<float> x = random_vec(n, rng);
    x[(size_t)(n / 2)] = -7.5f;  // an outlier sets the scale
    std::vector<int8_t> qref;
    const float dref = ref_quantize(x.data(), n, qref);
    ASSERT_EQ(dref, 7.5f / 127.0f);
    for (const W8A8KernelSet& ks : kern::all_w8a8_kernel_sets()) {
      std::vector<int8_t> q((size_t)n, 99);
      const float d = ks.quantize(x.data(), n, q.data());
      ASSERT_EQ(d, dref) << ks.name << " n=" << n;
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(q[(size_t)i], qref[(size_t)i]) << ks.name << " n=" << n << " i=" << i;
        ASSERT_LE(std::fabs((double)x[(size_t)i] - (double)d * q[(size_t)i]), d * 0.5 * (1 + 1e-6));
      }
      EXPECT_EQ(q[(size_t)(n / 2)], -127);
      std::vector<float> zeros((size_t)n, 0.0f);
      ASSERT_EQ(ks.quantize(zeros.data(), n, q.data()), 0.0f);
      for (int8_t v : q) ASSERT_EQ(v, 0);
    }
  }
}

TEST(W8A8Kernels, MatmulAllTargetsSizesTokensThreads) {
  std::mt19937 rng(62);
  ThreadPool pool1(1), pool2(2);
  for (int64_t K : {1, 31, 67, 577, 1000}) {
    for (int64_t rows : {1, 7, 33}) {
      const I8Rows w = make_rows(rows, K, rng);
      for (int64_t nt : {1, 3, 6, 9}) {
        std::vector<float> X = random_vec(nt * K, rng);
        X[(size_t)(K / 3)] = 5.0f;  // token 0 has an outlier
        for (const W8A8KernelSet& ks : kern::all_w8a8_kernel_sets()) {
          for (ThreadPool* pool : {&pool1, &pool2}) {
            std::vector<float> Y((size_t)(nt * rows), -1.0f);
            kern::matmul_i8_token_with(ks, w.view, X.data(), nt, Y.data(), *pool);
            for (int64_t t = 0; t < nt; ++t) {
              std::vector<int8_t> q;
              const double d = ref_quantize(X.data() + t * K, K, q);
              for (int64_t r = 0; r < rows; ++r) {
                double iq = 0, aq = 0, yf = 0, af = 0, step = 0;
                const double s = w.s[(size_t)r];
                for (int64_t k = 0; k < K; ++k) {
                  const double wk = w.q[(size_t)(r * K + k)];
                  iq += wk * q[(size_t)k];
                  aq += std::fabs(wk * q[(size_t)k]);
                  yf += s * wk * X[(size_t)(t * K + k)];
                  af += std::fabs(s * wk * X[(size_t)(t * K + k)]);
                  step += s * std::fabs(wk) * d * 0.5;
                }
                const double got = Y[(size_t)(t * rows + r)];
                const double tol = 1e-6 * s * d * aq + 1e-30;
                ASSERT_LE(std::fabs(got - s * d * iq), tol)
                    << ks.name << " K=" << K << " rows=" << rows << " tokens=" << nt << " threads=" << pool->size()
                    << " t=" << t << " r=" << r;
                ASSERT_LE(std::fabs(got - yf), step * (1 + 1e-6) + tol + 1e-6 * af) << ks.name << " K=" << K;
              }
            }
          }
        }
      }
    }
  }
}

TEST(W8A8Kernels, IntegerSumsBeyondInt32AreExact) {
  const int64_t K = 140000;  // 128 * 127 * K > 2^31
  I8Rows w;
  w.bytes.assign((size_t)(4 + K), (uint8_t)(int8_t)-128);
  const float one = 1.0f;
  std::memcpy(w.bytes.data(), &one, 4);
  w.view.dtype = DType::I8_ROW;
  w.view.shape = {1, K};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  std::vector<float> X((size_t)(2 * K), 1.0f);  // token 0: all 1 -> q = 127, d = 1/127
  for (int64_t k = 0; k < K; ++k) X[(size_t)(K + k)] = k % 2 ? 2.0f : -2.0f;  // token 1: sum 0
  ThreadPool pool(1);
  for (const W8A8KernelSet& ks : kern::all_w8a8_kernel_sets()) {
    std::vector<float> Y(2, 0.0f);
    kern::matmul_i8_token_with(ks, w.view, X.data(), 2, Y.data(), pool);
    const double want = -128.0 * 127.0 * (double)K * (1.0 / 127.0);  // = -128 K
    EXPECT_LE(std::fabs(Y[0] - want), 1e-6 * std::fabs(want)) << ks.name;
    EXPECT_EQ(Y[1], 0.0f) << ks.name;
  }
}

TEST(W8A8Kernels, NonI8RowWeightsGiveNaN) {
  std::mt19937 rng(63);
  const test::QuantWeights w = test::make_weights(DType::Q8_0, 5, 64, rng);
  const std::vector<float> X = random_vec(2 * 64, rng);
  std::vector<float> Y(10, 0.0f);
  ThreadPool pool(2);
  matmul_i8_token(w.view, X.data(), 2, Y.data(), pool);
  for (float y : Y) EXPECT_TRUE(std::isnan(y));
}

}  // namespace
}  // namespace frugal::cpu
