#include "planner/model_import.h"

#include <charconv>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "planner/presets.h"

namespace frugal::planner {

namespace fs = std::filesystem;
using nlohmann::json;

Result<int> checked_int(int64_t v, const char* field) {
  if (v < 0 || v > INT32_MAX)
    return InvalidArgument(std::string(field) + " out of range (" + std::to_string(v) + ")");
  return (int)v;
}

ModelSpec spec_from_model_config(const ModelConfig& c) {
  ModelSpec m;
  m.name = c.name.empty() ? c.arch : c.name;
  m.family = c.arch;
  m.vocab_size = c.vocab_size;
  m.hidden = c.dim;
  m.ffn_dim = c.hidden_dim;
  m.n_layers = c.n_layers;
  m.n_heads = c.n_heads;
  m.n_kv_heads = c.n_kv_heads;
  m.max_context = c.max_seq_len;
  m.tied_embeddings = c.tied_embeddings;
  return m;
}

namespace {

// Field readers: NotFound naming a missing required field, InvalidArgument for a wrong type.
class JsonFields {
 public:
  JsonFields(const json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}

  // The first of `keys` present; required -> NotFound naming keys[0] (and the alternatives).
  Result<int64_t> integer(std::initializer_list<const char*> keys, bool required, int64_t dflt = 0) const {
    for (const char* k : keys) {
      auto it = j_.find(k);
      if (it == j_.end() || it->is_null()) continue;
      if (!it->is_number_integer() && !it->is_number_unsigned())
        return InvalidArgument(origin_ + ": field '" + k + "' must be an integer");
      return it->get<int64_t>();
    }
    if (!required) return dflt;
    std::string names;
    for (const char* k : keys) names += (names.empty() ? "'" : " or '") + std::string(k) + "'";
    return NotFound(origin_ + ": missing required field " + names);
  }
  Result<bool> boolean(const char* key, bool dflt) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return dflt;
    if (!it->is_boolean()) return InvalidArgument(origin_ + ": field '" + key + "' must be true or false");
    return it->get<bool>();
  }
  std::string string(const char* key) const {
    auto it = j_.find(key);
    return it != j_.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

 private:
  const json& j_;
  std::string origin_;
};

Status read_llama_like(const JsonFields& f, const std::string& type, ModelSpec& m) {
  FRUGAL_ASSIGN_OR_RETURN(m.hidden, f.integer({"hidden_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(m.ffn_dim, f.integer({"intermediate_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t layers, f.integer({"num_hidden_layers"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t heads, f.integer({"num_attention_heads"}, true));
  FRUGAL_ASSIGN_OR_RETURN(m.vocab_size, f.integer({"vocab_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t kv, f.integer({"num_key_value_heads"}, false, heads));
  FRUGAL_ASSIGN_OR_RETURN(m.head_dim, f.integer({"head_dim"}, false, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.max_context, f.integer({"max_position_embeddings"}, false, 0));
  const bool gemma = type == "gemma" || type == "gemma2";
  FRUGAL_ASSIGN_OR_RETURN(m.tied_embeddings, f.boolean("tie_word_embeddings", gemma));
  FRUGAL_ASSIGN_OR_RETURN(bool attn_bias, f.boolean("attention_bias", type == "qwen2"));
  FRUGAL_ASSIGN_OR_RETURN(bool mlp_bias, f.boolean("mlp_bias", false));
  FRUGAL_ASSIGN_OR_RETURN(m.sliding_window, f.integer({"sliding_window"}, false, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t experts, f.integer({"num_local_experts", "num_experts"}, false, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t top_k, f.integer({"num_experts_per_tok"}, false, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.n_layers, checked_int(layers, "num_hidden_layers"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_heads, checked_int(heads, "num_attention_heads"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_kv_heads, checked_int(kv, "num_key_value_heads"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_experts, checked_int(experts, "num_local_experts"));
  FRUGAL_ASSIGN_OR_RETURN(m.experts_per_token, checked_int(top_k, "num_experts_per_tok"));
  // Qwen2 puts biases on Q/K/V only; Llama's attention_bias covers Q/K/V and O.
  m.qkv_bias = attn_bias;
  m.attn_out_bias = attn_bias && type != "qwen2";
  m.ffn_bias = mlp_bias;
  if (type == "gemma2") m.norms_per_layer = 4;
  return Status::Ok();
}

Status read_falcon(const JsonFields& f, ModelSpec& m) {
  FRUGAL_ASSIGN_OR_RETURN(m.hidden, f.integer({"hidden_size", "n_embed"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t layers, f.integer({"num_hidden_layers", "n_layer"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t heads, f.integer({"num_attention_heads", "n_head"}, true));
  FRUGAL_ASSIGN_OR_RETURN(m.vocab_size, f.integer({"vocab_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(bool new_arch, f.boolean("new_decoder_architecture", false));
  FRUGAL_ASSIGN_OR_RETURN(bool multi_query, f.boolean("multi_query", true));
  FRUGAL_ASSIGN_OR_RETURN(bool parallel, f.boolean("parallel_attn", true));
  FRUGAL_ASSIGN_OR_RETURN(bool bias, f.boolean("bias", false));
  FRUGAL_ASSIGN_OR_RETURN(m.ffn_dim, f.integer({"ffn_hidden_size"}, false, 4 * m.hidden));
  FRUGAL_ASSIGN_OR_RETURN(m.max_context, f.integer({"max_position_embeddings"}, false, 2048));
  FRUGAL_ASSIGN_OR_RETURN(m.tied_embeddings, f.boolean("tie_word_embeddings", true));
  int64_t kv = heads;
  if (new_arch) {
    FRUGAL_ASSIGN_OR_RETURN(kv, f.integer({"num_kv_heads", "n_head_kv"}, true));
  } else if (multi_query) {
    kv = 1;  // num_kv_heads in such configs is ignored by the model code
  }
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_ln, f.integer({"num_ln_in_parallel_attn"}, false, 2));
  FRUGAL_ASSIGN_OR_RETURN(m.n_layers, checked_int(layers, "num_hidden_layers"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_heads, checked_int(heads, "num_attention_heads"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_kv_heads, checked_int(kv, "num_kv_heads"));
  FRUGAL_ASSIGN_OR_RETURN(const int n_ln_i, checked_int(n_ln, "num_ln_in_parallel_attn"));
  m.ffn = FfnKind::kPlain;
  m.norm = NormKind::kLayerNorm;
  m.parallel_block = parallel;
  m.norms_per_layer = new_arch ? n_ln_i : (parallel ? 1 : 2);
  m.qkv_bias = m.attn_out_bias = m.ffn_bias = bias;
  return Status::Ok();
}

Status read_bigcode(const JsonFields& f, ModelSpec& m) {
  FRUGAL_ASSIGN_OR_RETURN(m.hidden, f.integer({"n_embd", "hidden_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t layers, f.integer({"n_layer", "num_hidden_layers"}, true));
  FRUGAL_ASSIGN_OR_RETURN(int64_t heads, f.integer({"n_head", "num_attention_heads"}, true));
  FRUGAL_ASSIGN_OR_RETURN(m.vocab_size, f.integer({"vocab_size"}, true));
  FRUGAL_ASSIGN_OR_RETURN(m.ffn_dim, f.integer({"n_inner"}, false, 4 * m.hidden));
  FRUGAL_ASSIGN_OR_RETURN(bool multi_query, f.boolean("multi_query", true));
  FRUGAL_ASSIGN_OR_RETURN(m.learned_positions, f.integer({"n_positions"}, false, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.tied_embeddings, f.boolean("tie_word_embeddings", true));
  m.max_context = m.learned_positions;
  FRUGAL_ASSIGN_OR_RETURN(m.n_layers, checked_int(layers, "n_layer"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_heads, checked_int(heads, "n_head"));
  m.n_kv_heads = multi_query ? 1 : m.n_heads;
  m.ffn = FfnKind::kPlain;
  m.norm = NormKind::kLayerNorm;
  m.qkv_bias = m.attn_out_bias = m.ffn_bias = true;
  return Status::Ok();
}

}  // namespace

Result<ModelSpec> spec_from_hf_json_text(const std::string& text, const std::string& origin) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(origin + ": not valid JSON");
  if (!j.is_object()) return InvalidArgument(origin + ": expected a JSON object");
  const JsonFields f(j, origin);
  ModelSpec m;
  std::string type = f.string("model_type");
  m.name = f.string("_name_or_path");
  if (m.name.empty()) m.name = fs::path(origin).parent_path().filename().string();
  if (m.name.empty()) m.name = origin;
  if (type == "RefinedWeb" || type == "RefinedWebModel") type = "falcon";
  m.family = type.empty() ? "llama" : type;
  if (type == "falcon") {
    FRUGAL_RETURN_IF_ERROR(read_falcon(f, m));
  } else if (type == "gpt_bigcode") {
    FRUGAL_RETURN_IF_ERROR(read_bigcode(f, m));
  } else {
    static const char* kKnown[] = {"", "llama", "mistral", "mixtral", "qwen2", "gemma", "gemma2"};
    bool known = false;
    for (const char* k : kKnown) known = known || type == k;
    if (!known) m.family = type + " (read as Llama-like)";
    FRUGAL_RETURN_IF_ERROR(read_llama_like(f, type, m));
  }
  FRUGAL_RETURN_IF_ERROR(m.validate());
  return m;
}

Result<ModelSpec> spec_from_hf_json(const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) p /= "config.json";
  std::ifstream in(p, std::ios::binary);
  if (!in) return NotFound("cannot open '" + p.string() + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return spec_from_hf_json_text(ss.str(), p.string());
}

Result<ModelSpec> spec_from_dims(std::string_view dims) {
  std::map<std::string, std::string> kv;
  while (!dims.empty()) {
    const size_t comma = dims.find(',');
    std::string_view item = dims.substr(0, comma);
    dims = comma == std::string_view::npos ? std::string_view() : dims.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      return InvalidArgument("dims: expected key=value, got '" + std::string(item) + "'");
    std::string key(item.substr(0, eq));
    for (char& c : key) c = c == '-' ? '_' : c;
    kv[key] = std::string(item.substr(eq + 1));
  }
  auto num = [&](const char* key, bool required, int64_t dflt) -> Result<int64_t> {
    auto it = kv.find(key);
    if (it == kv.end()) {
      if (required) return NotFound(std::string("dims: missing required key '") + key + "'");
      return dflt;
    }
    int64_t v = 0;
    const std::string& t = it->second;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size())
      return InvalidArgument(std::string("dims: '") + key + "' must be an integer, got '" + t + "'");
    return v;
  };
  ModelSpec m;
  m.name = kv.count("name") ? kv["name"] : "custom";
  m.family = "custom";
  FRUGAL_ASSIGN_OR_RETURN(int64_t layers, num("layers", true, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.hidden, num("hidden", true, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t heads, num("heads", true, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.ffn_dim, num("ffn", true, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.vocab_size, num("vocab", true, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t kvh, num("kv_heads", false, heads));
  FRUGAL_ASSIGN_OR_RETURN(m.head_dim, num("head_dim", false, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.max_context, num("context", false, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t experts, num("experts", false, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t top_k, num("top_k", false, 0));
  FRUGAL_ASSIGN_OR_RETURN(int64_t tied, num("tied", false, 0));
  FRUGAL_ASSIGN_OR_RETURN(m.n_layers, checked_int(layers, "dims: layers"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_heads, checked_int(heads, "dims: heads"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_kv_heads, checked_int(kvh, "dims: kv_heads"));
  FRUGAL_ASSIGN_OR_RETURN(m.n_experts, checked_int(experts, "dims: experts"));
  FRUGAL_ASSIGN_OR_RETURN(m.experts_per_token, checked_int(top_k, "dims: top_k"));
  m.tied_embeddings = tied != 0;
  if (kv.count("ffn_kind")) {
    if (kv["ffn_kind"] == "plain") m.ffn = FfnKind::kPlain;
    else if (kv["ffn_kind"] != "gated") return InvalidArgument("dims: ffn_kind must be gated or plain");
  }
  if (kv.count("norm")) {
    if (kv["norm"] == "layernorm") m.norm = NormKind::kLayerNorm;
    else if (kv["norm"] != "rms") return InvalidArgument("dims: norm must be rms or layernorm");
  }
  static const char* kKnown[] = {"layers", "hidden", "heads", "ffn", "vocab", "kv_heads", "head_dim",
                                 "context", "experts", "top_k", "tied", "ffn_kind", "norm", "name"};
  for (const auto& [k, v] : kv) {
    bool known = false;
    for (const char* n : kKnown) known = known || k == n;
    if (!known) return InvalidArgument("dims: unknown key '" + k + "'");
  }
  FRUGAL_RETURN_IF_ERROR(m.validate());
  return m;
}

Result<ModelInput> resolve_model(const std::string& name_or_path) {
  std::error_code ec;
  const fs::path p(name_or_path);
  const bool exists = fs::exists(p, ec);
  ModelInput in;
  if (exists && p.extension() == ".gguf") {
    FRUGAL_ASSIGN_OR_RETURN(gguf::GgufFile g, gguf::GgufFile::open(name_or_path));
    FileWeights fw;
    FRUGAL_ASSIGN_OR_RETURN(in.spec, spec_from_gguf(g, &fw));
    in.file = std::move(fw);
    in.source = "GGUF: " + name_or_path;
    return in;
  }
  if (exists && (fs::is_directory(p, ec) || p.extension() == ".json")) {
    FRUGAL_ASSIGN_OR_RETURN(in.spec, spec_from_hf_json(name_or_path));
    in.source = "config.json: " + name_or_path;
    return in;
  }
  if (exists) return InvalidArgument("'" + name_or_path + "' is neither a .gguf file, a config.json nor a directory holding one");
  const bool looks_like_path = name_or_path.find(".gguf") != std::string::npos ||
                               name_or_path.find(".json") != std::string::npos ||
                               name_or_path.find("./") == 0 || (!name_or_path.empty() && name_or_path[0] == '/');
  if (looks_like_path) return NotFound("no such file: '" + name_or_path + "'");
  FRUGAL_ASSIGN_OR_RETURN(in.spec, find_preset(name_or_path));
  in.source = "preset";
  return in;
}

}  // namespace frugal::planner
