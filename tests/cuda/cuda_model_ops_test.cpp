// The whole-model runner's extra ops (model_ops.cuh) against host references on awkward sizes,
// and paged attention with one shared block table (causal prefill) against the naive kernel.
// Bounds: embedding, f32_to_bf16, argmax: exact; rope_kv_write: q max abs < 1e-5 vs cpu::rope,
// cache bytes exact vs bf16(cpu::rope(k)) and bf16(v) (within one bf16 ulp where the float
// rotation differs in the last bit); swiglu_fused: max rel < 1e-6 vs cpu::swiglu.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/model_ops.cuh"
#include "cuda_test_util.h"

namespace frugal::cuda {
namespace {

using test::max_rel;
using test::poisoned;
using test::random_bf16;
using test::random_floats;
using test::rel_l2;
using test::to_device;
using test::to_host;

TEST(CudaModelOps, EmbeddingGathersRowsAndSeqLens) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(1);
  const int64_t vocab = 37, dim = 23;
  const auto table = random_bf16((size_t)(vocab * dim), rng);
  const std::vector<int32_t> ids = {5, 0, 36, 5, 17, 99};  // 99: out of range -> NaN row
  const std::vector<int32_t> pos = {0, 3, 8, 9, 100, 2};
  ASSIGN_OK(dt, to_device(table));
  ASSIGN_OK(di, to_device(ids));
  ASSIGN_OK(dp, to_device(pos));
  ASSIGN_OK(dx, poisoned(ids.size() * dim * 4));
  ASSIGN_OK(dl, poisoned(ids.size() * 4));
  FRUGAL_ASSERT_OK(embedding_bf16({dt.as<uint16_t>(), vocab, dim, di.as<int32_t>(),
                                   (int)ids.size(), dx.as<float>(), dp.as<int32_t>(),
                                   dl.as<int32_t>()}));
  ASSIGN_OK(x, to_host<float>(dx, ids.size() * dim));
  ASSIGN_OK(lens, to_host<int32_t>(dl, ids.size()));
  for (size_t t = 0; t < ids.size(); ++t) {
    EXPECT_EQ(lens[t], pos[t] + 1);
    for (int64_t i = 0; i < dim; ++i) {
      const float got = x[t * dim + i];
      if (ids[t] >= vocab) {
        EXPECT_TRUE(std::isnan(got));
      } else {
        EXPECT_EQ(got, bf16_to_f32(table[(size_t)(ids[t] * dim + i)])) << t << "," << i;
      }
    }
  }
  EXPECT_FALSE(embedding_bf16({nullptr, vocab, dim, di.as<int32_t>(), 1, dx.as<float>()}).ok());
}

// rope + KV write for both pair layouts, GQA heads, a shuffled block table, tokens of two
// sequences (per-token rows) and of one sequence (table_row).
void check_rope_kv(bool half, int table_row) {
  SCOPED_TRACE(testing::Message() << "half " << half << " table_row " << table_row);
  std::mt19937 rng(2);
  const int n_heads = 6, n_kv = 2, hd = 10, bs = 4, mbps = 5, n = 5;
  const int64_t n_blocks = n * mbps, n_pos = bs * mbps;  // a table row per token
  const int64_t stride = (n_heads + 2 * n_kv) * hd + 3;  // padded rows
  const float base = 10000.0f;
  const auto qkv = random_floats((size_t)(n * stride), rng);
  const std::vector<int32_t> pos = {0, 5, 19, 7, 11};
  std::vector<int32_t> tables((size_t)n_blocks);
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), rng);
  ASSIGN_OK(dqkv, to_device(qkv));
  ASSIGN_OK(dpos, to_device(pos));
  ASSIGN_OK(dtab, to_device(tables));
  ASSIGN_OK(dq, poisoned((size_t)n * n_heads * hd * 4));
  const size_t cache_elems = (size_t)n_blocks * bs * n_kv * hd;
  ASSIGN_OK(dk, poisoned(cache_elems * 2));
  ASSIGN_OK(dv, poisoned(cache_elems * 2));
  ASSIGN_OK(drope, DeviceBuffer::allocate((size_t)n_pos * (hd / 2) * sizeof(float2)));
  FRUGAL_ASSERT_OK(rope_table(drope.as<float2>(), n_pos, hd, base));
  RopeKvWriteParams p;
  p.qkv = dqkv.as<float>();
  p.qkv_stride = stride;
  p.q_out = dq.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.positions = dpos.as<int32_t>();
  p.block_tables = dtab.as<int32_t>();
  p.table_row = table_row;
  p.max_blocks_per_seq = mbps;
  p.n_blocks = n_blocks;
  p.block_size = bs;
  p.rope = drope.as<float2>();
  p.rope_positions = n_pos;
  p.rope_half = half;
  p.n = n;
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv;
  p.head_dim = hd;
  FRUGAL_ASSERT_OK(rope_kv_write(p));
  ASSIGN_OK(q, to_host<float>(dq, (size_t)n * n_heads * hd));
  ASSIGN_OK(k, to_host<uint16_t>(dk, cache_elems));
  ASSIGN_OK(v, to_host<uint16_t>(dv, cache_elems));
  const auto style = half ? cpu::RopeStyle::kHalf : cpu::RopeStyle::kAdjacent;
  for (int t = 0; t < n; ++t) {
    std::vector<float> rq(qkv.begin() + t * stride, qkv.begin() + t * stride + n_heads * hd);
    std::vector<float> rk(qkv.begin() + t * stride + n_heads * hd,
                          qkv.begin() + t * stride + (n_heads + n_kv) * hd);
    const float* rv = qkv.data() + t * stride + (n_heads + n_kv) * hd;
    cpu::rope(rq.data(), n_heads, hd, pos[(size_t)t], base, style);
    cpu::rope(rk.data(), n_kv, hd, pos[(size_t)t], base, style);
    for (int i = 0; i < n_heads * hd; ++i)
      EXPECT_NEAR(q[(size_t)(t * n_heads * hd + i)], rq[(size_t)i], 1e-5) << t << "," << i;
    const int row = table_row >= 0 ? table_row : t;
    const int32_t blk = tables[(size_t)(row * mbps + pos[(size_t)t] / bs)];
    const size_t off = ((size_t)blk * bs + pos[(size_t)t] % bs) * n_kv * hd;
    for (int i = 0; i < n_kv * hd; ++i) {
      EXPECT_NEAR(bf16_to_f32(k[off + i]), bf16_to_f32(f32_to_bf16(rk[(size_t)i])),
                  std::fabs(rk[(size_t)i]) * (1.0 / 128) + 1e-30)
          << t << "," << i;
      EXPECT_EQ(v[off + i], f32_to_bf16(rv[i])) << t << "," << i;
    }
  }
}

TEST(CudaModelOps, RopeKvWriteMatchesCpuRopeAndCacheLayout) {
  FRUGAL_REQUIRE_GPU();
  check_rope_kv(false, -1);
  check_rope_kv(true, -1);
  check_rope_kv(false, 1);
}

TEST(CudaModelOps, SwigluFusedMatchesCpu) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(3);
  const int64_t rows = 3, hidden = 37;
  const auto gu = random_floats((size_t)(rows * 2 * hidden), rng, -4.f, 4.f);
  ASSIGN_OK(dgu, to_device(gu));
  ASSIGN_OK(df, poisoned((size_t)(rows * hidden) * 4));
  ASSIGN_OK(db, poisoned((size_t)(rows * hidden) * 2));
  FRUGAL_ASSERT_OK(swiglu_fused(dgu.as<float>(), rows, hidden, df.as<float>(), db.as<uint16_t>()));
  ASSIGN_OK(f, to_host<float>(df, (size_t)(rows * hidden)));
  ASSIGN_OK(b, to_host<uint16_t>(db, (size_t)(rows * hidden)));
  std::vector<float> ref((size_t)(rows * hidden));
  for (int64_t r = 0; r < rows; ++r)
    cpu::swiglu(&gu[(size_t)(r * 2 * hidden)], &gu[(size_t)(r * 2 * hidden + hidden)],
                &ref[(size_t)(r * hidden)], hidden);
  EXPECT_LT(max_rel(f, ref, 1e-6), 1e-6);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_EQ(b[i], f32_to_bf16(f[i])) << i;
}

TEST(CudaModelOps, ConvertF32ToBf16RoundsLikeTheHost) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(4);
  auto x = random_floats(1001, rng, -100.f, 100.f);
  // ties to even, both directions; specials
  const uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu, 0x7f800000u,
                           0xff800000u, 0x7fc00001u, 0x00000001u, 0x80000000u};
  for (uint32_t b : bits) {
    float f;
    std::memcpy(&f, &b, 4);
    x.push_back(f);
  }
  ASSIGN_OK(dx, to_device(x));
  ASSIGN_OK(dy, poisoned(x.size() * 2));
  FRUGAL_ASSERT_OK(convert_f32_to_bf16(dx.as<float>(), dy.as<uint16_t>(), (int64_t)x.size()));
  ASSIGN_OK(y, to_host<uint16_t>(dy, x.size()));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], f32_to_bf16(x[i])) << i;
}

TEST(CudaModelOps, ArgmaxFirstMaximumNanLoses) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(5);
  const int64_t rows = 4, n = 3001;
  auto x = random_floats((size_t)(rows * n), rng);
  x[(size_t)(0 * n + 2999)] = 5.f;  // row 0: single max near the end
  x[(size_t)(1 * n + 1234)] = 7.f;  // row 1: tie -> the first
  x[(size_t)(1 * n + 2000)] = 7.f;
  x[(size_t)(1 * n + 17)] = NAN;
  for (int64_t i = 0; i < n; ++i) x[(size_t)(2 * n + i)] = NAN;  // row 2: all NaN -> 0
  x[(size_t)(2 * n + 5)] = NAN;
  x[(size_t)(3 * n + 0)] = 9.f;  // row 3: the first element
  ASSIGN_OK(dx, to_device(x));
  ASSIGN_OK(dout, poisoned(rows * 4));
  const std::vector<int32_t> pos0 = {10, 20, 30, 40};
  ASSIGN_OK(dpos, to_device(pos0));
  FRUGAL_ASSERT_OK(argmax_rows(dx.as<float>(), rows, n, dout.as<int32_t>(), dpos.as<int32_t>()));
  ASSIGN_OK(out, to_host<int32_t>(dout, rows));
  ASSIGN_OK(pos, to_host<int32_t>(dpos, rows));
  EXPECT_EQ(out[0], 2999);
  EXPECT_EQ(out[1], 1234);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], 0);
  for (int r = 0; r < rows; ++r) EXPECT_EQ(pos[(size_t)r], pos0[(size_t)r] + 1);
}

TEST(CudaModelOps, RandomFillIsDeterministicBoundedAndNotZero) {
  FRUGAL_REQUIRE_GPU();
  const size_t n = 100003;
  ASSIGN_OK(a, DeviceBuffer::allocate(n * 2));
  ASSIGN_OK(b, DeviceBuffer::allocate(n * 2));
  FRUGAL_ASSERT_OK(fill_random_bf16(a.as<uint16_t>(), n, 42, 0.25f));
  FRUGAL_ASSERT_OK(fill_random_bf16(b.as<uint16_t>(), n, 42, 0.25f));
  ASSIGN_OK(x, to_host<uint16_t>(a, n));
  ASSIGN_OK(y, to_host<uint16_t>(b, n));
  EXPECT_EQ(x, y);
  double sum = 0, sq = 0;
  size_t zeros = 0;
  for (uint16_t v : x) {
    const double f = bf16_to_f32(v);
    EXPECT_LE(std::fabs(f), 0.25);
    sum += f;
    sq += f * f;
    zeros += v == 0;
  }
  EXPECT_LT(std::fabs(sum / n), 0.005);                   // mean ~ 0
  EXPECT_NEAR(std::sqrt(sq / n), 0.25 / std::sqrt(3.0), 0.005);  // uniform's rms
  EXPECT_LT(zeros, n / 1000);
  FRUGAL_ASSERT_OK(fill_random_bf16(b.as<uint16_t>(), n, 43, 0.25f));
  ASSIGN_OK(z, to_host<uint16_t>(b, n));
  EXPECT_NE(x, z);
}

// Causal prefill as decode over one shared table: token t of a sequence attends positions
// [0, pos0 + t]; compare the split kernel with the naive kernel (which also reads row 0).
TEST(CudaModelOps, SharedBlockTableAttentionMatchesReference) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(6);
  const int H = 6, KV = 2, D = 64, BS = 16, mbps = 9, T = 37, pos0 = 100;
  const int64_t n_blocks = 11;
  const size_t cache = (size_t)n_blocks * BS * KV * D;
  const auto k = random_bf16(cache, rng, 2.f), v = random_bf16(cache, rng);
  std::vector<int32_t> table((size_t)mbps);
  std::vector<int32_t> all((size_t)n_blocks);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  std::copy_n(all.begin(), mbps, table.begin());
  std::vector<int32_t> lens((size_t)T);
  for (int t = 0; t < T; ++t) lens[(size_t)t] = pos0 + t + 1;
  const auto q = random_floats((size_t)T * H * D, rng);
  ASSIGN_OK(dk, to_device(k));
  ASSIGN_OK(dv, to_device(v));
  ASSIGN_OK(dt, to_device(table));
  ASSIGN_OK(dl, to_device(lens));
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dout, poisoned((size_t)T * H * D * 4));
  ASSIGN_OK(dref, poisoned((size_t)T * H * D * 4));
  PagedDecodeParams p;
  p.q = dq.as<float>();
  p.out = dout.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = mbps;
  p.n_blocks = n_blocks;
  p.n_seqs = T;
  p.n_heads = H;
  p.n_kv_heads = KV;
  p.head_dim = D;
  p.block_size = BS;
  p.max_seq_len = pos0 + T;
  p.shared_block_table = true;
  ASSIGN_OK(plan, plan_paged_decode(p));
  ASSIGN_OK(ws, DeviceBuffer::allocate(plan.workspace_bytes));
  p.workspace = ws.data();
  p.workspace_bytes = ws.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(p));
  p.out = dref.as<float>();
  FRUGAL_ASSERT_OK(paged_attention_decode_reference(p));
  ASSIGN_OK(out, to_host<float>(dout, (size_t)T * H * D));
  ASSIGN_OK(ref, to_host<float>(dref, (size_t)T * H * D));
  EXPECT_LT(rel_l2(out, ref), 1e-4);
  // token 0 of the chunk sees only pos0 + 1 positions: its output differs from token T-1's
  EXPECT_GT(rel_l2(std::vector<float>(out.begin(), out.begin() + H * D),
                   std::vector<float>(out.end() - H * D, out.end())),
            1e-3);
}

// The tensor-core causal prefill kernel against the float64 naive kernel. Several sequences
// (each a chunk of T tokens starting at pos0) share one pool through disjoint slices of a
// shuffled block list, and write disjoint rows of one output buffer (poisoned first, so a row
// left unwritten or written by the wrong sequence shows). Shapes: head_dim 64 / 128, GQA ratios
// 1 / 3 / 4 / 8, chunks not multiples of the 64- or 128-row tile, block sizes 5 / 16 / 32 / 128.
struct PrefillSeq {
  int T, pos0;
};
struct PrefillCase {
  int D, H, KV, BS, config;
  std::vector<PrefillSeq> seqs;
};

void check_prefill(const PrefillCase& c) {
  SCOPED_TRACE(testing::Message() << "head_dim " << c.D << " heads " << c.H << "/" << c.KV
                                  << " block " << c.BS << " config " << c.config << " T0 "
                                  << c.seqs[0].T << " pos0 " << c.seqs[0].pos0);
  std::mt19937 rng(7 + c.D + c.H);
  std::vector<int> mbps, row0;
  int n_tab = 0, rows = 0;
  for (const auto& s : c.seqs) {
    mbps.push_back((s.pos0 + s.T + c.BS - 1) / c.BS);
    row0.push_back(rows);
    n_tab += mbps.back();
    rows += s.T;
  }
  const int64_t n_blocks = n_tab + 3;
  const size_t cache = (size_t)n_blocks * c.BS * c.KV * c.D;
  const auto k = random_bf16(cache, rng, 2.f), v = random_bf16(cache, rng);
  std::vector<int32_t> all((size_t)n_blocks);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);
  const auto q = random_floats((size_t)rows * c.H * c.D, rng);
  ASSIGN_OK(dk, to_device(k));
  ASSIGN_OK(dv, to_device(v));
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dt, to_device(all));  // sequence i's table: a slice of the shuffled pool
  ASSIGN_OK(dout, poisoned((size_t)rows * c.H * c.D * 4));
  ASSIGN_OK(dref, poisoned((size_t)rows * c.H * c.D * 4));
  int tab0 = 0;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const auto& s = c.seqs[i];
    const int64_t off = (int64_t)row0[i] * c.H * c.D;
    PagedPrefillParams f;
    f.q = dq.as<float>() + off;
    f.out = dout.as<float>() + off;
    f.k_cache = dk.as<uint16_t>();
    f.v_cache = dv.as<uint16_t>();
    f.block_table = dt.as<int32_t>() + tab0;
    f.n_blocks = n_blocks;
    f.n_tokens = s.T;
    f.pos0 = s.pos0;
    f.n_heads = c.H;
    f.n_kv_heads = c.KV;
    f.head_dim = c.D;
    f.block_size = c.BS;
    f.config = c.config;
    FRUGAL_ASSERT_OK(paged_attention_prefill(f));
    std::vector<int32_t> lens((size_t)s.T);
    for (int t = 0; t < s.T; ++t) lens[(size_t)t] = s.pos0 + t + 1;
    ASSIGN_OK(dl, to_device(lens));
    PagedDecodeParams p;
    p.q = f.q;
    p.out = dref.as<float>() + off;
    p.k_cache = f.k_cache;
    p.v_cache = f.v_cache;
    p.block_tables = f.block_table;
    p.shared_block_table = true;
    p.seq_lens = dl.as<int32_t>();
    p.max_blocks_per_seq = mbps[i];
    p.n_blocks = n_blocks;
    p.n_seqs = s.T;
    p.n_heads = c.H;
    p.n_kv_heads = c.KV;
    p.head_dim = c.D;
    p.block_size = c.BS;
    p.max_seq_len = s.pos0 + s.T;
    FRUGAL_ASSERT_OK(paged_attention_decode_reference(p));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // dl lives in this iteration
    tab0 += mbps[i];
  }
  ASSIGN_OK(out, to_host<float>(dout, (size_t)rows * c.H * c.D));
  ASSIGN_OK(ref, to_host<float>(dref, (size_t)rows * c.H * c.D));
  const double err = rel_l2(out, ref);
  std::printf("[ info ] prefill attention (tensor cores) head_dim %d heads %d/%d block %d config "
              "%d, %zu seq(s) from T %d pos0 %d: rel L2 %.3g vs float64\n",
              c.D, c.H, c.KV, c.BS, c.config, c.seqs.size(), c.seqs[0].T, c.seqs[0].pos0, err);
  EXPECT_LT(err, 1e-2);  // bf16 Q and P
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i])) {
      ADD_FAILURE() << "non-finite output at " << i;
      break;
    }
}

TEST(CudaModelOps, TensorCorePrefillAttentionMatchesReference) {
  FRUGAL_REQUIRE_GPU();
  check_prefill({64, 6, 2, 16, 0, {{100, 45}}});
  check_prefill({128, 6, 2, 16, 0, {{70, 0}}});
  check_prefill({128, 6, 2, 16, 0, {{1, 200}}});
  check_prefill({64, 9, 3, 16, 0, {{17, 0}}});          // SmolLM2's heads
  for (int config = 1; config <= 3; ++config) {
    check_prefill({64, 4, 1, 16, config, {{1, 0}}});     // one token, MQA
    check_prefill({128, 8, 1, 16, config, {{513, 0}}});  // GQA 8
    check_prefill({128, 4, 4, 5, config, {{513, 30}}});  // MHA, block size 5, mid-block start
    check_prefill({64, 8, 2, 32, config, {{100, 3}}});   // GQA 4 at d 64
    check_prefill({128, 8, 2, 128, config, {{130, 0}}}); // a block longer than a K/V tile
  }
}

TEST(CudaModelOps, TensorCorePrefillAttentionSeveralSequences) {
  FRUGAL_REQUIRE_GPU();
  check_prefill({128, 8, 2, 16, 0, {{77, 0}, {50, 40}, {1, 300}, {129, 17}}});
  check_prefill({64, 9, 3, 16, 2, {{33, 0}, {200, 5}}});
}

TEST(CudaModelOps, TensorCorePrefillAttentionRejectsBadInput) {
  FRUGAL_REQUIRE_GPU();
  PagedPrefillParams f;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);  // null pointers
  ASSIGN_OK(buf, DeviceBuffer::allocate(4096));
  f.q = buf.as<float>();
  f.out = buf.as<float>();
  f.k_cache = buf.as<uint16_t>();
  f.v_cache = buf.as<uint16_t>();
  f.block_table = buf.as<int32_t>();
  f.n_blocks = 1;
  f.n_tokens = 1;
  f.n_heads = 6;
  f.n_kv_heads = 4;
  f.head_dim = 64;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);  // 6 % 4
  f.n_kv_heads = 2;
  f.config = 4;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);
  f.config = 0;
  f.head_dim = 96;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kUnsupported);
  f.head_dim = 64;
  f.q = reinterpret_cast<const float*>(buf.as<unsigned char>() + 4);
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);  // misaligned
}

}  // namespace
}  // namespace frugal::cuda
