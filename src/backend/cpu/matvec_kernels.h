// Private to backend/cpu: the weight-format kernels behind matvec / vec_dot /
// dequantize_row_fast, one KernelSet per SIMD target compiled in (hwy_targets.h), chosen at run
// time. Tests and benchmarks use all_kernel_sets() to run every target this CPU supports.
//
// Two paths per weight dtype:
//   float activations (dot_f32): weights are dequantized in registers (never to memory) and
//     multiplied with float32 x; float32 accumulation.
//   int8 activations (dot_q8): x is quantized once per matvec to blocks of 32 int8 with one
//     float scale per block (ActQ8, as llama.cpp's Q8_0/Q8_1), then each block's dot product is
//     an integer one (AVX2 vpmaddubsw+vpmaddwd, AVX-512 VNNI vpdpbusd) scaled in float.
//     Integer weight formats only: Q8_0, Q4_0, Q4_1, I4_G*, I8_ROW.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/cpu/ops.h"
#include "tensor/dtype.h"

namespace frugal::cpu::kern {

constexpr int kActBlock = 32;  // activations per int8 block

// x[0..n) quantized for the int8 path. Block k covers x[32k, 32k+32) (the last block is padded
// with zeros when 32 does not divide n):
//   d[k]  = max|x in block| / 127,   q[32k+i] = round(x[32k+i] / d[k])  (ties to even; 0 if d=0)
//   sx[k] = d[k] * sum_i q[32k+i]    (what an asymmetric weight group's offset m multiplies:
//                                     sum (d_w*q_w + m)*x = d_w*sum(q_w*x) + m*sum(x))
// so |x[i] - d[k]*q[i]| <= d[k]/2.
struct ActQ8 {
  int64_t n = 0;
  int64_t nb = 0;
  std::vector<int8_t> q;
  std::vector<float> d, sx;
  // For the tiled kernels (repack.h): q with every 4-byte unit repeated 4 times,
  // q4[16u + 4r + b] = q[4u + b] for r in [0, 4), so one vector load gives the x bytes of the 4
  // rows' lanes of a tile. Filled by expand_act4 (only when a tiled weight is multiplied).
  std::vector<int8_t> q4;
  void resize(int64_t n_elems) {
    n = n_elems;
    nb = (n_elems + kActBlock - 1) / kActBlock;
    q.resize((size_t)(nb * kActBlock));
    d.resize((size_t)nb);
    sx.resize((size_t)nb);
  }
};

// dot(one weight row of n elements, x). `row` points at the row's first byte (for *_ROW dtypes,
// its scale). Float dtypes accept any n >= 0 and any alignment; block dtypes need whole blocks.
using RowDotF32 = float (*)(const void* row, const float* x, int64_t n);
using RowDotQ8 = float (*)(const void* row, const ActQ8& x, int64_t n);
// y[r] = dot(row r, x) for rows [0, nrows) starting at `rows`, row_bytes apart: the int8 path's
// matvec inner loop. SIMD targets process several rows per x block (x loads, loop overhead and
// scale passes shared; independent accumulators); same numbers as dot_q8 up to float rounding.
using RowsDotQ8 = void (*)(const void* rows, size_t row_bytes, int64_t nrows, const ActQ8& x,
                           int64_t n, float* y);
// y[i] for the 4 * ntiles rows of ntiles whole tiles of the tiled layout (repack.h), starting at
// `tiles` (tile i at tiles + i * 4 * row_bytes). Needs x.q4 (expand_act4).
using TilesDotQ8 = void (*)(const void* tiles, size_t row_bytes, int64_t ntiles, const ActQ8& x,
                            int64_t n, float* y);
// One row to float, bit-identical to dequantize_row (quant/ggml_blocks.h).
using DequantRow = void (*)(const void* row, float* dst, int64_t n);
// Fills out (resized to n) from x[0..n).
using QuantizeAct = void (*)(const float* x, int64_t n, ActQ8* out);
// The same numbers written to caller storage: q [nb * 32], d [nb], sx [nb], nb = ceil(n / 32)
// (the prefill GEMM quantizes every token straight into its batch).
using QuantizeActTo = void (*)(const float* x, int64_t n, int8_t* q, float* d, float* sx);

struct KernelSet {
  int64_t target = 0;      // Highway target bit (HWY_AVX2, ...)
  const char* name = "";   // hwy::TargetName(target): "AVX3_DL", "AVX3", "AVX2", "SCALAR"
  RowDotF32 dot_f32[(int)DType::kCount] = {};  // nullptr: dtype not supported
  RowDotQ8 dot_q8[(int)DType::kCount] = {};    // nullptr: no int8-activation path
  RowsDotQ8 dot_q8_rows[(int)DType::kCount] = {};  // set exactly where dot_q8 is
  TilesDotQ8 dot_q8_tiles[(int)DType::kCount] = {};  // set where cpu::tile_layout_supported
  DequantRow dequant[(int)DType::kCount] = {};
  QuantizeAct quantize_act = nullptr;
  QuantizeActTo quantize_act_to = nullptr;
};

// Fills x->q4 from x->q.
void expand_act4(ActQ8* x);

// Every target compiled in and supported by this CPU, best first (never empty: the scalar
// fallback is always there), whatever the ISA cap (cpu_isa.h).
const std::vector<KernelSet>& all_kernel_sets();
// What matvec uses: the best set at or below the ISA cap (the first one without a cap).
const KernelSet& best_kernel_set();
// The cap as a Highway target bit: kernels use the best target t with t >= cap (a lower bit is a
// better target; 0 = no cap). Set through cpu::set_cpu_isa.
int64_t kernel_target_cap();
void set_kernel_target_cap(int64_t target_bit);

// matvec (ops.h) with an explicit kernel set.
void matvec_with(const KernelSet& ks, const TensorView& W, const float* x, float* y,
                 ThreadPool& pool, ActPrecision act);
// matvec_multi (ops.h) with an explicit kernel set.
void matvec_multi_with(const KernelSet& ks, std::span<const MatvecOut> outs, const float* x,
                       ThreadPool& pool, ActPrecision act);

// Per-file registration (each *_hwy.cpp fills its part of a set for one target; false if that
// file has no code for the target).
int64_t float_kernel_targets();  // HWY_TARGETS of dot_float_hwy.cpp
int64_t q8_kernel_targets();     // HWY_TARGETS of dot_q8_hwy.cpp
int64_t q4_tile_kernel_targets();  // HWY_TARGETS of dot_q4_tiles_hwy.cpp
int64_t q8_0_tile_kernel_targets();  // HWY_TARGETS of dot_q8_0_tiles_hwy.cpp
bool fill_float_kernels(int64_t target, KernelSet* ks);
bool fill_q8_kernels(int64_t target, KernelSet* ks);
bool fill_q4_tile_kernels(int64_t target, KernelSet* ks);
bool fill_q8_0_tile_kernels(int64_t target, KernelSet* ks);

}  // namespace frugal::cpu::kern
