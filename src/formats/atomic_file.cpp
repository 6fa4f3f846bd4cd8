#include "formats/atomic_file.h"

#include <cerrno>
#include <cstring>

namespace frugal::formats {

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() {
  if (f_) {
    std::fclose(f_);
    f_ = nullptr;
  }
  if (!tmp_path_.empty()) std::remove(tmp_path_.c_str());
}

Status AtomicFile::open(const std::string& path) {
  if (f_) return Internal("AtomicFile::open called twice (" + path + ")");
  path_ = path;
  tmp_path_ = path + ".tmp";
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!f_) {
    const int err = errno;
    tmp_path_.clear();  // nothing of ours to remove
    return IoError("cannot create " + path + ".tmp: " + std::strerror(err));
  }
  return Status::Ok();
}

Status AtomicFile::write(const void* data, size_t n) {
  if (!f_) return Internal("AtomicFile::write without open (" + path_ + ")");
  if (n == 0) return Status::Ok();
  if (std::fwrite(data, 1, n, f_) != n) {
    const int err = errno;
    return IoError("write to " + tmp_path_ + " failed: " + std::strerror(err));
  }
  written_ += n;
  return Status::Ok();
}

Status AtomicFile::write_zeros(size_t n) {
  static const char kZeros[256] = {};
  while (n > 0) {
    const size_t k = n < sizeof(kZeros) ? n : sizeof(kZeros);
    FRUGAL_RETURN_IF_ERROR(write(kZeros, k));
    n -= k;
  }
  return Status::Ok();
}

Status AtomicFile::commit() {
  if (!f_) return Internal("AtomicFile::commit without open (" + path_ + ")");
  const bool flushed = std::fflush(f_) == 0;
  const int flush_err = errno;
  const bool closed = std::fclose(f_) == 0;
  const int close_err = errno;
  f_ = nullptr;
  if (!flushed) return IoError("write to " + tmp_path_ + " failed: " + std::strerror(flush_err));
  if (!closed) return IoError("closing " + tmp_path_ + " failed: " + std::strerror(close_err));
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    return IoError("cannot rename " + tmp_path_ + " to " + path_ + ": " + std::strerror(err));
  }
  committed_ = true;
  return Status::Ok();
}

}  // namespace frugal::formats
