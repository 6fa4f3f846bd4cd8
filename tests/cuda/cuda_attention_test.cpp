// Paged decode attention on the GPU vs cpu::attention_paged_decode (BF16 KV, same cache bytes,
// same block tables) and a float64 host reference; also the naive GPU reference kernel.
// Bounds: rel L2 < 1e-4 against float64 (float accumulation, exp2f), < 1e-4 against the CPU op.
// The tensor-core kernel (kDecodeMma, q and probabilities as sums of bf16 terms): the same, and
// (three bf16 terms) within 3x the float kernel's own error, also on LM-like inputs (attention
// sinks, outlier dimensions, prefill-shaped ragged lengths), deterministic. The cluster kernel
// (kDecodeCluster: one launch, the merge through distributed shared memory): the same bounds,
// at every cluster size 1..16 (including sizes that are not powers of two), with and without
// programmatic dependent launch. The mma kernel's A/B variants (v10c, without tile pairs) are
// held to the same bounds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <numeric>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cuda/attention.cuh"
#include "backend/cuda/launch.cuh"
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
  p.kernel = kDecodeSplit;
  ASSIGN_OK(plan, plan_paged_decode(p));
  ASSIGN_OK(ws, poisoned(plan.workspace_bytes));
  p.workspace = ws.data();
  p.workspace_bytes = ws.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(p));
  // The same with the merge fused into the last split block (atomic tickets), twice: the
  // counters must come back to zero for the second call.
  const size_t n_ctr = (size_t)n_seqs * c.n_kv_heads;
  ASSIGN_OK(dctr, to_device(std::vector<int32_t>(n_ctr, 0)));
  ASSIGN_OK(dfused, poisoned(qn * 4));
  PagedDecodeParams pf = p;
  pf.out = dfused.as<float>();
  pf.split_counters = dctr.as<int32_t>();
  FRUGAL_ASSERT_OK(paged_attention_decode(pf));
  FRUGAL_ASSERT_OK(paged_attention_decode(pf));
  // The tensor-core kernel on the same inputs (its own plan: another split count), and the
  // default (kDecodeAuto) kernel.
  ASSIGN_OK(dmma, poisoned(qn * 4));
  PagedDecodeParams pm = p;
  pm.out = dmma.as<float>();
  pm.kernel = kDecodeMma;
  ASSIGN_OK(plan_mma, plan_paged_decode(pm));
  EXPECT_EQ(plan_mma.kernel, kDecodeMma);
  ASSIGN_OK(ws_mma, poisoned(plan_mma.workspace_bytes));
  pm.workspace = ws_mma.data();
  pm.workspace_bytes = ws_mma.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(pm));
  // The mma kernel as of v10c (one tile per softmax step, merge without early launch), and the
  // default under programmatic dependent launch (three calls in a row: each split kernel starts
  // while the previous merge kernel, which lets it launch early, still runs): the same bits.
  ASSIGN_OK(dmma10, poisoned(qn * 4));
  PagedDecodeParams pm10 = pm;
  pm10.out = dmma10.as<float>();
  pm10.mma_tile_pairs = false;
  pm10.merge_early_launch = false;
  pm10.mma_v10 = true;
  FRUGAL_ASSERT_OK(paged_attention_decode(pm10));
  // The current kernel without tile pairs: the v10c arithmetic in the same order (checked tile
  // loads vs the unchecked fast path, per-element vs per-head merge weights).
  ASSIGN_OK(dmma_np, poisoned(qn * 4));
  PagedDecodeParams pnp = pm;
  pnp.out = dmma_np.as<float>();
  pnp.mma_tile_pairs = false;
  FRUGAL_ASSERT_OK(paged_attention_decode(pnp));
  ASSIGN_OK(dmma_pdl, poisoned(qn * 4));
  {
    const ProgrammaticLaunchScope pdl(true);
    PagedDecodeParams pp = pm;
    pp.out = dmma_pdl.as<float>();
    for (int i = 0; i < 3; ++i) FRUGAL_ASSERT_OK(paged_attention_decode(pp));
  }
  p.out = dref.as<float>();
  FRUGAL_ASSERT_OK(paged_attention_decode_reference(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(out, to_host<float>(dout, qn));
  ASSIGN_OK(fused, to_host<float>(dfused, qn));
  ASSIGN_OK(ctr, to_host<int32_t>(dctr, n_ctr));
  ASSIGN_OK(ref_gpu, to_host<float>(dref, qn));
  ASSIGN_OK(out_mma, to_host<float>(dmma, qn));
  ASSIGN_OK(out_mma10, to_host<float>(dmma10, qn));
  ASSIGN_OK(out_mma_pdl, to_host<float>(dmma_pdl, qn));
  ASSIGN_OK(out_mma_np, to_host<float>(dmma_np, qn));
  EXPECT_LT(rel_l2(out_mma_np, out_mma10), 1e-7);
  EXPECT_EQ(ctr, std::vector<int32_t>(n_ctr, 0));
  EXPECT_EQ(std::memcmp(out_mma.data(), out_mma_pdl.data(), qn * 4), 0);

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
  EXPECT_LT(rel_l2(fused, exact), 1e-4);
  EXPECT_LT(rel_l2(out, cpu_out), 1e-4);
  EXPECT_LT(rel_l2(ref_gpu, exact), 1e-6);
  EXPECT_LT(rel_l2(out_mma, exact), 1e-4);
  EXPECT_LT(rel_l2(out_mma, cpu_out), 1e-4);
  // q and P as three bf16 terms: as accurate as the float kernel (two terms were 10-30x less).
  EXPECT_LT(rel_l2(out_mma, exact), 3 * rel_l2(out, exact) + 1e-8);
  EXPECT_LT(rel_l2(out_mma10, exact), 3 * rel_l2(out, exact) + 1e-8);
  for (size_t i = 0; i < qn; ++i) ASSERT_TRUE(std::isfinite(out_mma[i])) << i;
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
  // group 8 x 532 splits > the fused merge's 4096 weights: the merge kernel despite counters
  run_case({8, 1, 64, 16, {17000, 5}, 32}, rng);
  run_case({8, 8, 128, 1, {65, 3}, 0}, rng);
  // more groups, head sizes and block sizes for the tensor-core kernel: group 8 at d 128,
  // group 1 at d 64, block sizes that are not powers of two (5, 48) and 64 (several tiles per
  // block), splits with idle warps (split 32: two 16-position tiles for four warps)
  run_case({16, 2, 128, 5, {1, 17, 333, 1500}, 0}, rng);
  run_case({4, 4, 64, 48, {31, 700, 1}, 32}, rng);
  run_case({12, 4, 128, 64, {2000, 129, 64}, 0}, rng);
  run_case({24, 8, 64, 16, {4100, 15}, 96}, rng);
}

// The cluster kernel at forced cluster sizes (0 = the plan's choice) vs float64, against the
// float (split) kernel's own error on the same inputs: every output written (NaN-poisoned
// buffer), deterministic, the same bits with programmatic dependent launch (three calls in a
// row, so each one's pre-wait table loads overlap the previous call). The cache rows past each
// sequence's end in its last block hold NaN bits (a stale pool): they must not be read.
void run_cluster_case(const Case& c, std::initializer_list<int> cluster_sizes, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "H=" << c.n_heads << " KV=" << c.n_kv_heads
                                  << " D=" << c.head_dim << " bs=" << c.block_size);
  HostCache h = make_cache(c, rng);
  for (size_t s = 0; s < c.seq_lens.size(); ++s) {
    const int len = c.seq_lens[s];
    const int64_t blk = h.tables[s * (size_t)h.max_blocks + (size_t)((len - 1) / c.block_size)];
    const size_t row = (size_t)c.n_kv_heads * c.head_dim;
    for (int slot = (len - 1) % c.block_size + 1; slot < c.block_size; ++slot)
      for (size_t i = 0; i < row; ++i) {
        h.k[((size_t)blk * c.block_size + (size_t)slot) * row + i] = 0xffff;  // NaN
        h.v[((size_t)blk * c.block_size + (size_t)slot) * row + i] = 0xffff;
      }
  }
  const int n_seqs = (int)c.seq_lens.size();
  const size_t qn = (size_t)n_seqs * c.n_heads * c.head_dim;
  const auto q = random_floats(qn, rng);
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dk, to_device(h.k));
  ASSIGN_OK(dv, to_device(h.v));
  ASSIGN_OK(dt, to_device(h.tables));
  ASSIGN_OK(dl, to_device(c.seq_lens));
  PagedDecodeParams p;
  p.q = dq.as<float>();
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
  const auto exact = float64_reference(c, h, q);
  // the float kernel's error on these inputs
  ASSIGN_OK(dsplit, poisoned(qn * 4));
  PagedDecodeParams ps = p;
  ps.out = dsplit.as<float>();
  ps.kernel = kDecodeSplit;
  ASSIGN_OK(plan_s, plan_paged_decode(ps));
  ASSIGN_OK(ws, poisoned(plan_s.workspace_bytes));
  ps.workspace = ws.data();
  ps.workspace_bytes = ws.size();
  FRUGAL_ASSERT_OK(paged_attention_decode(ps));
  ASSIGN_OK(out_split, to_host<float>(dsplit, qn));
  const double err_split = rel_l2(out_split, exact);
  for (int cs : cluster_sizes) {
    SCOPED_TRACE(testing::Message() << "cluster_size=" << cs);
    ASSIGN_OK(dout, poisoned(qn * 4));
    PagedDecodeParams pc = p;
    pc.out = dout.as<float>();
    pc.kernel = kDecodeCluster;
    pc.cluster_size = cs;
    ASSIGN_OK(plan, plan_paged_decode(pc));
    ASSERT_EQ(plan.kernel, kDecodeCluster);
    if (cs > 0) {
      EXPECT_EQ(plan.cluster_size, cs);
    }
    FRUGAL_ASSERT_OK(paged_attention_decode(pc));  // no workspace
    ASSIGN_OK(out, to_host<float>(dout, qn));
    for (size_t i = 0; i < qn; ++i) ASSERT_TRUE(std::isfinite(out[i])) << i;
    const double err = rel_l2(out, exact);
    std::printf("[ info ] cluster decode attention H %d KV %d D %d bs %d, %d seqs, cluster %d: "
                "rel L2 vs float64 %.3g (split kernel %.3g)\n",
                c.n_heads, c.n_kv_heads, c.head_dim, c.block_size, n_seqs, plan.cluster_size, err,
                err_split);
    EXPECT_LT(err, 1e-4);
    EXPECT_LT(err, 3 * err_split + 1e-8);
    {
      const ProgrammaticLaunchScope pdl(true);
      ASSIGN_OK(dpdl, poisoned(qn * 4));
      pc.out = dpdl.as<float>();
      for (int rep = 0; rep < 3; ++rep) FRUGAL_ASSERT_OK(paged_attention_decode(pc));
      ASSIGN_OK(again, to_host<float>(dpdl, qn));
      EXPECT_EQ(std::memcmp(out.data(), again.data(), qn * 4), 0);
    }
  }
}

TEST(CudaAttention, ClusterKernelMatchesFloat64AtEveryClusterSize) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(41);
  // Llama-3.1-8B heads (group 4), ragged batch; every cluster size 1..16 that the batch allows
  run_cluster_case({32, 8, 128, 16, {1, 100, 1000, 2049}, 0}, {0, 1, 2, 3, 4, 8, 16}, rng);
  // SmolLM2 heads (group 3, d 64)
  run_cluster_case({9, 3, 64, 16, {5, 300, 33, 4100}, 0}, {0, 5, 16}, rng);
  // one long sequence, group 8 at d 64, clusters of 1 and 2: > 32 tiles per warp (the block-
  // table entries are reloaded every 32 tiles), and 16
  run_cluster_case({8, 1, 64, 16, {17000, 5}, 0}, {1, 2, 16}, rng);
  // block sizes: 5 (not a power of two: a table entry per row), 1, 32, 64; groups 6 and 8
  run_cluster_case({16, 2, 128, 5, {1, 17, 333, 1500}, 0}, {0, 7}, rng);
  run_cluster_case({8, 8, 128, 1, {65, 3}, 0}, {0, 2}, rng);
  run_cluster_case({12, 2, 64, 32, {31, 700, 1}, 0}, {0, 8}, rng);
  run_cluster_case({12, 4, 128, 64, {2000, 129, 64}, 0}, {0, 3}, rng);
  run_cluster_case({64, 8, 128, 16, {3000}, 0}, {0, 16}, rng);
}

// LM-like inputs (issue 7: SmolLM2's logits moved 5x more with the mma kernel than with the
// float kernel): every sequence's position 0 is an attention sink (its key aligned with a bias
// shared by the group's queries), three q / k outlier dimensions (x6 / x8), short ragged lengths
// 1..T (partial 16-position tiles) laid out like a prefill chunk (sequence t = token t, length
// t + 1, one shared block table) or as T independent sequences. The tensor-core kernel must be
// as accurate as the float kernel here: with q and P as two bf16 terms (~2^-17 relative) its
// error was 9-22x the float kernel's (float64 emulation, dev/cuda/decode_attn_numerics.py),
// which SmolLM2 amplifies ~1000x into its logits; three terms give the float kernel's error
// (query groups <= 4 in spare rows of the mma, 5..8 with a second fragment: both covered).
struct LmLikeCase {
  int n_heads, n_kv_heads, head_dim, block_size, tokens;
  bool shared_table;
};

void run_lm_like_case(const LmLikeCase& c, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "H=" << c.n_heads << " KV=" << c.n_kv_heads << " D="
                                  << c.head_dim << " bs=" << c.block_size << " T=" << c.tokens
                                  << " shared=" << c.shared_table);
  const int D = c.head_dim, KV = c.n_kv_heads, H = c.n_heads, G = H / KV, T = c.tokens;
  const int max_blocks = (T + c.block_size - 1) / c.block_size;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> qs((size_t)D, 1.0f), ks((size_t)D, 1.0f);
  for (int i = 0; i < 3; ++i) {
    const size_t d = rng() % (size_t)D;
    qs[d] = 6.0f;
    ks[d] = 8.0f;
  }
  std::vector<float> sgn((size_t)KV * D);
  for (auto& x : sgn) x = u(rng) < 0 ? -1.0f : 1.0f;
  // Sequences: shared: one table row (max_blocks blocks) read by all T; else one row each.
  const int rows = c.shared_table ? 1 : T;
  HostCache h;
  h.max_blocks = max_blocks;
  h.n_blocks = (int64_t)rows * max_blocks + 2;
  const size_t row_elems = (size_t)KV * D;
  h.k.resize((size_t)h.n_blocks * c.block_size * row_elems);
  h.v.resize(h.k.size());
  for (size_t i = 0; i < h.k.size(); ++i) {
    h.k[i] = f32_to_bf16(u(rng) * ks[i % (size_t)D]);
    h.v[i] = f32_to_bf16(u(rng));
  }
  std::vector<int32_t> perm((size_t)h.n_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> dev_tables((size_t)rows * max_blocks);
  for (size_t i = 0; i < dev_tables.size(); ++i) dev_tables[i] = perm[i];
  // The sink: position 0 of every table row, every KV head.
  for (int r = 0; r < rows; ++r) {
    const int64_t blk = dev_tables[(size_t)r * max_blocks];
    for (int kvh = 0; kvh < KV; ++kvh)
      for (int d = 0; d < D; ++d)
        h.k[(size_t)blk * c.block_size * row_elems + (size_t)kvh * D + d] =
            f32_to_bf16(sgn[(size_t)kvh * D + d] * ks[(size_t)d]);
  }
  // The host reference reads one table row per sequence.
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < max_blocks; ++b)
      h.tables.push_back(dev_tables[(size_t)(c.shared_table ? 0 : t) * max_blocks + b]);
  std::vector<float> q((size_t)T * H * D);
  for (int t = 0; t < T; ++t)
    for (int hq = 0; hq < H; ++hq)
      for (int d = 0; d < D; ++d)
        q[((size_t)t * H + hq) * D + d] = (u(rng) + 0.5f * sgn[(size_t)(hq / G) * D + d]) * qs[d];
  std::vector<int> lens((size_t)T);
  std::iota(lens.begin(), lens.end(), 1);
  const Case cref{H, KV, D, c.block_size, lens, 0};
  const auto exact = float64_reference(cref, h, q);

  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dk, to_device(h.k));
  ASSIGN_OK(dv, to_device(h.v));
  ASSIGN_OK(dt, to_device(dev_tables));
  ASSIGN_OK(dl, to_device(lens));
  PagedDecodeParams p;
  p.q = dq.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.shared_block_table = c.shared_table;
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = max_blocks;
  p.n_blocks = h.n_blocks;
  p.n_seqs = T;
  p.n_heads = H;
  p.n_kv_heads = KV;
  p.head_dim = D;
  p.block_size = c.block_size;
  p.max_seq_len = T;
  double err[5] = {0, 0, 0, 0, 0};  // [kernel], [4]: the mma kernel without tile pairs
  for (int variant : {kDecodeSplit, kDecodeMma, kDecodeCluster, 4}) {
    const int kernel = variant == 4 ? kDecodeMma : variant;
    ASSIGN_OK(dout, poisoned(q.size() * 4));
    PagedDecodeParams pk = p;
    pk.out = dout.as<float>();
    pk.kernel = kernel;
    pk.mma_tile_pairs = variant != 4;
    ASSIGN_OK(plan, plan_paged_decode(pk));
    ASSIGN_OK(ws, poisoned(plan.workspace_bytes));
    pk.workspace = ws.data();
    pk.workspace_bytes = ws.size();
    FRUGAL_ASSERT_OK(paged_attention_decode(pk));
    ASSIGN_OK(out, to_host<float>(dout, q.size()));
    err[variant] = rel_l2(out, exact);
    // deterministic: a second call gives the same bits
    FRUGAL_ASSERT_OK(paged_attention_decode(pk));
    ASSIGN_OK(again, to_host<float>(dout, q.size()));
    EXPECT_EQ(std::memcmp(out.data(), again.data(), out.size() * 4), 0) << kernel;
  }
  std::printf("[ info ] LM-like decode attention H %d KV %d D %d bs %d T %d shared %d: rel L2 vs "
              "float64: split %.3g, mma %.3g (one tile per step: %.3g), cluster %.3g\n",
              H, KV, D, c.block_size, T, (int)c.shared_table, err[kDecodeSplit], err[kDecodeMma],
              err[4], err[kDecodeCluster]);
  EXPECT_LT(err[kDecodeSplit], 1e-6);
  EXPECT_LT(err[kDecodeMma], 1e-6);
  EXPECT_LT(err[kDecodeMma], 3 * err[kDecodeSplit] + 1e-8);
  EXPECT_LT(err[kDecodeCluster], 3 * err[kDecodeSplit] + 1e-8);
  EXPECT_LT(err[4], 3 * err[kDecodeSplit] + 1e-8);
}

TEST(CudaAttention, MmaKernelAsAccurateAsFloatKernelOnLmLikeInputs) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(37);
  run_lm_like_case({9, 3, 64, 16, 40, true}, rng);    // SmolLM2, a 40-token prefill chunk
  run_lm_like_case({9, 3, 64, 32, 21, false}, rng);   // SmolLM2, 21 sequences of 1..21
  run_lm_like_case({9, 3, 64, 16, 6, true}, rng);     // the GPU test's 6-token prompt
  run_lm_like_case({32, 8, 128, 16, 37, true}, rng);  // Llama-3.1-8B heads (group 4)
  run_lm_like_case({64, 8, 128, 16, 23, true}, rng);  // Llama-3.1-70B heads (group 8)
  run_lm_like_case({12, 2, 64, 32, 19, false}, rng);  // group 6
  // 65..120 positions: 5..8 tiles in a split of 128, so warps with two tiles (the pair step,
  // its last tile partly masked) next to warps with one
  run_lm_like_case({32, 8, 128, 16, 120, true}, rng);  // group 4 (three terms in free rows)
  run_lm_like_case({64, 8, 128, 32, 97, true}, rng);   // group 8 (second fragment)
  run_lm_like_case({9, 3, 64, 16, 113, true}, rng);    // SmolLM2 heads
}

TEST(CudaAttention, DecodeKernelSelection) {
  FRUGAL_REQUIRE_GPU();
  EXPECT_EQ(decode_attention_kernel(), kDecodeAuto);  // the default: the measured rule
  std::mt19937 rng(31);
  const Case c{8, 2, 64, 16, {40}, 0};
  const HostCache h = make_cache(c, rng);
  ASSIGN_OK(dt, to_device(h.tables));
  ASSIGN_OK(dl, to_device(c.seq_lens));
  ASSIGN_OK(dk, to_device(h.k));
  PagedDecodeParams p;
  p.q = p.out = reinterpret_cast<float*>(dk.data());
  p.k_cache = p.v_cache = dk.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = h.max_blocks;
  p.n_blocks = h.n_blocks;
  p.n_seqs = 1;
  p.n_heads = 8;
  p.n_kv_heads = 2;
  p.head_dim = 64;
  p.max_seq_len = 40;
  // 40 positions: one cluster block would do (fewer than 2 x 64 positions), so the mma kernel
  ASSIGN_OK(plan64, plan_paged_decode(p));
  EXPECT_EQ(plan64.kernel, kDecodeMma);  // auto: the mma kernel at d 64 too (SmolLM2)
  p.head_dim = 128;
  ASSIGN_OK(plan, plan_paged_decode(p));
  EXPECT_EQ(plan.kernel, kDecodeMma);
  // batch 1 at 4k: 2 (sequence, KV head) clusters of <= 16 blocks leave the device idle: the
  // two-kernel mma path
  p.max_seq_len = 4096;
  p.max_blocks_per_seq = 4096 / 16;
  ASSIGN_OK(plan_b1, plan_paged_decode(p));
  EXPECT_EQ(plan_b1.kernel, kDecodeMma);
  // 64 clusters of 2 blocks (one 192 KiB block per SM) fill a 128..134-SM device (the H200's
  // 132): the cluster kernel, no workspace
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  p.n_seqs = 32;
  ASSIGN_OK(plan_b32, plan_paged_decode(p));
  p.n_seqs = 64;  // 128 clusters of one block: fills it too
  ASSIGN_OK(plan_b64, plan_paged_decode(p));
  if (sms >= 128 && sms <= 134) {
    EXPECT_EQ(plan_b32.kernel, kDecodeCluster);
    EXPECT_EQ(plan_b32.cluster_size, 2);
    EXPECT_EQ(plan_b32.workspace_bytes, 0u);
    EXPECT_EQ(plan_b64.kernel, kDecodeCluster);
    EXPECT_EQ(plan_b64.cluster_size, 1);
  }
  // the same batch with query groups of 8 or head_dim 64: the mma path (measured faster)
  p.n_seqs = 32;
  p.n_heads = 16;
  ASSIGN_OK(plan_g8, plan_paged_decode(p));
  EXPECT_EQ(plan_g8.kernel, kDecodeMma);
  p.n_heads = 8;
  p.head_dim = 64;
  ASSIGN_OK(plan_d64, plan_paged_decode(p));
  EXPECT_EQ(plan_d64.kernel, kDecodeMma);
  p.head_dim = 128;
  // a batch that fills the device on its own: the two-kernel mma path
  p.n_seqs = 512;
  ASSIGN_OK(plan_b512, plan_paged_decode(p));
  EXPECT_EQ(plan_b512.kernel, kDecodeMma);
  PagedDecodeParams forced = p;  // forced: 4096 clusters are not resident at once; blocks of
  forced.kernel = kDecodeCluster;  // one, run in waves
  ASSIGN_OK(plan_forced, plan_paged_decode(forced));
  EXPECT_EQ(plan_forced.kernel, kDecodeCluster);
  EXPECT_EQ(plan_forced.cluster_size, 1);
  p.n_seqs = 1;
  set_decode_attention_kernel(kDecodeSplit);
  ASSIGN_OK(plan_split, plan_paged_decode(p));
  set_decode_attention_kernel(kDecodeMma);
  ASSIGN_OK(plan_mma, plan_paged_decode(p));
  set_decode_attention_kernel(kDecodeAuto);
  EXPECT_EQ(plan_split.kernel, kDecodeSplit);
  EXPECT_EQ(plan_mma.kernel, kDecodeMma);
  p.cluster_size = 5;  // a forced cluster size (any 1..16)
  ASSIGN_OK(plan_c5, plan_paged_decode(p));
  EXPECT_EQ(plan_c5.kernel, kDecodeCluster);
  EXPECT_EQ(plan_c5.cluster_size, 5);
  p.cluster_size = 17;
  EXPECT_EQ(plan_paged_decode(p).status().code(), StatusCode::kInvalidArgument);
  p.cluster_size = 0;
  p.kernel = 4;
  EXPECT_EQ(plan_paged_decode(p).status().code(), StatusCode::kInvalidArgument);
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
  for (int kernel : {kDecodeSplit, kDecodeMma, kDecodeCluster}) {
    ASSIGN_OK(dout_k, poisoned(qn * 4));
    PagedDecodeParams pk = p;
    pk.out = dout_k.as<float>();
    pk.kernel = kernel;
    ASSIGN_OK(plan_k, plan_paged_decode(pk));
    ASSIGN_OK(ws_k, poisoned(plan_k.workspace_bytes));
    pk.workspace = ws_k.data();
    pk.workspace_bytes = ws_k.size();
    FRUGAL_ASSERT_OK(paged_attention_decode(pk));
    ASSIGN_OK(out, to_host<float>(dout_k, qn));
    for (size_t i = 0; i < qn / 2; ++i) ASSERT_TRUE(std::isnan(out[i])) << kernel << " " << i;
    for (size_t i = qn / 2; i < qn; ++i) ASSERT_FALSE(std::isnan(out[i])) << kernel << " " << i;
  }
  p.kernel = kDecodeSplit;  // the fused merge below is the CUDA-core kernel's
  ASSIGN_OK(plan_split, plan_paged_decode(p));
  ASSIGN_OK(ws_split, poisoned(plan_split.workspace_bytes));
  p.workspace = ws_split.data();
  p.workspace_bytes = ws_split.size();
  ASSIGN_OK(dctr, to_device(std::vector<int32_t>(4, 0)));  // fused merge: the same rule
  ASSIGN_OK(dout2, poisoned(qn * 4));
  PagedDecodeParams pf = p;
  pf.out = dout2.as<float>();
  pf.split_counters = dctr.as<int32_t>();
  FRUGAL_ASSERT_OK(paged_attention_decode(pf));
  ASSIGN_OK(out2, to_host<float>(dout2, qn));
  for (size_t i = 0; i < qn / 2; ++i) ASSERT_TRUE(std::isnan(out2[i])) << i;
  for (size_t i = qn / 2; i < qn; ++i) ASSERT_FALSE(std::isnan(out2[i])) << i;

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
