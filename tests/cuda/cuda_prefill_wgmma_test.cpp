// The Hopper warpgroup-MMA prefill attention (attention_prefill_wgmma.cu, kernels kPrefillWgmma,
// kPrefillWgmmaOverlap, kPrefillWgmmaDeep; attention_prefill_fa3.cu, kPrefillWgmmaTma /
// kPrefillWgmmaTmaOverlap / kPrefillWgmmaFa3 / kPrefillWgmmaFa3Grouped) against a host float64
// reference of causal paged attention, on chunk lengths that are not multiples of the 128-row /
// 128-position tiles (T = 1, 17, 129, 300, 1000), block sizes 5 / 8 / 16 / 32 / 64 / 128 / 256,
// GQA 1 / 4, chunks starting mid-cache (pos0 > 0) and several sequences sharing one block pool,
// shuffled, contiguous (runs of consecutive blocks: the grouped kernels' one-box tiles) or
// contiguous with runs broken mid-tile. Outputs are poisoned first, so an unwritten row shows
// as NaN.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_prefill_wgmma.cuh"
#include "base/half.h"
#include "cuda_test_util.h"

namespace frugal::cuda {
namespace {

using test::poisoned;
using test::random_bf16;
using test::random_floats;
using test::rel_l2;
using test::to_device;
using test::to_host;

struct Seq {
  int T, pos0;
};
struct Case {
  int H, KV, BS;
  std::vector<Seq> seqs;
  // NaN bits in every cache slot no sequence owns (the spare blocks and the slots past each
  // sequence's end in its last block): kernels that read whole blocks must not let them in
  bool nan_unused = false;
  // the pool's order: shuffled, contiguous (each sequence's blocks consecutive), or contiguous
  // with every 7th pair of neighbours swapped (runs broken at varying places inside a tile)
  enum Order { kShuffled, kContiguous, kBrokenRuns } order = kShuffled;
};

// out[t][h] = softmax_j(scale q_t . k_j, j <= pos0 + t) v_j in float64, K/V read through the
// sequence's block table from the bf16 pool.
void reference(const Case& c, const Seq& s, const float* q, const std::vector<uint16_t>& k,
               const std::vector<uint16_t>& v, const int32_t* table, double* out) {
  const int D = 128, G = c.H / c.KV;
  const double scale = 1.0 / std::sqrt((double)D);
  std::vector<double> w((size_t)(s.pos0 + s.T));
  for (int t = 0; t < s.T; ++t)
    for (int h = 0; h < c.H; ++h) {
      const float* qt = q + ((size_t)t * c.H + h) * D;
      const int n = s.pos0 + t + 1;
      auto row = [&](int j) {
        return ((size_t)table[j / c.BS] * c.BS + j % c.BS) * c.KV * D + (size_t)(h / G) * D;
      };
      double mx = -INFINITY;
      for (int j = 0; j < n; ++j) {
        const uint16_t* kj = k.data() + row(j);
        double dot = 0;
        for (int d = 0; d < D; ++d) dot += (double)qt[d] * bf16_to_f32(kj[d]);
        w[(size_t)j] = dot * scale;
        mx = std::max(mx, w[(size_t)j]);
      }
      double sum = 0;
      for (int j = 0; j < n; ++j) sum += (w[(size_t)j] = std::exp(w[(size_t)j] - mx));
      double* o = out + ((size_t)t * c.H + h) * D;
      for (int d = 0; d < D; ++d) o[d] = 0;
      for (int j = 0; j < n; ++j) {
        const uint16_t* vj = v.data() + row(j);
        const double pj = w[(size_t)j] / sum;
        for (int d = 0; d < D; ++d) o[d] += pj * bf16_to_f32(vj[d]);
      }
    }
}

void check(const Case& c, int kernel) {
  SCOPED_TRACE(testing::Message() << "kernel " << kernel << " heads " << c.H << "/" << c.KV
                                  << " block " << c.BS << " T0 " << c.seqs[0].T << " pos0 "
                                  << c.seqs[0].pos0 << " order " << (int)c.order);
  const int D = 128;
  std::mt19937 rng(11 + c.H + c.BS + kernel);
  std::vector<int> n_tab, row0;
  int tabs = 0, rows = 0;
  for (const auto& s : c.seqs) {
    n_tab.push_back((s.pos0 + s.T + c.BS - 1) / c.BS);
    row0.push_back(rows);
    tabs += n_tab.back();
    rows += s.T;
  }
  const int64_t n_blocks = tabs + 2;
  const size_t cache = (size_t)n_blocks * c.BS * c.KV * D;
  auto k = random_bf16(cache, rng, 2.f), v = random_bf16(cache, rng);
  std::vector<int32_t> pool((size_t)n_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  if (c.order == Case::kShuffled) std::shuffle(pool.begin(), pool.end(), rng);
  if (c.order == Case::kBrokenRuns)
    for (size_t i = 3; i + 1 < pool.size(); i += 7) std::swap(pool[i], pool[i + 1]);
  if (c.nan_unused) {
    std::vector<char> used((size_t)n_blocks * c.BS, 0);  // (block, slot) owned by a sequence
    int tb = 0;
    for (size_t i = 0; i < c.seqs.size(); ++i) {
      for (int j = 0; j < c.seqs[i].pos0 + c.seqs[i].T; ++j)
        used[(size_t)pool[(size_t)(tb + j / c.BS)] * c.BS + j % c.BS] = 1;
      tb += n_tab[i];
    }
    for (size_t r = 0; r < used.size(); ++r)
      if (!used[r])
        for (size_t e = r * c.KV * D; e < (r + 1) * c.KV * D; ++e) k[e] = v[e] = 0x7fc0;
  }
  const auto q = random_floats((size_t)rows * c.H * D, rng);
  ASSIGN_OK(dk, to_device(k));
  ASSIGN_OK(dv, to_device(v));
  ASSIGN_OK(dq, to_device(q));
  ASSIGN_OK(dt, to_device(pool));
  ASSIGN_OK(dout, poisoned((size_t)rows * c.H * D * 4));
  std::vector<double> ref((size_t)rows * c.H * D);
  int tab0 = 0;
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const auto& s = c.seqs[i];
    const int64_t off = (int64_t)row0[i] * c.H * D;
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
    f.head_dim = D;
    f.block_size = c.BS;
    f.kernel = kernel;
    FRUGAL_ASSERT_OK(paged_attention_prefill(f));
    reference(c, s, q.data() + off, k, v, pool.data() + tab0, ref.data() + off);
    tab0 += n_tab[i];
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(out, to_host<float>(dout, (size_t)rows * c.H * D));
  const double err = rel_l2(out, ref);
  std::printf("[ info ] prefill attention kernel %d heads %d/%d block %d, %zu seq(s) from T %d "
              "pos0 %d: rel L2 %.3g vs float64\n",
              kernel, c.H, c.KV, c.BS, c.seqs.size(), c.seqs[0].T, c.seqs[0].pos0, err);
  // bf16 Q and P, as the FA2 kernel (measured 1.1-1.9e-3); a wrong row, column or position
  // gives ~1, an unwritten row NaN (infinite error)
  EXPECT_LT(err, 1e-2);
}

const int kKernels[] = {kPrefillWgmma,           kPrefillWgmmaOverlap,       kPrefillWgmmaDeep,
                        kPrefillWgmmaTma,        kPrefillWgmmaTmaOverlap,    kPrefillWgmmaFa3,
                        kPrefillWgmmaFa3Deep,    kPrefillWgmmaFa3Grouped,
                        kPrefillWgmmaFa3GroupedDeep};
// FlashAttention-3's structure (attention_prefill_fa3.cu): TMA needs a power-of-two block size
// >= 8 (others run the cp.async kernel: the block size 5 cases above)
const int kTmaKernels[] = {kPrefillWgmmaTma,     kPrefillWgmmaTmaOverlap, kPrefillWgmmaFa3,
                           kPrefillWgmmaFa3Deep, kPrefillWgmmaFa3Grouped,
                           kPrefillWgmmaFa3GroupedDeep};
const int kGroupedKernels[] = {kPrefillWgmmaFa3Grouped, kPrefillWgmmaFa3GroupedDeep};

TEST(CudaPrefillWgmma, AwkwardLengthsMatchFloat64) {
  FRUGAL_REQUIRE_GPU();
  for (int kernel : kKernels) {
    check({4, 4, 16, {{1, 0}}}, kernel);     // one token, GQA 1
    check({4, 4, 16, {{17, 0}}}, kernel);
    check({4, 4, 32, {{129, 0}}}, kernel);   // one row past the 128-row tile
    check({8, 2, 16, {{300, 0}}}, kernel);   // GQA 4
    check({4, 1, 32, {{1000, 0}}}, kernel);  // GQA 4 (MQA here), 8 query and K/V tiles
  }
}

TEST(CudaPrefillWgmma, MidCacheChunksAndOddBlocks) {
  FRUGAL_REQUIRE_GPU();
  for (int kernel : kKernels) {
    check({4, 1, 5, {{129, 30}}}, kernel);   // MQA, block size 5, chunk starting mid-block
    check({8, 2, 16, {{300, 200}}}, kernel); // diagonal tiles not aligned to the K/V tiles
    check({4, 4, 128, {{1, 257}}}, kernel);  // one token late in the cache
  }
}

TEST(CudaPrefillWgmma, SeveralSequences) {
  FRUGAL_REQUIRE_GPU();
  for (int kernel : kKernels)
    check({8, 2, 16, {{77, 0}, {50, 40}, {1, 300}, {129, 17}}}, kernel);
}

// Block sizes that give TMA boxes of 8 / 64 / 128 rows (and a block spanning 2 K/V tiles),
// chunks ending exactly on a tile (no tail rows) and mid-tile, NaN in every unused cache slot
// (the TMA kernels read whole blocks and zero the last tile's V rows past the chunk).
TEST(CudaPrefillWgmma, TmaBlockSizesAndUnusedSlots) {
  FRUGAL_REQUIRE_GPU();
  for (int kernel : kTmaKernels) {
    check({4, 2, 8, {{300, 0}}, true}, kernel);
    check({8, 2, 64, {{257, 100}}, true}, kernel);
    check({4, 1, 256, {{400, 0}}, true}, kernel);   // a block spans two K/V tiles
    check({4, 4, 16, {{256, 0}}, true}, kernel);    // ends on a tile: no tail rows
    check({4, 4, 128, {{128, 128}}, true}, kernel); // ditto, mid-cache
    check({8, 2, 16, {{77, 0}, {50, 40}, {1, 300}, {129, 17}}, true}, kernel);
  }
  check({4, 2, 8, {{300, 0}}, true}, kPrefillWgmma);  // the cp.async kernel zeroes them too
}

// The grouped kernels' two copy paths: one box per block (shuffled pool, runs broken inside a
// tile) and one box per 128-position tile (runs of consecutive blocks), at every block size
// from 8 to 256, chunks starting mid-block and mid-tile, several sequences back to back in one
// contiguous pool (a run never crosses into the next sequence's blocks: each reads its own
// table), NaN in every unused slot; the half-split FA3 kernel on the same tables as a control.
TEST(CudaPrefillWgmma, GroupedBoxesContiguousAndBrokenRuns) {
  FRUGAL_REQUIRE_GPU();
  using O = Case::Order;
  for (O order : {O::kContiguous, O::kBrokenRuns, O::kShuffled}) {
    for (int kernel : kGroupedKernels) {
      check({4, 2, 8, {{300, 0}}, true, order}, kernel);
      check({8, 2, 16, {{1000, 0}}, true, order}, kernel);
      check({4, 1, 16, {{333, 45}}, true, order}, kernel);  // mid-block, mid-tile start
      check({4, 2, 32, {{257, 0}}, true, order}, kernel);
      check({8, 2, 64, {{300, 70}}, true, order}, kernel);
      check({4, 4, 128, {{200, 0}}, true, order}, kernel);
      check({4, 1, 256, {{400, 0}}, true, order}, kernel);
      check({8, 2, 16, {{77, 0}, {50, 40}, {1, 300}, {129, 17}, {256, 0}}, true, order}, kernel);
    }
  }
  check({8, 2, 16, {{1000, 0}}, true, O::kContiguous}, kPrefillWgmmaFa3);
  check({8, 2, 16, {{1000, 0}}, true, O::kBrokenRuns}, kPrefillWgmmaFa3);
}

// The grouped kernels' copy choices (set_prefill_tma_boxes): boxes smaller than the block
// (several boxes per block, runs made of them) and runs off, on contiguous, broken and
// shuffled tables; a bad choice is an error.
TEST(CudaPrefillWgmma, GroupedBoxCapAndRunsOff) {
  FRUGAL_REQUIRE_GPU();
  struct Restore {
    ~Restore() { (void)set_prefill_tma_boxes(128, true); }
  } restore;
  using O = Case::Order;
  const std::pair<int, bool> knobs[] = {{16, true}, {32, true}, {16, false}, {128, false}};
  for (auto [cap, runs] : knobs) {
    SCOPED_TRACE(testing::Message() << "box cap " << cap << " runs " << runs);
    FRUGAL_ASSERT_OK(set_prefill_tma_boxes(cap, runs));
    for (O order : {O::kContiguous, O::kBrokenRuns, O::kShuffled}) {
      check({8, 2, 64, {{300, 70}}, true, order}, kPrefillWgmmaFa3Grouped);
      check({4, 1, 32, {{400, 0}}, true, order}, kPrefillWgmmaFa3Grouped);
      check({4, 1, 256, {{400, 0}}, true, order}, kPrefillWgmmaFa3GroupedDeep);
    }
  }
  EXPECT_EQ(set_prefill_tma_boxes(24, true).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set_prefill_tma_boxes(256, true).code(), StatusCode::kInvalidArgument);
}

// Small shapes for compute-sanitizer racecheck: 3 K/V tiles through each grouped ring, a run
// tile, a per-block tile and the zeroed tail.
TEST(CudaPrefillWgmma, GroupedSmall) {
  FRUGAL_REQUIRE_GPU();
  check({4, 2, 16, {{300, 0}}, true, Case::kContiguous}, kPrefillWgmmaFa3Grouped);
  check({4, 2, 16, {{300, 0}}, true, Case::kBrokenRuns}, kPrefillWgmmaFa3GroupedDeep);
}

// A block-table entry outside the pool makes the output NaN (the FA2 kernel's rule), for the
// TMA kernels too (they read block 0 instead and flag the tile).
TEST(CudaPrefillWgmma, TableEntryOutsidePoolGivesNan) {
  FRUGAL_REQUIRE_GPU();
  const int T = 100, H = 4, KV = 2, D = 128, BS = 16, n_blocks = 8;
  std::mt19937 rng(3);
  const size_t cache = (size_t)n_blocks * BS * KV * D;
  ASSIGN_OK(dk, to_device(random_bf16(cache, rng)));
  ASSIGN_OK(dv, to_device(random_bf16(cache, rng)));
  ASSIGN_OK(dq, to_device(random_floats((size_t)T * H * D, rng)));
  std::vector<int32_t> table = {0, 1, 2, 3, 4, 5, 6};
  for (int bad : {-1, n_blocks + 3}) {
    table[0] = bad;  // position 0: every row attends to it
    ASSIGN_OK(dt, to_device(table));
    for (int kernel : {kPrefillWgmma, kPrefillWgmmaTma, kPrefillWgmmaTmaOverlap, kPrefillWgmmaFa3,
                       kPrefillWgmmaFa3Deep, kPrefillWgmmaFa3Grouped,
                       kPrefillWgmmaFa3GroupedDeep}) {
      SCOPED_TRACE(testing::Message() << "kernel " << kernel << " entry " << bad);
      ASSIGN_OK(dout, DeviceBuffer::allocate((size_t)T * H * D * 4));
      ASSERT_EQ(cudaMemset(dout.data(), 0, (size_t)T * H * D * 4), cudaSuccess);
      PagedPrefillParams f;
      f.q = dq.as<float>();
      f.out = dout.as<float>();
      f.k_cache = dk.as<uint16_t>();
      f.v_cache = dv.as<uint16_t>();
      f.block_table = dt.as<int32_t>();
      f.n_blocks = n_blocks;
      f.n_tokens = T;
      f.n_heads = H;
      f.n_kv_heads = KV;
      f.head_dim = D;
      f.block_size = BS;
      f.kernel = kernel;
      FRUGAL_ASSERT_OK(paged_attention_prefill(f));
      ASSIGN_OK(out, to_host<float>(dout, (size_t)T * H * D));
      size_t nan = 0;
      for (float x : out) nan += std::isnan(x);
      EXPECT_EQ(nan, out.size());
    }
  }
}

// The two wgmma kernels compute the same function as the FA2 kernel on a longer chunk (bf16
// rounding points differ slightly, so close but not bit-equal).
TEST(CudaPrefillWgmma, AgreesWithFa2Kernel) {
  FRUGAL_REQUIRE_GPU();
  const int T = 2000, H = 8, KV = 2, D = 128, BS = 16;
  std::mt19937 rng(5);
  const int n_blocks = T / BS;
  const size_t cache = (size_t)n_blocks * BS * KV * D;
  ASSIGN_OK(dk, to_device(random_bf16(cache, rng, 2.f)));
  ASSIGN_OK(dv, to_device(random_bf16(cache, rng)));
  ASSIGN_OK(dq, to_device(random_floats((size_t)T * H * D, rng)));
  std::vector<int32_t> table((size_t)n_blocks);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  ASSIGN_OK(dt, to_device(table));
  std::vector<std::vector<float>> outs;
  for (int kernel : {kPrefillFa2, kPrefillWgmma, kPrefillWgmmaOverlap, kPrefillWgmmaDeep,
                     kPrefillWgmmaTma, kPrefillWgmmaTmaOverlap, kPrefillWgmmaFa3,
                     kPrefillWgmmaFa3Deep, kPrefillWgmmaFa3Grouped,
                     kPrefillWgmmaFa3GroupedDeep}) {
    ASSIGN_OK(dout, poisoned((size_t)T * H * D * 4));
    PagedPrefillParams f;
    f.q = dq.as<float>();
    f.out = dout.as<float>();
    f.k_cache = dk.as<uint16_t>();
    f.v_cache = dv.as<uint16_t>();
    f.block_table = dt.as<int32_t>();
    f.n_blocks = n_blocks;
    f.n_tokens = T;
    f.n_heads = H;
    f.n_kv_heads = KV;
    f.head_dim = D;
    f.block_size = BS;
    f.kernel = kernel;
    FRUGAL_ASSERT_OK(paged_attention_prefill(f));
    ASSIGN_OK(out, to_host<float>(dout, (size_t)T * H * D));
    outs.push_back(std::move(out));
  }
  EXPECT_LT(rel_l2(outs[1], outs[0]), 5e-3);
  EXPECT_LT(rel_l2(outs[2], outs[0]), 5e-3);
  EXPECT_LT(rel_l2(outs[3], outs[0]), 5e-3);
  EXPECT_LT(rel_l2(outs[2], outs[1]), 5e-3);
  for (size_t i = 4; i < outs.size(); ++i) {
    EXPECT_LT(rel_l2(outs[i], outs[0]), 5e-3) << "kernel " << i;
    EXPECT_LT(rel_l2(outs[i], outs[1]), 5e-3) << "kernel " << i;
  }
}

TEST(CudaPrefillWgmma, RejectsBadInput) {
  FRUGAL_REQUIRE_GPU();
  ASSIGN_OK(buf, DeviceBuffer::allocate(4096));
  PagedPrefillParams f;
  f.q = buf.as<float>();
  f.out = buf.as<float>();
  f.k_cache = buf.as<uint16_t>();
  f.v_cache = buf.as<uint16_t>();
  f.block_table = buf.as<int32_t>();
  f.n_blocks = 1;
  f.n_tokens = 1;
  f.n_heads = 2;
  f.n_kv_heads = 1;
  f.head_dim = 64;
  f.kernel = kPrefillWgmma;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kUnsupported);  // d 64
  f.kernel = kPrefillWgmmaFa3;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kUnsupported);  // d 64 again
  f.head_dim = 128;
  f.kernel = kPrefillWgmmaFa3GroupedDeep + 1;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);
  f.kernel = -1;
  EXPECT_EQ(paged_attention_prefill(f).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frugal::cuda
