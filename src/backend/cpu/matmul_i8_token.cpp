// W8A8 (SmoothQuant): I8_ROW weights x activations quantized to int8 with one scale per token
// (w8a8_kernels.h). Tokens are quantized once per call (in parallel), then each thread takes a
// chunk of weight rows and runs every group of 4 tokens through them (the rows stay in L1/L2,
// each weight load serves 4 tokens); y[t, r] = float(isum) * (s_r * d_t).
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/row_dot.h"
#include "backend/cpu/w8a8_kernels.h"

namespace frugal::cpu {

using namespace detail;

namespace {
constexpr int64_t kBlockBytes = 256 * 1024;  // weight rows per L2-resident block (prefill)
}  // namespace

void matmul_i8_token(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool) {
  const auto& sets = kern::all_w8a8_kernel_sets();
  const kern::W8A8KernelSet* ks = &sets.back();  // the best one at or below the ISA cap (cpu_isa.h)
  for (const kern::W8A8KernelSet& s : sets) {
    if (s.target >= kern::kernel_target_cap()) {
      ks = &s;
      break;
    }
  }
  kern::matmul_i8_token_with(*ks, W, X, n_tokens, Y, pool);
}

namespace kern {

void matmul_i8_token_with(const W8A8KernelSet& ks, const TensorView& W, const float* X, int64_t n_tokens,
                          float* Y, ThreadPool& pool) {
  if (n_tokens <= 0) return;
  const int64_t rows = W.rows(), cols = W.cols();
  if (W.dtype != DType::I8_ROW || !shape_ok(W)) return fill_nan(Y, rows * n_tokens);
  // Per calling thread, reused across calls (the pool threads read it through these references).
  thread_local std::vector<int8_t> tls_q;
  thread_local std::vector<float> tls_d;
  std::vector<int8_t>& xq = tls_q;
  std::vector<float>& xd = tls_d;
  xq.resize((size_t)(n_tokens * cols));
  xd.resize((size_t)n_tokens);
  if (n_tokens == 1) {
    xd[0] = ks.quantize(X, cols, xq.data());
  } else {
    pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) xd[(size_t)t] = ks.quantize(X + t * cols, cols, xq.data() + t * cols);
    });
  }
  const size_t rb = W.row_bytes();
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  // Rows in blocks that stay in L2 while every token group passes (weights read from DRAM once).
  const int64_t block = std::max<int64_t>(kRowGrain, kBlockBytes / (int64_t)rb);
  pool.parallel_for(rows, kRowGrain, [&](int64_t b, int64_t e, int) {
    for (int64_t rb0 = b; rb0 < e; rb0 += block)
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kI8MaxTokens) {
      const int nt = (int)std::min<int64_t>(kI8MaxTokens, n_tokens - t0);
      const int8_t* xs[kI8MaxTokens];
      for (int t = 0; t < nt; ++t) xs[t] = xq.data() + (t0 + t) * cols;
      for (int64_t r = rb0; r < std::min(e, rb0 + block); ++r) {
        const uint8_t* row = base + r * rb;
        float s;
        std::memcpy(&s, row, sizeof s);
        int64_t isum[kI8MaxTokens];
        ks.dot(reinterpret_cast<const int8_t*>(row + 4), xs, nt, cols, isum);
        for (int t = 0; t < nt; ++t) Y[(t0 + t) * rows + r] = (float)isum[t] * (s * xd[(size_t)(t0 + t)]);
      }
    }
  });
}

}  // namespace kern
}  // namespace frugal::cpu
