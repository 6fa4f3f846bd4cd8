#include "model/model.h"

#include <cstring>
#include <fmt/format.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "model/model_config_io.h"
#include "quant/ggml_blocks.h"
#include "quant/hf_quant_config.h"
#include "quant/hf_quant_load.h"

namespace frugal {

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::kGguf: return "gguf";
    case ModelFormat::kSafetensors: return "safetensors";
    case ModelFormat::kLlama2c: return "llama2.c";
  }
  return "?";
}

std::map<std::string, size_t> Model::weight_bytes_by_dtype() const {
  std::map<std::string, size_t> out;
  std::set<const void*> seen;
  auto add = [&](const TensorView& t) {
    if (!t.data || !seen.insert(t.data).second) return;
    out[dtype_name(t.dtype)] += t.nbytes;
  };
  add(weights.token_embd);
  for (const LayerWeights& l : weights.layers)
    for (const TensorView* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate,
                                &l.w_up, &l.w_down})
      add(*t);
  add(weights.output_norm);
  add(weights.output);
  return out;
}

size_t Model::weight_bytes() const {
  size_t n = 0;
  for (const auto& [_, b] : weight_bytes_by_dtype()) n += b;
  return n;
}

namespace {

using Lookup = std::function<Result<TensorView>(const std::string&)>;
using Exists = std::function<bool(const std::string&)>;

// Tensor names of one checkpoint family.
struct NameScheme {
  std::string token_embd, output_norm, output;
  std::function<std::string(int layer, const char* what)> layer;  // what: GGUF-style suffix
};

NameScheme gguf_names() {
  return {"token_embd.weight", "output_norm.weight", "output.weight",
          [](int l, const char* w) { return "blk." + std::to_string(l) + "." + w + ".weight"; }};
}

NameScheme hf_names() {
  static const std::map<std::string, std::string> kMap = {
      {"attn_norm", "input_layernorm"},   {"attn_q", "self_attn.q_proj"},
      {"attn_k", "self_attn.k_proj"},     {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  return {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
          [](int l, const char* w) {
            return "model.layers." + std::to_string(l) + "." + kMap.at(w) + ".weight";
          }};
}

bool matmul_dtype_supported(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1:
    case DType::I8_ROW: case DType::E4M3_ROW: case DType::E5M2_ROW:
    case DType::I4_G64: case DType::I4_G64A: case DType::I4_G128: case DType::I4_G128A:
      return true;
    default:
      return false;
  }
}

class Binder {
 public:
  Binder(const std::string& path, Lookup lookup, std::vector<std::shared_ptr<const void>>* storage)
      : path_(path), lookup_(std::move(lookup)), storage_(storage) {}

  // A matrix [rows, cols] in any dtype the matmul kernels support.
  Status matrix(const std::string& name, int64_t rows, int64_t cols, TensorView* out) {
    FRUGAL_ASSIGN_OR_RETURN(TensorView t, lookup_(name));
    FRUGAL_RETURN_IF_ERROR(check_shape(t, {rows, cols}));
    if (!matmul_dtype_supported(t.dtype))
      return Unsupported(path_ + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                         ", which the CPU matmul does not support");
    *out = std::move(t);
    return Status::Ok();
  }

  // A vector [n], converted to F32 if stored otherwise (norm weights are tiny).
  Status vector_f32(const std::string& name, int64_t n, TensorView* out) {
    FRUGAL_ASSIGN_OR_RETURN(TensorView t, lookup_(name));
    FRUGAL_RETURN_IF_ERROR(check_shape(t, {n}));
    if (t.dtype != DType::F32) {
      if (dtype_is_quantized(t.dtype) || !matmul_dtype_supported(t.dtype))
        return Unsupported(path_ + ": norm tensor '" + name + "' has dtype " +
                           dtype_name(t.dtype) + "; expected F32, F16 or BF16");
      auto buf = std::shared_ptr<float[]>(new float[n]);
      dequantize_row(t.dtype, t.data, buf.get(), n);
      t.data = buf.get();
      t.dtype = DType::F32;
      t.nbytes = n * sizeof(float);
      storage_->push_back(std::shared_ptr<const void>(buf, buf.get()));
    }
    *out = std::move(t);
    return Status::Ok();
  }

 private:
  Status check_shape(const TensorView& t, const std::vector<int64_t>& want) {
    if (t.shape != want)
      return Corrupt(path_ + ": tensor '" + t.name + "' has shape " + shape_to_string(t.shape) +
                     ", expected " + shape_to_string(want));
    return Status::Ok();
  }

  std::string path_;
  Lookup lookup_;
  std::vector<std::shared_ptr<const void>>* storage_;
};

Status bind_weights(const ModelConfig& c, const NameScheme& names, const std::string& path,
                    const Lookup& lookup, const Exists& exists, Model* m) {
  Binder b(path, lookup, &m->storage);
  ModelWeights& w = m->weights;
  const int64_t q_dim = c.n_heads * c.head_dim();
  FRUGAL_RETURN_IF_ERROR(b.matrix(names.token_embd, c.vocab_size, c.dim, &w.token_embd));
  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    FRUGAL_RETURN_IF_ERROR(b.vector_f32(names.layer(l, "attn_norm"), c.dim, &L.attn_norm));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "attn_q"), q_dim, c.dim, &L.wq));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "attn_k"), c.kv_dim(), c.dim, &L.wk));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "attn_v"), c.kv_dim(), c.dim, &L.wv));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "attn_output"), c.dim, q_dim, &L.wo));
    FRUGAL_RETURN_IF_ERROR(b.vector_f32(names.layer(l, "ffn_norm"), c.dim, &L.ffn_norm));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "ffn_gate"), c.hidden_dim, c.dim, &L.w_gate));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "ffn_up"), c.hidden_dim, c.dim, &L.w_up));
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.layer(l, "ffn_down"), c.dim, c.hidden_dim, &L.w_down));
  }
  FRUGAL_RETURN_IF_ERROR(b.vector_f32(names.output_norm, c.dim, &w.output_norm));
  if (c.tied_embeddings || !exists(names.output)) {
    w.output = w.token_embd;
  } else {
    FRUGAL_RETURN_IF_ERROR(b.matrix(names.output, c.vocab_size, c.dim, &w.output));
  }
  return Status::Ok();
}

Result<Model> load_gguf(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(gguf::GgufFile f, gguf::GgufFile::open(path));
  Model m;
  m.format = ModelFormat::kGguf;
  m.path = path;
  FRUGAL_ASSIGN_OR_RETURN(m.config, config_from_gguf(f));
  auto file = std::make_shared<gguf::GgufFile>(std::move(f));
  m.storage.push_back(file);
  FRUGAL_RETURN_IF_ERROR(bind_weights(
      m.config, gguf_names(), path,
      [&](const std::string& n) { return file->tensor(n); },
      [&](const std::string& n) { return file->find_tensor(n) != nullptr; }, &m));
  FRUGAL_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_gguf(*file));
  m.tokenizer = std::move(tok);
  return m;
}

Result<Model> load_llama2c(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(llama2c::Llama2cModel ck, llama2c::Llama2cModel::open(path));
  Model m;
  m.format = ModelFormat::kLlama2c;
  m.path = path;
  m.config = ck.config();
  auto holder = std::make_shared<llama2c::Llama2cModel>(std::move(ck));
  m.storage.push_back(holder);
  FRUGAL_RETURN_IF_ERROR(bind_weights(
      m.config, gguf_names(), path,
      [&](const std::string& n) { return holder->tensor(n); },
      [&](const std::string& n) { return holder->find(n) != nullptr; }, &m));
  return m;
}

Result<Model> load_hf_dir(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  if (!std::filesystem::exists(cfg_path))
    return NotFound(dir + ": no config.json (a Hugging Face model directory needs one)");
  Model m;
  m.format = ModelFormat::kSafetensors;
  m.path = dir;
  FRUGAL_ASSIGN_OR_RETURN(m.config, config_from_hf_json(cfg_path));
  FRUGAL_ASSIGN_OR_RETURN(std::optional<quant::HfQuantConfig> qc, quant::read_hf_quant_config(dir));
  FRUGAL_ASSIGN_OR_RETURN(safetensors::SafetensorsModel st, safetensors::SafetensorsModel::open(dir));
  auto holder = std::make_shared<safetensors::SafetensorsModel>(std::move(st));
  m.storage.push_back(holder);
  std::map<std::string, int> repacked, fallback;  // dtype / reason -> linears
  auto lookup = [&](const std::string& n) -> Result<TensorView> {
    const std::string suffix = ".weight";
    if (qc && n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string module = n.substr(0, n.size() - suffix.size());
      FRUGAL_ASSIGN_OR_RETURN(std::optional<quant::LoadedLinear> l, quant::load_quantized_linear(*holder, *qc, module));
      if (l) {
        m.storage.push_back(l->buffer);
        if (l->fallback.empty()) ++repacked[dtype_name(l->view.dtype)];
        else ++fallback[l->fallback];
        return std::move(l->view);
      }
    }
    return holder->tensor(n);
  };
  auto exists = [&](const std::string& n) {
    if (holder->tensor(n).ok()) return true;
    const std::string base = n.size() > 7 ? n.substr(0, n.size() - 7) : n;
    return qc && quant::has_quantized_linear(*holder, *qc, base);
  };
  FRUGAL_RETURN_IF_ERROR(bind_weights(m.config, hf_names(), dir, lookup, exists, &m));
  if (qc) {
    m.notes.push_back("quantization_config: " + quant::describe(*qc));
    m.int8_token_activations = qc->int8_token_activations;
    if (m.int8_token_activations)
      m.notes.push_back("W8A8: I8_ROW linears run with int8 per-token activations (--act-quant none: float)");
    for (const auto& [dt, n] : repacked) m.notes.push_back(fmt::format("{} linears repacked exactly into {}", n, dt));
    for (const auto& [why, n] : fallback)
      m.notes.push_back(fmt::format("{} linears dequantized to F16 at load ({}: no engine dtype holds it)", n, why));
  }
  const std::string tok_path = dir + "/tokenizer.json";
  if (std::filesystem::exists(tok_path)) {
    FRUGAL_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_tokenizer_json(tok_path));
    m.tokenizer = std::move(tok);
  }
  return m;
}

}  // namespace

Result<Model> load_model(const std::string& path) {
  if (path.empty()) return InvalidArgument("no model path given (use -m MODEL)");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound("model not found: " + path);
  if (std::filesystem::is_directory(path, ec)) return load_hf_dir(path);
  char magic[4] = {0, 0, 0, 0};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return IoError("cannot open " + path);
    in.read(magic, 4);
  }
  if (std::memcmp(magic, "GGUF", 4) == 0) return load_gguf(path);
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".bin") return load_llama2c(path);
  if (ext == ".gguf") return Corrupt(path + ": not a GGUF file (bad magic)");
  if (ext == ".safetensors")
    return InvalidArgument(path + ": pass the model directory (with config.json), not the "
                                  ".safetensors file");
  return Unsupported(path + ": unrecognized model format (expected .gguf, a llama2.c .bin, or "
                            "a Hugging Face directory)");
}

}  // namespace frugal
