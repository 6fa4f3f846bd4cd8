// SmoothQuant through the engine's W8A8 kernel (cpu::matmul_i8_token on I8_ROW weights): on a
// synthetic layer whose activations have outlier channels, folding s into the activations and the
// weights lowers the W8A8 output error against the float64 product well below plain per-channel
// INT8 W8A8 (the layer-level quant::w8a8_linear has the same test in quant_calibrated_test.cpp).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "quant/engine_pack.h"
#include "quant/smoothquant.h"

namespace frugal {
namespace {

using namespace frugal::quant;

// I8_ROW bytes of w [rows, cols] (per-row symmetric int8) and y = matmul_i8_token(w, x).
std::vector<float> engine_w8a8(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& x,
                               int64_t tokens, ThreadPool& pool) {
  const Int8Rows q = quantize_int8_rows(w.data(), rows, cols);
  const std::vector<uint8_t> bytes = encode_engine_i8_rows(q.q.data(), q.scales, rows, cols);
  TensorView v;
  v.name = "w";
  v.dtype = DType::I8_ROW;
  v.shape = {rows, cols};
  v.data = bytes.data();
  v.nbytes = bytes.size();
  std::vector<float> y((size_t)(tokens * rows));
  cpu::matmul_i8_token(v, x.data(), tokens, y.data(), pool);
  return y;
}

TEST(QuantW8A8Engine, SmoothingReducesW8A8ErrorWithOutlierChannels) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t in = 203, rows = 33, tokens = 37;  // awkward sizes
  std::vector<float> w((size_t)(rows * in)), x((size_t)(tokens * in));
  for (float& v : w) v = 0.1f * nd(rng);
  for (float& v : x) v = nd(rng);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j : {5, 77, 190}) x[(size_t)(t * in + j)] *= 60.0f;
  std::vector<double> y_ref((size_t)(tokens * rows));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t j = 0; j < in; ++j) s += (double)w[(size_t)(r * in + j)] * x[(size_t)(t * in + j)];
      y_ref[(size_t)(t * rows + r)] = s;
    }
  auto err = [&](const std::vector<float>& y) {
    double e = 0;
    for (size_t i = 0; i < y.size(); ++i) e += (y[i] - y_ref[i]) * (y[i] - y_ref[i]);
    return e;
  };
  ThreadPool pool(2);
  const double e_plain = err(engine_w8a8(w, rows, in, x, tokens, pool));
  std::vector<float> amax((size_t)in, 0.0f), wmax((size_t)in, 0.0f);
  activation_absmax(x.data(), tokens, in, amax);
  column_absmax(w.data(), rows, in, wmax);
  auto s = smoothquant_scales(amax, wmax, 0.5);
  ASSERT_TRUE(s.ok());
  std::vector<float> ws = w, xs = x;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < in; ++j) ws[(size_t)(r * in + j)] *= (*s)[(size_t)j];
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < in; ++j) xs[(size_t)(t * in + j)] /= (*s)[(size_t)j];
  const double e_smooth = err(engine_w8a8(ws, rows, in, xs, tokens, pool));
  std::printf("[ w8a8 engine] squared output error: plain INT8 W8A8 %.4g, SmoothQuant α 0.5 %.4g\n", e_plain,
              e_smooth);
  EXPECT_GT(e_smooth, 0.0);
  EXPECT_LT(e_smooth, 0.5 * e_plain);
}

}  // namespace
}  // namespace frugal
