#include "model/cuda/bench_measure.h"

#include <algorithm>
#include <chrono>

#include "backend/cuda/check.cuh"
#include "backend/cuda/cublas_lib.h"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/model_ops.cuh"

namespace frugal::cuda {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

namespace {

// Events destroyed on every path.
struct EventPair {
  cudaEvent_t a = nullptr, b = nullptr;
  ~EventPair() {
    if (a) (void)cudaEventDestroy(a);
    if (b) (void)cudaEventDestroy(b);
  }
  Status create() {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&a));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventCreate(&b));
    return Status::Ok();
  }
  Result<double> ms() const {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(b));
    float ms = 0;
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, a, b));
    return (double)ms;
  }
};

struct Cublas {
  const CublasLib* lib = nullptr;
  cublasHandle_t h = nullptr;
  ~Cublas() {
    if (h) (void)lib->destroy(h);
  }
};

}  // namespace

Result<Ceilings> measure_ceilings(cudaStream_t s, bool with_gemm) {
  Ceilings c;
  const size_t bytes = size_t{2} << 30;
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer a, DeviceBuffer::allocate(bytes));
  FRUGAL_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(bytes));
  FRUGAL_RETURN_IF_ERROR(fill_random_bf16(a.as<uint16_t>(), bytes / 2, 1, 1.0f, s));
  EventPair ev;
  FRUGAL_RETURN_IF_ERROR(ev.create());
  std::vector<double> ms_copy;
  for (int rep = 0; rep < 4; ++rep) {  // round 0 warms up
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.a, s));
    for (int i = 0; i < 5; ++i)
      FRUGAL_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, s));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.b, s));
    FRUGAL_ASSIGN_OR_RETURN(const double ms, ev.ms());
    if (rep > 0) ms_copy.push_back(ms / 5);
  }
  c.copy_gbs = 2.0 * (double)bytes / (median(ms_copy) * 1e6);
  if (!with_gemm) return c;

  const int n = 8192;
  Cublas cb;
  FRUGAL_ASSIGN_OR_RETURN(cb.lib, cublas_lib());
  if (cb.lib->create(&cb.h) != CUBLAS_STATUS_SUCCESS) return Internal("cublasCreate failed");
  if (cb.lib->set_stream(cb.h, s) != CUBLAS_STATUS_SUCCESS) return Internal("cublasSetStream failed");
  // two bf16 operands of n*n (1 GiB, in the first copy buffer), float n*n result in the second
  const uint16_t* A = a.as<uint16_t>();
  const uint16_t* B = a.as<uint16_t>() + (size_t)n * n;
  float* C = b.as<float>();
  const float alpha = 1.0f, beta = 0.0f;
  std::vector<double> ms_gemm;
  for (int rep = 0; rep < 4; ++rep) {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.a, s));
    for (int i = 0; i < 5; ++i)
      if (cb.lib->gemm_ex(cb.h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16BF, n, B,
                          CUDA_R_16BF, n, &beta, C, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        return Internal("cublasGemmEx failed");
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.b, s));
    FRUGAL_ASSIGN_OR_RETURN(const double ms, ev.ms());
    if (rep > 0) ms_gemm.push_back(ms / 5);
  }
  c.gemm_tflops = 2.0 * n * n * (double)n / (median(ms_gemm) * 1e9);
  return c;
}

Result<double> time_decode(LlamaCuda& g, int batch, int ctx, int steps, int reps) {
  if (steps < 1 || reps < 1) return InvalidArgument("time_decode: steps and reps must be >= 1");
  std::vector<int32_t> tok((size_t)batch), pos((size_t)batch, ctx);
  for (int b = 0; b < batch; ++b) tok[(size_t)b] = (int32_t)((b * 7919 + 13) % g.dims().vocab);
  EventPair ev;
  FRUGAL_RETURN_IF_ERROR(ev.create());
  FRUGAL_RETURN_IF_ERROR(g.decode_loop(tok.data(), pos.data(), batch, 2));  // capture + warm
  FRUGAL_RETURN_IF_ERROR(g.synchronize());
  std::vector<double> v;
  for (int rep = 0; rep < reps; ++rep) {
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.a, g.stream()));
    FRUGAL_RETURN_IF_ERROR(g.decode_loop(tok.data(), pos.data(), batch, steps));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.b, g.stream()));
    FRUGAL_ASSIGN_OR_RETURN(const double ms, ev.ms());
    v.push_back(ms / steps);
  }
  return median(v);
}

Result<double> time_prefill(LlamaCuda& g, const int32_t* tokens, int64_t n, int reps) {
  if (reps < 1) return InvalidArgument("time_prefill: reps must be >= 1");
  FRUGAL_RETURN_IF_ERROR(g.prefill(0, tokens, n, 0).status());  // warm-up
  std::vector<double> v;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    FRUGAL_RETURN_IF_ERROR(g.prefill(0, tokens, n, 0).status());
    v.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(v);
}

DecodeBytes decode_step_bytes(const LlamaDims& d, int batch, int ctx, int steps) {
  DecodeBytes b;
  b.weights = 2.0 * (double)d.matmul_params() + 4.0 * (double)d.dim * (2 * d.n_layers + 1);
  const double mean_len = ctx + (steps + 1) / 2.0;
  b.kv = (double)batch * (double)d.kv_bytes_per_token() * (mean_len + 1);
  b.logits = 2.0 * batch * (double)d.vocab * 4;
  return b;
}

PrefillFlops prefill_flops(const LlamaDims& d, int64_t T) {
  PrefillFlops f;
  const double lin_params = (double)d.matmul_params() - (double)d.vocab * d.dim;
  f.attention = 4.0 * d.n_heads * d.head_dim * ((double)T * (T + 1) / 2) * d.n_layers;
  f.total = 2.0 * lin_params * (double)T + 2.0 * (double)d.vocab * d.dim + f.attention;
  return f;
}

}  // namespace frugal::cuda
