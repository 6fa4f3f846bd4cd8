// Private to backend/cpu: the blocked GEMM micro-kernel behind matmul (prefill).
//
// Shape of the computation: Y[t, r] = sum_k X[t, k] * W[r, k], with W = [rows, K] (weights,
// row-major) and X = [tokens, K] (activations). matmul.cpp dequantizes a *panel* of
// panel_rows() weight rows once and repacks it k-major (pack_panel), so that for a fixed k the
// panel's weights are contiguous: panel[k * panel_rows() + r]. The micro-kernel then streams
// every token through the panel in register tiles of (tokens x panel_rows()): per k it loads
// the panel's weights as two SIMD vectors, broadcasts one activation per token, and issues two
// FMAs per token into accumulators that stay in registers for a whole K slice. Outputs of one
// token are contiguous rows, so tiles are stored without any horizontal sum.
//
// Compiled once per CPU target with Highway and chosen at run time (AVX-512 tiles are
// 12 tokens x 32 rows, AVX2 tiles 6 tokens x 16 rows). Accumulation is float32 FMA.
#pragma once

#include <cstdint>

namespace frugal::cpu::gemm {

// Rows per packed panel for the CPU this process runs on (2 SIMD vectors of floats).
int64_t panel_rows();

// Rearranges rows [0, nr) of a row-major float block (row r at src + r*ld_src, columns
// [k0, k0 + kc)) into panel[k * panel_rows() + r] for k in [0, kc); rows nr..panel_rows()-1
// are zero. nr <= panel_rows().
void pack_panel(const float* src, int64_t ld_src, int64_t nr, int64_t k0, int64_t kc,
                float* panel);

struct PanelArgs {
  const float* panel = nullptr;  // [kc, panel_rows()] packed weights (pack_panel)
  int64_t kc = 0;                // K slice length
  const float* x = nullptr;      // X[t, k0] of the first token: token t at x + t*ldx
  int64_t ldx = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;            // Y[t, r0] of the first token: token t at y + t*ldy
  int64_t ldy = 0;
  int64_t n_rows = 0;            // valid rows of the panel (<= panel_rows()); others not stored
  bool accumulate = false;       // y += slice result (later K slices) instead of y = result
};
// Y[t, r] (+)= sum_{k < kc} x[t*ldx + k] * panel[k*panel_rows() + r]
// for t < n_tokens, r < n_rows.
void panel_gemm(const PanelArgs& a);

// Name of the Highway target the kernel runs on ("AVX3", "AVX2", ...), for benchmarks.
const char* target_name();

}  // namespace frugal::cpu::gemm
