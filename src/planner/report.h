// A finished plan and its three renderings: an aligned table for people, JSON for tools, and an
// SVG with two charts (memory breakdown per option; KV memory against context per KV format).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "planner/model_import.h"
#include "planner/search.h"

namespace frugal::planner {

struct PlanReport {
  ModelInput model;
  ParamCounts params;
  PlanContext ctx;
  std::vector<PlanOption> options;  // fitting ones first (ranked), then rejected ones
  size_t n_fit = 0;
  std::optional<int64_t> max_batch;    // for the best option, when asked
  std::optional<int64_t> max_context;
  ExplainLog explain;                  // for the best option, when asked
  std::vector<std::string> notes;      // assumptions and warnings, printed with the result

  const PlanOption* best() const { return n_fit > 0 ? &options[0] : nullptr; }
};

struct TextOptions {
  size_t top = 10;         // fitting options shown
  bool all = false;        // also every rejected option with its reason
  bool explain = false;
};

std::string render_text(const PlanReport& r, const TextOptions& opt);
std::string render_json(const PlanReport& r);
std::string render_svg(const PlanReport& r);

// Tables for --list-presets and --list-hardware.
std::string render_preset_list();
std::string render_hardware_list();

}  // namespace frugal::planner
