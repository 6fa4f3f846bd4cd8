// The decode attention's optional L2 prefetch of the next kernel's weights
// (PagedDecodeParams::l2_prefetch, backend/cuda/l2_prefetch.cuh; LlamaCuda's AttnL2Prefetch):
// the block slices stay inside the range and cover it; the attention output is bit-identical
// with the prefetch on (every placement, bulk and per-line, both split kernels) and matches a
// float64 reference; bad prefetch arguments are errors; whole-model logits do not change.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/l2_prefetch.cuh"
#include "cuda_test_util.h"
#include "model/cuda/llama_cuda.cuh"

namespace frugal::cuda {
namespace {

using test::poisoned;
using test::random_bf16;
using test::random_floats;
using test::rel_l2;
using test::to_device;
using test::to_host;

TEST(CudaAttentionPrefetch, SlicesAreDisjointInBoundsAndCoverTheRange) {
  for (uint64_t bytes : {0ull, 15ull, 16ull, 4095ull, 4096ull + 48, 1000003ull, 33554432ull + 17})
    for (uint64_t n : {1ull, 3ull, 7ull, 64ull, 265ull, 100000ull}) {
      SCOPED_TRACE(testing::Message() << "bytes " << bytes << " blocks " << n);
      const uint64_t usable = bytes / 16 * 16;
      uint64_t prev_end = 0, covered = 0;
      for (uint64_t b = 0; b < n; ++b) {
        const L2PrefetchSlice s = l2_prefetch_slice(bytes, b, n);
        ASSERT_EQ(s.begin, prev_end);  // contiguous, disjoint, in order
        ASSERT_LE(s.begin, s.end);
        ASSERT_LE(s.end, usable);      // never past the range (nor its last partial 16 bytes)
        ASSERT_EQ(s.begin % 16, 0u);
        ASSERT_EQ(s.end % 16, 0u);
        covered += s.end - s.begin;
        prev_end = s.end;
      }
      EXPECT_EQ(prev_end, usable);
      EXPECT_EQ(covered, usable);
    }
}

struct Case {
  int n_heads, n_kv_heads, head_dim, block_size;
  std::vector<int> seq_lens;
};

// float64 attention over a random paged cache (blocks handed out in shuffled order).
struct Inputs {
  int max_blocks = 0;
  int64_t n_blocks = 0;
  std::vector<uint16_t> k, v;
  std::vector<int32_t> tables;
  std::vector<float> q;
  std::vector<double> exact;
};

Inputs make_inputs(const Case& c, std::mt19937& rng) {
  Inputs in;
  const int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  in.max_blocks = (max_len + c.block_size - 1) / c.block_size;
  in.n_blocks = (int64_t)c.seq_lens.size() * in.max_blocks;
  const size_t row = (size_t)c.n_kv_heads * c.head_dim;
  in.k = random_bf16((size_t)in.n_blocks * c.block_size * row, rng, 2.0f);
  in.v = random_bf16(in.k.size(), rng, 1.0f);
  in.tables.resize((size_t)in.n_blocks);
  std::iota(in.tables.begin(), in.tables.end(), 0);
  std::shuffle(in.tables.begin(), in.tables.end(), rng);
  const int D = c.head_dim, G = c.n_heads / c.n_kv_heads;
  in.q = random_floats(c.seq_lens.size() * (size_t)c.n_heads * D, rng);
  in.exact.assign(in.q.size(), 0.0);
  for (size_t s = 0; s < c.seq_lens.size(); ++s)
    for (int h = 0; h < c.n_heads; ++h) {
      const int len = c.seq_lens[s];
      auto row_of = [&](int p) {
        const int64_t blk = in.tables[s * (size_t)in.max_blocks + (size_t)(p / c.block_size)];
        return (size_t)(((blk * c.block_size + p % c.block_size) * c.n_kv_heads + h / G) * D);
      };
      std::vector<double> sc((size_t)len);
      double m = -INFINITY;
      for (int p = 0; p < len; ++p) {
        double d = 0;
        for (int i = 0; i < D; ++i)
          d += (double)in.q[(s * c.n_heads + h) * D + i] * bf16_to_f32(in.k[row_of(p) + i]);
        sc[(size_t)p] = d / std::sqrt((double)D);
        m = std::max(m, sc[(size_t)p]);
      }
      double l = 0;
      std::vector<double> acc((size_t)D, 0.0);
      for (int p = 0; p < len; ++p) {
        const double e = std::exp(sc[(size_t)p] - m);
        l += e;
        for (int i = 0; i < D; ++i) acc[(size_t)i] += e * bf16_to_f32(in.v[row_of(p) + i]);
      }
      for (int i = 0; i < D; ++i) in.exact[(s * c.n_heads + h) * D + i] = acc[(size_t)i] / l;
    }
  return in;
}

void run_case(const Case& c, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "H=" << c.n_heads << " KV=" << c.n_kv_heads
                                  << " D=" << c.head_dim << " bs=" << c.block_size);
  const Inputs in = make_inputs(c, rng);
  const int n_seqs = (int)c.seq_lens.size();
  const size_t qn = in.q.size();
  ASSIGN_OK(dq, to_device(in.q));
  ASSIGN_OK(dk, to_device(in.k));
  ASSIGN_OK(dv, to_device(in.v));
  ASSIGN_OK(dt, to_device(in.tables));
  ASSIGN_OK(dl, to_device(c.seq_lens));
  // The range to prefetch: an awkward size (not a multiple of 16 or of the 4 KiB chunk) at a
  // 16-byte but not 128-byte aligned start.
  const size_t pf_bytes = 3 * 1048576 + 1000 + 7;
  ASSIGN_OK(dpf, poisoned(pf_bytes + 16));
  PagedDecodeParams p;
  p.q = dq.as<float>();
  p.k_cache = dk.as<uint16_t>();
  p.v_cache = dv.as<uint16_t>();
  p.block_tables = dt.as<int32_t>();
  p.seq_lens = dl.as<int32_t>();
  p.max_blocks_per_seq = in.max_blocks;
  p.n_blocks = in.n_blocks;
  p.n_seqs = n_seqs;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.block_size = c.block_size;
  p.max_seq_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  for (int kernel : {kDecodeMma, kDecodeSplit}) {
    SCOPED_TRACE(kernel == kDecodeMma ? "mma kernel" : "split kernel");
    p.kernel = kernel;
    p.l2_prefetch = nullptr;
    p.l2_prefetch_bytes = 0;
    ASSIGN_OK(dbase, poisoned(qn * 4));
    p.out = dbase.as<float>();
    ASSIGN_OK(plan, plan_paged_decode(p));
    ASSIGN_OK(ws, poisoned(plan.workspace_bytes));
    p.workspace = ws.data();
    p.workspace_bytes = ws.size();
    FRUGAL_ASSERT_OK(paged_attention_decode(p));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ASSIGN_OK(base, to_host<float>(dbase, qn));
    EXPECT_LT(rel_l2(base, in.exact), 1e-4);
    for (int at : {kPrefetchAtStart, kPrefetchAfterIssue, kPrefetchAtEnd})
      for (bool lines : {false, true}) {
        SCOPED_TRACE(testing::Message() << "at " << at << (lines ? " lines" : " bulk"));
        PagedDecodeParams pp = p;
        pp.l2_prefetch = static_cast<const char*>(dpf.data()) + 16;
        pp.l2_prefetch_bytes = pf_bytes;
        pp.l2_prefetch_at = at;
        pp.l2_prefetch_lines = lines;
        ASSIGN_OK(dout, poisoned(qn * 4));
        pp.out = dout.as<float>();
        FRUGAL_ASSERT_OK(paged_attention_decode(pp));
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        ASSIGN_OK(out, to_host<float>(dout, qn));
        EXPECT_LT(rel_l2(out, in.exact), 1e-4);
        EXPECT_EQ(std::memcmp(out.data(), base.data(), qn * 4), 0);  // bit-identical
      }
  }
  // Bad arguments: an unaligned or null range, an unknown placement.
  p.kernel = kDecodeMma;
  p.l2_prefetch_bytes = 4096;
  p.l2_prefetch = static_cast<const char*>(dpf.data()) + 8;
  EXPECT_EQ(plan_paged_decode(p).status().code(), StatusCode::kInvalidArgument);
  p.l2_prefetch = nullptr;
  EXPECT_EQ(paged_attention_decode(p).code(), StatusCode::kInvalidArgument);
  p.l2_prefetch = dpf.data();
  p.l2_prefetch_at = 3;
  EXPECT_EQ(plan_paged_decode(p).status().code(), StatusCode::kInvalidArgument);
}

TEST(CudaAttentionPrefetch, OutputUnchangedAndMatchesFloat64) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(41);
  // Llama-3.1-8B heads, ragged batch (splits past a sequence's end return early: they must
  // still issue their slice, and nothing else changes); SmolLM2 heads (d 64, group 3);
  // Llama-3.1-70B's group of 8 at batch 1.
  run_case({32, 8, 128, 16, {1, 77, 1000, 2049}}, rng);
  run_case({9, 3, 64, 32, {5, 300}}, rng);
  run_case({16, 2, 128, 16, {1500}}, rng);
}

// The runner: decode logits with the o-proj prefetch (every placement) equal those without,
// bit for bit (the same position re-decoded from the same token rewrites the same K/V).
TEST(CudaAttentionPrefetch, DecodeLogitsUnchanged) {
  FRUGAL_REQUIRE_GPU();
  LlamaDims d;
  d.vocab = 1003;
  d.dim = 256;
  d.hidden = 384;
  d.n_layers = 2;
  d.n_heads = 8;
  d.n_kv_heads = 2;
  d.head_dim = 64;
  LlamaCudaOptions o;
  o.max_batch = 2;
  o.max_prefill_tokens = 32;
  o.max_seq_len = 300;
  o.attn_prefetch.max_bytes = 0;
  ASSIGN_OK(g, LlamaCuda::create(d, o));
  FRUGAL_ASSERT_OK(g->randomize_weights(5));
  std::vector<int32_t> prompt(200);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = (int32_t)((i * 37 + 11) % d.vocab);
  ASSIGN_OK(first, g->prefill(0, prompt.data(), (int64_t)prompt.size(), 0));
  const int32_t pos = (int32_t)prompt.size();
  std::vector<float> base((size_t)d.vocab), logits((size_t)d.vocab);
  int32_t next_base = -1, next = -1;
  FRUGAL_ASSERT_OK(g->decode(&first, &pos, 1, &next_base, base.data()));
  for (int at : {kPrefetchAtStart, kPrefetchAfterIssue, kPrefetchAtEnd})
    for (int variant = 0; variant < 3; ++variant) {
      // 0: part of the 256 KiB o-proj (an awkward byte count), 1: all of it (the cap is
      // larger), 2: all of the other layer's (the benchmark control)
      SCOPED_TRACE(testing::Message() << "at " << at << " variant " << variant);
      AttnL2Prefetch a;
      a.max_bytes = variant == 0 ? 100003 : 64 << 20;
      a.layer_offset = variant == 2 ? 1 : 0;
      a.at = at;
      g->set_attn_prefetch(a);
      FRUGAL_ASSERT_OK(g->decode(&first, &pos, 1, &next, logits.data()));
      EXPECT_EQ(next, next_base);
      EXPECT_EQ(std::memcmp(logits.data(), base.data(), logits.size() * 4), 0);
    }
  AttnL2Prefetch bad;
  bad.at = 7;
  LlamaCudaOptions ob = o;
  ob.attn_prefetch = bad;
  EXPECT_EQ(LlamaCuda::create(d, ob).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frugal::cuda
