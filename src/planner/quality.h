// Quality tiers for weight and KV formats, from published measurements until frugal's own
// evaluation lab reports its numbers (then that table replaces this one, format by format).
//   A  lossless in practice   (perplexity change <= 0.02 on a 7B model)
//   B  small loss             (<= 0.10)
//   C  visible loss           (<= 0.30)
//   D  large loss             (> 0.30)
#pragma once

#include <string>

#include "planner/formats.h"

namespace frugal::planner {

struct QualityNote {
  char tier = 'A';
  double delta_ppl = 0;  // typical perplexity increase on a 7B model; < 0 unknown
  const char* source = "";
};

QualityNote weight_quality(WeightFormat f);
QualityNote kv_quality(KvFormat f);
// The worse of the two tiers.
char combined_tier(char a, char b);

}  // namespace frugal::planner
