// Causal softmax attention over a contiguous float KV cache (decode and prefill).
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"

namespace frugal::cpu {

namespace {

// Below this many multiply-adds (n_heads * n_kv * head_dim * 2) a decode step runs on the
// calling thread: waking the pool would cost more than the work.
constexpr int64_t kSerialWork = 1 << 15;

bool params_ok(const AttentionParams& p) {
  return p.n_heads > 0 && p.n_kv_heads > 0 && p.head_dim > 0 && p.n_heads % p.n_kv_heads == 0 &&
         p.kv_stride >= (int64_t)p.n_kv_heads * p.head_dim;
}

void fill_nan(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::numeric_limits<float>::quiet_NaN();
}

// Per-thread score buffer of at least n floats.
float* scratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < (size_t)n) buf.resize((size_t)n);
  return buf.data();
}

// One query head against positions [0, n_kv) of its KV head.
//   q_h, out_h: [head_dim]; K/V row of position t: base + t*kv_stride + kv_head*head_dim.
void attend_head(const AttentionParams& p, int h, int64_t n_kv, const float* q_h,
                 const float* k, const float* v, float* out_h) {
  const int hd = p.head_dim;
  const int64_t kv_off = (int64_t)(h / (p.n_heads / p.n_kv_heads)) * hd;
  const float scale = 1.0f / std::sqrt((float)hd);
  float* s = scratch(n_kv);
  for (int64_t t = 0; t < n_kv; ++t)
    s[t] = simd::dot_f32(q_h, k + t * p.kv_stride + kv_off, hd) * scale;
  softmax(s, n_kv);
  for (int i = 0; i < hd; ++i) out_h[i] = 0.0f;
  for (int64_t t = 0; t < n_kv; ++t) simd::axpy_f32(s[t], v + t * p.kv_stride + kv_off, out_h, hd);
}

}  // namespace

void attention_decode(const AttentionParams& p, const float* q, const float* k, const float* v,
                      float* out, ThreadPool& pool) {
  if (p.n_heads <= 0 || p.head_dim <= 0) return;
  if (!params_ok(p) || p.n_kv <= 0) return fill_nan(out, (int64_t)p.n_heads * p.head_dim);
  const int64_t work = 2 * (int64_t)p.n_heads * p.n_kv * p.head_dim;
  const int64_t grain = work < kSerialWork ? p.n_heads : 1;
  pool.parallel_for(p.n_heads, grain, [&](int64_t b, int64_t e, int) {
    for (int64_t h = b; h < e; ++h)
      attend_head(p, (int)h, p.n_kv, q + h * p.head_dim, k, v, out + h * p.head_dim);
  });
}

void attention_prefill(const AttentionParams& p, int64_t n_tokens, int64_t start_pos,
                       const float* q, const float* k, const float* v, float* out,
                       ThreadPool& pool) {
  if (n_tokens <= 0 || p.n_heads <= 0 || p.head_dim <= 0) return;
  const int64_t width = (int64_t)p.n_heads * p.head_dim;  // floats per token in q/out
  if (!params_ok(p) || start_pos < 0) return fill_nan(out, n_tokens * width);
  // Work item s = slot * n_heads + head. Causal rows get longer with the token index, so slots
  // are folded (0, n-1, 1, n-2, ...): each contiguous chunk of items mixes short and long rows.
  auto token_of_slot = [n_tokens](int64_t slot) {
    return (slot % 2 == 0) ? slot / 2 : n_tokens - 1 - slot / 2;
  };
  pool.parallel_for(n_tokens * p.n_heads, p.n_heads, [&](int64_t b, int64_t e, int) {
    for (int64_t s = b; s < e; ++s) {
      const int64_t i = token_of_slot(s / p.n_heads);
      const int h = (int)(s % p.n_heads);
      const int64_t off = i * width + (int64_t)h * p.head_dim;
      attend_head(p, h, start_pos + i + 1, q + off, k, v, out + off);
    }
  });
}

}  // namespace frugal::cpu
