// Small helpers shared by the subcommands: error reporting, resource usage, timing.
#pragma once

#include <sys/resource.h>

#include <cstdio>
#include <string>

#include "base/status.h"

namespace frugal::cli {

// Prints "frugal: error: <message>" on stderr and returns the exit code for the status.
inline int report(const Status& st) {
  std::fprintf(stderr, "frugal: error: %s\n", st.message().c_str());
  std::fflush(stderr);
  return 1;
}

// Peak resident set size of this process in bytes.
inline size_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return (size_t)ru.ru_maxrss * 1024;
}

inline std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) { b /= 1024; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace frugal::cli
