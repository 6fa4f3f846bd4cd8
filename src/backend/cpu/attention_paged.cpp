// Paged decode attention (one query token) with a flash-decoding split over positions.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/attention_kv_detail.h"
#include "base/half.h"

namespace frugal::cpu {

namespace {
constexpr int kTile = 32;             // positions scored at once
constexpr int64_t kMinChunk = 256;    // positions per work item (at least)
}  // namespace

void kv_load_rows(const PagedKvView& kv, bool value, int h, int64_t t0, int n, float* dst) {
  const int d = kv.head_dim;
  const int64_t rb = kv_row_bytes(kv.dtype, d, value);
  const uint8_t* base = value ? kv.v : kv.k;
  const float* scales = value ? kv.v_scale : kv.k_scale;
  const float s = scales ? scales[h] : 1.0f;
  const bool kivi_k = kv.dtype == KvDType::kInt4Kivi && !value;
  // INT4_KIVI keys: the (block, head) channel parameters, decoded once per block.
  float ksc[1024], kmn[1024];
  int64_t params_block = -1;
  for (int j = 0; j < n; ++j) {
    const int64_t pos = t0 + j;
    float* o = dst + (int64_t)j * d;
    if (kivi_k && pos >= kv.tail_start) {  // partial last block: f16 staging rows
      simd::dequantize_row_fast(DType::F16, kv.k_tail + ((pos - kv.tail_start) * kv.n_kv_heads + h) * d, o, d);
      continue;
    }
    const uint8_t* src = kvdetail::row_ptr(kv, base, pos, h, rb);
    switch (kv.dtype) {
      case KvDType::kF16: simd::dequantize_row_fast(DType::F16, src, o, d); break;
      case KvDType::kBF16: simd::dequantize_row_fast(DType::BF16, src, o, d); break;
      case KvDType::kInt4Kivi:
        if (!value) {
          const int64_t b = kv.block_table[(size_t)(pos / kv.block_size)];
          if (b != params_block) {
            const uint8_t* pp = kv.k_params + (b * kv.n_kv_heads + h) * d * 4;
            for (int c = 0; c < d; ++c) {
              uint16_t s16, m16;
              std::memcpy(&s16, pp + c * 4, 2);
              std::memcpy(&m16, pp + c * 4 + 2, 2);
              ksc[c] = fp16_to_f32(s16);
              kmn[c] = fp16_to_f32(m16);
            }
            params_block = b;
          }
          for (int c = 0; c < d; c += 2) {
            const uint8_t byte = src[c / 2];
            o[c] = ksc[c] * (float)(byte & 15) + kmn[c];
            o[c + 1] = ksc[c + 1] * (float)(byte >> 4) + kmn[c + 1];
          }
          break;
        }
        [[fallthrough]];
      default: kv_dequantize_row(kv.dtype, src, d, s, o);
    }
  }
}

Status attention_paged_decode(const PagedKvView& kv, int n_heads, int64_t n_kv, const float* q,
                              float* out, ThreadPool& pool) {
  FRUGAL_RETURN_IF_ERROR(kvdetail::validate(kv, n_heads, n_kv));
  const int H = kv.n_kv_heads, G = n_heads / H, D = kv.head_dim;
  const float scale = 1.0f / std::sqrt((float)D);
  const int64_t max_chunks = std::max<int64_t>(1, (4 * pool.size() + H - 1) / H);
  const int64_t n_chunks = std::clamp<int64_t>((n_kv + kMinChunk - 1) / kMinChunk, 1, max_chunks);
  const int64_t chunk = (n_kv + n_chunks - 1) / n_chunks;
  // Partials per (KV head, chunk, group head): max, sum, acc[D].
  const int64_t part = (int64_t)G * (D + 2);
  std::vector<float> partial((size_t)(H * n_chunks * part));

  auto run_item = [&](int64_t item) {
    const int h = (int)(item / n_chunks);
    const int64_t c = item % n_chunks;
    const int64_t t_begin = c * chunk, t_end = std::min(n_kv, t_begin + chunk);
    float* P = partial.data() + item * part;
    float* m = P;          // [G]
    float* l = P + G;      // [G]
    float* acc = P + 2 * G;  // [G, D]
    std::fill(m, m + G, -std::numeric_limits<float>::infinity());
    std::fill(l, l + G, 0.0f);
    std::fill(acc, acc + (int64_t)G * D, 0.0f);
    float* kt = kvdetail::scratch(0, (int64_t)kTile * D);
    float* vt = kvdetail::scratch(1, (int64_t)kTile * D);
    float* s = kvdetail::scratch(2, (int64_t)G * kTile);
    const float* qh = q + (int64_t)h * G * D;
    for (int64_t t0 = t_begin; t0 < t_end; t0 += kTile) {
      const int nt = (int)std::min<int64_t>(kTile, t_end - t0);
      kv_load_rows(kv, false, h, t0, nt, kt);
      simd::DotTile dt;
      dt.w = kt; dt.ldw = D; dt.nr = nt;
      dt.x = qh; dt.ldx = D; dt.nt = G;
      dt.n = D; dt.out = s; dt.ldo = kTile;
      simd::dot_tile(dt);
      for (int g = 0; g < G; ++g) {
        float* sg = s + g * kTile;
        const float mx = simd::scale_max_f32(sg, nt, scale, m[g]);
        if (mx > m[g]) {
          const float corr = std::exp(m[g] - mx);  // 0 on the first tile
          l[g] *= corr;
          simd::scale_f32(corr, acc + (int64_t)g * D, D);
          m[g] = mx;
        }
        l[g] += simd::exp_shift_sum_f32(sg, nt, mx);
      }
      kv_load_rows(kv, true, h, t0, nt, vt);
      for (int g = 0; g < G; ++g)  // acc[g] += P[g, :nt] . V (each element summed in j order)
        simd::axpy_rows_f32(s + g * kTile, nt, vt, D, acc + (int64_t)g * D, D);
    }
  };
  const int64_t n_items = H * n_chunks;
  const int64_t work = 2 * (int64_t)n_heads * n_kv * D;
  pool.parallel_for(n_items, work < (1 << 15) ? n_items : 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) run_item(i);
  });

  // Merge the chunks of each query head.
  for (int h = 0; h < H; ++h)
    for (int g = 0; g < G; ++g) {
      float M = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < n_chunks; ++c)
        M = std::max(M, partial[(size_t)((h * n_chunks + c) * part + g)]);
      float L = 0.0f;
      float* o = out + ((int64_t)h * G + g) * D;
      std::fill(o, o + D, 0.0f);
      for (int64_t c = 0; c < n_chunks; ++c) {
        const float* P = partial.data() + (h * n_chunks + c) * part;
        if (P[G + g] == 0.0f) continue;  // empty chunk
        const float w = std::exp(P[g] - M);
        L += P[G + g] * w;
        simd::axpy_f32(w, P + 2 * G + (int64_t)g * D, o, D);
      }
      simd::scale_f32(1.0f / L, o, D);
    }
  return Status::Ok();
}

}  // namespace frugal::cpu
