// --prefill-act: activations of the prefill GEMM (batches of more than one token).
//   f32   float activations, weights dequantized per panel (the float GEMM)
//   q8    every token's activations quantized to int8 blocks of 32 (as --decode-act q8 does per
//         matvec) and integer dot products on integer weight formats (Q8_0, Q4_0, Q4_1, I4_G*,
//         I8_ROW); float weight formats keep the float GEMM (backend/cpu/gemm_q8.h), and so do
//         8-bit weights on CPUs without AVX-512 VNNI (no faster there)
//   auto  q8 for batches of at least kPrefillQ8MinTokens tokens, f32 for shorter ones (default)
// Why auto: a 512-token prefill needs the int8 GEMM to be 5x decode on an AVX2 machine whose
// decode runs near the bandwidth roofline (the float GEMM is bounded by the FMA peak at ~2.8x;
// bench/RESULTS.md, session 6), while q8 costs measured quality on SmolLM2-135M Q4_1: wikitext-2
// perplexity (ctx 512, 8 windows) 30.64 -> 30.77 (+0.4%), mean KL 3.5e-3 over a 64-token prefill
// (model_prefill_act_test), and it flips the greedy answer of CliRun.GreedyChatAnswers ("Paris" ->
// "L'Étoile, ..."). Short prompts (chat turns) take little prefill time either way and stay exact;
// long ones get the 2-3x. perplexity keeps f32 by default (the weights' quality alone).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "backend/cpu/ops.h"
#include "model/prefill_activations.h"

namespace frugal::cli {

inline constexpr const char* kPrefillActDefault = "auto";
// auto's threshold (tokens in one prefill batch); see bench/RESULTS.md, session 6.
inline constexpr int64_t kPrefillQ8MinTokens = 64;

inline CLI::Option* add_prefill_act_option(CLI::App* sub, std::string* v) {
  return sub->add_option("--prefill-act", *v,
                         "prefill GEMM activations: f32 (float GEMM), q8 (int8 blocks, integer "
                         "dot products on integer weight formats), auto (q8 for batches of 64+ "
                         "tokens, f32 below)")
      ->check(CLI::IsMember({"f32", "q8", "auto"}))
      ->capture_default_str();
}

inline PrefillActivations prefill_act(const std::string& v) {
  if (v == "q8") return {cpu::ActPrecision::kQ8};
  if (v == "auto") return {cpu::ActPrecision::kQ8, kPrefillQ8MinTokens};
  return {cpu::ActPrecision::kF32};
}

}  // namespace frugal::cli
