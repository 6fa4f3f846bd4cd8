#include "quant/hf_quant_config.h"

#include <filesystem>
#include <fstream>
#include <regex>

#include <fmt/format.h>

namespace frugal::quant {

using json = nlohmann::json;

const char* hf_quant_method_name(HfQuantMethod m) {
  switch (m) {
    case HfQuantMethod::kGptq: return "gptq";
    case HfQuantMethod::kAwq: return "awq";
    case HfQuantMethod::kCompressedTensors: return "compressed-tensors";
    case HfQuantMethod::kFp8: return "fp8";
  }
  return "?";
}

bool HfQuantConfig::ignores(const std::string& module) const {
  for (const std::string& p : ignore) {
    if (p.rfind("re:", 0) == 0) {
      try {
        if (std::regex_search(module, std::regex(p.substr(3)), std::regex_constants::match_continuous)) return true;
      } catch (const std::regex_error&) {
        // an unparsable pattern matches nothing
      }
    } else if (p == module) {
      return true;
    }
  }
  return false;
}

namespace {

// compressed-tensors quantization args of one tensor kind.
json ct_args(bool is_float, const char* strategy, bool dynamic) {
  return {{"num_bits", 8},         {"type", is_float ? "float" : "int"},
          {"symmetric", true},     {"group_size", nullptr},
          {"strategy", strategy},  {"block_structure", nullptr},
          {"dynamic", dynamic},    {"actorder", nullptr},
          {"observer", dynamic ? json(nullptr) : json("minmax")}, {"observer_kwargs", json::object()}};
}

class Reader {
 public:
  Reader(const json& j, const std::string& where) : j_(j), where_(where) {}
  const json& raw() const { return j_; }

  Result<int64_t> integer(const char* f, std::optional<int64_t> fallback) const {
    auto it = j_.find(f);
    if (it == j_.end() || it->is_null()) {
      if (fallback) return *fallback;
      return NotFound(fmt::format("{}: quantization_config needs '{}'", where_, f));
    }
    if (!it->is_number_integer()) return Corrupt(fmt::format("{}: quantization_config '{}' must be an integer", where_, f));
    return it->get<int64_t>();
  }
  Result<bool> boolean(const char* f, bool fallback) const {
    auto it = j_.find(f);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Corrupt(fmt::format("{}: quantization_config '{}' must be true or false", where_, f));
    return it->get<bool>();
  }
  Result<std::string> string(const char* f, const std::string& fallback) const {
    auto it = j_.find(f);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_string()) return Corrupt(fmt::format("{}: quantization_config '{}' must be a string", where_, f));
    return it->get<std::string>();
  }
  Result<std::vector<std::string>> strings(const char* f) const {
    std::vector<std::string> out;
    auto it = j_.find(f);
    if (it == j_.end() || it->is_null()) return out;
    if (!it->is_array()) return Corrupt(fmt::format("{}: quantization_config '{}' must be a list", where_, f));
    for (const json& x : *it) {
      if (!x.is_string()) return Corrupt(fmt::format("{}: quantization_config '{}' must list strings", where_, f));
      out.push_back(x.get<std::string>());
    }
    return out;
  }

 private:
  const json& j_;
  const std::string& where_;
};

Status group_from_json(int64_t g, const std::string& where, int64_t* out) {
  if (g == -1 || g == 0) { *out = 0; return Status::Ok(); }
  if (g < 0) return Corrupt(fmt::format("{}: group_size {} is invalid", where, g));
  *out = g;
  return Status::Ok();
}

Result<HfQuantConfig> parse_gptq(const Reader& r, const std::string& where) {
  HfQuantConfig c;
  c.method = HfQuantMethod::kGptq;
  FRUGAL_ASSIGN_OR_RETURN(int64_t bits, r.integer("bits", std::nullopt));
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return Unsupported(fmt::format("{}: GPTQ bits {} (frugal reads 2, 3, 4, 8)", where, bits));
  c.bits = (int)bits;
  FRUGAL_ASSIGN_OR_RETURN(int64_t g, r.integer("group_size", -1));
  FRUGAL_RETURN_IF_ERROR(group_from_json(g, where, &c.group));
  FRUGAL_ASSIGN_OR_RETURN(c.sym, r.boolean("sym", true));
  FRUGAL_ASSIGN_OR_RETURN(c.desc_act, r.boolean("desc_act", false));
  FRUGAL_ASSIGN_OR_RETURN(c.static_groups, r.boolean("static_groups", false));
  FRUGAL_ASSIGN_OR_RETURN(std::string fmt_name, r.string("checkpoint_format", "gptq"));
  if (auto d = r.raw().find("dynamic"); d != r.raw().end() && d->is_object())
    c.dynamic = nlohmann::ordered_json::parse(d->dump());
  if (fmt_name == "gptq_v2") c.zeros_minus_one = false;
  else if (fmt_name != "gptq")
    return Unsupported(fmt::format("{}: GPTQ checkpoint_format '{}' (frugal reads gptq, gptq_v2)", where, fmt_name));
  return c;
}

Result<HfQuantConfig> parse_awq(const Reader& r, const std::string& where) {
  HfQuantConfig c;
  c.method = HfQuantMethod::kAwq;
  FRUGAL_ASSIGN_OR_RETURN(int64_t bits, r.integer("bits", std::optional<int64_t>(4)));
  if (bits != 4) return Unsupported(fmt::format("{}: AWQ bits {} (AutoAWQ GEMM is 4-bit)", where, bits));
  c.bits = 4;
  c.sym = false;
  FRUGAL_ASSIGN_OR_RETURN(int64_t g, r.integer("group_size", std::nullopt));
  FRUGAL_RETURN_IF_ERROR(group_from_json(g, where, &c.group));
  FRUGAL_ASSIGN_OR_RETURN(bool zp, r.boolean("zero_point", true));
  if (!zp) return Unsupported(where + ": AWQ zero_point false is not supported");
  FRUGAL_ASSIGN_OR_RETURN(std::string version, r.string("version", "gemm"));
  for (char& ch : version) ch = (char)std::tolower((unsigned char)ch);
  if (version != "gemm")
    return Unsupported(fmt::format("{}: AWQ version '{}' (frugal reads the GEMM layout)", where, version));
  FRUGAL_ASSIGN_OR_RETURN(c.ignore, r.strings("modules_to_not_convert"));
  return c;
}

Result<HfQuantConfig> parse_compressed_tensors(const json& q, const Reader& r, const std::string& where) {
  HfQuantConfig c;
  c.method = HfQuantMethod::kCompressedTensors;
  FRUGAL_ASSIGN_OR_RETURN(std::string format, r.string("format", ""));
  if (format != "float-quantized" && format != "int-quantized" && format != "naive-quantized")
    return Unsupported(fmt::format("{}: compressed-tensors format '{}' (frugal reads float-quantized, int-quantized)",
                                   where, format));
  auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->size() != 1)
    return Unsupported(where + ": compressed-tensors needs exactly one entry in config_groups");
  const json& g = groups->begin().value();
  auto w = g.find("weights");
  if (w == g.end() || !w->is_object()) return Corrupt(where + ": compressed-tensors group has no 'weights'");
  const Reader wr(*w, where);
  FRUGAL_ASSIGN_OR_RETURN(int64_t bits, wr.integer("num_bits", std::nullopt));
  FRUGAL_ASSIGN_OR_RETURN(std::string type, wr.string("type", "int"));
  FRUGAL_ASSIGN_OR_RETURN(std::string strategy, wr.string("strategy", "tensor"));
  FRUGAL_ASSIGN_OR_RETURN(bool symmetric, wr.boolean("symmetric", true));
  if (bits != 8 || (type != "int" && type != "float") || !symmetric || (strategy != "channel" && strategy != "tensor"))
    return Unsupported(fmt::format("{}: compressed-tensors weights {}-bit {} {} {} (frugal reads 8-bit symmetric "
                                   "int or float, per channel or per tensor)",
                                   where, bits, type, symmetric ? "symmetric" : "asymmetric", strategy));
  c.bits = 8;
  c.weight_float = type == "float";
  c.per_channel = strategy == "channel";
  if (auto a = g.find("input_activations"); a != g.end() && a->is_object()) {
    const Reader ar(*a, where);
    FRUGAL_ASSIGN_OR_RETURN(c.dynamic_activations, ar.boolean("dynamic", false));
    FRUGAL_ASSIGN_OR_RETURN(int64_t a_bits, ar.integer("num_bits", 8));
    FRUGAL_ASSIGN_OR_RETURN(std::string a_type, ar.string("type", "int"));
    FRUGAL_ASSIGN_OR_RETURN(std::string a_strategy, ar.string("strategy", "tensor"));
    FRUGAL_ASSIGN_OR_RETURN(bool a_sym, ar.boolean("symmetric", true));
    c.int8_token_activations = c.dynamic_activations && !c.weight_float && a_bits == 8 && a_type == "int" &&
                               a_strategy == "token" && a_sym;
  }
  FRUGAL_ASSIGN_OR_RETURN(c.ignore, r.strings("ignore"));
  return c;
}

Result<HfQuantConfig> parse_fp8(const json& q, const Reader& r, const std::string& where) {
  if (auto b = q.find("weight_block_size"); b != q.end() && !b->is_null())
    return Unsupported(where + ": block-wise FP8 (weight_block_size) is not supported");
  HfQuantConfig c;
  c.method = HfQuantMethod::kFp8;
  c.bits = 8;
  c.weight_float = true;
  c.per_channel = false;
  FRUGAL_ASSIGN_OR_RETURN(std::string act, r.string("activation_scheme", "dynamic"));
  c.dynamic_activations = act == "dynamic";
  FRUGAL_ASSIGN_OR_RETURN(c.ignore, r.strings("ignored_layers"));
  return c;
}

}  // namespace


nlohmann::ordered_json hf_quant_config_to_json(const HfQuantConfig& c) {
  using oj = nlohmann::ordered_json;
  const int64_t group = c.group > 0 ? c.group : -1;
  switch (c.method) {
    case HfQuantMethod::kGptq: {
      oj j{{"quant_method", "gptq"}, {"bits", c.bits}, {"group_size", group}, {"desc_act", c.desc_act},
           {"sym", c.sym}, {"static_groups", c.static_groups}, {"true_sequential", true},
           {"checkpoint_format", c.zeros_minus_one ? "gptq" : "gptq_v2"}};
      if (c.dynamic.is_object() && !c.dynamic.empty()) j["dynamic"] = c.dynamic;
      return j;
    }
    case HfQuantMethod::kAwq:
      return oj{{"quant_method", "awq"}, {"bits", 4}, {"group_size", group}, {"zero_point", true},
                {"version", "gemm"}, {"modules_to_not_convert", c.ignore.empty() ? oj(nullptr) : oj(c.ignore)}};
    case HfQuantMethod::kCompressedTensors:
    case HfQuantMethod::kFp8: {
      const char* strategy = c.per_channel ? "channel" : "tensor";
      json group_cfg = {{"targets", {"Linear"}},
                        {"weights", ct_args(c.weight_float, strategy, false)},
                        {"input_activations", c.dynamic_activations ? ct_args(c.weight_float, "token", true) : json(nullptr)},
                        {"output_activations", nullptr}};
      return oj{{"quant_method", "compressed-tensors"},
                {"format", c.weight_float ? "float-quantized" : "int-quantized"},
                {"quantization_status", "compressed"},
                {"config_groups", oj{{"group_0", oj::parse(group_cfg.dump())}}},
                {"ignore", c.ignore},
                {"kv_cache_scheme", nullptr}};
    }
  }
  return oj::object();
}

Result<HfQuantConfig> hf_quant_config_from_json(const json& q, const std::string& where) {
  if (!q.is_object()) return Corrupt(where + ": quantization_config is not a JSON object");
  const Reader r(q, where);
  FRUGAL_ASSIGN_OR_RETURN(std::string method, r.string("quant_method", ""));
  if (method == "gptq") return parse_gptq(r, where);
  if (method == "awq") return parse_awq(r, where);
  if (method == "compressed-tensors") return parse_compressed_tensors(q, r, where);
  if (method == "fp8") return parse_fp8(q, r, where);
  if (method.empty()) return Corrupt(where + ": quantization_config has no quant_method");
  return Unsupported(fmt::format("{}: quant_method '{}' is not supported (frugal reads gptq, awq, "
                                 "compressed-tensors, fp8)", where, method));
}

Result<std::optional<HfQuantConfig>> read_hf_quant_config(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* name : {"config.json", "quantize_config.json"}) {
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(p, ec)) continue;
    std::ifstream in(p);
    if (!in) return IoError("cannot read " + p.string());
    json j;
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      return Corrupt(p.string() + ": not valid JSON: " + e.what());
    }
    if (std::string(name) == "config.json") {
      auto it = j.find("quantization_config");
      if (it == j.end() || it->is_null()) continue;
      FRUGAL_ASSIGN_OR_RETURN(HfQuantConfig c, hf_quant_config_from_json(*it, p.string()));
      return std::optional<HfQuantConfig>(std::move(c));
    }
    // AutoGPTQ's quantize_config.json may omit quant_method.
    if (j.is_object() && !j.contains("quant_method")) j["quant_method"] = "gptq";
    FRUGAL_ASSIGN_OR_RETURN(HfQuantConfig c, hf_quant_config_from_json(j, p.string()));
    return std::optional<HfQuantConfig>(std::move(c));
  }
  return std::optional<HfQuantConfig>();
}

std::string describe(const HfQuantConfig& c) {
  const std::string group = c.group > 0 ? fmt::format("g{}", c.group) : "per-channel";
  switch (c.method) {
    case HfQuantMethod::kGptq:
      return fmt::format("gptq {}-bit {} {}{}{} (AutoGPTQ {})", c.bits, group, c.sym ? "sym" : "asym",
                         c.desc_act ? ", act-order" : "", c.static_groups ? ", static groups" : "",
                         c.zeros_minus_one ? "v1" : "v2");
    case HfQuantMethod::kAwq:
      return fmt::format("awq 4-bit {} asym (AutoAWQ GEMM)", group);
    case HfQuantMethod::kCompressedTensors:
    case HfQuantMethod::kFp8:
      return fmt::format("{} {} per-{}{}", hf_quant_method_name(c.method), c.weight_float ? "FP8 E4M3" : "INT8",
                         c.per_channel ? "channel" : "tensor",
                         c.dynamic_activations ? ", dynamic per-token activations (W8A8)" : " (weight-only)");
  }
  return "?";
}

}  // namespace frugal::quant
