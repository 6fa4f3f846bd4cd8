#include "planner/presets.h"

#include <algorithm>
#include <cctype>

namespace frugal::planner {

namespace {

// Llama-family defaults: RMSNorm x2 per layer, SwiGLU, no biases, untied.
ModelSpec llama_like(const char* name, const char* family, int64_t vocab, int64_t hidden,
                     int64_t ffn, int layers, int heads, int kv_heads, int64_t ctx) {
  ModelSpec m;
  m.name = name;
  m.family = family;
  m.vocab_size = vocab;
  m.hidden = hidden;
  m.ffn_dim = ffn;
  m.n_layers = layers;
  m.n_heads = heads;
  m.n_kv_heads = kv_heads;
  m.max_context = ctx;
  return m;
}

// meta-llama/Llama-2-*-hf config.json: vocab 32000, max_position_embeddings 4096.
ModelSpec Llama2_7B() { return llama_like("llama-2-7b", "llama", 32000, 4096, 11008, 32, 32, 32, 4096); }
ModelSpec Llama2_13B() { return llama_like("llama-2-13b", "llama", 32000, 5120, 13824, 40, 40, 40, 4096); }
ModelSpec Llama2_70B() { return llama_like("llama-2-70b", "llama", 32000, 8192, 28672, 80, 64, 8, 4096); }
// meta-llama/Llama-3.1-*: vocab 128256, max_position_embeddings 131072, 8 KV heads.
ModelSpec Llama31_8B() { return llama_like("llama-3.1-8b", "llama", 128256, 4096, 14336, 32, 32, 8, 131072); }
ModelSpec Llama31_70B() { return llama_like("llama-3.1-70b", "llama", 128256, 8192, 28672, 80, 64, 8, 131072); }
ModelSpec Llama31_405B() { return llama_like("llama-3.1-405b", "llama", 128256, 16384, 53248, 126, 128, 8, 131072); }
// meta-llama/Llama-3.2-1B: hidden 2048, 16 layers, 32 heads x 64 (8 KV heads), FFN 8192, tied.
ModelSpec Llama32_1B() {
  ModelSpec m = llama_like("llama-3.2-1b", "llama", 128256, 2048, 8192, 16, 32, 8, 131072);
  m.tied_embeddings = true;
  return m;
}

// mistralai/Mistral-7B-v0.1: sliding_window 4096, max_position_embeddings 32768.
ModelSpec Mistral7B() {
  ModelSpec m = llama_like("mistral-7b", "mistral", 32000, 4096, 14336, 32, 32, 8, 32768);
  m.sliding_window = 4096;
  return m;
}

// mistralai/Mixtral-8x7B-v0.1: 8 experts, top-2, router [8, 4096] per layer.
ModelSpec Mixtral8x7B() {
  ModelSpec m = llama_like("mixtral-8x7b", "mixtral", 32000, 4096, 14336, 32, 32, 8, 32768);
  m.n_experts = 8;
  m.experts_per_token = 2;
  return m;
}

// tiiuae/falcon-7b: hidden 4544, 71 heads x 64, multi_query (1 KV head), parallel_attn with a
// single LayerNorm (new_decoder_architecture false), 4h GELU MLP, no linear biases, vocab 65024.
// Embeddings tied (FalconConfig.tie_word_embeddings defaults to true).
ModelSpec Falcon7B() {
  ModelSpec m = llama_like("falcon-7b", "falcon", 65024, 4544, 4 * 4544, 32, 71, 1, 2048);
  m.ffn = FfnKind::kPlain;
  m.norm = NormKind::kLayerNorm;
  m.norms_per_layer = 1;
  m.parallel_block = true;
  m.tied_embeddings = true;
  return m;
}

// tiiuae/falcon-40b: hidden 8192, 128 heads x 64, 8 KV groups (new_decoder_architecture, two
// LayerNorms ln_attn / ln_mlp), 4h GELU MLP, vocab 65024, tied like Falcon-7B.
ModelSpec Falcon40B() {
  ModelSpec m = llama_like("falcon-40b", "falcon", 65024, 8192, 4 * 8192, 60, 128, 8, 2048);
  m.ffn = FfnKind::kPlain;
  m.norm = NormKind::kLayerNorm;
  m.norms_per_layer = 2;
  m.parallel_block = true;
  m.tied_embeddings = true;
  return m;
}

// bigcode/starcoder (GPT-BigCode): n_embd 6144, 40 layers, 48 heads, multi_query, n_inner 24576
// GELU MLP, biases on every linear, LayerNorm, learned positions (n_positions 8192), tied head.
ModelSpec StarCoder15B() {
  ModelSpec m = llama_like("starcoder-15b", "gpt_bigcode", 49152, 6144, 24576, 40, 48, 1, 8192);
  m.ffn = FfnKind::kPlain;
  m.norm = NormKind::kLayerNorm;
  m.qkv_bias = m.attn_out_bias = m.ffn_bias = true;
  m.learned_positions = 8192;
  m.tied_embeddings = true;
  return m;
}

// Qwen/Qwen2.5-7B: hidden 3584, 28 heads / 4 KV heads x 128, FFN 18944, bias on Q/K/V only,
// vocab 152064, untied, max_position_embeddings 131072.
ModelSpec Qwen25_7B() {
  ModelSpec m = llama_like("qwen2.5-7b", "qwen2", 152064, 3584, 18944, 28, 28, 4, 131072);
  m.qkv_bias = true;
  return m;
}

// google/gemma-2-9b: hidden 3584, 16 heads / 8 KV heads x head_dim 256 (q_dim 4096 != hidden),
// GeGLU FFN 14336, four RMSNorms per layer, vocab 256000, tied, sliding window 4096 on every
// other layer, max_position_embeddings 8192.
ModelSpec Gemma2_9B() {
  ModelSpec m = llama_like("gemma-2-9b", "gemma2", 256000, 3584, 14336, 42, 16, 8, 8192);
  m.head_dim = 256;
  m.norms_per_layer = 4;
  m.tied_embeddings = true;
  m.sliding_window = 4096;
  return m;
}

// HuggingFaceTB/SmolLM2-135M and -1.7B: tied, max_position_embeddings 8192.
ModelSpec SmolLM2_135M() {
  ModelSpec m = llama_like("smollm2-135m", "llama", 49152, 576, 1536, 30, 9, 3, 8192);
  m.tied_embeddings = true;
  return m;
}
ModelSpec SmolLM2_1_7B() {
  ModelSpec m = llama_like("smollm2-1.7b", "llama", 49152, 2048, 8192, 24, 32, 32, 8192);
  m.tied_embeddings = true;
  return m;
}

std::string normalise(std::string_view s) {
  std::string out;
  for (char c : s) {
    const char l = (char)std::tolower((unsigned char)c);
    out += (l == '_' || l == ' ') ? '-' : l;
  }
  return out;
}

// Spellings that should find a preset without an edit: "llama2-7b", "llama-2-7b-hf", hf ids.
std::string squash(std::string_view s) {
  std::string n = normalise(s);
  const size_t slash = n.rfind('/');
  if (slash != std::string::npos) n = n.substr(slash + 1);
  for (const char* suffix : {"-hf", "-v0.1", "-instruct", "-base"}) {
    const std::string suf = suffix;
    if (n.size() > suf.size() && n.compare(n.size() - suf.size(), suf.size(), suf) == 0)
      n.resize(n.size() - suf.size());
  }
  std::string out;
  for (char c : n)
    if (c != '-') out += c;
  return out;
}

}  // namespace

const std::vector<PresetInfo>& presets() {
  static const std::vector<PresetInfo> kPresets = {
      {"llama-2-7b", "meta-llama/Llama-2-7b-hf", 6.74e9, Llama2_7B},
      {"llama-2-13b", "meta-llama/Llama-2-13b-hf", 13.02e9, Llama2_13B},
      {"llama-2-70b", "meta-llama/Llama-2-70b-hf", 68.98e9, Llama2_70B},
      {"llama-3.1-8b", "meta-llama/Llama-3.1-8B", 8.03e9, Llama31_8B},
      {"llama-3.1-70b", "meta-llama/Llama-3.1-70B", 70.55e9, Llama31_70B},
      {"llama-3.1-405b", "meta-llama/Llama-3.1-405B", 405.85e9, Llama31_405B},
      {"llama-3.2-1b", "meta-llama/Llama-3.2-1B", 1.24e9, Llama32_1B},
      {"mistral-7b", "mistralai/Mistral-7B-v0.1", 7.24e9, Mistral7B},
      {"mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", 46.70e9, Mixtral8x7B},
      {"falcon-7b", "tiiuae/falcon-7b", 6.92e9, Falcon7B},
      {"falcon-40b", "tiiuae/falcon-40b", 41.30e9, Falcon40B},
      {"starcoder-15b", "bigcode/starcoder", 15.52e9, StarCoder15B},
      {"qwen2.5-7b", "Qwen/Qwen2.5-7B", 7.62e9, Qwen25_7B},
      {"gemma-2-9b", "google/gemma-2-9b", 9.24e9, Gemma2_9B},
      {"smollm2-135m", "HuggingFaceTB/SmolLM2-135M", 134.5e6, SmolLM2_135M},
      {"smollm2-1.7b", "HuggingFaceTB/SmolLM2-1.7B", 1.71e9, SmolLM2_1_7B},
  };
  return kPresets;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const PresetInfo* find_preset_info(std::string_view name) {
  const std::string n = normalise(name), sq = squash(name);
  for (const PresetInfo& p : presets())
    if (n == p.name || n == normalise(p.hf_id) || sq == squash(p.name)) return &p;
  return nullptr;
}

std::vector<std::string> closest_preset_names(std::string_view query, size_t max) {
  const std::string q = normalise(query);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const PresetInfo& p : presets()) {
    const size_t d = std::min(edit_distance(q, p.name), edit_distance(squash(q), squash(p.name)));
    const bool close = d <= std::max<size_t>(3, q.size() / 3);
    const bool contains = !q.empty() && std::string(p.name).find(q) != std::string::npos;
    if (close || contains) scored.push_back({contains ? std::min<size_t>(d, 1) : d, p.name});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < max; ++i) out.push_back(scored[i].second);
  return out;
}

Result<ModelSpec> find_preset(std::string_view name) {
  if (const PresetInfo* p = find_preset_info(name)) return p->make();
  std::string msg = "unknown model preset '" + std::string(name) + "'";
  const std::vector<std::string> near = closest_preset_names(name);
  if (!near.empty()) {
    msg += "; did you mean ";
    for (size_t i = 0; i < near.size(); ++i)
      msg += (i ? (i + 1 == near.size() ? " or " : ", ") : "") + ("'" + near[i] + "'");
    msg += "?";
  }
  msg += " (frugal plan --list-presets shows all; a config.json or .gguf path also works)";
  return NotFound(msg);
}

}  // namespace frugal::planner
