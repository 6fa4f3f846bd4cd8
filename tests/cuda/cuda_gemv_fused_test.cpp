// gemv_bf16_fused (RMSNorm with or without weights in, residual add or SwiGLU out) vs a float64
// reference of the same bf16 weights, on sizes that are not multiples of the warp's 256-column
// stride or of the 8-warp block: rel L2 < 1e-5 (float accumulation only), under every launch
// tuning (GemvTuning), and the unfused kernels it replaces; a chain of dependent GEMVs under
// PDL with the early trigger; scale_columns_bf16 (norm folding) bit-exact against the host.
// CudaGemvStream: the same checks for the streaming kernel (GemvKernel::kStream) on its own
// awkward sizes (chunk and tile remainders).
#include <cmath>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cuda/launch.cuh"
#include "backend/cuda/model_ops.cuh"
#include "backend/cuda/ops.cuh"
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
  int64_t rows, cols;
  int batch;
  GemvInput in;
  GemvOutput out;
};

void check_fused(const Case& c, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << c.rows << "x" << c.cols << " batch " << c.batch << " in "
                                  << (int)c.in << " out " << (int)c.out);
  const float eps = 1e-5f;
  const auto w = random_bf16((size_t)(c.rows * c.cols), rng);
  // x with a non-unit scale, so the norm matters
  const auto x = random_floats((size_t)(c.batch * c.cols), rng, -3.f, 3.f);
  const auto g = random_floats((size_t)c.cols, rng, 0.5f, 1.5f);
  const int64_t out_rows = c.out == GemvOutput::kSwiglu ? c.rows / 2 : c.rows;
  const auto y0 = random_floats((size_t)(c.batch * out_rows), rng);  // kAdd's residual
  ASSIGN_OK(dw, to_device(w));
  ASSIGN_OK(dx, to_device(x));
  ASSIGN_OK(dg, to_device(g));
  ASSIGN_OK(dy, poisoned((size_t)(c.batch * out_rows) * 4));
  if (c.out == GemvOutput::kAdd) FRUGAL_ASSERT_OK(dy.upload(y0.data(), y0.size() * 4));
  GemvFusedParams p;
  p.gemv = {dw.as<uint16_t>(), c.rows, c.cols, dx.as<float>(), c.batch, dy.as<float>()};
  p.input = c.in;
  p.norm_w = dg.as<float>();
  p.eps = eps;
  p.output = c.out;
  FRUGAL_ASSERT_OK(gemv_bf16_fused(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(y, to_host<float>(dy, (size_t)(c.batch * out_rows)));

  std::vector<double> ref((size_t)(c.batch * out_rows));
  std::vector<double> dot((size_t)c.rows), xn((size_t)c.cols);
  for (int b = 0; b < c.batch; ++b) {
    const float* xb = x.data() + b * c.cols;
    double ss = 0;
    for (int64_t i = 0; i < c.cols; ++i) ss += (double)xb[i] * xb[i];
    const double inv = 1.0 / std::sqrt(ss / (double)c.cols + eps);
    for (int64_t i = 0; i < c.cols; ++i)
      xn[(size_t)i] = c.in == GemvInput::kRmsNorm       ? xb[i] * inv * g[(size_t)i]
                      : c.in == GemvInput::kRmsNormUnit ? xb[i] * inv
                                                        : xb[i];
    for (int64_t r = 0; r < c.rows; ++r) {
      double s = 0;
      for (int64_t i = 0; i < c.cols; ++i)
        s += (double)bf16_to_f32(w[(size_t)(r * c.cols + i)]) * xn[(size_t)i];
      dot[(size_t)r] = s;
    }
    for (int64_t r = 0; r < out_rows; ++r) {
      double v = dot[(size_t)r];
      if (c.out == GemvOutput::kAdd) v += y0[(size_t)(b * out_rows + r)];
      if (c.out == GemvOutput::kSwiglu)
        v = dot[(size_t)r] / (1.0 + std::exp(-dot[(size_t)r])) * dot[(size_t)(r + out_rows)];
      ref[(size_t)(b * out_rows + r)] = v;
    }
  }
  EXPECT_LT(rel_l2(y, ref), 1e-5);
}

TEST(CudaGemvFused, MatchesFloat64OnAwkwardSizes) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(21);
  const GemvInput ins[] = {GemvInput::kPlain, GemvInput::kRmsNorm, GemvInput::kRmsNormUnit};
  const GemvOutput outs[] = {GemvOutput::kStore, GemvOutput::kAdd, GemvOutput::kSwiglu};
  for (GemvInput in : ins)
    for (GemvOutput out : outs)
      for (int batch : {1, 2, 3, 8}) {
        check_fused({38, 1000, batch, in, out}, rng);  // 19 output rows under kSwiglu
        check_fused({2 * 131 + 2, 8, batch, in, out}, rng);
      }
  // a long row (several loop trips plus a tail), many groups, more groups than the grid
  check_fused({6, 4104, 1, GemvInput::kRmsNorm, GemvOutput::kSwiglu}, rng);
  check_fused({4242, 72, 2, GemvInput::kRmsNorm, GemvOutput::kStore}, rng);
  check_fused({40000, 16, 1, GemvInput::kPlain, GemvOutput::kAdd}, rng);  // grid-strided
  check_fused({4243, 1000, 1, GemvInput::kRmsNormUnit, GemvOutput::kStore}, rng);
}

// Restores the process-wide GEMV tuning when a test ends.
struct TuningScope {
  GemvTuning saved = gemv_tuning();
  ~TuningScope() { set_gemv_tuning(saved); }
};

// The launch choices change where and when loads happen, never the arithmetic.
TEST(CudaGemvFused, EveryLaunchTuningMatchesFloat64) {
  FRUGAL_REQUIRE_GPU();
  const TuningScope keep;
  std::mt19937 rng(23);
  // {trigger, prefetch bytes, kernel, blocks per SM, stages, stream up to batch}
  const GemvKernel W = GemvKernel::kWarpRows, S = GemvKernel::kStream;
  const GemvTuning tunings[] = {{false, 0, W},          {false, 2048, W},
                                {true, 2048, W},        {true, 1 << 20, W},
                                {true, 2048, S, 2, 0, 2}, {false, 2048, S, 1, 6, 8},
                                {true, 2048, S, 3, 2, 8}};
  for (const GemvTuning& t : tunings) {
    SCOPED_TRACE(testing::Message() << "trigger " << t.trigger_dependents << " prefetch "
                                    << t.prefetch_bytes_per_row << " kernel " << (int)t.kernel
                                    << " blocks/SM " << t.stream_ctas_per_sm << " stages "
                                    << t.stream_stages);
    set_gemv_tuning(t);
    for (GemvInput in : {GemvInput::kPlain, GemvInput::kRmsNorm, GemvInput::kRmsNormUnit})
      for (GemvOutput out : {GemvOutput::kStore, GemvOutput::kAdd, GemvOutput::kSwiglu})
        for (int batch : {1, 2}) check_fused({2 * 131 + 2, 1000, batch, in, out}, rng);
    check_fused({37, 4104, 1, GemvInput::kPlain, GemvOutput::kStore}, rng);  // odd rows
    check_fused({37, 4104, 1, GemvInput::kRmsNormUnit, GemvOutput::kAdd}, rng);
    check_fused({4242, 1000, 1, GemvInput::kRmsNormUnit, GemvOutput::kSwiglu}, rng);
  }
}

// Three dependent GEMVs (each reads the previous one's output) launched with PDL and the early
// trigger, repeated: a kernel that read its input before the previous grid finished would
// differ from the float64 chain. Large enough for several waves of blocks.
void check_dependent_chain(const GemvTuning& tuning) {
  const TuningScope keep;
  set_gemv_tuning(tuning);
  std::mt19937 rng(29);
  const int64_t n = 2056, m = 9000;  // x [n] -> a [m] -> r [n] (+=) -> b [m]
  const auto w1 = random_bf16((size_t)(m * n), rng), w2 = random_bf16((size_t)(n * m), rng),
             w3 = random_bf16((size_t)(m * n), rng);
  const auto x = random_floats((size_t)n, rng, -2.f, 2.f);
  const auto r0 = random_floats((size_t)n, rng);
  ASSIGN_OK(d1, to_device(w1));
  ASSIGN_OK(d2, to_device(w2));
  ASSIGN_OK(d3, to_device(w3));
  ASSIGN_OK(dx, to_device(x));
  // float64 chain
  auto matvec = [](const std::vector<uint16_t>& w, const std::vector<double>& v, int64_t rows) {
    const int64_t cols = (int64_t)v.size();
    std::vector<double> y((size_t)rows);
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += (double)bf16_to_f32(w[(size_t)(r * cols + c)]) * v[(size_t)c];
      y[(size_t)r] = s;
    }
    return y;
  };
  const std::vector<double> xd(x.begin(), x.end());
  const auto a = matvec(w1, xd, m);
  auto r = matvec(w2, a, n);
  for (int64_t i = 0; i < n; ++i) r[(size_t)i] += r0[(size_t)i];
  double ss = 0;
  for (double v : r) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / (double)n + 1e-5);
  std::vector<double> rn(r);
  for (double& v : rn) v *= inv;
  const auto b = matvec(w3, rn, m);
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  for (int rep = 0; rep < 10; ++rep) {
    ASSIGN_OK(da, poisoned((size_t)m * 4));
    ASSIGN_OK(db, poisoned((size_t)m * 4));
    ASSIGN_OK(dr, to_device(r0));
    // a pageable upload may still be in flight when cudaMemcpy returns; s does not wait for it
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    {
      const ProgrammaticLaunchScope pdl(true);
      GemvFusedParams p1, p2, p3;
      p1.gemv = {d1.as<uint16_t>(), m, n, dx.as<float>(), 1, da.as<float>()};
      p2.gemv = {d2.as<uint16_t>(), n, m, da.as<float>(), 1, dr.as<float>()};
      p2.output = GemvOutput::kAdd;
      p3.gemv = {d3.as<uint16_t>(), m, n, dr.as<float>(), 1, db.as<float>()};
      p3.input = GemvInput::kRmsNormUnit;
      FRUGAL_ASSERT_OK(gemv_bf16_fused(p1, s));
      FRUGAL_ASSERT_OK(gemv_bf16_fused(p2, s));
      FRUGAL_ASSERT_OK(gemv_bf16_fused(p3, s));
    }
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    ASSIGN_OK(ha, to_host<float>(da, (size_t)m));
    ASSIGN_OK(hr, to_host<float>(dr, (size_t)n));
    ASSIGN_OK(hb, to_host<float>(db, (size_t)m));
    EXPECT_LT(rel_l2(ha, a), 1e-5) << "rep " << rep;
    EXPECT_LT(rel_l2(hr, r), 1e-5) << "rep " << rep;
    EXPECT_LT(rel_l2(hb, b), 1e-5) << "rep " << rep;
  }
  (void)cudaStreamDestroy(s);
}

TEST(CudaGemvFused, DependentChainUnderProgrammaticLaunchMatchesFloat64) {
  FRUGAL_REQUIRE_GPU();
  check_dependent_chain({true, 8192, GemvKernel::kWarpRows});
}

// Norm folding: w' = bf16(float(w) * g[col]), bit for bit the host's rounding.
TEST(CudaGemvFused, ScaleColumnsMatchesHostRounding) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(37);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 29}, {1, 1}, {1001, 3}, {3, 4104}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    auto w = random_bf16((size_t)(rows * cols), rng, 3.0f);
    w[0] = 0x7fc1;  // a NaN stays a NaN
    const auto g = random_floats((size_t)cols, rng, 0.25f, 4.0f);
    ASSIGN_OK(dw, to_device(w));
    ASSIGN_OK(dg, to_device(g));
    FRUGAL_ASSERT_OK(scale_columns_bf16(dw.as<uint16_t>(), rows, cols, dg.as<float>()));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ASSIGN_OK(got, to_host<uint16_t>(dw, w.size()));
    size_t bad = 0;
    for (int64_t i = 1; i < rows * cols; ++i) {  // [0] is the NaN (payloads may differ)
      const uint16_t want = f32_to_bf16(bf16_to_f32(w[(size_t)i]) * g[(size_t)(i % cols)]);
      bad += got[(size_t)i] != want;
    }
    EXPECT_EQ(bad, 0u);
    EXPECT_TRUE(std::isnan(bf16_to_f32(got[0])));
  }
  ASSIGN_OK(buf, poisoned(64));
  EXPECT_EQ(scale_columns_bf16(nullptr, 1, 1, buf.as<float>()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(scale_columns_bf16(buf.as<uint16_t>(), 1, 0, buf.as<float>()).code(),
            StatusCode::kInvalidArgument);
  FRUGAL_ASSERT_OK(scale_columns_bf16(buf.as<uint16_t>(), 0, 4, buf.as<float>()));  // no rows
}

// kRopeKv vs the unfused chain it replaces (rmsnorm -> naive GEMV -> rope_kv_write), every
// kernel of which is tested against the CPU: q exactly up to float rounding, K/V caches up to
// a bf16 rounding flip; cache slots nobody writes stay zero.
void check_rope_kv(int batch, bool norm, bool rope_half, std::mt19937& rng, bool unit = false) {
  SCOPED_TRACE(testing::Message() << "rope_kv batch " << batch << " norm " << norm << " half "
                                  << rope_half << " unit " << unit);
  const int H = 3, KV = 1, HD = 8, BS = 4, MAXB = 5, NB = 16;
  const int64_t rows = (H + 2 * KV) * HD, cols = 1000;
  const auto w = random_bf16((size_t)(rows * cols), rng);
  const auto x = random_floats((size_t)(batch * cols), rng, -3.f, 3.f);
  auto g = random_floats((size_t)cols, rng, 0.5f, 1.5f);
  if (unit) g.assign(g.size(), 1.0f);  // the reference chain's rmsnorm gets ones
  std::vector<int32_t> pos = {5, 0, 13, 19, 7, 2, 11, 1};  // distinct cache slots
  pos.resize((size_t)batch);
  std::vector<int32_t> table((size_t)(batch * MAXB));
  for (size_t i = 0; i < table.size(); ++i) table[i] = (int32_t)((i * 7 + 3) % NB);
  const size_t cache = (size_t)NB * BS * KV * HD;
  ASSIGN_OK(dw, to_device(w));
  ASSIGN_OK(dx, to_device(x));
  ASSIGN_OK(dg, to_device(g));
  ASSIGN_OK(dpos, to_device(pos));
  ASSIGN_OK(dtab, to_device(table));
  const std::vector<uint16_t> zeros(cache, 0);
  ASSIGN_OK(k1, to_device(zeros));
  ASSIGN_OK(v1, to_device(zeros));
  ASSIGN_OK(k2, to_device(zeros));
  ASSIGN_OK(v2, to_device(zeros));
  ASSIGN_OK(q1, poisoned((size_t)batch * H * HD * 4));
  ASSIGN_OK(q2, poisoned((size_t)batch * H * HD * 4));
  ASSIGN_OK(qkv, poisoned((size_t)(batch * rows) * 4));
  ASSIGN_OK(xn, poisoned((size_t)(batch * cols) * 4));
  ASSIGN_OK(rope, DeviceBuffer::allocate(32 * (HD / 2) * sizeof(float2)));
  FRUGAL_ASSERT_OK(rope_table(rope.as<float2>(), 32, HD, 10000.0f));
  RopeKvWriteParams rk;
  rk.qkv = qkv.as<float>();
  rk.qkv_stride = rows;
  rk.q_out = q1.as<float>();
  rk.k_cache = k1.as<uint16_t>();
  rk.v_cache = v1.as<uint16_t>();
  rk.positions = dpos.as<int32_t>();
  rk.block_tables = dtab.as<int32_t>();
  rk.max_blocks_per_seq = MAXB;
  rk.n_blocks = NB;
  rk.block_size = BS;
  rk.rope = rope.as<float2>();
  rk.rope_positions = 32;
  rk.rope_half = rope_half;
  rk.n = batch;
  rk.n_heads = H;
  rk.n_kv_heads = KV;
  rk.head_dim = HD;
  // reference chain
  const float* in = dx.as<float>();
  if (norm) {
    FRUGAL_ASSERT_OK(rmsnorm({dx.as<float>(), nullptr, nullptr, dg.as<float>(), xn.as<float>(),
                              cols, batch, 1e-5f}));
    in = xn.as<float>();
  }
  FRUGAL_ASSERT_OK(gemv_bf16_reference({dw.as<uint16_t>(), rows, cols, in, batch, qkv.as<float>()}));
  FRUGAL_ASSERT_OK(rope_kv_write(rk));
  // fused
  RopeKvWriteParams rk2 = rk;
  rk2.q_out = q2.as<float>();
  rk2.k_cache = k2.as<uint16_t>();
  rk2.v_cache = v2.as<uint16_t>();
  GemvFusedParams p;
  p.gemv = {dw.as<uint16_t>(), rows, cols, dx.as<float>(), batch, qkv.as<float>()};
  p.input = !norm ? GemvInput::kPlain : unit ? GemvInput::kRmsNormUnit : GemvInput::kRmsNorm;
  p.norm_w = unit ? nullptr : dg.as<float>();  // kRmsNormUnit reads no norm weights
  p.output = GemvOutput::kRopeKv;
  p.rope_kv = &rk2;
  FRUGAL_ASSERT_OK(gemv_bf16_fused(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(hq1, to_host<float>(q1, (size_t)batch * H * HD));
  ASSIGN_OK(hq2, to_host<float>(q2, (size_t)batch * H * HD));
  EXPECT_LT(rel_l2(hq2, hq1), 1e-5);
  for (auto* pair : {&k1, &v1}) {
    DeviceBuffer& ref_buf = *pair;
    DeviceBuffer& got_buf = pair == &k1 ? k2 : v2;
    ASSIGN_OK(hr, to_host<uint16_t>(ref_buf, cache));
    ASSIGN_OK(hg, to_host<uint16_t>(got_buf, cache));
    std::vector<float> fr(cache), fg(cache);
    size_t written = 0;
    for (size_t i = 0; i < cache; ++i) {
      fr[i] = bf16_to_f32(hr[i]);
      fg[i] = bf16_to_f32(hg[i]);
      written += hr[i] != 0;
      EXPECT_EQ(hr[i] == 0, hg[i] == 0) << i;  // the same slots written
    }
    EXPECT_EQ(written, (size_t)batch * KV * HD);
    EXPECT_LT(rel_l2(fg, fr), 1e-2);
  }
}

TEST(CudaGemvFused, RopeKvMatchesTheUnfusedChain) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(31);
  for (int batch : {1, 2, 3, 8})
    for (bool norm : {false, true})
      for (bool half : {false, true}) check_rope_kv(batch, norm, half, rng);
  // unit norm weights: the same as the weighted norm with g = 1
  check_rope_kv(1, true, true, rng, true);
  check_rope_kv(2, true, false, rng, true);
}

// The streaming kernel (GemvKernel::kStream: bulk copies into a shared-memory ring, persistent
// blocks, a tile of rows reduced across 8 warps) on its own awkward sizes: K not a multiple of
// its 2048-column chunk (1, 2, 3 and 8 chunks with a short last one), rows not a multiple of its
// tile (8 rows, 4 pairs; 4 rows at batch >= 3), a single row, blocks with one partial tile and
// blocks with ~40 tiles (the ring wraps many times), every batch 1..8, input and output mode,
// 1 and 2 blocks per SM, with and without the early PDL trigger.
TEST(CudaGemvStream, MatchesFloat64OnAwkwardSizes) {
  FRUGAL_REQUIRE_GPU();
  const TuningScope keep;
  std::mt19937 rng(41);
  // {blocks per SM, stages}: the default ring, a deep ring, a 2-stage ring at 3 blocks per SM
  for (auto [ctas, stages] : {std::pair<int, int>{1, 0}, {2, 0}, {1, 6}, {3, 2}}) {
    SCOPED_TRACE(testing::Message() << "stream, " << ctas << " blocks per SM, stages " << stages);
    set_gemv_tuning({ctas >= 2, 2048, GemvKernel::kStream, ctas, stages, kGemvMaxBatch});
    for (GemvInput in : {GemvInput::kPlain, GemvInput::kRmsNorm, GemvInput::kRmsNormUnit})
      for (GemvOutput out : {GemvOutput::kStore, GemvOutput::kAdd, GemvOutput::kSwiglu})
        for (int batch = 1; batch <= kGemvMaxBatch; ++batch) {
          check_fused({38, 2056, batch, in, out}, rng);  // 2 chunks, the second 8 columns
          check_fused({2 * 131 + 2, 8, batch, in, out}, rng);
        }
    check_fused({2, 8, 1, GemvInput::kRmsNorm, GemvOutput::kSwiglu}, rng);  // one pair
    check_fused({1, 1000, 3, GemvInput::kPlain, GemvOutput::kStore}, rng);   // one row
    check_fused({6, 6152, 3, GemvInput::kRmsNorm, GemvOutput::kSwiglu}, rng);
    check_fused({20, 14344, 8, GemvInput::kRmsNorm, GemvOutput::kAdd}, rng);
    check_fused({4243, 1000, 1, GemvInput::kRmsNormUnit, GemvOutput::kStore}, rng);
    check_fused({40000, 16, 2, GemvInput::kPlain, GemvOutput::kAdd}, rng);
    check_fused({42002, 24, 1, GemvInput::kRmsNormUnit, GemvOutput::kSwiglu}, rng);
  }
}

// gemv_bf16 (the unfused entry point) under kStream against the naive reference kernel.
TEST(CudaGemvStream, PlainGemvMatchesTheReferenceKernel) {
  FRUGAL_REQUIRE_GPU();
  const TuningScope keep;
  set_gemv_tuning({false, 2048, GemvKernel::kStream, 2, 0, kGemvMaxBatch});
  std::mt19937 rng(43);
  for (auto [rows, cols, batch] : {std::tuple<int64_t, int64_t, int>{37, 4104, 1},
                                   {129, 1000, 8}, {576, 1536, 2}, {5000, 2048, 5}}) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols << " batch " << batch);
    const auto w = random_bf16((size_t)(rows * cols), rng);
    const auto x = random_floats((size_t)(batch * cols), rng, -2.f, 2.f);
    ASSIGN_OK(dw, to_device(w));
    ASSIGN_OK(dx, to_device(x));
    ASSIGN_OK(dy, poisoned((size_t)(batch * rows) * 4));
    ASSIGN_OK(dr, poisoned((size_t)(batch * rows) * 4));
    FRUGAL_ASSERT_OK(gemv_bf16({dw.as<uint16_t>(), rows, cols, dx.as<float>(), batch, dy.as<float>()}));
    FRUGAL_ASSERT_OK(
        gemv_bf16_reference({dw.as<uint16_t>(), rows, cols, dx.as<float>(), batch, dr.as<float>()}));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ASSIGN_OK(y, to_host<float>(dy, (size_t)(batch * rows)));
    ASSIGN_OK(r, to_host<float>(dr, (size_t)(batch * rows)));
    const std::vector<double> rd(r.begin(), r.end());
    EXPECT_LT(rel_l2(y, rd), 1e-5);
  }
}

TEST(CudaGemvStream, RopeKvMatchesTheUnfusedChain) {
  FRUGAL_REQUIRE_GPU();
  const TuningScope keep;
  std::mt19937 rng(47);
  for (int ctas : {1, 2}) {
    set_gemv_tuning({ctas == 2, 2048, GemvKernel::kStream, ctas, 0, kGemvMaxBatch});
    for (int batch : {1, 2, 3, 8})
      for (bool norm : {false, true})
        for (bool half : {false, true}) check_rope_kv(batch, norm, half, rng);
    check_rope_kv(1, true, true, rng, true);
    check_rope_kv(5, true, false, rng, true);
  }
}

// Dependent streaming GEMVs under PDL: the weight copies start before griddepcontrol.wait, x
// must not be read before the previous grid is done (with and without the early trigger).
TEST(CudaGemvStream, DependentChainUnderProgrammaticLaunchMatchesFloat64) {
  FRUGAL_REQUIRE_GPU();
  check_dependent_chain({true, 2048, GemvKernel::kStream, 1});
  check_dependent_chain({false, 2048, GemvKernel::kStream, 2});
  check_dependent_chain({true, 2048, GemvKernel::kStream, 2});
  check_dependent_chain({true, 2048, GemvKernel::kStream, 3, 2});
}

TEST(CudaGemvFused, RejectsBadArguments) {
  FRUGAL_REQUIRE_GPU();
  ASSIGN_OK(buf, poisoned(1 << 16));
  ASSIGN_OK(out, poisoned(1 << 16));
  GemvFusedParams p;
  p.gemv = {buf.as<uint16_t>(), 5, 16, buf.as<float>(), 1, out.as<float>()};
  p.output = GemvOutput::kSwiglu;
  EXPECT_EQ(gemv_bf16_fused(p).code(), StatusCode::kInvalidArgument);  // odd rows
  p.gemv.rows = 6;
  p.input = GemvInput::kRmsNorm;
  EXPECT_EQ(gemv_bf16_fused(p).code(), StatusCode::kInvalidArgument);  // no norm weights
  p.norm_w = reinterpret_cast<const float*>(buf.as<char>() + 4);
  EXPECT_EQ(gemv_bf16_fused(p).code(), StatusCode::kInvalidArgument);  // misaligned
  p.norm_w = buf.as<float>();
  p.output = GemvOutput::kAdd;
  p.gemv.y = const_cast<float*>(p.gemv.x);
  EXPECT_EQ(gemv_bf16_fused(p).code(), StatusCode::kInvalidArgument);  // y aliases x
  p.gemv.y = out.as<float>();
  p.gemv.batch = 9;
  EXPECT_EQ(gemv_bf16_fused(p).code(), StatusCode::kInvalidArgument);
  p.gemv.batch = 1;
  FRUGAL_ASSERT_OK(gemv_bf16_fused(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace frugal::cuda
