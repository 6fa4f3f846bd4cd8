// attention_decode / attention_prefill against a float64 reference: for query head h with KV
// head h / (n_heads / n_kv_heads), scores_t = q.k_t / sqrt(head_dim), p = softmax(scores),
// out = sum_t p_t v_t over the causal window.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "ops_test_util.h"

namespace frugal::cpu {
namespace {

using test::random_vec;

// Reference for one query head over positions [0, n_kv). Also returns sum_t p_t |v_t[i]| per
// output element as the error scale.
void ref_head(const AttentionParams& p, int h, int64_t n_kv, const float* q_h, const float* k,
              const float* v, std::vector<double>* out, std::vector<double>* scale) {
  const int d = p.head_dim;
  const int64_t off = (int64_t)(h / (p.n_heads / p.n_kv_heads)) * d;
  std::vector<double> s((size_t)n_kv);
  double mx = -INFINITY;
  for (int64_t t = 0; t < n_kv; ++t) {
    double dot = 0;
    for (int i = 0; i < d; ++i) dot += (double)q_h[i] * k[t * p.kv_stride + off + i];
    s[(size_t)t] = dot / std::sqrt((double)d);
    mx = std::max(mx, s[(size_t)t]);
  }
  double sum = 0;
  for (double& x : s) sum += x = std::exp(x - mx);
  out->assign((size_t)d, 0.0);
  scale->assign((size_t)d, 0.0);
  for (int64_t t = 0; t < n_kv; ++t)
    for (int i = 0; i < d; ++i) {
      const double vi = v[t * p.kv_stride + off + i];
      (*out)[(size_t)i] += s[(size_t)t] / sum * vi;
      (*scale)[(size_t)i] += s[(size_t)t] / sum * std::fabs(vi);
    }
}

struct Case {
  int n_heads, n_kv_heads;
};
// GQA ratios 1, 3, 8 and MQA (one KV head).
const Case kCases[] = {{4, 4}, {9, 3}, {16, 2}, {8, 1}, {3, 1}};

AttentionParams make_params(const Case& c, int head_dim, int64_t n_kv) {
  AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = head_dim;
  p.n_kv = n_kv;
  p.kv_stride = (int64_t)c.n_kv_heads * head_dim + 5;  // padded rows: stride != width
  return p;
}

TEST(OpsAttention, DecodeMatchesReference) {
  std::mt19937 rng(21);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (const Case& c : kCases) {
      for (int d : {8, 12, 64}) {  // 12: SIMD loops with a tail
        for (int64_t n_kv : {1, 2, 17, 100}) {
          SCOPED_TRACE(::testing::Message() << "heads=" << c.n_heads << "/" << c.n_kv_heads
                                            << " d=" << d << " n_kv=" << n_kv
                                            << " threads=" << threads);
          const AttentionParams p = make_params(c, d, n_kv);
          const std::vector<float> q = random_vec((int64_t)c.n_heads * d, rng);
          const std::vector<float> k = random_vec(n_kv * p.kv_stride, rng);
          const std::vector<float> v = random_vec(n_kv * p.kv_stride, rng);
          std::vector<float> out((size_t)(c.n_heads * d), NAN);
          attention_decode(p, q.data(), k.data(), v.data(), out.data(), pool);
          std::vector<double> want, scale;
          for (int h = 0; h < c.n_heads; ++h) {
            ref_head(p, h, n_kv, q.data() + h * d, k.data(), v.data(), &want, &scale);
            for (int i = 0; i < d; ++i)
              ASSERT_NEAR(out[(size_t)(h * d + i)], want[(size_t)i],
                          2e-5 * scale[(size_t)i] + 1e-7)
                  << "h=" << h << " i=" << i;
          }
        }
      }
    }
  }
}

TEST(OpsAttention, PrefillMatchesReferenceAndDecode) {
  std::mt19937 rng(22);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (const Case& c : kCases) {
      for (int d : {8, 12, 64}) {  // 12: SIMD loops with a tail
        for (int64_t n_tok : {1, 5, 17}) {
          for (int64_t start : {0, 3}) {
            SCOPED_TRACE(::testing::Message() << "heads=" << c.n_heads << "/" << c.n_kv_heads
                                              << " d=" << d << " tokens=" << n_tok
                                              << " start=" << start << " threads=" << threads);
            const int64_t total = start + n_tok;
            const AttentionParams p = make_params(c, d, /*n_kv ignored*/ 0);
            const int64_t width = (int64_t)c.n_heads * d;
            const std::vector<float> q = random_vec(n_tok * width, rng);
            // Positions past the causal window hold huge values: reading them would show.
            std::vector<float> k = random_vec((total + 2) * p.kv_stride, rng);
            std::vector<float> v = random_vec((total + 2) * p.kv_stride, rng);
            for (int64_t i = total * p.kv_stride; i < (int64_t)k.size(); ++i)
              k[(size_t)i] = v[(size_t)i] = 1e6f;
            std::vector<float> out((size_t)(n_tok * width), NAN);
            attention_prefill(p, n_tok, start, q.data(), k.data(), v.data(), out.data(), pool);
            std::vector<double> want, scale;
            for (int64_t t = 0; t < n_tok; ++t) {
              AttentionParams pd = p;
              pd.n_kv = start + t + 1;
              std::vector<float> dec((size_t)width);
              attention_decode(pd, q.data() + t * width, k.data(), v.data(), dec.data(), pool);
              for (int h = 0; h < c.n_heads; ++h) {
                ref_head(p, h, start + t + 1, q.data() + t * width + h * d, k.data(), v.data(),
                         &want, &scale);
                for (int i = 0; i < d; ++i) {
                  const size_t o = (size_t)(t * width + h * d + i);
                  ASSERT_NEAR(out[o], want[(size_t)i], 2e-5 * scale[(size_t)i] + 1e-7)
                      << "t=" << t << " h=" << h << " i=" << i;
                  ASSERT_EQ(out[o], dec[(size_t)(h * d + i)]);  // same kernel, same numbers
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(OpsAttention, InvalidParamsGiveNaN) {
  ThreadPool pool(1);
  AttentionParams p;
  p.n_heads = 4;
  p.n_kv_heads = 3;  // 4 % 3 != 0
  p.head_dim = 2;
  p.n_kv = 1;
  p.kv_stride = 6;
  std::vector<float> q(8, 1.0f), kv(12, 1.0f), out(8, 0.0f);
  attention_decode(p, q.data(), kv.data(), kv.data(), out.data(), pool);
  for (float x : out) EXPECT_TRUE(std::isnan(x));
  p.n_kv_heads = 2;
  p.kv_stride = 3;  // < n_kv_heads * head_dim
  std::fill(out.begin(), out.end(), 0.0f);
  attention_prefill(p, 1, 0, q.data(), kv.data(), kv.data(), out.data(), pool);
  for (float x : out) EXPECT_TRUE(std::isnan(x));
}

}  // namespace
}  // namespace frugal::cpu
