// Mixed precision: a precision per weight tensor, from a policy or chosen under a byte budget.
//
// Policy: ordered rules "PATTERN=PRECISION" (precisions: quant/precision.h). A linear takes the
// precision of the first rule whose glob matches its name; linears no rule matches take the run's
// default (the method's precision). Names: blk.N.attn_q, blk.N.attn_k, blk.N.attn_v,
// blk.N.attn_output, blk.N.ffn_gate, blk.N.ffn_up, blk.N.ffn_down (a trailing ".weight" in a
// pattern is ignored). Globs: '*' any run of characters (dots included), '?' one character.
// token_embd and output are not re-quantized (they stay as loaded): a rule that matches only them
// is Unsupported, and a rule that matches no tensor at all is an error (a typo, most likely).
// Policy file: one rule per line, "PATTERN = PRECISION" or "PATTERN PRECISION"; '#' starts a comment.
//
// Budget: the linears are grouped into units (a layer's 7 linears, or its attention 4 and FFN 3).
// Every unit starts at the low precision; its sensitivity is the mean KL of the model output when
// only that unit is quantized (eval/sensitivity.h). Units are then raised to the high precision
// greedily by sensitivity per extra byte, skipping any that no longer fit, while the total stays
// within the budget (a greedy knapsack: optimal when the ratios decide, not in general).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "quant/precision.h"

namespace frugal::quant {

bool glob_match(std::string_view pattern, std::string_view name);
// "blk.L.<kLinearNames[i]>"
std::string linear_tensor_name(int L, int i);

struct PolicyRule {
  std::string pattern;
  Precision precision;
  std::string origin;  // "--keep f16:blk.0.*", "policy.txt:3" (for error messages)
};
struct Policy {
  std::vector<PolicyRule> rules;
};

// "PATTERN=PRECISION"
Result<PolicyRule> parse_rule(std::string_view text, std::string origin);
// --keep's "PRECISION:PATTERN"
Result<PolicyRule> parse_keep_flag(std::string_view text);
// A policy file's text; errors name `file_name` and the line.
Result<Policy> parse_policy(std::string_view text, const std::string& file_name);

using PrecisionMap = std::vector<std::array<std::optional<Precision>, 7>>;  // [layer][linear]
// The per-linear overrides a policy gives this model (checks every rule against the names).
Result<PrecisionMap> apply_policy(const Policy& p, const ModelConfig& c);

// "90000000", "85.5M", "1.2G" (K/M/G and KiB/MiB/GiB: powers of 1024). InvalidArgument otherwise.
Result<uint64_t> parse_byte_size(std::string_view s);

enum class BudgetUnitKind : uint8_t { kLayer, kBlock };
Result<BudgetUnitKind> parse_budget_unit(std::string_view s);  // "layer" | "block"

struct BudgetUnit {
  std::string name;            // "blk.3" or "blk.3.attn" / "blk.3.ffn"
  int layer = 0;
  std::vector<int> linears;    // kLinearNames indices not fixed by the policy
  uint64_t low_bytes = 0, high_bytes = 0;
  double sensitivity = 0;      // mean KL (nats) with only this unit at the low precision
};

// Units over the linears that `fixed` leaves open (a unit whose linears are all fixed is dropped).
std::vector<BudgetUnit> budget_units(const ModelConfig& c, BudgetUnitKind kind, const PrecisionMap& fixed,
                                     const Precision& low, const Precision& high);

struct BudgetChoice {
  std::vector<bool> high;      // per unit
  std::vector<size_t> order;   // units by KL saved per extra byte, best first (ties: lower index)
  uint64_t all_low_bytes = 0;  // fixed + every unit low
  uint64_t bytes = 0;          // the choice
};
// fixed_bytes: everything outside the units. ResourceExhausted naming the bytes when even the
// all-low choice exceeds the budget.
Result<BudgetChoice> choose_for_budget(const std::vector<BudgetUnit>& units, uint64_t fixed_bytes, uint64_t budget);

// The policy map with each unit set to its chosen precision.
PrecisionMap apply_budget_choice(PrecisionMap fixed, const std::vector<BudgetUnit>& units, const BudgetChoice& choice,
                                 const Precision& low, const Precision& high);

}  // namespace frugal::quant
