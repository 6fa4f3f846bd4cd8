// Kernel launches with optional programmatic dependent launch (PDL, Hopper): a kernel launched
// with the programmatic-serialization attribute may be scheduled while the previous kernel in
// the stream is still draining; it must call wait_prior_grid() before touching memory the
// previous kernel writes or reads (every frugal kernel does so first thing, except for reads of
// constant data such as weights, which it may prefetch before the wait). Without the attribute
// wait_prior_grid() returns at once, so the same kernels run either way.
#pragma once

#include <utility>

#include <cuda_runtime.h>

namespace frugal::cuda {

// Per host thread; off by default. LlamaCuda turns it on around its decode steps.
void set_programmatic_launch(bool on);
bool programmatic_launch();

// RAII: sets the per-thread switch for a scope.
class ProgrammaticLaunchScope {
 public:
  explicit ProgrammaticLaunchScope(bool on) : prev_(programmatic_launch()) {
    set_programmatic_launch(on);
  }
  ~ProgrammaticLaunchScope() { set_programmatic_launch(prev_); }
  ProgrammaticLaunchScope(const ProgrammaticLaunchScope&) = delete;
  ProgrammaticLaunchScope& operator=(const ProgrammaticLaunchScope&) = delete;

 private:
  bool prev_;
};

__device__ __forceinline__ void wait_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream (launched with the PDL attribute) be scheduled once every
// block of this grid has executed it, instead of when this grid exits: its blocks take SMs as
// this grid's blocks leave and run their pre-wait work (weight prefetch) during this grid's tail.
// Safe anywhere: the next kernel's wait_prior_grid() still waits for this whole grid.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute when switched on.
template <class... KArgs, class... Args>
cudaError_t launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = programmatic_launch() ? 1 : 0;
  const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
  if (err != cudaSuccess) (void)cudaGetLastError();  // a later launch check must not see it
  return err;
}

}  // namespace frugal::cuda
