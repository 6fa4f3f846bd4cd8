// Model presets as code: one small function per published model, dims taken from the model's
// published config.json (see docs/PLANNER.md for the values and the parameter totals they give).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "planner/model_spec.h"

namespace frugal::planner {

struct PresetInfo {
  const char* name;          // canonical, lowercase: "llama-3.1-8b"
  const char* hf_id;         // "meta-llama/Llama-3.1-8B"
  double published_params;   // total parameters as published (model card / checkpoint)
  ModelSpec (*make)();
};

// Every preset, in display order.
const std::vector<PresetInfo>& presets();

// By canonical name, alias-insensitive spelling ("Llama-2-7B", "llama2_7b", "llama-2-7b-hf") or
// Hugging Face id. NotFound lists up to three closest names by edit distance.
Result<ModelSpec> find_preset(std::string_view name);
const PresetInfo* find_preset_info(std::string_view name);  // nullptr if none

// Names sorted by edit distance to `query` (after normalisation), at most `max` of them, only
// those reasonably close (distance <= max(3, len/3)) or containing the query.
std::vector<std::string> closest_preset_names(std::string_view query, size_t max = 3);

// Levenshtein distance (insert, delete, substitute: cost 1 each).
size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace frugal::planner
