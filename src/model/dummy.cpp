#include "model/dummy.h"

#include <cmath>
#include <new>

#include "model/owned_weights.h"
#include "planner/presets.h"

namespace frugal {

namespace {

// Why a preset cannot be run as a Llama decoder, or "" when it can.
std::string not_llama_reason(const planner::ModelSpec& s) {
  if (s.is_moe()) return "mixture of experts";
  if (s.ffn != planner::FfnKind::kGated) return "plain (GELU) MLP";
  if (s.norm != planner::NormKind::kRms || s.norms_per_layer != 2 || !s.final_norm)
    return "not two RMSNorms per layer";
  if (s.qkv_bias || s.attn_out_bias || s.ffn_bias) return "linear biases";
  if (s.learned_positions > 0) return "learned position table";
  if (s.parallel_block) return "parallel attention/FFN block";
  if (s.head_dim > 0 && s.head_dim * s.n_heads != s.hidden) return "head_dim != hidden/heads";
  return "";
}

ModelConfig tiny_config() {
  ModelConfig c;
  c.name = "tiny";
  c.vocab_size = 512;
  c.dim = 128;
  c.hidden_dim = 256;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.max_seq_len = 4096;
  c.tied_embeddings = true;
  return c;
}

// splitmix64: a well-mixed 64-bit value from any 64-bit input.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Row `row` of tensor number `tensor`: uniform in [-a, a], a = 0.02*sqrt(3).
void random_row(uint64_t seed, uint64_t tensor, int64_t row, float* out, int64_t n) {
  const float a = 0.02f * std::sqrt(3.0f);
  uint64_t s = mix(mix(seed ^ mix(tensor)) ^ (uint64_t)row);
  for (int64_t i = 0; i < n; ++i) {
    s = mix(s);
    const float u = (float)(s >> 40) * (1.0f / 16777216.0f);  // [0, 1), 24 random bits
    out[i] = (2.0f * u - 1.0f) * a;
  }
}

}  // namespace

Result<ModelConfig> dummy_config(std::string_view arch) {
  if (arch == "tiny") return tiny_config();
  const planner::PresetInfo* info = planner::find_preset_info(arch);
  if (!info) {
    std::string msg = "unknown dummy architecture '" + std::string(arch) + "'";
    const std::vector<std::string> near = planner::closest_preset_names(arch);
    if (!near.empty()) msg += "; did you mean '" + near[0] + "'?";
    msg += " (Llama-family presets and 'tiny'; frugal plan --list-presets shows the presets)";
    return NotFound(msg);
  }
  const planner::ModelSpec s = info->make();
  if (const std::string why = not_llama_reason(s); !why.empty())
    return Unsupported("dummy architecture '" + std::string(info->name) +
                       "' is not a Llama-family decoder (" + why + ")");
  ModelConfig c;
  c.name = info->name;
  c.vocab_size = s.vocab_size;
  c.dim = s.hidden;
  c.hidden_dim = s.ffn_dim;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.max_seq_len = s.max_context > 0 ? s.max_context : 4096;
  c.tied_embeddings = s.tied_embeddings;
  FRUGAL_RETURN_IF_ERROR(c.validate());
  return c;
}

std::vector<std::string> dummy_arch_names() {
  std::vector<std::string> names = {"tiny"};
  for (const planner::PresetInfo& p : planner::presets())
    if (not_llama_reason(p.make()).empty()) names.push_back(p.name);
  return names;
}

Result<Model> make_dummy_model(const ModelConfig& c, const DummyModelParams& p, ThreadPool& pool) {
  FRUGAL_RETURN_IF_ERROR(c.validate());
  FRUGAL_RETURN_IF_ERROR(check_dtype_fits(c, p.dtype));
  Model m;
  m.config = c;
  m.path = "dummy:" + (c.name.empty() ? std::string("model") : c.name);
  uint64_t tensor = 0;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols,
                    TensorView* out) -> Status {
    const uint64_t id = tensor++;
    const RowFill fill = [&, id, cols](int64_t r, float* row) {
      random_row(p.seed, id, r, row, cols);
    };
    FRUGAL_ASSIGN_OR_RETURN(*out, build_matrix(name, rows, cols, p.dtype, fill, pool, &m.storage));
    return Status::Ok();
  };
  // Norm weights: one shared buffer of ones (never written).
  auto ones = std::shared_ptr<float[]>(new (std::nothrow) float[c.dim]);
  if (!ones) return ResourceExhausted("cannot allocate the norm weights");
  for (int64_t i = 0; i < c.dim; ++i) ones[i] = 1.0f;
  m.storage.push_back(std::shared_ptr<const void>(ones, ones.get()));
  auto norm = [&](const std::string& name) {
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = {c.dim};
    v.data = ones.get();
    v.nbytes = (size_t)c.dim * sizeof(float);
    return v;
  };

  ModelWeights& w = m.weights;
  const int64_t q_dim = c.n_heads * c.head_dim();
  FRUGAL_RETURN_IF_ERROR(matrix("token_embd.weight", c.vocab_size, c.dim, &w.token_embd));
  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string b = "blk." + std::to_string(l) + ".";
    L.attn_norm = norm(b + "attn_norm.weight");
    L.ffn_norm = norm(b + "ffn_norm.weight");
    FRUGAL_RETURN_IF_ERROR(matrix(b + "attn_q.weight", q_dim, c.dim, &L.wq));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "attn_k.weight", c.kv_dim(), c.dim, &L.wk));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "attn_v.weight", c.kv_dim(), c.dim, &L.wv));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "attn_output.weight", c.dim, q_dim, &L.wo));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "ffn_gate.weight", c.hidden_dim, c.dim, &L.w_gate));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "ffn_up.weight", c.hidden_dim, c.dim, &L.w_up));
    FRUGAL_RETURN_IF_ERROR(matrix(b + "ffn_down.weight", c.dim, c.hidden_dim, &L.w_down));
  }
  w.output_norm = norm("output_norm.weight");
  if (c.tied_embeddings) {
    w.output = w.token_embd;
  } else {
    FRUGAL_RETURN_IF_ERROR(matrix("output.weight", c.vocab_size, c.dim, &w.output));
  }
  return m;
}

}  // namespace frugal
