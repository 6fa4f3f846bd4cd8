#include "mixed_precision_flags.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "eval/sensitivity.h"
#include "quant/mixed_precision.h"

namespace frugal::cli {

void add_mixed_precision_flags(CLI::App* sub, MixedPrecisionFlags& f) {
  sub->add_option("--keep", f.keep, "mixed precision: PREC:PATTERN, e.g. f16:blk.0.* (repeatable; first match wins)");
  sub->add_option("--policy", f.policy, "mixed precision: file of 'PATTERN = PRECISION' rules");
  sub->add_option("--budget", f.budget, "mixed precision: model bytes to fit (K/M/G suffix); units chosen by KL sensitivity");
  sub->add_option("--budget-high", f.budget_high, "--budget: precision of the units kept high")->capture_default_str();
  sub->add_option("--budget-unit", f.budget_unit, "--budget: layer (7 linears) or block (attention / FFN)")
      ->capture_default_str();
  sub->add_option("--sens-windows", f.sens_windows, "--budget: calibration windows for the sensitivity")
      ->capture_default_str();
  sub->add_option("--sens-len", f.sens_len, "--budget: tokens per sensitivity window")->capture_default_str();
}

namespace {

void print_map(const Model& m, const quant::ModelQuantOptions& o, const std::map<int, std::string>& layer_notes) {
  using namespace quant;
  std::fprintf(stderr, "frugal: precision map (default %s):\n", precision_name(default_precision(o)).c_str());
  for (int L = 0; L < m.config.n_layers; ++L) {
    std::string line = fmt::format("  blk.{:<3}", L);
    for (int i = 0; i < 7; ++i) line += fmt::format(" {}={}", kLinearNames[i], precision_name(linear_precision(o, L, i)));
    if (auto it = layer_notes.find(L); it != layer_notes.end()) line += "  " + it->second;
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  const ModelBytes b = predicted_model_bytes(m, o);
  std::fprintf(stderr, "frugal: predicted model bytes (quant/layouts.h): %llu (linears %llu at %.3f bits/weight, other %llu)\n",
               (unsigned long long)b.total(), (unsigned long long)b.linears, b.linear_bits_per_weight(),
               (unsigned long long)b.other);
}

Result<std::vector<std::vector<int32_t>>> sensitivity_windows(const Model& m, const std::string& path, int64_t n,
                                                              int64_t len) {
  if (path.find("wikitext") != std::string::npos)
    return InvalidArgument("refusing to measure sensitivity on " + path + ": wikitext is the evaluation text");
  if (!m.tokenizer) return InvalidArgument(m.path + " carries no tokenizer");
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("cannot read calibration text " + path);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  if ((size_t)(n * len * 16) < text.size()) text.resize((size_t)(n * len * 16));
  return quant::calibration_windows(m.tokenizer->encode(text, false, false), n, len);
}

}  // namespace

Status apply_mixed_precision_flags(const MixedPrecisionFlags& f, const Model& m, quant::ModelQuantOptions& o,
                                   const std::string& calib_path, int threads) {
  using namespace quant;
  if (!mixed_precision_requested(f)) return Status::Ok();
  Policy pol;
  for (const std::string& k : f.keep) {
    FRUGAL_ASSIGN_OR_RETURN(PolicyRule r, parse_keep_flag(k));
    pol.rules.push_back(std::move(r));
  }
  if (!f.policy.empty()) {
    std::ifstream in(f.policy, std::ios::binary);
    if (!in) return NotFound("cannot read policy file " + f.policy);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    FRUGAL_ASSIGN_OR_RETURN(Policy p, parse_policy(text, f.policy));
    for (PolicyRule& r : p.rules) pol.rules.push_back(std::move(r));
  }
  FRUGAL_ASSIGN_OR_RETURN(PrecisionMap map, apply_policy(pol, m.config));
  o.per_linear = map;
  std::map<int, std::string> notes;
  if (!f.budget.empty()) {
    Result<uint64_t> budget_r = parse_byte_size(f.budget);
    if (!budget_r.ok()) return InvalidArgument("--budget: " + budget_r.status().message());
    const uint64_t budget = *budget_r;
    FRUGAL_ASSIGN_OR_RETURN(Precision high, parse_precision(f.budget_high));
    FRUGAL_ASSIGN_OR_RETURN(BudgetUnitKind kind, parse_budget_unit(f.budget_unit));
    const Precision low = default_precision(o);
    std::vector<BudgetUnit> units = budget_units(m.config, kind, map, low, high);
    // Everything outside the units: non-linear tensors and the policy's fixed linears.
    BudgetChoice none;
    none.high.assign(units.size(), false);
    ModelQuantOptions all_low = o;
    all_low.per_linear = apply_budget_choice(map, units, none, low, high);
    uint64_t fixed = predicted_model_bytes(m, all_low).total();
    for (const BudgetUnit& u : units) fixed -= u.low_bytes;
    // Fail fast (before measuring) when even the all-low choice does not fit.
    FRUGAL_RETURN_IF_ERROR(choose_for_budget(units, fixed, budget).status());
    FRUGAL_ASSIGN_OR_RETURN(std::vector<std::vector<int32_t>> wins,
                            sensitivity_windows(m, calib_path, f.sens_windows, f.sens_len));
    std::vector<std::span<const int32_t>> spans(wins.begin(), wins.end());
    ThreadPool pool(threads);
    std::fprintf(stderr, "frugal: sensitivity of %zu units (%s at %s, the rest as loaded) on %lld windows of %lld tokens of %s\n",
                 units.size(), f.budget_unit.c_str(), precision_name(low).c_str(), (long long)f.sens_windows,
                 (long long)f.sens_len, calib_path.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    CompareParams cp;
    cp.ctx = f.sens_len;
    FRUGAL_RETURN_IF_ERROR(measure_sensitivity(m, pool, spans, low, units, cp, [&](size_t done, size_t total) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\r  [%zu/%zu] elapsed %.0f s  eta %.0f s   ", done, total, el, el / done * (total - done));
      if (done == total) std::fputc('\n', stderr);
      std::fflush(stderr);
    }));
    FRUGAL_ASSIGN_OR_RETURN(BudgetChoice ch, choose_for_budget(units, fixed, budget));
    o.per_linear = apply_budget_choice(map, units, ch, low, high);
    for (size_t k = 0; k < units.size(); ++k) {
      std::string& n = notes[units[k].layer];
      n += fmt::format("{}{} KL {:.4f} -> {}", n.empty() ? "" : "; ", units[k].name, units[k].sensitivity,
                       ch.high[k] ? precision_name(high) : precision_name(low));
    }
    std::fprintf(stderr, "frugal: budget %llu bytes: all-%s needs %llu, chosen %llu (%zu of %zu units at %s)\n",
                 (unsigned long long)budget, precision_name(low).c_str(), (unsigned long long)ch.all_low_bytes,
                 (unsigned long long)ch.bytes, (size_t)std::count(ch.high.begin(), ch.high.end(), true), units.size(),
                 precision_name(high).c_str());
  }
  FRUGAL_RETURN_IF_ERROR(validate_for_model(o, m.config));
  print_map(m, o, notes);
  return Status::Ok();
}

}  // namespace frugal::cli
