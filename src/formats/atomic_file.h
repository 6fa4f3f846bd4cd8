// Write-then-rename output files, shared by the GGUF and safetensors writers.
//
// AtomicFile writes into "<path>.tmp"; commit() flushes, closes and renames it over `path`.
// If commit() is never reached (or fails), the destructor removes the temporary, so a failed
// write never leaves a partial file at `path` or a stray ".tmp" beside it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "base/status.h"

namespace frugal::formats {

class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Creates (truncates) "<path>.tmp". IoError naming the temporary path on failure.
  Status open(const std::string& path);
  Status write(const void* data, size_t n);
  Status write_zeros(size_t n);
  uint64_t bytes_written() const { return written_; }
  // Flush, close and rename onto the final path.
  Status commit();

  const std::string& tmp_path() const { return tmp_path_; }

 private:
  void discard();

  std::FILE* f_ = nullptr;
  std::string path_;
  std::string tmp_path_;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Round x up to a multiple of `align` (a power of two).
inline uint64_t align_up(uint64_t x, uint64_t align) { return (x + align - 1) & ~(align - 1); }
inline bool is_pow2(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace frugal::formats
