#include "quant/mixed_precision.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <numeric>

#include <fmt/format.h>

#include "quant/model_bytes.h"
#include "quant/model_quantizer.h"

namespace frugal::quant {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string strip_weight(std::string_view p) {
  constexpr std::string_view kSuffix = ".weight";
  if (p.size() > kSuffix.size() && p.substr(p.size() - kSuffix.size()) == kSuffix) p.remove_suffix(kSuffix.size());
  return std::string(p);
}

Result<PolicyRule> make_rule(std::string_view pattern, std::string_view precision, std::string origin) {
  pattern = trim(pattern);
  precision = trim(precision);
  if (pattern.empty()) return InvalidArgument(origin + ": empty pattern");
  if (precision.empty()) return InvalidArgument(origin + ": missing precision");
  Result<Precision> p = parse_precision(precision);
  if (!p.ok()) return InvalidArgument(origin + ": " + p.status().message());
  return PolicyRule{strip_weight(pattern), *p, std::move(origin)};
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view s) {
  // Iterative matcher with one backtrack point for the last '*'.
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pat.size() && (pat[p] == '?' || pat[p] == s[i])) { ++p; ++i; }
    else if (p < pat.size() && pat[p] == '*') { star = p++; mark = i; }
    else if (star != std::string_view::npos) { p = star + 1; i = ++mark; }
    else return false;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

std::string linear_tensor_name(int L, int i) { return fmt::format("blk.{}.{}", L, kLinearNames[i]); }

Result<PolicyRule> parse_rule(std::string_view text, std::string origin) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument(fmt::format("{}: expected PATTERN=PRECISION, got '{}'", origin, text));
  return make_rule(text.substr(0, eq), text.substr(eq + 1), std::move(origin));
}

Result<PolicyRule> parse_keep_flag(std::string_view text) {
  const std::string origin = fmt::format("--keep {}", text);
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return InvalidArgument(fmt::format("{}: expected PRECISION:PATTERN (e.g. f16:blk.0.*)", origin));
  return make_rule(text.substr(colon + 1), text.substr(0, colon), origin);
}

Result<Policy> parse_policy(std::string_view text, const std::string& file_name) {
  Policy pol;
  int line_no = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    ++line_no;
    start = end + 1;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const std::string origin = fmt::format("{}:{}", file_name, line_no);
    const size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      FRUGAL_ASSIGN_OR_RETURN(PolicyRule r, make_rule(line.substr(0, eq), line.substr(eq + 1), origin));
      pol.rules.push_back(std::move(r));
      continue;
    }
    const size_t ws = line.find_first_of(" \t");
    if (ws == std::string_view::npos)
      return InvalidArgument(fmt::format("{}: expected 'PATTERN = PRECISION', got '{}'", origin, line));
    const std::string_view rest = trim(line.substr(ws));
    if (rest.find_first_of(" \t") != std::string_view::npos)
      return InvalidArgument(fmt::format("{}: expected 'PATTERN = PRECISION', got '{}'", origin, line));
    FRUGAL_ASSIGN_OR_RETURN(PolicyRule r, make_rule(line.substr(0, ws), rest, origin));
    pol.rules.push_back(std::move(r));
  }
  return pol;
}

Result<PrecisionMap> apply_policy(const Policy& p, const ModelConfig& c) {
  PrecisionMap map((size_t)c.n_layers);
  std::vector<bool> used(p.rules.size(), false);
  for (int L = 0; L < c.n_layers; ++L)
    for (int i = 0; i < 7; ++i) {
      const std::string name = linear_tensor_name(L, i);
      for (size_t r = 0; r < p.rules.size(); ++r) {
        if (!glob_match(p.rules[r].pattern, name)) continue;
        used[r] = true;
        if (!map[L][i]) map[L][i] = p.rules[r].precision;  // first match wins
      }
    }
  for (size_t r = 0; r < p.rules.size(); ++r) {
    if (used[r]) continue;
    const std::string& pat = p.rules[r].pattern;
    if (glob_match(pat, "token_embd") || glob_match(pat, "output"))
      return Unsupported(fmt::format("{}: '{}' names token_embd/output, which frugal quantize keeps as loaded",
                                     p.rules[r].origin, pat));
    return InvalidArgument(fmt::format("{}: pattern '{}' matches no tensor (names look like blk.0.attn_q, "
                                       "blk.*.ffn_down)",
                                       p.rules[r].origin, pat));
  }
  return map;
}

Result<uint64_t> parse_byte_size(std::string_view s) {
  const std::string_view t = trim(s);
  size_t i = 0;
  while (i < t.size() && (std::isdigit((unsigned char)t[i]) || t[i] == '.')) ++i;
  double v = 0;
  const std::string num(t.substr(0, i));
  char* end = nullptr;
  if (!num.empty()) v = std::strtod(num.c_str(), &end);
  if (num.empty() || end != num.c_str() + num.size() || !(v > 0))
    return InvalidArgument(fmt::format("'{}' is not a byte size (e.g. 90000000, 85.5M, 1G)", s));
  std::string suf(t.substr(i));
  for (char& c : suf) c = (char)std::toupper((unsigned char)c);
  double mult = 1;
  if (suf.empty() || suf == "B") mult = 1;
  else if (suf == "K" || suf == "KIB" || suf == "KB") mult = 1024.0;
  else if (suf == "M" || suf == "MIB" || suf == "MB") mult = 1024.0 * 1024;
  else if (suf == "G" || suf == "GIB" || suf == "GB") mult = 1024.0 * 1024 * 1024;
  else return InvalidArgument(fmt::format("'{}': unknown size unit '{}' (K, M, G)", s, suf));
  const double bytes = v * mult;
  if (bytes >= 1.8e19) return InvalidArgument(fmt::format("'{}' is too large", s));
  return (uint64_t)bytes;
}

Result<BudgetUnitKind> parse_budget_unit(std::string_view s) {
  if (s == "layer") return BudgetUnitKind::kLayer;
  if (s == "block") return BudgetUnitKind::kBlock;
  return InvalidArgument(fmt::format("budget unit must be 'layer' or 'block' (got '{}')", s));
}

std::vector<BudgetUnit> budget_units(const ModelConfig& c, BudgetUnitKind kind, const PrecisionMap& fixed,
                                     const Precision& low, const Precision& high) {
  std::vector<BudgetUnit> units;
  auto add = [&](int L, std::string name, std::initializer_list<int> linears) {
    BudgetUnit u;
    u.name = std::move(name);
    u.layer = L;
    for (int i : linears) {
      if (L < (int)fixed.size() && fixed[L][i]) continue;
      u.linears.push_back(i);
      u.low_bytes += linear_bytes(c, i, low);
      u.high_bytes += linear_bytes(c, i, high);
    }
    if (!u.linears.empty()) units.push_back(std::move(u));
  };
  for (int L = 0; L < c.n_layers; ++L) {
    if (kind == BudgetUnitKind::kLayer) {
      add(L, fmt::format("blk.{}", L), {0, 1, 2, 3, 4, 5, 6});
    } else {
      add(L, fmt::format("blk.{}.attn", L), {0, 1, 2, 3});
      add(L, fmt::format("blk.{}.ffn", L), {4, 5, 6});
    }
  }
  return units;
}

Result<BudgetChoice> choose_for_budget(const std::vector<BudgetUnit>& units, uint64_t fixed_bytes, uint64_t budget) {
  BudgetChoice ch;
  ch.all_low_bytes = fixed_bytes;
  for (const BudgetUnit& u : units) ch.all_low_bytes += u.low_bytes;
  if (ch.all_low_bytes > budget)
    return ResourceExhausted(fmt::format(
        "budget {} bytes is below the smallest choice: every unit at the low precision needs {} bytes ({} more)", budget,
        ch.all_low_bytes, ch.all_low_bytes - budget));
  ch.order.resize(units.size());
  std::iota(ch.order.begin(), ch.order.end(), 0);
  auto gain = [&](size_t i) {
    const BudgetUnit& u = units[i];
    const double extra = u.high_bytes > u.low_bytes ? (double)(u.high_bytes - u.low_bytes) : 1.0;
    return u.sensitivity / extra;
  };
  std::stable_sort(ch.order.begin(), ch.order.end(), [&](size_t a, size_t b) { return gain(a) > gain(b); });
  ch.high.assign(units.size(), false);
  ch.bytes = ch.all_low_bytes;
  for (size_t i : ch.order) {
    const BudgetUnit& u = units[i];
    if (u.high_bytes <= u.low_bytes) {  // raising costs nothing
      ch.high[i] = true;
      ch.bytes -= u.low_bytes - u.high_bytes;
      continue;
    }
    const uint64_t extra = u.high_bytes - u.low_bytes;
    if (ch.bytes + extra > budget) continue;
    ch.high[i] = true;
    ch.bytes += extra;
  }
  return ch;
}

PrecisionMap apply_budget_choice(PrecisionMap map, const std::vector<BudgetUnit>& units, const BudgetChoice& choice,
                                 const Precision& low, const Precision& high) {
  for (size_t u = 0; u < units.size(); ++u)
    for (int i : units[u].linears) {
      if ((int)map.size() <= units[u].layer) map.resize((size_t)units[u].layer + 1);
      map[units[u].layer][i] = choice.high[u] ? high : low;
    }
  return map;
}

}  // namespace frugal::quant
