// The CLI's bridge to the CUDA runner: linked against frugal_cuda when frugal is built with
// CUDA (FRUGAL_HAS_CUDA, set by CMakeLists.txt), else an error naming the missing build option.
#include "device_flags.h"

#include <fmt/format.h>

namespace frugal::cli {

Status cuda_not_built() {
  return Unsupported("frugal was built without CUDA (configure with -DFRUGAL_CUDA=ON on a machine "
                     "with the CUDA toolkit), so --device cuda is not available");
}

Status check_device_flags(const DeviceFlags& f, const KvFlags& kv) {
  if (f.device != "cpu" && f.device != "cuda")
    return InvalidArgument("--device must be cpu or cuda, got '" + f.device + "'");
  if (!f.cuda()) return Status::Ok();
  if (!(f.gpu_memory_utilization > 0.0 && f.gpu_memory_utilization <= 1.0))
    return InvalidArgument(fmt::format("--gpu-memory-utilization must be in (0, 1], got {}",
                                       f.gpu_memory_utilization));
  if (kv.cache != "paged" || !kv.dtype.empty() || kv.budget != "auto" || kv.block_size != 16)
    return InvalidArgument(
        "--kv-cache, --kv-dtype, --kv-budget and --block-size set the CPU KV cache; on --device "
        "cuda the KV cache is paged bf16 (blocks of 16) sized by --gpu-memory-utilization");
#if FRUGAL_HAS_CUDA
  return cuda::require_device();
#else
  return cuda_not_built();
#endif
}

Result<cuda::CudaGenerateResult> generate_on_cuda(const Model& model,
                                                  std::span<const int32_t> prompt,
                                                  const cuda::CudaGenerateParams& params,
                                                  const std::function<bool(int32_t)>& on_token) {
#if FRUGAL_HAS_CUDA
  return cuda::generate_cuda(model, prompt, params, on_token);
#else
  return cuda_not_built();
#endif
}

Result<cuda::CudaBenchResult> bench_on_cuda(const cuda::CudaBenchParams& params) {
#if FRUGAL_HAS_CUDA
  return cuda::bench_cuda(params);
#else
  return cuda_not_built();
#endif
}

Result<cuda::CudaPerplexityResult> perplexity_on_cuda(const Model& model,
                                                      std::span<const int32_t> tokens,
                                                      const cuda::CudaPerplexityParams& params,
                                                      const PerplexityProgress& progress) {
#if FRUGAL_HAS_CUDA
  return cuda::perplexity_cuda(model, tokens, params, progress);
#else
  return cuda_not_built();
#endif
}

}  // namespace frugal::cli
