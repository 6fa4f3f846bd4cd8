#include "base/huge_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace frugal {

void* allocate_huge_array(size_t bytes) {
  const size_t n = (std::max<size_t>(bytes, 1) + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = std::aligned_alloc(kHugePageBytes, n);
  // Advice only: the buffer is usable whatever the kernel does with it (EINVAL without THP).
  if (p != nullptr) (void)madvise(p, n, MADV_HUGEPAGE);
  return p;
}

std::shared_ptr<void> allocate_stream_buffer(size_t bytes, bool huge) {
  if (huge) return std::shared_ptr<void>(allocate_huge_array(bytes), std::free);
  void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
  if (p == nullptr) return nullptr;
  return std::shared_ptr<void>(p, std::free);
}

size_t huge_pages_resident() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("AnonHugePages:", 0) != 0) continue;
    std::istringstream ls(line.substr(14));
    size_t kb = 0;
    return (ls >> kb) ? kb * 1024 : 0;
  }
  return 0;
}

std::string transparent_huge_pages_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  if (!std::getline(in, s)) return "unavailable";
  const size_t a = s.find('['), b = s.find(']');
  return a != std::string::npos && b != std::string::npos && b > a ? s.substr(a + 1, b - a - 1)
                                                                   : "unavailable";
}

}  // namespace frugal
