// Paged decode and flash prefill attention over every KV dtype, GQA ratio (1, 3, 8, MQA), block
// size and odd lengths, against a float64 naive reference that materializes the scores:
//   scores_t = q.k_t / sqrt(D), p = softmax(scores over the causal window), out = sum_t p_t v_t.
// Two checks per case: (1) against the reference computed on the dequantized cache contents
// (the kernel's own arithmetic: tight bound), (2) against the reference on the original float
// K/V (quantization error: a bound per dtype). Errors are measured relative to sum_t p_t max|v_t|.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cpu/kv_quant.h"
#include "kv/kv_storage.h"

namespace frugal {
namespace {

using cpu::KvDType;

constexpr KvDType kAllDtypes[] = {KvDType::kF32, KvDType::kF16,  KvDType::kBF16,    KvDType::kInt8,
                                  KvDType::kFp8, KvDType::kInt4, KvDType::kInt4Kivi};

// Bound on the error against the original float K/V, relative to sum_t p_t max|v_t| (about
// twice the worst measured over this matrix; the keys carry 4x outlier channels).
double quant_bound(KvDType t) {
  switch (t) {
    case KvDType::kF32: return 1e-5;
    case KvDType::kF16: return 3e-3;
    case KvDType::kBF16: return 2e-2;
    case KvDType::kInt8: return 5e-2;
    case KvDType::kFp8: return 2.5e-1;
    case KvDType::kInt4: return 6e-1;
    case KvDType::kInt4Kivi: return 6e-1;
  }
  return 0;
}

// Naive reference for one query head over positions [0, n) of K/V given as float rows
// kf[(t * H + h) * D + d]. Returns out[D] and the error scale sum_t p_t max_d |v_t[d]| (the
// quantization step of a row scales with its largest element).
void ref_head(const float* q, const std::vector<double>& kf, const std::vector<double>& vf,
              int H, int D, int kvh, int64_t n, double* out, double* scale) {
  std::vector<double> s((size_t)n);
  double mx = -INFINITY;
  for (int64_t t = 0; t < n; ++t) {
    double dot = 0;
    for (int d = 0; d < D; ++d) dot += (double)q[d] * kf[(size_t)((t * H + kvh) * D + d)];
    s[(size_t)t] = dot / std::sqrt((double)D);
    mx = std::max(mx, s[(size_t)t]);
  }
  double sum = 0;
  for (double& x : s) sum += x = std::exp(x - mx);
  for (int d = 0; d < D; ++d) out[d] = scale[d] = 0;
  for (int64_t t = 0; t < n; ++t) {
    double vmax = 0;
    for (int d = 0; d < D; ++d) {
      const double vv = vf[(size_t)((t * H + kvh) * D + d)];
      out[d] += s[(size_t)t] / sum * vv;
      vmax = std::max(vmax, std::fabs(vv));
    }
    for (int d = 0; d < D; ++d) scale[d] += s[(size_t)t] / sum * vmax;
  }
}

struct Case {
  KvDType dtype;
  int n_heads, n_kv_heads, head_dim, block_size;
  int64_t start_pos, n_tokens;  // prefill queries; decode uses n_kv = start_pos + n_tokens
};

struct Errors {
  double kernel = 0, quant = 0;
};

// Builds a cache holding positions [0, start_pos + n_tokens) through a shuffled block table and
// runs either kernel; returns the worst normalized errors.
Errors run_case(const Case& c, bool decode, ThreadPool& pool, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = c.n_kv_heads, D = c.head_dim, NH = c.n_heads;
  const int64_t n_pos = c.start_pos + c.n_tokens;
  const int32_t n_blocks_used = (int32_t)((n_pos + c.block_size - 1) / c.block_size);
  kv::KvStorageParams sp;
  sp.n_layers = 1;
  sp.n_kv_heads = H;
  sp.head_dim = D;
  sp.block_size = c.block_size;
  sp.n_blocks = n_blocks_used + 5;
  sp.dtype = c.dtype;
  auto st = kv::KvStorage::create(sp);
  EXPECT_TRUE(st.ok()) << st.status().to_string();
  std::vector<int32_t> table((size_t)sp.n_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  table.resize((size_t)n_blocks_used);

  // K with a few outlier channels (as real keys have), V plain normal.
  std::vector<float> k((size_t)(n_pos * H * D)), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    const int d = (int)(i % D);
    k[i] = nd(rng) * (d % 13 == 0 ? 4.0f : 1.0f);
    v[i] = nd(rng);
  }
  EXPECT_TRUE(st->write(0, table, 0, n_pos, k.data(), v.data()).ok());
  // What the cache holds, dequantized by the row loader (checked on its own in kv_quant_test).
  const cpu::PagedKvView view = st->view(0, table, n_pos);
  std::vector<double> kq(k.size()), vq(v.size()), ko(k.begin(), k.end()), vo(v.begin(), v.end());
  std::vector<float> row((size_t)D);
  for (int64_t t = 0; t < n_pos; ++t)
    for (int h = 0; h < H; ++h) {
      cpu::kv_load_rows(view, false, h, t, 1, row.data());
      for (int d = 0; d < D; ++d) kq[(size_t)((t * H + h) * D + d)] = row[(size_t)d];
      cpu::kv_load_rows(view, true, h, t, 1, row.data());
      for (int d = 0; d < D; ++d) vq[(size_t)((t * H + h) * D + d)] = row[(size_t)d];
    }

  const int64_t n_q = decode ? 1 : c.n_tokens;
  std::vector<float> q((size_t)(n_q * NH * D)), out(q.size(), NAN);
  for (float& x : q) x = nd(rng);
  Status s = decode ? cpu::attention_paged_decode(view, NH, n_pos, q.data(), out.data(), pool)
                    : cpu::attention_flash_prefill(view, NH, c.n_tokens, c.start_pos, q.data(),
                                                   out.data(), pool, {5, 16});
  EXPECT_TRUE(s.ok()) << s.to_string();
  Errors e;
  std::vector<double> r1((size_t)D), r2((size_t)D), sc1((size_t)D), sc2((size_t)D);
  for (int64_t i = 0; i < n_q; ++i) {
    const int64_t n_kv = decode ? n_pos : c.start_pos + i + 1;
    for (int h = 0; h < NH; ++h) {
      const float* qh = q.data() + (i * NH + h) * D;
      const int kvh = h / (NH / H);
      ref_head(qh, kq, vq, H, D, kvh, n_kv, r1.data(), sc1.data());
      ref_head(qh, ko, vo, H, D, kvh, n_kv, r2.data(), sc2.data());
      for (int d = 0; d < D; ++d) {
        const double o = out[(size_t)((i * NH + h) * D + d)];
        e.kernel = std::max(e.kernel, std::fabs(o - r1[(size_t)d]) / (sc1[(size_t)d] + 1e-6));
        e.quant = std::max(e.quant, std::fabs(o - r2[(size_t)d]) / (sc2[(size_t)d] + 1e-6));
        if (std::isnan(o)) e.kernel = e.quant = INFINITY;
      }
    }
  }
  return e;
}

void run_matrix(bool decode) {
  ThreadPool pool(2);
  struct Heads { int nh, nkv; } heads[] = {{4, 4}, {6, 2}, {16, 2}, {5, 1}};  // GQA 1, 3, 8, MQA
  uint32_t seed = 1;
  for (KvDType t : kAllDtypes) {
    double worst_q = 0;
    for (const Heads& hh : heads)
      for (int bs : {1, 4, 16, 32})
        for (int64_t len : {1, 7, 33, 70}) {
          if (bs < cpu::kv_min_block_size(t) || (bs == 32 && t != KvDType::kInt4Kivi)) continue;
          Case c{t, hh.nh, hh.nkv, 32, bs, decode ? len - 1 : (len > 7 ? 11 : 0), decode ? 1 : len};
          const Errors e = run_case(c, decode, pool, seed++);
          SCOPED_TRACE(testing::Message() << cpu::kv_dtype_name(t) << " heads " << hh.nh << "/"
                                          << hh.nkv << " bs " << bs << " len " << len);
          EXPECT_LT(e.kernel, 1e-4);
          EXPECT_LT(e.quant, quant_bound(t));
          worst_q = std::max(worst_q, e.quant);
        }
    std::printf("[kv attention %s] %-4s worst error vs float K/V: %.3g\n",
                decode ? "decode " : "prefill", cpu::kv_dtype_name(t), worst_q);
  }
}

TEST(KvAttention, PagedDecodeAllDtypesAndGqaRatios) { run_matrix(true); }
TEST(KvAttention, FlashPrefillAllDtypesAndGqaRatios) { run_matrix(false); }

TEST(KvAttention, LongDecodeSplitsAcrossChunks) {
  ThreadPool pool(2);
  for (KvDType t : {KvDType::kF32, KvDType::kInt8}) {
    const Errors e = run_case({t, 6, 2, 64, 16, 1200, 1}, true, pool, 99);
    EXPECT_LT(e.kernel, 1e-4);
    EXPECT_LT(e.quant, quant_bound(t));
  }
  const Errors e = run_case({KvDType::kF16, 6, 2, 64, 16, 300, 200}, false, pool, 98);
  EXPECT_LT(e.kernel, 1e-4);
}

TEST(KvAttention, RejectsBadShapesAndShortTables) {
  ThreadPool pool(1);
  std::vector<uint8_t> mem(4096);
  std::vector<int32_t> table = {0};
  cpu::PagedKvView v;
  v.k = v.v = mem.data();
  v.block_size = 4;
  v.n_kv_heads = 2;
  v.head_dim = 8;
  v.block_table = table;
  v.n_blocks = 1;
  std::vector<float> q(64), out(64);
  EXPECT_TRUE(cpu::attention_paged_decode(v, 4, 4, q.data(), out.data(), pool).ok());
  EXPECT_FALSE(cpu::attention_paged_decode(v, 3, 4, q.data(), out.data(), pool).ok());  // 3 % 2
  EXPECT_FALSE(cpu::attention_paged_decode(v, 4, 5, q.data(), out.data(), pool).ok());  // table
  EXPECT_FALSE(cpu::attention_paged_decode(v, 4, 0, q.data(), out.data(), pool).ok());
  EXPECT_FALSE(cpu::attention_flash_prefill(v, 4, 2, 3, q.data(), out.data(), pool).ok());
  table[0] = 7;  // out of the pool
  EXPECT_FALSE(cpu::attention_paged_decode(v, 4, 1, q.data(), out.data(), pool).ok());
  v.dtype = KvDType::kInt4;  // head_dim 8 is not a multiple of 32
  table[0] = 0;
  EXPECT_FALSE(cpu::attention_paged_decode(v, 4, 1, q.data(), out.data(), pool).ok());
}

}  // namespace
}  // namespace frugal
