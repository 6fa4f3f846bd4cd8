// gemv_bf16_fused (RMSNorm in, residual add or SwiGLU out) vs a float64 reference of the same
// bf16 weights, on sizes that are not multiples of the warp's 256-column stride or of the
// 8-warp block: rel L2 < 1e-5 (float accumulation only), and the unfused kernels it replaces.
#include <cmath>
#include <vector>

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
      xn[(size_t)i] = c.in == GemvInput::kRmsNorm ? xb[i] * inv * g[(size_t)i] : xb[i];
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
  const GemvInput ins[] = {GemvInput::kPlain, GemvInput::kRmsNorm};
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
}

// kRopeKv vs the unfused chain it replaces (rmsnorm -> naive GEMV -> rope_kv_write), every
// kernel of which is tested against the CPU: q exactly up to float rounding, K/V caches up to
// a bf16 rounding flip; cache slots nobody writes stay zero.
void check_rope_kv(int batch, bool norm, bool rope_half, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << "rope_kv batch " << batch << " norm " << norm << " half "
                                  << rope_half);
  const int H = 3, KV = 1, HD = 8, BS = 4, MAXB = 5, NB = 16;
  const int64_t rows = (H + 2 * KV) * HD, cols = 1000;
  const auto w = random_bf16((size_t)(rows * cols), rng);
  const auto x = random_floats((size_t)(batch * cols), rng, -3.f, 3.f);
  const auto g = random_floats((size_t)cols, rng, 0.5f, 1.5f);
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
  p.input = norm ? GemvInput::kRmsNorm : GemvInput::kPlain;
  p.norm_w = dg.as<float>();
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
