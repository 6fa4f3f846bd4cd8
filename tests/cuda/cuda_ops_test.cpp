// CUDA ops vs the CPU ops (backend parity) and a float64 reference, on the same random inputs.
// Error bounds per op (relative L2 unless stated):
//   gemv_bf16: vs float64 of the same bf16 weights < 1e-5 (float accumulation only);
//              vs cpu::matmul (BF16 TensorView) < 1e-5.
//   rmsnorm:   max elementwise rel (floor 1e-6) < 1e-5 vs cpu::rmsnorm.
//   rope:      max abs < 1e-5 vs cpu::rope (same float64 angle rule).
//   swiglu, add: max elementwise rel < 1e-6 vs the CPU op.
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/ops.cuh"
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

void check_gemv(int64_t rows, int64_t cols, int batch, std::mt19937& rng) {
  SCOPED_TRACE(testing::Message() << rows << "x" << cols << " batch " << batch);
  const auto w = random_bf16((size_t)(rows * cols), rng);
  const auto x = random_floats((size_t)(batch * cols), rng);
  ASSIGN_OK(dw, to_device(w));
  ASSIGN_OK(dx, to_device(x));
  ASSIGN_OK(dy, poisoned((size_t)(batch * rows) * 4));
  ASSIGN_OK(dy_ref, poisoned((size_t)(batch * rows) * 4));
  GemvParams p{dw.as<uint16_t>(), rows, cols, dx.as<float>(), batch, dy.as<float>()};
  FRUGAL_ASSERT_OK(gemv_bf16(p));
  p.y = dy_ref.as<float>();
  FRUGAL_ASSERT_OK(gemv_bf16_reference(p));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSIGN_OK(y, to_host<float>(dy, (size_t)(batch * rows)));
  ASSIGN_OK(y_ref, to_host<float>(dy_ref, (size_t)(batch * rows)));

  std::vector<double> exact((size_t)(batch * rows));
  for (int b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c)
        s += (double)bf16_to_f32(w[(size_t)(r * cols + c)]) * (double)x[(size_t)(b * cols + c)];
      exact[(size_t)(b * rows + r)] = s;
    }
  TensorView view;
  view.dtype = DType::BF16;
  view.shape = {rows, cols};
  view.data = w.data();
  view.nbytes = w.size() * 2;
  std::vector<float> y_cpu((size_t)(batch * rows));
  ThreadPool pool(1);
  cpu::matmul(view, x.data(), batch, y_cpu.data(), pool);

  EXPECT_LT(rel_l2(y, exact), 1e-5);
  EXPECT_LT(rel_l2(y, y_cpu), 1e-5);
  EXPECT_LT(rel_l2(y_ref, exact), 1e-5);
}

TEST(CudaOps, GemvBf16MatchesCpuAndFloat64) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(7);
  for (int batch = 1; batch <= kGemvMaxBatch; ++batch) check_gemv(64, 256, batch, rng);
  // odd row counts (grid tail), short rows (fewer vectors than lanes), long rows (unrolled
  // loop plus remainder), a grid-strided case (rows > 16 blocks per SM * 8 warps)
  check_gemv(37, 8, 1, rng);
  check_gemv(1, 4104, 3, rng);
  check_gemv(129, 1000, 8, rng);
  check_gemv(576, 1536, 2, rng);
  check_gemv(20000, 64, 1, rng);
}

TEST(CudaOps, GemvRejectsBadArguments) {
  FRUGAL_REQUIRE_GPU();
  ASSIGN_OK(buf, test::poisoned(1 << 16));
  GemvParams p{buf.as<uint16_t>(), 4, 12, buf.as<float>(), 1, buf.as<float>()};
  EXPECT_EQ(gemv_bf16(p).code(), StatusCode::kInvalidArgument);  // cols % 8
  p.cols = 16;
  p.batch = 9;
  EXPECT_EQ(gemv_bf16(p).code(), StatusCode::kInvalidArgument);
  p.batch = 1;
  p.x = reinterpret_cast<const float*>(buf.as<char>() + 4);
  EXPECT_EQ(gemv_bf16(p).code(), StatusCode::kInvalidArgument);  // alignment
  p.w = nullptr;
  EXPECT_EQ(gemv_bf16_reference(p).code(), StatusCode::kInvalidArgument);
}

TEST(CudaOps, RmsNormFusedResidualMatchesCpu) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(11);
  for (int64_t n : {1, 7, 64, 576, 4096, 5000}) {
    const int64_t rows = 3;
    SCOPED_TRACE(n);
    const auto x = random_floats((size_t)(rows * n), rng, -3, 3);
    const auto res = random_floats((size_t)(rows * n), rng, -3, 3);
    const auto w = random_floats((size_t)n, rng, 0.5f, 1.5f);
    ASSIGN_OK(dx, to_device(x));
    ASSIGN_OK(dres, to_device(res));
    ASSIGN_OK(dw, to_device(w));
    ASSIGN_OK(dy, poisoned((size_t)(rows * n) * 4));
    ASSIGN_OK(dy2, poisoned((size_t)(rows * n) * 4));
    // plain
    RmsNormParams p{dx.as<float>(), nullptr, nullptr, dw.as<float>(), dy.as<float>(), n, rows,
                    1e-5f};
    FRUGAL_ASSERT_OK(rmsnorm(p));
    // fused: residual_out written in place over the residual stream
    p.residual = dres.as<float>();
    p.residual_out = dres.as<float>();
    p.y = dy2.as<float>();
    FRUGAL_ASSERT_OK(rmsnorm(p));
    ASSIGN_OK(y, to_host<float>(dy, (size_t)(rows * n)));
    ASSIGN_OK(y2, to_host<float>(dy2, (size_t)(rows * n)));
    ASSIGN_OK(h_out, to_host<float>(dres, (size_t)(rows * n)));
    std::vector<float> ref((size_t)(rows * n)), h((size_t)(rows * n)), ref2((size_t)(rows * n));
    for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + res[i];
    for (int64_t r = 0; r < rows; ++r) {
      cpu::rmsnorm(x.data() + r * n, w.data(), 1e-5f, n, ref.data() + r * n);
      cpu::rmsnorm(h.data() + r * n, w.data(), 1e-5f, n, ref2.data() + r * n);
    }
    EXPECT_LT(max_rel(y, ref, 1e-6), 1e-5);
    EXPECT_LT(max_rel(y2, ref2, 1e-6), 1e-5);
    EXPECT_EQ(h_out, h);
  }
}

TEST(CudaOps, RopeMatchesCpuBothLayouts) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(13);
  const std::vector<int32_t> positions = {0, 1, 17, 4095, 131071};
  for (auto style : {RopeStyle::kAdjacent, RopeStyle::kHalf}) {
    for (int head_dim : {64, 128, 7}) {
      const int n_heads = 5, T = (int)positions.size();
      const int64_t stride = (int64_t)n_heads * head_dim + 3;  // padded rows
      auto x = random_floats((size_t)(T * stride), rng);
      ASSIGN_OK(dx, to_device(x));
      ASSIGN_OK(dpos, to_device(positions));
      RopeParams p{dx.as<float>(), dpos.as<int32_t>(), T, n_heads, head_dim, stride, 100000.f,
                   style};
      FRUGAL_ASSERT_OK(rope(p));
      ASSIGN_OK(y, to_host<float>(dx, x.size()));
      for (int t = 0; t < T; ++t)
        cpu::rope(x.data() + t * stride, n_heads, head_dim, positions[(size_t)t], 100000.f,
                  style == RopeStyle::kAdjacent ? cpu::RopeStyle::kAdjacent
                                                : cpu::RopeStyle::kHalf);
      double worst = 0;
      for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, (double)std::fabs(y[i] - x[i]));
      EXPECT_LT(worst, 1e-5) << "head_dim " << head_dim;
    }
  }
}

TEST(CudaOps, SwigluAndAddMatchCpu) {
  FRUGAL_REQUIRE_GPU();
  std::mt19937 rng(17);
  for (int64_t n : {1, 255, 14336, 100003}) {
    const auto g = random_floats((size_t)n, rng, -8, 8);
    const auto u = random_floats((size_t)n, rng, -2, 2);
    ASSIGN_OK(dg, to_device(g));
    ASSIGN_OK(du, to_device(u));
    ASSIGN_OK(dout, poisoned((size_t)n * 4));
    FRUGAL_ASSERT_OK(swiglu(dg.as<float>(), du.as<float>(), dout.as<float>(), n));
    ASSIGN_OK(out, to_host<float>(dout, (size_t)n));
    std::vector<float> ref((size_t)n);
    cpu::swiglu(g.data(), u.data(), ref.data(), n);
    EXPECT_LT(max_rel(out, ref, 1e-6), 1e-6);
    // in place add: a += b
    FRUGAL_ASSERT_OK(add(dg.as<float>(), du.as<float>(), dg.as<float>(), n));
    ASSIGN_OK(sum, to_host<float>(dg, (size_t)n));
    for (size_t i = 0; i < (size_t)n; ++i) ASSERT_EQ(sum[i], g[i] + u[i]);
  }
  EXPECT_EQ(swiglu(nullptr, nullptr, nullptr, 4).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(add(nullptr, nullptr, nullptr, -1).code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace frugal::cuda
