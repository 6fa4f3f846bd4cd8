// RoPE: both pairings against the rotation formula in float64, and the equivalence that lets
// GGUF llama files use adjacent pairs: rope_adjacent(P q) == P rope_half(q), where P is the
// per-head row permutation the HF -> GGUF converter applies to the Q and K projections
// (reshape (n_head, 2, head_dim/2, in), swap axes 1 and 2, reshape back).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/ops.h"
#include "ops_test_util.h"

namespace frugal::cpu {
namespace {

using test::random_vec;

// Reference: pair i of each head is (x[a(i)], x[b(i)]), rotated by theta_i = pos*base^(-2i/d).
std::vector<double> rope_ref(const std::vector<float>& x, int n_heads, int d, int64_t pos,
                             double base, RopeStyle style) {
  std::vector<double> y(x.begin(), x.end());
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < d / 2; ++i) {
      const int a = h * d + (style == RopeStyle::kAdjacent ? 2 * i : i);
      const int b = h * d + (style == RopeStyle::kAdjacent ? 2 * i + 1 : i + d / 2);
      const double theta = (double)pos * std::pow(base, -2.0 * i / d);
      const double xa = x[(size_t)a], xb = x[(size_t)b];
      y[(size_t)a] = xa * std::cos(theta) - xb * std::sin(theta);
      y[(size_t)b] = xa * std::sin(theta) + xb * std::cos(theta);
    }
  }
  return y;
}

// HF -> GGUF order inside each head: gguf[h*d + 2i + j] = hf[h*d + j*(d/2) + i], j in {0, 1}.
// Written as the converter's reshape/swapaxes: hf index (h, j, i) over dims (n_head, 2, d/2)
// moves to (h, i, j) over dims (n_head, d/2, 2).
std::vector<float> permute_hf_to_gguf(const std::vector<float>& hf, int n_heads, int d) {
  std::vector<float> g(hf.size());
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < d / 2; ++i)
        g[(size_t)(h * d + i * 2 + j)] = hf[(size_t)(h * d + j * (d / 2) + i)];
  return g;
}

TEST(OpsRope, BothStylesMatchRotationFormula) {
  std::mt19937 rng(5);
  for (RopeStyle style : {RopeStyle::kAdjacent, RopeStyle::kHalf}) {
    for (int d : {2, 8, 64, 128}) {
      for (int n_heads : {1, 3, 9}) {
        for (int64_t pos : {0, 1, 7, 1000, 100000}) {
          for (float base : {10000.0f, 100000.0f}) {
            SCOPED_TRACE(::testing::Message() << "style=" << (int)style << " d=" << d
                                              << " heads=" << n_heads << " pos=" << pos);
            const std::vector<float> x = random_vec((int64_t)n_heads * d, rng);
            const std::vector<double> want = rope_ref(x, n_heads, d, pos, base, style);
            std::vector<float> y = x;
            rope(y.data(), n_heads, d, pos, base, style);
            for (size_t k = 0; k < y.size(); ++k)
              ASSERT_NEAR(y[k], want[k], 2e-6 * (1.0 + std::fabs(want[k]))) << k;
          }
        }
      }
    }
  }
}

TEST(OpsRope, PositionZeroIsIdentityAndNormIsKept) {
  std::mt19937 rng(6);
  std::vector<float> x = random_vec(3 * 64, rng), y = x;
  rope(y.data(), 3, 64, 0, 10000.0f, RopeStyle::kHalf);
  EXPECT_EQ(x, y);
  rope(y.data(), 3, 64, 12345, 10000.0f, RopeStyle::kAdjacent);
  for (int i = 0; i < 3 * 32; ++i) {
    const double n0 = std::hypot(x[2 * i], x[2 * i + 1]), n1 = std::hypot(y[2 * i], y[2 * i + 1]);
    EXPECT_NEAR(n0, n1, 1e-5 * (1 + n0));
  }
}

// The important one: adjacent-pair RoPE on GGUF-permuted Q/K computes the same thing as
// rotate-half RoPE on Hugging Face Q/K. Done on a projection W*x (rows permuted like the
// converter does) to mirror how the model sees it, and on the resulting attention scores.
TEST(OpsRope, HalfOnHfEqualsAdjacentOnGgufPermutation) {
  std::mt19937 rng(7);
  ThreadPool pool(1);
  for (int d : {8, 64}) {
    for (int n_heads : {1, 3, 9}) {
      const int64_t in = 32, out = (int64_t)n_heads * d;
      // W_hf [out, in] and its GGUF row permutation; the permutation of W's rows permutes q.
      const std::vector<float> w_hf = random_vec(out * in, rng);
      std::vector<float> w_gguf(w_hf.size());
      {
        std::vector<float> row_ids((size_t)out);
        for (int64_t r = 0; r < out; ++r) row_ids[(size_t)r] = (float)r;
        const std::vector<float> perm = permute_hf_to_gguf(row_ids, n_heads, d);
        for (int64_t r = 0; r < out; ++r)
          for (int64_t c = 0; c < in; ++c)
            w_gguf[(size_t)(r * in + c)] = w_hf[(size_t)((int64_t)perm[(size_t)r] * in + c)];
      }
      auto view = [&](const std::vector<float>& w) {
        TensorView v;
        v.dtype = DType::F32;
        v.shape = {out, in};
        v.data = w.data();
        v.nbytes = w.size() * 4;
        return v;
      };
      const std::vector<float> x = random_vec(in, rng), x2 = random_vec(in, rng);
      for (int64_t pos : {0, 1, 5, 777}) {
        std::vector<float> q_hf((size_t)out), q_gguf((size_t)out), k_hf((size_t)out),
            k_gguf((size_t)out);
        matvec(view(w_hf), x.data(), q_hf.data(), pool);
        matvec(view(w_gguf), x.data(), q_gguf.data(), pool);
        matvec(view(w_hf), x2.data(), k_hf.data(), pool);
        matvec(view(w_gguf), x2.data(), k_gguf.data(), pool);
        ASSERT_EQ(permute_hf_to_gguf(q_hf, n_heads, d), q_gguf);
        rope(q_hf.data(), n_heads, d, pos, 10000.0f, RopeStyle::kHalf);
        rope(q_gguf.data(), n_heads, d, pos, 10000.0f, RopeStyle::kAdjacent);
        rope(k_hf.data(), n_heads, d, pos + 3, 10000.0f, RopeStyle::kHalf);
        rope(k_gguf.data(), n_heads, d, pos + 3, 10000.0f, RopeStyle::kAdjacent);
        // Same float operations on the same pairs: bit-identical after permuting.
        EXPECT_EQ(permute_hf_to_gguf(q_hf, n_heads, d), q_gguf) << "d=" << d << " pos=" << pos;
        EXPECT_EQ(permute_hf_to_gguf(k_hf, n_heads, d), k_gguf);
        // Per-head scores q.k agree (the permutation is applied to both).
        for (int h = 0; h < n_heads; ++h) {
          double s_hf = 0, s_gguf = 0;
          for (int i = 0; i < d; ++i) {
            s_hf += (double)q_hf[(size_t)(h * d + i)] * k_hf[(size_t)(h * d + i)];
            s_gguf += (double)q_gguf[(size_t)(h * d + i)] * k_gguf[(size_t)(h * d + i)];
          }
          EXPECT_NEAR(s_hf, s_gguf, 1e-9 * (1 + std::fabs(s_hf)));
        }
      }
    }
  }
}

}  // namespace
}  // namespace frugal::cpu
