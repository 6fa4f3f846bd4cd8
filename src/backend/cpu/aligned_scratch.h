// Private to backend/cpu: a 64-byte aligned buffer of T that only grows, for per-thread
// scratch in the GEMM drivers (one thread_local instance per pool thread). get() returns
// nullptr when the allocation fails, so callers can report it instead of crashing.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace frugal::cpu::detail {

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

}  // namespace frugal::cpu::detail
