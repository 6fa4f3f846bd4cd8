// The prefill GEMMs' activation precision policy of the CPU runner (model/llama.h).
#pragma once

#include <cstdint>

#include "backend/cpu/ops.h"

namespace frugal {

// Activations of the prefill GEMMs (batches of more than one token): kF32, the float GEMM; kQ8,
// each token quantized to int8 blocks once per matmul and integer dot products on integer weight
// formats (cpu::matmul). With kQ8 and q8_min_tokens > 0, batches of fewer tokens keep the float
// GEMM: short prompts (chat turns) stay exact, long ones get the int8 GEMM's 2-3x.
struct PrefillActivations {
  cpu::ActPrecision act = cpu::ActPrecision::kF32;
  int64_t q8_min_tokens = 0;

  // Implicit: a plain precision is the policy for every batch size.
  PrefillActivations(cpu::ActPrecision a = cpu::ActPrecision::kF32, int64_t min_tokens = 0)  // NOLINT
      : act(a), q8_min_tokens(min_tokens) {}
  // The precision of a batch of n tokens.
  cpu::ActPrecision for_batch(int64_t n) const {
    return act == cpu::ActPrecision::kQ8 && n >= q8_min_tokens ? cpu::ActPrecision::kQ8
                                                               : cpu::ActPrecision::kF32;
  }
};

}  // namespace frugal
