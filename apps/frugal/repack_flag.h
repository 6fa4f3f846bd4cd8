// Where CPU inference puts the weights at load (model/repack_model.h): by default the 4-bit and
// Q8_0 matrices are repacked into the decode tiles (the same bytes, faster int8-activation decode) and
// every matrix is copied into one arena on transparent huge pages (a decode step streams every
// weight once; over 4 KiB pages that stream is bound by page walks). The flags turn each off for
// A/B runs: --no-repack as llama.cpp's, --no-huge-pages.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "model/model.h"
#include "model/repack_model.h"

namespace frugal::cli {

struct PlacementFlags {
  bool no_repack = false;
  bool no_huge_pages = false;
};

inline void add_placement_flags(CLI::App* sub, PlacementFlags* f) {
  sub->add_flag("--no-repack", f->no_repack,
                "CPU: keep 4-bit and Q8_0 weights row-major (no load-time repack into the decode "
                "tiles; for A/B)");
  sub->add_flag("--no-huge-pages", f->no_huge_pages,
                "CPU: leave the weights where they were loaded (no copy onto transparent huge "
                "pages; for A/B)");
}

// Places m's weights for CPU inference as the flags say.
inline Result<RepackReport> place_weights(const PlacementFlags& f, Model& m) {
  CpuPlacement p;
  p.tiles = !f.no_repack;
  p.huge_pages = !f.no_huge_pages;
  return repack_for_cpu_decode(&m, p);
}

inline Status apply_placement(const PlacementFlags& f, Model& m) {
  Result<RepackReport> r = place_weights(f, m);
  return r.ok() ? Status::Ok() : r.status();
}

// One phrase for tables and logs: "weights repacked into decode tiles, on huge pages".
inline std::string placement_summary(const PlacementFlags& f) {
  std::string s = f.no_repack ? "weights row-major (--no-repack)"
                              : "4-bit / Q8_0 weights repacked into decode tiles";
  return s + (f.no_huge_pages ? ", where loaded (--no-huge-pages)"
                              : ", on huge pages");
}

}  // namespace frugal::cli
