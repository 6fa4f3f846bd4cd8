// Paged decode attention on the GPU vs cpu::attention_paged_decode (BF16 KV, same cache bytes,
// same block tables) and a float64 host reference; also the naive GPU reference kernel.
// Bounds: rel L2 < 1e-4 against float64 (float accumulation, exp2f), < 1e-4 against the CPU op.
#include <algorithm>
#include <numeric>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cuda/attention.cuh"
#include "cuda_test_util.h"

namespace frugal::cuda {
namespace {

using test::poisoned;
using test::random_bf16;
using test::random_floats;
using test::rel_l2;
using test::to_device;
using test::to_host;

struct Case {
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<int> seq_lens;
  int split_size;  // 0 = auto
};

// A pool with random K/V, each sequence's blocks scattered in shuffled order.
struct HostCache {
  int64_t n_blocks = 0;
  int max_blocks = 0;
  std::vector<uint16_t> k, v;
  std::vector<int32_t> tables;  // [n_seqs, max_blocks]
};

HostCache make_cache(const Case& c, std::mt19937& rng) {
  HostCache h;
  const int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  h.max_blocks = (max_len + c.block_size - 1) / c.block_size;
  int64_t used = 0;
  for (int len : c.seq_lens) used += (len + c.block_size - 1) / c.block_size;
  h.n_blocks = used + 3;  // a few blocks nobody uses
  const size_t row = (size_t)c.n_kv_heads * c.head_dim;
  h.k = random_bf16((size_t)h.n_blocks * c.block_size * row, rng, 2.0f);
  h.v = random_bf16(h.k.size(), rng, 1.0f);
  std::vector<int32_t> perm((size_t)h.n_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  h.tables.assign(c.seq_lens.size() * (size_t)h.max_blocks, -1);  // unused entries invalid
  size_t next = 0;
  for (size_t s = 0; s < c.seq_lens.size(); ++s)
    for (int b = 0; b < (c.seq_lens[s] + c.block_size - 1) / c.block_size; ++b)
      h.tables[s * (size_t)h.max_blocks + (size_t)b] = perm[next++];
  return h;
}

std::vector<double> float64_reference(const Case& c, const HostCache& h,
                                      const std::vector<float>& q) {
  const int D = c.head_dim, G = c.n_heads / c.n_kv_heads;
  std::vector<double> out(q.size());
  for (size_t s = 0; s < c.seq_lens.size(); ++s)
    for (int hq = 0; hq < c.n_heads; ++hq) {
      const int kvh = hq / G, len = c.seq_lens[s];
      std::vector<double> sc((size_t)len);
      double m = -INFINITY;
      for (int p = 0; p < len; ++p) {
        const int64_t blk = h.tables[s * (size_t)h.max_blocks + (size_t)(p / c.block_size)];
        const size_t row =
            (size_t)(((blk * c.block_size + p % c.block_size) * c.n_kv_heads + kvh) * D);
        double d = 0;
        for (int i = 0; i < D; ++i)
          d += (double)q[(s * c.n_heads + hq) * D + i] * bf16_to_f32(h.k[row + i]);
        sc[(size_t)p] = d / std::sqrt((double)D);
        m = std::max(m, sc[(size_t)p]);
      }
      double l = 0;
      std::vector<double> acc((size_t)D, 0.0);
      for (int p = 0; p < len; ++p) {
        const int64_t blk = h.tables[s * (size_t)h.max_blocks + (size_t)(p / c.block_size)];
        const size_t row =
            (size_t)(((blk * c.block_size + p % c.block_size) * c.n_kv_heads + kvh) * D);
        const double e = std::exp(sc[(size_t)p] - m);
        l += e;
        for (int i = 0; i < D; ++i) acc[(size_t)i] += e * bf16_to_f32(h.v[row + i]);
      }
      for (int i = 0; i < D; ++i) out[(s * c.n_heads + hq) * D + i] = acc[(size_t)i] / l;
    }
  return out;
}

void run_case(const Case& c, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "H=" << c.n_heads << " KV=" << c.n_kv_heads
                                  << " D=" << c.head_dim << " bs=" << c.block_size
                                  << " split=" << c.split_size);
  const HostCache h = make_cache(c, rng);
  const int n_seqs = (int)c.seq_lens.size();
  const size_t qn = (size_t)n_seqs * c.n_heads * c.head_dim;
  const auto q = random_floats(qn, rng);
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dk, to_device(h.k));
  ASSIGN_OK(dv, to_device(h.v));
  ASSIGN_OK(dt, to_device(h.tables));
  ASSIGN_OK(dl, to_device(c.seq_lens));
  ASSIGN_OK(dout, poisoned(qn * 4));
  ASSIGN_OK(dref, poisoned(qn * 4));
  PagedDecodeParams p;
  p.q = dq.as<float>();
  p.out = dout.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = h.max_blocks;
  p.n_blocks = h.n_blocks;
  p.n_seqs = n_seqs;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.block_size = c.block_size;
  p.max_seq_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  p.split_size = c.split_size;
  ASSIGN_OK(plan, plan_paged_decode(p));
  ASSIGN_OK(ws, poisoned(plan.workspace_bytes));
  p.workspace = ws.data();
  p.workspace_bytes = ws.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(p));
  p.out = dref.as<float>();
  FRUGAL_ASSERT_OK(paged_attention_decode_reference(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(out, to_host<float>(dout, qn));
  ASSIGN_OK(ref_gpu, to_host<float>(dref, qn));

  const auto exact = float64_reference(c, h, q);
  std::vector<float> cpu_out(qn);
  ThreadPool pool(2);
  for (int s = 0; s < n_seqs; ++s) {
    cpu::PagedKvView kv;
    kv.k = reinterpret_cast<const uint8_t*>(h.k.data());
    kv.v = reinterpret_cast<const uint8_t*>(h.v.data());
    kv.dtype = cpu::KvDType::kBF16;
    kv.block_size = c.block_size;
    kv.n_kv_heads = c.n_kv_heads;
    kv.head_dim = c.head_dim;
    const int used = (c.seq_lens[(size_t)s] + c.block_size - 1) / c.block_size;
    kv.block_table = std::span<const int32_t>(h.tables.data() + (size_t)s * h.max_blocks,
                                              (size_t)used);
    kv.n_blocks = h.n_blocks;
    const size_t off = (size_t)s * c.n_heads * c.head_dim;
    FRUGAL_ASSERT_OK(cpu::attention_paged_decode(kv, c.n_heads, c.seq_lens[(size_t)s],
                                                 q.data() + off, cpu_out.data() + off, pool));
  }
  EXPECT_LT(rel_l2(out, exact), 1e-4);
  EXPECT_LT(rel_l2(out, cpu_out), 1e-4);
  EXPECT_LT(rel_l2(ref_gpu, exact), 1e-6);
}

TEST(CudaAttention, PagedDecodeMatchesCpuAndFloat64) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(23);
  // Llama-3.1-8B heads (GQA 4), ragged batch, auto and forced splits
  run_case({32, 8, 128, 16, {1, 100, 1000, 2049}, 0}, rng);
  run_case({32, 8, 128, 16, {1, 100, 1000, 2049}, 32}, rng);
  run_case({32, 8, 128, 16, {1, 100, 1000, 2049}, 4096}, rng);  // one split
  // SmolLM2 heads (GQA 3, head_dim 64)
  run_case({9, 3, 64, 16, {5, 300, 33}, 0}, rng);
  // MQA-like group of 8, block size 32; MHA (group 1), block size 1
  run_case({8, 1, 64, 32, {777}, 64}, rng);
  run_case({8, 8, 128, 1, {65, 3}, 0}, rng);
}

TEST(CudaAttention, InvalidBlockPoisonsOnlyItsSequence) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(29);
  const Case c{8, 2, 64, 16, {40, 40}, 0};
  HostCache h = make_cache(c, rng);
  h.tables[1] = (int32_t)h.n_blocks;  // sequence 0, block 1: out of range
  const size_t qn = 2 * 8 * 64;
  const auto q = random_floats(qn, rng);
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dk, to_device(h.k));
  ASSIGN_OK(dv, to_device(h.v));
  ASSIGN_OK(dt, to_device(h.tables));
  ASSIGN_OK(dl, to_device(c.seq_lens));
  ASSIGN_OK(dout, poisoned(qn * 4));
  PagedDecodeParams p;
  p.q = dq.as<float>();
  p.out = dout.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = h.max_blocks;
  p.n_blocks = h.n_blocks;
  p.n_seqs = 2;
  p.n_heads = 8;
  p.n_kv_heads = 2;
  p.head_dim = 64;
  p.max_seq_len = 40;
  ASSIGN_OK(plan, plan_paged_decode(p));
  ASSIGN_OK(ws, poisoned(plan.workspace_bytes));
  p.workspace = ws.data();
  p.workspace_bytes = ws.size() - 1;
  EXPECT_EQ(paged_attention_decode(p).code(), StatusCode::kInvalidArgument);  // too small
  p.workspace_bytes = ws.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(p));
  ASSIGN_OK(out, to_host<float>(dout, qn));
  for (size_t i = 0; i < qn / 2; ++i) ASSERT_TRUE(std::isnan(out[i])) << i;
  for (size_t i = qn / 2; i < qn; ++i) ASSERT_FALSE(std::isnan(out[i])) << i;

  p.head_dim = 96;
  EXPECT_EQ(plan_paged_decode(p).status().code(), StatusCode::kUnsupported);
  p.head_dim = 64;
  p.n_kv_heads = 3;
  EXPECT_EQ(paged_attention_decode(p).code(), StatusCode::kInvalidArgument);
  p.n_kv_heads = 2;
  p.max_seq_len = 10000;  // table too short
  EXPECT_EQ(paged_attention_decode_reference(p).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frugal::cuda
