// GPTQ, AWQ and SmoothQuant on small synthetic layers: each must beat plain RTN on the error it
// is designed to reduce (asserted), and the exact identities they rest on must hold.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/linalg.h"
#include "quant/smoothquant.h"

namespace frugal::quant {
namespace {

std::vector<float> randn(size_t n, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> nd(0, sd);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

// Σ_t ‖(W − Wq)·x_t‖² for X [tokens, cols].
double output_error(const std::vector<float>& w, const std::vector<float>& wq, int64_t rows, int64_t cols,
                    const std::vector<float>& x, int64_t tokens) {
  double e = 0;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0;
      for (int64_t c = 0; c < cols; ++c) d += ((double)w[r * cols + c] - wq[r * cols + c]) * x[t * cols + c];
      e += d * d;
    }
  return e;
}

// Correlated inputs: x = A·z + small noise, z of lower dimension, so H is far from diagonal.
std::vector<float> correlated_inputs(int64_t tokens, int64_t cols, std::mt19937& rng) {
  const int64_t k = cols / 4;
  const std::vector<float> a = randn(cols * k, rng);
  std::vector<float> x(tokens * cols);
  for (int64_t t = 0; t < tokens; ++t) {
    const std::vector<float> z = randn(k, rng);
    for (int64_t c = 0; c < cols; ++c) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += a[c * k + j] * z[j];
      x[t * cols + c] = (float)s + 0.05f * randn(1, rng)[0];
    }
  }
  return x;
}

TEST(QuantLinalg, InverseAndUpperCholesky) {
  std::mt19937 rng(1);
  const int64_t n = 9;
  const std::vector<float> b = randn(n * n, rng);
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += (double)b[i * n + k] * b[j * n + k];
      if (i == j) a[i * n + j] += 0.5;
    }
  auto inv = spd_inverse(a, n);
  ASSERT_TRUE(inv.ok());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += a[i * n + k] * (*inv)[k * n + j];
      EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-9);
    }
  auto u = cholesky_upper(a, n);
  ASSERT_TRUE(u.ok());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += (*u)[k * n + i] * (*u)[k * n + j];  // Uᵀ·U
      EXPECT_NEAR(s, a[i * n + j], 1e-9);
      if (j < i) EXPECT_EQ((*u)[i * n + j], 0.0);
    }
  std::vector<double> not_pd = {1, 2, 2, 1};
  EXPECT_FALSE(spd_inverse(not_pd, 2).ok());
}

TEST(QuantGptq, DiagonalHessianEqualsRtn) {
  // With H diagonal there is no error to feed forward: GPTQ must reproduce RTN exactly.
  std::mt19937 rng(2);
  const int64_t rows = 8, cols = 64;
  const std::vector<float> w = randn(rows * cols, rng);
  std::vector<double> h(cols * cols, 0.0);
  for (int64_t i = 0; i < cols; ++i) h[i * cols + i] = 1.0 + i;
  GptqParams p;
  p.quant = {4, 32, false};
  p.block_size = 16;
  auto g = quantize_gptq(w.data(), rows, cols, h, p);
  auto r = quantize_rtn(w.data(), rows, cols, p.quant);
  ASSERT_TRUE(g.ok() && r.ok());
  EXPECT_EQ(g->codes, r->codes);
  EXPECT_EQ(g->scales, r->scales);
  EXPECT_EQ(g->zeros, r->zeros);
}

TEST(QuantGptq, BeatsRtnOnCorrelatedInputs) {
  std::mt19937 rng(3);
  const int64_t rows = 24, cols = 128, tokens = 256;
  const std::vector<float> w = randn(rows * cols, rng);
  const std::vector<float> x = correlated_inputs(tokens, cols, rng);
  HessianAccumulator acc(cols);
  acc.add(x.data(), tokens / 2);
  acc.add(x.data() + (tokens / 2) * cols, tokens - tokens / 2);
  EXPECT_EQ(acc.samples(), tokens);
  for (int bits : {3, 4}) {
    for (bool act_order : {false, true}) {
      GptqParams p;
      p.quant = {bits, 32, false};
      p.block_size = 64;  // two blocks: exercises the lazy update
      p.act_order = act_order;
      auto g = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
      auto r = quantize_rtn(w.data(), rows, cols, p.quant);
      ASSERT_TRUE(g.ok() && r.ok()) << g.status().to_string();
      const double eg = output_error(w, dequantize(*g), rows, cols, x, tokens);
      const double er = output_error(w, dequantize(*r), rows, cols, x, tokens);
      EXPECT_LT(eg, 0.75 * er) << "bits " << bits << " act_order " << act_order << ": " << eg << " vs " << er;
      if (act_order) {
        ASSERT_EQ((int64_t)g->g_idx.size(), cols);
        std::vector<int> count(cols / 32, 0);
        for (int32_t gi : g->g_idx) { ASSERT_GE(gi, 0); ASSERT_LT(gi, cols / 32); ++count[gi]; }
        for (int c : count) EXPECT_EQ(c, 32);  // each group still has exactly `group` columns
      }
    }
  }
  // Static groups with act-order: g_idx stays c / group, and it still beats RTN.
  GptqParams p;
  p.quant = {3, 32, false};
  p.act_order = p.static_groups = true;
  auto g = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
  auto r = quantize_rtn(w.data(), rows, cols, p.quant);
  ASSERT_TRUE(g.ok() && r.ok());
  EXPECT_TRUE(g->g_idx.empty());
  EXPECT_LT(output_error(w, dequantize(*g), rows, cols, x, tokens),
            output_error(w, dequantize(*r), rows, cols, x, tokens));
}

TEST(QuantGptq, HessianMatchesFloat64Reference) {
  // H = 2/N Σ x xᵀ over tokens added in uneven batches (none a multiple of the accumulator's
  // 64-token tile), with a never-active channel; reference: plain float64 sums.
  std::mt19937 rng(6);
  const int64_t n = 37, tokens = 211;
  std::vector<float> x = randn(tokens * n, rng);
  for (int64_t t = 0; t < tokens; ++t) x[t * n + 11] = 0;
  HessianAccumulator acc(n);
  const int64_t batches[3] = {1, 130, tokens - 131};
  for (int64_t b = 0, off = 0; b < 3; off += batches[b], ++b) acc.add(x.data() + off * n, batches[b]);
  ASSERT_EQ(acc.samples(), tokens);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t t = 0; t < tokens; ++t) s += (double)x[t * n + i] * x[t * n + j];
      EXPECT_NEAR(acc.hessian()[i * n + j], 2.0 * s / tokens, 1e-12 * (1 + std::fabs(s))) << i << "," << j;
    }
}

TEST(QuantGptq, LazyBlocksEqualThePlainColumnLoop) {
  // block_size 1 is the paper's plain loop (every update applied at once); larger blocks defer
  // updates (lazy batch). Same arithmetic reordered: the codes must agree (a rare flip of a value
  // sitting exactly on a rounding boundary is the only allowed difference).
  std::mt19937 rng(7);
  const int64_t rows = 9, cols = 96, tokens = 300;
  const std::vector<float> w = randn(rows * cols, rng);
  const std::vector<float> x = correlated_inputs(tokens, cols, rng);
  HessianAccumulator acc(cols);
  acc.add(x.data(), tokens);
  for (bool act_order : {false, true}) {
    GptqParams p;
    p.quant = {3, 32, false};
    p.act_order = act_order;
    p.block_size = 1;
    auto plain = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
    ASSERT_TRUE(plain.ok());
    for (int64_t bs : {13, 64, 1000}) {
      p.block_size = bs;
      auto lazy = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
      ASSERT_TRUE(lazy.ok());
      int64_t same = 0;
      for (int64_t i = 0; i < rows * cols; ++i) same += lazy->codes[i] == plain->codes[i];
      EXPECT_GE(same, rows * cols - 2) << "block " << bs << " act_order " << act_order;
    }
  }
}

TEST(QuantGptq, OutputRowOrderDoesNotMatter) {
  // GGUF stores q/k rows in RoPE-pair order (a row permutation of HF's). GPTQ mixes columns only
  // within a row, so quantizing permuted rows must give exactly the permuted result.
  std::mt19937 rng(8);
  const int64_t rows = 10, cols = 64, tokens = 150;
  const std::vector<float> w = randn(rows * cols, rng);
  const std::vector<float> x = correlated_inputs(tokens, cols, rng);
  HessianAccumulator acc(cols);
  acc.add(x.data(), tokens);
  std::vector<int64_t> perm(rows);
  for (int64_t r = 0; r < rows; ++r) perm[r] = (r % 2) * (rows / 2) + r / 2;  // interleave halves
  std::vector<float> wp(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wp[r * cols + c] = w[perm[r] * cols + c];
  GptqParams p;
  p.quant = {4, 32, false};
  p.act_order = true;
  auto a = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
  auto b = quantize_gptq(wp.data(), rows, cols, acc.hessian(), p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->g_idx, b->g_idx);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(b->codes[r * cols + c], a->codes[perm[r] * cols + c]);
    for (int64_t g = 0; g < a->n_groups; ++g) ASSERT_EQ(b->params(r, g).scale, a->params(perm[r], g).scale);
  }
}

TEST(QuantGptq, DeadColumnsAndErrors) {
  std::mt19937 rng(4);
  const int64_t rows = 4, cols = 32;
  const std::vector<float> w = randn(rows * cols, rng);
  std::vector<float> x = randn(64 * cols, rng);
  for (int t = 0; t < 64; ++t) x[t * cols + 5] = 0;  // channel 5 never active
  HessianAccumulator acc(cols);
  acc.add(x.data(), 64);
  GptqParams p;
  p.quant = {4, kPerChannel, true};
  auto g = quantize_gptq(w.data(), rows, cols, acc.hessian(), p);
  ASSERT_TRUE(g.ok());
  const auto d = dequantize(*g);
  for (int r = 0; r < rows; ++r) EXPECT_EQ(d[r * cols + 5], 0.0f);
  p.quant.group = kPerTensor;
  EXPECT_FALSE(quantize_gptq(w.data(), rows, cols, acc.hessian(), p).ok());
  p.quant.group = 24;
  EXPECT_FALSE(quantize_gptq(w.data(), rows, cols, acc.hessian(), p).ok());
  p.quant.group = 32;
  EXPECT_FALSE(quantize_gptq(w.data(), rows, cols, std::vector<double>(10), p).ok());
}

TEST(QuantAwq, BeatsRtnWithOutlierChannel) {
  std::mt19937 rng(5);
  const int64_t in = 128, tokens = 128;
  const int64_t rows_a = 16, rows_b = 8;
  const std::vector<float> wa = randn(rows_a * in, rng), wb = randn(rows_b * in, rng);
  std::vector<float> x = randn(tokens * in, rng);
  for (int64_t t = 0; t < tokens; ++t) {
    x[t * in + 7] *= 40.0f;   // outlier channels
    x[t * in + 77] *= 20.0f;
  }
  AwqParams p;
  p.quant = {3, 64, false};
  auto s = awq_search_scales(x.data(), tokens, in, {{wa.data(), rows_a}, {wb.data(), rows_b}}, p);
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->alpha, 0.0);
  EXPECT_LT(s->error, 0.8 * s->error_rtn);
  // Apply: scale W, fold 1/s into a norm weight, quantize with clip search, compare outputs.
  std::vector<float> was = wa, norm(in, 1.0f);
  awq_scale_weights(was.data(), rows_a, in, s->scales);
  awq_fold_into_norm(norm.data(), in, s->scales);
  std::vector<float> xs = x;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < in; ++j) xs[t * in + j] *= norm[j];
  auto q = awq_quantize_clipped(was.data(), rows_a, in, xs.data(), tokens, p);
  ASSERT_TRUE(q.ok());
  // Effective weights in the original basis: dequant / s.
  std::vector<float> eff = dequantize(*q);
  for (int64_t r = 0; r < rows_a; ++r)
    for (int64_t j = 0; j < in; ++j) eff[r * in + j] /= s->scales[j];
  auto r = quantize_rtn(wa.data(), rows_a, in, p.quant);
  ASSERT_TRUE(r.ok());
  const double e_awq = output_error(wa, eff, rows_a, in, x, tokens);
  const double e_rtn = output_error(wa, dequantize(*r), rows_a, in, x, tokens);
  EXPECT_LT(e_awq, 0.8 * e_rtn) << e_awq << " vs " << e_rtn;
  // Clip search alone never increases the output error over unclipped quantization of the same W.
  AwqParams noclip = p;
  noclip.clip = false;
  auto q0 = awq_quantize_clipped(was.data(), rows_a, in, xs.data(), tokens, noclip);
  ASSERT_TRUE(q0.ok());
  EXPECT_LE(output_error(was, dequantize(*q), rows_a, in, xs, tokens),
            output_error(was, dequantize(*q0), rows_a, in, xs, tokens) * (1 + 1e-9));
}

TEST(QuantSmoothQuant, Int8MatmulExact) {
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> d(-127, 127);
  const int64_t t = 3, k = 77, n = 5;
  std::vector<int8_t> a(t * k), w(n * k);
  for (auto& v : a) v = (int8_t)d(rng);
  for (auto& v : w) v = (int8_t)d(rng);
  std::vector<int32_t> out(t * n);
  matmul_int8(a.data(), t, k, w.data(), n, out.data());
  for (int64_t i = 0; i < t; ++i)
    for (int64_t r = 0; r < n; ++r) {
      int64_t s = 0;
      for (int64_t j = 0; j < k; ++j) s += (int64_t)a[i * k + j] * w[r * k + j];
      EXPECT_EQ(out[i * n + r], s);
    }
}

TEST(QuantSmoothQuant, ReducesW8A8ErrorWithOutlierChannels) {
  std::mt19937 rng(7);
  const int64_t in = 96, rows = 32, tokens = 64;
  const std::vector<float> w = randn(rows * in, rng, 0.1f);
  std::vector<float> x = randn(tokens * in, rng);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j : {3, 50, 90}) x[t * in + j] *= 60.0f;
  std::vector<float> y_ref(tokens * rows, 0.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t j = 0; j < in; ++j) s += (double)w[r * in + j] * x[t * in + j];
      y_ref[t * rows + r] = (float)s;
    }
  auto err = [&](const std::vector<float>& y) {
    double e = 0;
    for (size_t i = 0; i < y.size(); ++i) e += (y[i] - y_ref[i]) * (y[i] - y_ref[i]);
    return e;
  };
  std::vector<float> y(tokens * rows);
  w8a8_linear(quantize_int8_rows(w.data(), rows, in), x.data(), tokens, y.data());
  const double e_plain = err(y);
  std::vector<float> amax(in, 0.0f), wmax(in, 0.0f);
  activation_absmax(x.data(), tokens, in, amax);
  column_absmax(w.data(), rows, in, wmax);
  auto s = smoothquant_scales(amax, wmax, 0.5);
  ASSERT_TRUE(s.ok());
  std::vector<float> ws = w, xs = x;
  awq_scale_weights(ws.data(), rows, in, *s);  // W·diag(s)
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < in; ++j) xs[t * in + j] /= (*s)[j];
  w8a8_linear(quantize_int8_rows(ws.data(), rows, in), xs.data(), tokens, y.data());
  const double e_smooth = err(y);
  EXPECT_LT(e_smooth, 0.5 * e_plain) << e_smooth << " vs " << e_plain;
  EXPECT_FALSE(smoothquant_scales(amax, wmax, 1.5).ok());
}

}  // namespace
}  // namespace frugal::quant
