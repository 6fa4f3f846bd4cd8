// Private to backend/cpu: what the two prefill GEMM drivers (matmul.cpp: float, matmul_q8.cpp:
// int8 activations) share: per-thread scratch, and the split of the work into (row panel, token
// chunk) items.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace frugal::cpu::detail {

// A 64-byte aligned buffer of T that only grows (one thread_local instance per pool thread).
// get() returns nullptr when the allocation fails, so callers can report it, never crash.
template <typename T>
class AlignedScratch {
 public:
  T* get(size_t n) {
    if (n > cap_) {
      const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
      buf_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
      cap_ = buf_ ? n : 0;
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> buf_;
  size_t cap_ = 0;
};

// Work items of a GEMM call: n_panels row panels x n_chunks token chunks of `chunk` tokens.
// Tokens are split only when there are fewer than 4 panels per thread (the k/v projections of a
// small model on many threads), at the price of packing a panel once per chunk; a chunk keeps
// at least 16 tokens.
struct GemmSplit {
  int64_t n_chunks = 1;
  int64_t chunk = 0;
};
inline GemmSplit split_gemm_work(int64_t n_panels, int64_t n_tokens, int64_t threads) {
  constexpr int64_t kPanelsPerThread = 4;
  constexpr int64_t kMinChunkTokens = 16;
  int64_t n_chunks = 1;
  if (n_panels < kPanelsPerThread * threads) {
    const int64_t want = (kPanelsPerThread * threads + n_panels - 1) / n_panels;
    n_chunks = std::clamp<int64_t>(n_tokens / kMinChunkTokens, 1, want);
  }
  GemmSplit s;
  s.chunk = (n_tokens + n_chunks - 1) / n_chunks;
  s.n_chunks = (n_tokens + s.chunk - 1) / s.chunk;
  return s;
}

}  // namespace frugal::cpu::detail
