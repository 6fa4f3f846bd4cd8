// Hopper (sm_90) shared-memory transaction barriers (mbarrier), named CTA barriers and register
// reallocation, for warp-specialised kernels: a producer hands tiles to consumers through
// "full" barriers (completed by the copy engine's byte count, see tma.cuh) and takes stages
// back through "empty" barriers (one arrival per consumer thread).
//
// Phases: a barrier initialised with count n completes a phase when n arrivals (and, with
// expect_tx, the announced bytes) have come in; waiters name the parity (0, 1, 0, ...) of the
// phase they wait for. mbarrier.arrive releases the arriving thread's earlier writes (CTA
// scope) and a successful try_wait acquires them.
#pragma once

#include <cstdint>

namespace frugal::cuda::mbar {

__device__ __forceinline__ void init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// After init, before the barrier that publishes the barriers to the other threads and the
// copy engine.
__device__ __forceinline__ void fence_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// One arrival plus `bytes` more expected from asynchronous copies completing on this barrier.
__device__ __forceinline__ void arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
// Spins until the phase with this parity has completed.
__device__ __forceinline__ void wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

// Named barriers (0 is __syncthreads'): `count` threads (a multiple of 32) meet at barrier id;
// sync waits, arrive only counts itself in (a producer / consumer hand-off between warpgroups).
__device__ __forceinline__ void named_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

// Register reallocation between warpgroups (sm_90a; every thread of the warpgroup executes the
// same one). Takes effect only in a kernel launched with a register cap
// (__launch_bounds__(threads, 1)).
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

}  // namespace frugal::cuda::mbar
