// ModelConfig from a Hugging Face config.json (see model_config_io.h).
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/mapped_file.h"
#include "model/model_config_io.h"

namespace frugal {

namespace {

using json = nlohmann::json;

// Field access with errors that name the file and the field. A JSON null counts as absent.
class Fields {
 public:
  Fields(const std::string& path, const json& j) : path_(path), j_(j) {}

  const json* get(const char* field) const {
    auto it = j_.find(field);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  Result<int64_t> integer(const char* field, int64_t max, const int64_t* fallback = nullptr) const {
    const json* v = get(field);
    if (!v) {
      if (fallback) return *fallback;
      return NotFound(path_ + ": required field '" + field + "' is missing");
    }
    if (!v->is_number_integer())
      return Corrupt(path_ + ": field '" + field + "' must be an integer, is " + v->dump());
    const int64_t x = v->get<int64_t>();
    if (v->is_number_unsigned() ? v->get<uint64_t>() > (uint64_t)max : x > max)
      return Corrupt(path_ + ": field '" + field + "' value " + v->dump() + " is out of range");
    return x;
  }

  Result<double> number(const char* field, const double* fallback = nullptr) const {
    const json* v = get(field);
    if (!v) {
      if (fallback) return *fallback;
      return NotFound(path_ + ": required field '" + field + "' is missing");
    }
    if (!v->is_number())
      return Corrupt(path_ + ": field '" + field + "' must be a number, is " + v->dump());
    return v->get<double>();
  }

  Result<bool> boolean(const char* field, bool fallback) const {
    const json* v = get(field);
    if (!v) return fallback;
    if (!v->is_boolean())
      return Corrupt(path_ + ": field '" + field + "' must be true or false, is " + v->dump());
    return v->get<bool>();
  }

 private:
  const std::string& path_;
  const json& j_;
};

Status check_supported(const std::string& path, const Fields& fl) {
  if (const json* a = fl.get("architectures"); a && a->is_array() && !a->empty()) {
    bool ok = false;
    for (const json& x : *a)
      if (x.is_string() && (x == "LlamaForCausalLM" || x == "MistralForCausalLM")) ok = true;
    if (!ok)
      return Unsupported(path + ": architectures " + a->dump() +
                         " not supported (frugal reads LlamaForCausalLM, MistralForCausalLM)");
  }
  if (const json* act = fl.get("hidden_act"); act && !(act->is_string() && *act == "silu"))
    return Unsupported(path + ": hidden_act " + act->dump() + " is not supported (only silu)");
  // RoPE scaling (linear, dynamic, yarn, llama3) changes the rotation angles; running without it
  // would silently give wrong outputs, so refuse until ModelConfig carries it.
  if (const json* rs = fl.get("rope_scaling"); rs && !rs->is_null())
    return Unsupported(path + ": rope_scaling " + rs->dump() + " is not implemented yet");
  for (const char* bias : {"attention_bias", "mlp_bias"}) {
    FRUGAL_ASSIGN_OR_RETURN(bool b, fl.boolean(bias, false));
    if (b) return Unsupported(path + ": " + bias + " = true is not supported");
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> config_from_hf_json(const std::string& config_json_path) {
  std::string path = config_json_path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) path = (std::filesystem::path(path) / "config.json").string();
  FRUGAL_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  json j;
  try {
    const char* b = reinterpret_cast<const char*>(file.data());
    j = json::parse(b, b + file.size());
  } catch (const json::exception& e) {
    return Corrupt(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Corrupt(path + ": config is not a JSON object");
  const Fields fl(path, j);
  FRUGAL_RETURN_IF_ERROR(check_supported(path, fl));

  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
  ModelConfig c;
  c.arch = "llama";
  if (const json* n = fl.get("_name_or_path"); n && n->is_string()) c.name = n->get<std::string>();
  FRUGAL_ASSIGN_OR_RETURN(c.dim, fl.integer("hidden_size", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(c.hidden_dim, fl.integer("intermediate_size", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_layers, fl.integer("num_hidden_layers", kIntMax));
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_heads, fl.integer("num_attention_heads", kIntMax));
  FRUGAL_ASSIGN_OR_RETURN(int64_t n_kv, fl.integer("num_key_value_heads", kIntMax, &n_heads));
  FRUGAL_ASSIGN_OR_RETURN(c.vocab_size, fl.integer("vocab_size", kI64Max));
  FRUGAL_ASSIGN_OR_RETURN(c.max_seq_len, fl.integer("max_position_embeddings", kI64Max));
  const double kDefaultTheta = 10000.0;
  FRUGAL_ASSIGN_OR_RETURN(double theta, fl.number("rope_theta", &kDefaultTheta));
  FRUGAL_ASSIGN_OR_RETURN(double eps, fl.number("rms_norm_eps"));
  FRUGAL_ASSIGN_OR_RETURN(c.tied_embeddings, fl.boolean("tie_word_embeddings", false));
  const int64_t kNoWindow = 0;
  FRUGAL_ASSIGN_OR_RETURN(int64_t window, fl.integer("sliding_window", kI64Max, &kNoWindow));
  c.n_layers = (int)n_layers;
  c.n_heads = (int)n_heads;
  c.n_kv_heads = (int)n_kv;
  c.rope_base = (float)theta;
  c.norm_eps = (float)eps;
  c.rope_layout = RopeLayout::kHalf;
  if (window > 0 && window < c.max_seq_len) c.max_seq_len = window;

  Status st = c.validate();
  if (!st.ok()) return Corrupt(path + ": " + st.message());
  const int64_t kHeadDim = c.head_dim();
  FRUGAL_ASSIGN_OR_RETURN(int64_t head_dim, fl.integer("head_dim", kI64Max, &kHeadDim));
  if (head_dim != c.head_dim())
    return Unsupported(path + ": head_dim " + std::to_string(head_dim) +
                       " differs from hidden_size / num_attention_heads = " +
                       std::to_string(c.head_dim()));
  return c;
}

}  // namespace frugal
