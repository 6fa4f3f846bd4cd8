// --no-repack: keep the 4-bit weights row-major on the CPU. By default CPU inference repacks
// Q4_0 / Q4_1 / I4_G* matrices at load into the decode tiles (model/repack_model.h; the same
// bytes, faster int8-activation decode); the flag is for A/B runs, as llama.cpp's --no-repack.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "model/model.h"
#include "model/repack_model.h"

namespace frugal::cli {

inline CLI::Option* add_no_repack_flag(CLI::App* sub, bool* no_repack) {
  return sub->add_flag("--no-repack", *no_repack,
                       "CPU: keep 4-bit weights row-major (no load-time repack into the decode "
                       "tiles; for A/B)");
}

// Repacks m for CPU decode unless no_repack.
inline Status apply_repack(bool no_repack, Model& m) {
  if (no_repack) return Status::Ok();
  Result<RepackReport> r = repack_for_cpu_decode(&m);
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace frugal::cli
