// --act-quant: W8A8 activations for linears stored as I8_ROW (SmoothQuant / INT8 per-channel).
//   auto  (default) what the checkpoint says: int8 per token when its quantization_config has
//         dynamic per-token int8 input_activations (frugal quantize --method smoothquant writes it)
//   token int8 per-token dynamic activations (one scale per token, int8 x int8 -> int32) for every
//         I8_ROW linear; other linears keep their path (--decode-act)
//   none  float activations for I8_ROW linears too (weight-only)
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "model/model.h"

namespace frugal::cli {

inline constexpr const char* kActQuantHelp =
    "activations of I8_ROW (INT8 per-channel / SmoothQuant) linears: auto (as the checkpoint's "
    "quantization_config says), token (W8A8: int8 per token, int8 x int8 -> int32), none (float)";

inline CLI::Option* add_act_quant_option(CLI::App* sub, std::string* v) {
  return sub->add_option("--act-quant", *v, kActQuantHelp)
      ->check(CLI::IsMember({"auto", "token", "none"}))
      ->capture_default_str();
}

inline void apply_act_quant(const std::string& v, Model& m) {
  if (v == "token") m.int8_token_activations = true;
  else if (v == "none") m.int8_token_activations = false;
}

}  // namespace frugal::cli
