// Hopper (sm_90a) warpgroup MMA helpers: wgmma.mma_async m64n128k16 bf16 -> f32, shared-memory
// matrix descriptors for the 128-byte swizzle, and the fences / commit / wait that order them.
//
// Shared-memory tile layout these descriptors describe (rows of 128 bytes = 64 bf16, the unit
// of the 128-byte swizzle): a [rows][128] bf16 tile is stored as two halves [2][rows][64]; in
// each half, 16-byte chunk c of row r sits at r * 128 + ((c ^ (r % 8)) << 4), and every half
// starts 1024-byte aligned. Rows of 8 form 1024-byte "core" groups (the stride-byte offset).
//  - K-major operand (A = Q rows, or B = K rows: the reduction dimension d is contiguous):
//    one k16 step = 32 bytes further inside a half; steps 4..7 read the second half.
//  - MN-major B operand (V: rows are the reduction dimension, d contiguous), with the transpose
//    bit: N = 128 spans both halves (leading-byte offset = the half's size), K groups of 8 rows
//    at 1024 bytes; a k16 step is 16 rows = 2048 bytes further.
//
// The instructions exist only in the sm_90a target; the build also embeds compute_90 PTX, where
// these helpers compile to nothing (FRUGAL_WGMMA is 0) and callers must not run.
#pragma once

#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FRUGAL_WGMMA 1
#else
#define FRUGAL_WGMMA 0
#endif

namespace frugal::cuda::wg {

// Descriptor of a 128-byte-swizzled operand: start address, leading / stride byte offsets.
__device__ __forceinline__ uint64_t desc_sw128(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((smem_addr & 0x3FFFFu) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFFu) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFFu) << 32) | (1ull << 62);
}

__device__ __forceinline__ void fence() {
#if FRUGAL_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void commit() {
#if FRUGAL_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wait() {
#if FRUGAL_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Ordinary shared-memory stores (st.shared, cp.async) made visible to the tensor cores' async
// proxy: each writing thread, before the barrier that publishes the tile.
__device__ __forceinline__ void fence_proxy_async() {
#if FRUGAL_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Pins accumulator registers at this point of the program (after a wait, before reuse), so
// the compiler neither reads them before the wgmma completed nor moves writes across.
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// The 64 float accumulators of an m64n128 wgmma per thread: asm operands %0..%63 and their list.
#define FRUGAL_WG_ACC64_REGS                                            \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"              \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"    \
  "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"    \
  "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define FRUGAL_WG_ACC64(d)                                                                   \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),        \
      "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), \
      "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]),           \
      "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]),           \
      "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),           \
      "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]),           \
      "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]),           \
      "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),           \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),           \
      "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]),           \
      "+f"(d[62]), "+f"(d[63])

// d (+)= A * B, m64n128k16: A (64 x 16) and B (128 x 16, K-major) from shared memory.
// accumulate = 0 overwrites d.
__device__ __forceinline__ void mma_ss_m64n128(float (&d)[64], uint64_t a, uint64_t b,
                                               int accumulate) {
#if FRUGAL_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      FRUGAL_WG_ACC64_REGS
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : FRUGAL_WG_ACC64(d)
      : "l"(a), "l"(b), "r"(accumulate));
#endif
}

// d += A * B, m64n128k16: A (64 x 16) from registers (the mma.sync m16n8k16 A layout per warp,
// warp w of the warpgroup holding rows 16w..16w+15), B (16 x 128) MN-major from shared memory.
__device__ __forceinline__ void mma_rs_m64n128_tb(float (&d)[64], const uint32_t (&a)[4],
                                                  uint64_t b) {
#if FRUGAL_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      FRUGAL_WG_ACC64_REGS
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : FRUGAL_WG_ACC64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
#endif
}

}  // namespace frugal::cuda::wg
