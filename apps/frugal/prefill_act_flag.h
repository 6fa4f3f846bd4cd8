// --prefill-act: activations of the prefill GEMM (batches of more than one token).
//   f32  float activations, weights dequantized per panel (the float GEMM)
//   q8   every token's activations quantized to int8 blocks of 32 (as --decode-act q8 does per
//        matvec) and integer dot products on integer weight formats (Q8_0, Q4_0, Q4_1, I4_G*,
//        I8_ROW); float weight formats keep the float GEMM (backend/cpu/gemm_q8.h), and so do
//        8-bit weights on CPUs without AVX-512 VNNI (no faster there)
// Default f32. q8 runs the prefill GEMM 2-3x faster on 4-bit weights (bench/RESULTS.md,
// 2026-11-30) at a measured cost on SmolLM2-135M Q4_1: wikitext-2 perplexity (ctx 512, 8 windows)
// 30.64 -> 30.77 (+0.4%), mean KL 3.5e-3 over a 64-token prefill (model_prefill_act_test), and
// it changes the greedy answer of CliRun.GreedyChatAnswers ("Paris" -> "L'Étoile, ..."), so it
// is not the default yet. perplexity keeps f32 whatever the default (the weights' quality alone).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "backend/cpu/ops.h"

namespace frugal::cli {

inline constexpr const char* kPrefillActDefault = "f32";

inline CLI::Option* add_prefill_act_option(CLI::App* sub, std::string* v) {
  return sub->add_option("--prefill-act", *v,
                         "prefill GEMM activations: f32 (float GEMM) or q8 (int8 blocks, integer "
                         "dot products on integer weight formats)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
}

inline cpu::ActPrecision prefill_act(const std::string& v) {
  return v == "q8" ? cpu::ActPrecision::kQ8 : cpu::ActPrecision::kF32;
}

}  // namespace frugal::cli
