// Rotary position embedding.
//
// Angles: theta_i = pos * base^(-2i/head_dim) for pair i in [0, head_dim/2), computed in float64
// (pow, cos, sin in double, then rounded to float once). This is the exact angle to float
// precision at any position; llama.cpp (iterated powf products) and Hugging Face (float32
// inv_freq times position) round differently, by a few float ulps of the angle. The rotation
// itself is done in float: (a, b) -> (a cos - b sin, a sin + b cos).
#include <cmath>
#include <vector>

#include "backend/cpu/ops.h"

namespace frugal::cpu {

namespace {

// cos/sin of every pair's angle for one (pos, head_dim, base). The forward pass calls rope for
// Q and then K at the same position, so the last table is kept per thread and reused.
struct RopeTable {
  int64_t pos = -1;
  int head_dim = 0;
  float base = 0.0f;
  std::vector<float> cos, sin;  // [head_dim / 2]
};

const RopeTable& rope_table(int64_t pos, int head_dim, float base) {
  thread_local RopeTable t;
  if (t.pos == pos && t.head_dim == head_dim && t.base == base) return t;
  const int half = head_dim / 2;
  t.cos.resize((size_t)half);
  t.sin.resize((size_t)half);
  for (int i = 0; i < half; ++i) {
    const double theta = (double)pos * std::pow((double)base, -2.0 * i / (double)head_dim);
    t.cos[(size_t)i] = (float)std::cos(theta);
    t.sin[(size_t)i] = (float)std::sin(theta);
  }
  t.pos = pos;
  t.head_dim = head_dim;
  t.base = base;
  return t;
}

}  // namespace

void rope(float* x, int n_heads, int head_dim, int64_t pos, float base, RopeStyle style) {
  if (n_heads <= 0 || head_dim < 2) return;
  const RopeTable& t = rope_table(pos, head_dim, base);
  const int half = head_dim / 2;
  const float* c = t.cos.data();
  const float* s = t.sin.data();
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + (int64_t)h * head_dim;
    if (style == RopeStyle::kAdjacent) {
      for (int i = 0; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * c[i] - b * s[i];
        v[2 * i + 1] = a * s[i] + b * c[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = a * s[i] + b * c[i];
      }
    }
  }
}

}  // namespace frugal::cpu
