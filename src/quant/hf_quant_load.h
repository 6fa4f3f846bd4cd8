// Loading the quantized linears of a Hugging Face checkpoint (quant/hf_quant_config.h formats)
// into engine dtypes: each linear is unpacked (quant/pack.h) and repacked into the dtype that
// holds it exactly (quant/engine_pack.h: Q4_0/Q4_1/Q8_0, I4_G64(A)/I4_G128(A), I8_ROW,
// E4M3_ROW), or dequantized to F16 when no engine dtype holds it (act-order g_idx, 2/3-bit,
// 4-bit per channel, other group sizes), with the reason reported.
//
// Each linear's bits and group come from its tensor shapes (qweight rows = in·bits/32 with in =
// len(g_idx); scales rows = number of groups), so GPTQModel "dynamic" per-module overrides load
// too; the config's method decides the layout and the zero convention.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "formats/safetensors.h"
#include "quant/hf_quant_config.h"
#include "tensor/tensor.h"

namespace frugal::quant {

struct LoadedLinear {
  TensorView view;                      // [out, in] in an engine dtype, data in `buffer`
  std::shared_ptr<const void> buffer;
  std::string fallback;                 // why it was dequantized to F16; empty when repacked exactly
};

// `module`: e.g. "model.layers.0.self_attn.q_proj". nullopt when the module has no quantized
// tensors (no .qweight, and no .weight_scale for compressed-tensors/fp8): it is a float tensor.
// Corrupt naming the tensor for missing or inconsistent tensors.
Result<std::optional<LoadedLinear>> load_quantized_linear(const safetensors::SafetensorsModel& st,
                                                          const HfQuantConfig& c, const std::string& module);

// True when `module` has quantized tensors in this checkpoint.
bool has_quantized_linear(const safetensors::SafetensorsModel& st, const HfQuantConfig& c, const std::string& module);

}  // namespace frugal::quant
