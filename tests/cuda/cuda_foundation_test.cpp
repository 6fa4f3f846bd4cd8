// Error checking, DeviceBuffer and DeviceArena. The error-conversion test needs no GPU (with no
// driver or device the call fails all the same).
#include <cstring>
#include <string>

#include "backend/cuda/check.cuh"
#include "backend/cuda/cublas_lib.h"
#include "cuda_test_util.h"

namespace frugal::cuda {
namespace {

int g_line = 0;
Status call_that_fails() {
  g_line = __LINE__ + 1;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaSetDevice(1 << 20));
  return Status::Ok();
}

TEST(CudaFoundation, FailedCallBecomesStatusWithCallFileLine) {
  const Status st = call_that_fails();
  ASSERT_FALSE(st.ok());
  const std::string m = st.message();
  EXPECT_NE(m.find("cudaSetDevice(1 << 20)"), std::string::npos) << m;
  EXPECT_NE(m.find("cuda_foundation_test.cpp:" + std::to_string(g_line)), std::string::npos) << m;
  EXPECT_NE(m.find("cudaError"), std::string::npos) << m;  // the error's name
  (void)cudaGetLastError();
}

// cuBLAS is opened at run time, not linked (cublas_lib.h); opening and resolving needs no GPU.
TEST(CudaFoundation, CublasOpensWithEveryEntryPoint) {
  const Result<const CublasLib*> lib = cublas_lib();
  ASSERT_TRUE(lib.ok()) << lib.status().to_string();
  const CublasLib& l = **lib;
  EXPECT_NE(l.create, nullptr);
  EXPECT_NE(l.destroy, nullptr);
  EXPECT_NE(l.set_stream, nullptr);
  EXPECT_NE(l.set_workspace, nullptr);
  EXPECT_NE(l.gemm_ex, nullptr);
  ASSERT_NE(l.status_string, nullptr);
  EXPECT_NE(std::string(l.status_string(CUBLAS_STATUS_NOT_INITIALIZED)).find("not initialized"),
            std::string::npos);
  EXPECT_EQ(*cublas_lib(), &l);  // opened once
}

TEST(CudaFoundation, StatusCodeMapping) {
  EXPECT_EQ(cuda_error_status(cudaErrorMemoryAllocation, "x", "f", 1).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(cuda_error_status(cudaErrorNoDevice, "x", "f", 1).code(), StatusCode::kUnsupported);
  EXPECT_EQ(cuda_error_status(cudaErrorIllegalAddress, "x", "f", 1).code(),
            StatusCode::kInternal);
}

TEST(CudaFoundation, DeviceBufferRoundTripAndBounds) {
  FRUGAL_REQUIRE_GPU();
  std::vector<int32_t> host(1000);
  for (size_t i = 0; i < host.size(); ++i) host[i] = (int32_t)(i * 7919);
  auto b = DeviceBuffer::allocate(host.size() * 4);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  FRUGAL_ASSERT_OK(b->upload(host.data(), 4000));
  std::vector<int32_t> back(1000, -1);
  FRUGAL_ASSERT_OK(b->download(back.data(), 4000));
  EXPECT_EQ(back, host);
  // partial copy at an offset
  FRUGAL_ASSERT_OK(b->download(back.data(), 8, 4 * 998));
  EXPECT_EQ(back[0], host[998]);
  EXPECT_EQ(back[1], host[999]);
  EXPECT_EQ(b->upload(host.data(), 8, 3996).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(b->download(back.data(), 4001).code(), StatusCode::kOutOfRange);
  DeviceBuffer moved = std::move(*b);
  EXPECT_EQ(b->data(), nullptr);
  EXPECT_EQ(moved.size(), 4000u);
}

TEST(CudaFoundation, HugeAllocationIsAStatusAndTheProcessContinues) {
  FRUGAL_REQUIRE_GPU();
  auto b = DeviceBuffer::allocate(size_t{1} << 50);  // 1 PiB
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find(std::to_string(size_t{1} << 50)), std::string::npos);
  auto small = DeviceBuffer::allocate(1024);  // the context is still usable
  EXPECT_TRUE(small.ok()) << small.status().to_string();
}

TEST(CudaFoundation, ArenaAlignsAndRefusesWhenFull) {
  FRUGAL_REQUIRE_GPU();
  auto a = DeviceArena::create(4096);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto p1 = a->take(10, 1);
  ASSERT_TRUE(p1.ok());
  auto p2 = a->take_n<float>(100, 256);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*p2) % 256, 0u);
  EXPECT_GE(reinterpret_cast<uintptr_t>(*p2), reinterpret_cast<uintptr_t>(*p1) + 10);
  EXPECT_EQ(a->take(16, 3).status().code(), StatusCode::kInvalidArgument);
  auto too_big = a->take(4096);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kResourceExhausted);
  const size_t used = a->used();
  EXPECT_EQ(a->used(), used);  // a refused take changes nothing
  auto rest = a->take(a->remaining(), 1);
  EXPECT_TRUE(rest.ok());
  EXPECT_EQ(a->remaining(), 0u);
  a->reset();
  EXPECT_EQ(a->used(), 0u);
  // writes through an arena pointer land on the device
  auto p3 = a->take_n<float>(4);
  ASSERT_TRUE(p3.ok());
  const float v[4] = {1, 2, 3, 4};
  float back[4] = {};
  ASSERT_EQ(cudaMemcpy(*p3, v, 16, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back, *p3, 16, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(std::memcmp(v, back, 16), 0);
}

}  // namespace
}  // namespace frugal::cuda
