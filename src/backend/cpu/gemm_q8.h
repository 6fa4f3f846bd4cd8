// Private to backend/cpu: the int8-activation GEMM behind matmul(..., ActPrecision::kQ8)
// (prefill on integer weight formats: Q8_0, Q4_0, Q4_1, I4_G64(A), I4_G128(A), I8_ROW).
//
// Y[t, r] = sum_k W[r, k] X[t, k] with every token's row of X quantized once to int8 blocks of 32
// (ActQ8, matvec_kernels.h: q, scale dx, and sx = dx * sum q per block) and every weight block
// read as  w = d * q + m  with q an unsigned byte (unpack_block below). Per 32-block k:
//   sum_i w_i x_i  =  d * dx_k * sum_i q_i xq_i  +  m * sx_k
// The integer sum is exact; everything after it is float32.
//
// Rows in lanes (unlike the matvec kernels, whose lanes run along k): a panel of panel_rows()
// weight rows is unpacked once per call into a packed int8 panel where one SIMD vector holds
// 4 consecutive k of V rows (V = 8 on AVX2, 16 on AVX-512), so one vpmaddubsw (AVX2, AVX-512) or
// vpdpbusd (AVX-512 VNNI) with 4 bytes of one token broadcast does V x 4 multiply-adds for V
// different outputs. Eight such steps cover a 32-block; only then is the block's integer sum
// converted and scaled: per (V rows, token, block) 8 dot instructions and ~5 for the scale,
// where a k-in-lanes kernel spends ~3 scale instructions per dot (convert, scale, FMA).
// vpmaddubsw sums pairs into saturating int16: with q <= 15 (4-bit) and |xq| <= 127 a pair is
// <= 3810 and 8 steps <= 30480 < 32767, so the int16 sums can be added for a whole block.
// 8-bit weights (q = w + 128 in [0, 255]) are split for vpmaddubsw into two nibble planes (lo
// with scale d, hi with scale 16 d); vpdpbusd takes them whole (int32 sums, no saturation).
//
// Packed panel (pack_panel_q8), for a slice of nxb x blocks, NP = panel_rows(), P planes:
//   q: [nxb * P][NP / V][8 steps][V rows][4 bytes]   (weight block j = k * P + p; plane p of
//                                                       x block k; lo plane first)
//   d: [nxb * P][NP] float   (plane scale: d, or 16 d for the hi plane)
//   m: [nxb][NP] float       (the offset coefficient of sx)
// Rows past the matrix's end are zero (d = m = 0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "base/huge_pages.h"
#include "backend/cpu/ops.h"
#include "tensor/dtype.h"

namespace frugal::cpu::kern {

// True for the dtypes the int8 GEMM takes (those with a dot_q8 kernel in matvec).
bool gemm_q8_supports(DType t);

// THE weight reader of the int8 GEMM (one place to add a repacked weight layout): x block k
// (elements [32k, 32k + 32) of rows of n weights) of nr rows starting at row0, row_bytes apart,
// as q[r * 32 + i] (unsigned) with w = d[r] * q + m[r]:
//   Q4_0, I4_G* sym: q in [0, 15], m = -8 d;  Q4_1, I4_G*A: q in [0, 15], m = group's m;
//   Q8_0: q = w + 128 in [0, 255], m = -128 d;  I8_ROW: the same with d = the row's scale s
//   (a partial last block of I8_ROW is padded with q = 128, i.e. w = 0).
// Returns the largest q this dtype can produce (15 or 255); 0 for an unsupported dtype.
int unpack_block(DType t, const uint8_t* row0, size_t row_bytes, int nr, int64_t k, int64_t n,
                 uint8_t* q, float* d, float* m);

// Every token's activation row quantized as ActQ8, laid end to end:
//   q[t * nb * 32 + 32 k + i], d[t * nb + k], sx[t * nb + k]
// On huge pages once large (every weight panel streams the whole batch again).
struct ActQ8Batch {
  int64_t n_tokens = 0, nb = 0;
  std::vector<int8_t, HugePageAllocator<int8_t>> q;
  std::vector<float, HugePageAllocator<float>> d, sx;
};

// The panel shape of one target.
struct PanelShape {
  int lanes = 8;       // V: rows per vector
  int rows = 16;       // NP: rows per panel (a multiple of V)
  bool bytes = false;  // true: the kernel takes q in [0, 255] in one plane (VNNI)
};
// Planes a dtype needs on a target with this shape: 2 for 8-bit weights without `bytes`, else 1.
int panel_planes(const PanelShape& s, DType t);
// Bytes of a packed panel of nxb x blocks (q, then d, then m; each part 64-byte aligned).
size_t panel_bytes(const PanelShape& s, int planes, int64_t nxb);

struct PackedPanel {
  const uint8_t* q = nullptr;
  const float* d = nullptr;
  const float* m = nullptr;
};
// Unpacks x blocks [k0, k0 + nxb) of rows [r0, r0 + nr) of W (nr <= s.rows) into `buf`
// (panel_bytes(s, planes, nxb) bytes, 64-byte aligned), returning where the parts are.
// False for a dtype gemm_q8_supports() rejects.
bool pack_panel_q8(const PanelShape& s, int planes, const TensorView& W, int64_t r0, int64_t nr,
                   int64_t k0, int64_t nxb, uint8_t* buf, PackedPanel* out);

struct PanelQ8Args {
  PackedPanel w;            // the slice's packed panel (its first x block is k0)
  int planes = 1;
  int64_t nxb = 0;          // x blocks in the slice
  const ActQ8Batch* x = nullptr;
  int64_t k0 = 0;           // first x block of the slice
  int64_t t0 = 0, n_tokens = 0;
  float* y = nullptr;       // Y[t0, r0]: token t0 + i at y + i * ldy
  int64_t ldy = 0;
  int64_t n_rows = 0;       // valid rows of the panel (others not stored)
  bool accumulate = false;  // y += slice result (later K slices)
};
// Y[t0 + i, r] (+)= sum over the slice's x blocks of the panel's rows r < n_rows.
using PanelQ8Fn = void (*)(const PanelQ8Args& a);

struct GemmQ8Set {
  int64_t target = 0;
  const char* name = "";
  PanelShape shape;
  PanelQ8Fn panel = nullptr;
  QuantizeAct quantize_act = nullptr;  // the matvec kernel set's of the same target
  QuantizeActTo quantize_act_to = nullptr;
};

// Whether matmul(kQ8) takes the int8 GEMM on this set for dtype t: supported, and not 8-bit
// weights (Q8_0, I8_ROW) on a set without `bytes` (two nibble planes: measured no faster than
// the float GEMM on AVX2 and slower on AVX3, 2026-11-30 dev VM, Q8_0 8192x2048x512, 1 thread,
// GFLOP/s per core-second: AVX2 q8 80 vs f32 78, AVX3 122 vs 131; so the float GEMM, which is
// also exact in x, runs there).
bool gemm_q8_wins(const GemmQ8Set& s, DType t);

// Every target compiled into gemm_q8_hwy.cpp that all_kernel_sets() has, best first.
const std::vector<GemmQ8Set>& all_gemm_q8_sets();
// The best set at or below the ISA cap (cpu_isa.h), as matvec picks its kernels.
const GemmQ8Set& best_gemm_q8_set();

// Fills xb from X [n_tokens, cols] with ks.quantize_act per token (parallel over tokens).
void quantize_tokens(const GemmQ8Set& ks, const float* X, int64_t n_tokens, int64_t cols,
                     ActQ8Batch* xb, ThreadPool& pool);

// matmul with int8 activations on an explicit set; W's dtype must be gemm_q8_supports()ed
// (else Y is NaN). Bit-identical for any thread count.
void matmul_q8_with(const GemmQ8Set& ks, const TensorView& W, const float* X, int64_t n_tokens,
                    float* Y, ThreadPool& pool);
// The same on tokens quantize_tokens(ks, ...) already quantized (several matrices reading one
// input: q/k/v, gate/up). xb.nb must be W's column count in blocks (else Y is NaN).
void matmul_q8_quantized(const GemmQ8Set& ks, const TensorView& W, const ActQ8Batch& xb, float* Y,
                         ThreadPool& pool);

// matmul_swiglu (ops.h) on the int8 GEMM: both weights gemm_q8_supports()ed, one shape (else
// H is NaN), xb quantized from X by quantize_tokens(ks, ...).
void matmul_q8_swiglu_quantized(const GemmQ8Set& ks, const TensorView& Wg, const TensorView& Wu,
                                const ActQ8Batch& xb, float* H, ThreadPool& pool);

}  // namespace frugal::cpu::kern
