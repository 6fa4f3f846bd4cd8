#include "quant/hf_export.h"

#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "backend/cpu/repack.h"
#include "base/half.h"
#include "formats/safetensors.h"
#include "model/model_config_io.h"
#include "quant/ggml_blocks.h"
#include "quant/pack.h"

namespace frugal::quant {

namespace fs = std::filesystem;

namespace {

// HF module names of the 7 linears (kLinearNames order).
constexpr const char* kHfLinear[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

std::string module_name(int L, int i) { return fmt::format("model.layers.{}.{}", L, kHfLinear[i]); }
std::string module_regex(int L, int i) {
  std::string m = module_name(L, i), out = "^";
  for (char c : m) {
    if (c == '.') out += "\\";
    out += c;
  }
  return out + "$";
}

bool awq_fits(const ModelQuantOptions& o) {
  return o.method == Method::kAwq && o.quant.bits == 4 && o.quant.group > 0;
}

HfQuantConfig base_config(const ModelQuantOptions& o) {
  HfQuantConfig c;
  const Precision p = default_precision(o);
  if (o.method == Method::kSmoothQuant) {
    c.method = HfQuantMethod::kCompressedTensors;
    c.bits = 8;
    c.weight_float = false;
    c.per_channel = true;
    c.dynamic_activations = true;
    c.int8_token_activations = true;
  } else if (p.kind == Precision::Kind::kFp8) {
    c.method = HfQuantMethod::kCompressedTensors;
    c.bits = 8;
    c.weight_float = true;
    c.per_channel = p.fp8_per_channel;
    c.dynamic_activations = false;
  } else if (awq_fits(o)) {
    c.method = HfQuantMethod::kAwq;
    c.bits = 4;
    c.group = o.quant.group;
    c.sym = false;
  } else {
    c.method = HfQuantMethod::kGptq;
    c.bits = o.quant.bits;
    c.group = o.quant.group > 0 ? o.quant.group : 0;
    c.sym = o.quant.symmetric;
    c.desc_act = o.method == Method::kGptq && o.gptq.act_order;
    c.static_groups = c.desc_act && o.gptq.static_groups;
  }
  return c;
}

// Whether linear (L, i) with precision p fits format c; fills GPTQ "dynamic" / ignore entries.
Status fit_linear(HfQuantConfig& c, const ModelQuantOptions& o, const Precision& p, int L, int i, int64_t rows,
                  int64_t cols) {
  const std::string name = module_name(L, i);
  auto refuse = [&](const std::string& why) {
    return Unsupported(fmt::format("{} as {}: {} (directory output as {}; write a .gguf instead)", name,
                                   precision_name(p), why, hf_quant_method_name(c.method)));
  };
  if (p.kind == Precision::Kind::kFloat) {
    if (c.method == HfQuantMethod::kGptq) c.dynamic["-:" + module_regex(L, i)] = nlohmann::ordered_json::object();
    else c.ignore.push_back(name);
    return Status::Ok();
  }
  switch (c.method) {
    case HfQuantMethod::kGptq: {
      if (p.kind != Precision::Kind::kInt) return refuse("AutoGPTQ holds integer weights only");
      const IntQuantParams& q = p.quant;
      if (q.bits != 2 && q.bits != 3 && q.bits != 4 && q.bits != 8) return refuse("AutoGPTQ bits are 2, 3, 4, 8");
      if (q.group == kPerTensor) return refuse("AutoGPTQ has no per-tensor scale");
      const int64_t m = q.bits == 3 ? 32 : 32 / q.bits;
      if (rows % m || cols % m)
        return refuse(fmt::format("AutoGPTQ {}-bit needs in and out multiples of {} (this is [{}, {}])", q.bits, m,
                                  rows, cols));
      const int64_t g = q.group > 0 ? q.group : 0;
      if (q.bits != c.bits || g != c.group || q.symmetric != c.sym)
        c.dynamic["+:" + module_regex(L, i)] = {{"bits", q.bits}, {"group_size", g > 0 ? g : -1}, {"sym", q.symmetric}};
      return Status::Ok();
    }
    case HfQuantMethod::kAwq:
      if (p.kind != Precision::Kind::kInt || p.quant.bits != 4 || p.quant.group != c.group)
        return refuse(fmt::format("AutoAWQ holds 4-bit g{} only", c.group));
      if (rows % 8) return refuse("AutoAWQ needs out a multiple of 8");
      return Status::Ok();
    case HfQuantMethod::kCompressedTensors:
    case HfQuantMethod::kFp8:
      if (c.weight_float) {
        if (p.kind != Precision::Kind::kFp8 || p.fp8 != Fp8Format::kE4M3 || p.fp8_per_channel != c.per_channel)
          return refuse(p.kind == Precision::Kind::kFp8 && p.fp8 == Fp8Format::kE5M2
                            ? "no checkpoint format vLLM or transformers read holds E5M2 weights"
                            : fmt::format("compressed-tensors FP8 here is E4M3 per-{}", c.per_channel ? "channel" : "tensor"));
      } else {
        if (p.kind != Precision::Kind::kInt || p.quant.bits != 8 || p.quant.group != kPerChannel || !p.quant.symmetric)
          return refuse("compressed-tensors W8A8 here is int8 per-channel symmetric");
      }
      return Status::Ok();
  }
  return Status::Ok();
}

// Rows of q / an fp8 / a float matrix reordered from GGUF to HF order (Q and K only).
void to_hf_rows(QuantizedMatrix& q, int64_t hd) {
  QuantizedMatrix src = q;
  for (int64_t r = 0; r < q.rows; ++r) {
    const int64_t s = gguf_row_of_hf_row(r, hd);
    std::memcpy(&q.codes[r * q.cols], &src.codes[s * q.cols], (size_t)q.cols);
    for (int64_t g = 0; g < q.n_groups; ++g) {
      q.scales[r * q.n_groups + g] = src.scales[s * q.n_groups + g];
      q.zeros[r * q.n_groups + g] = src.zeros[s * q.n_groups + g];
    }
  }
}
void to_hf_rows(Fp8Matrix& m, int64_t hd) {
  Fp8Matrix src = m;
  for (int64_t r = 0; r < m.rows; ++r) {
    const int64_t s = gguf_row_of_hf_row(r, hd);
    std::memcpy(&m.codes[r * m.cols], &src.codes[s * m.cols], (size_t)m.cols);
    if (m.per_channel) m.scales[r] = src.scales[s];
  }
}
void to_hf_rows(std::vector<float>& w, int64_t rows, int64_t cols, int64_t hd) {
  std::vector<float> src = w;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t s = gguf_row_of_hf_row(r, hd);
    std::memcpy(&w[r * cols], &src[s * cols], (size_t)cols * sizeof(float));
  }
}

// Tensors and the buffers behind them.
class TensorList {
 public:
  template <class T>
  void add(const std::string& name, const char* dtype, std::vector<int64_t> shape, std::vector<T> data) {
    auto& buf = keep_.emplace_back(data.size() * sizeof(T));
    std::memcpy(buf.data(), data.data(), buf.size());
    tensors_.push_back({name, dtype, (int)sizeof(T), std::move(shape), buf.data(), buf.size()});
  }
  void add_floats(const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape, bool f32) {
    if (f32) return add(name, "F32", std::move(shape), v);
    std::vector<uint16_t> h(v.size());
    for (size_t k = 0; k < v.size(); ++k) h[k] = f32_to_fp16(v[k]);
    add(name, "F16", std::move(shape), std::move(h));
  }
  const std::vector<safetensors::RawTensor>& tensors() const { return tensors_; }

 private:
  std::deque<std::vector<uint8_t>> keep_;
  std::vector<safetensors::RawTensor> tensors_;
};

std::vector<float> to_floats(const TensorView& t) {
  std::vector<float> out((size_t)t.numel());
  for (int64_t r = 0; r < t.rows(); ++r) cpu::dequantize_weight_row(t, r, out.data() + r * t.cols());
  return out;
}

// Removes the temporary directory unless released.
struct TmpDir {
  fs::path path;
  bool keep = false;
  ~TmpDir() {
    if (!keep && !path.empty()) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

Status add_linear(TensorList& tl, const HfQuantConfig& c, const QuantizedLinearOut& lo, const std::string& name,
                  int64_t hd, bool permute, bool f32, HfExportReport& rep) {
  if (lo.q) {
    QuantizedMatrix q = *lo.q;
    if (permute) to_hf_rows(q, hd);
    if (c.method == HfQuantMethod::kCompressedTensors) {  // int8 per channel, symmetric (zero 128)
      std::vector<int8_t> w(q.codes.size());
      for (size_t k = 0; k < w.size(); ++k) w[k] = (int8_t)((int)q.codes[k] - 128);
      tl.add(name + ".weight", "I8", {q.rows, q.cols}, std::move(w));
      tl.add(name + ".weight_scale", "F32", {q.rows, 1}, q.scales);
    } else if (c.method == HfQuantMethod::kAwq) {
      FRUGAL_ASSIGN_OR_RETURN(PackedAwq p, pack_autoawq(q));
      tl.add(name + ".qweight", "I32", {p.in, p.out / 8}, std::move(p.qweight));
      tl.add(name + ".qzeros", "I32", {p.n_groups, p.out / 8}, std::move(p.qzeros));
      tl.add(name + ".scales", "F16", {p.n_groups, p.out}, std::move(p.scales));
    } else {
      const auto [shifted, clamped] = fit_gptq_v1_zeros(q);
      rep.gptq_zero_shifted += shifted;
      rep.gptq_zero_clamped += clamped;
      FRUGAL_ASSIGN_OR_RETURN(PackedGptq p, pack_autogptq(q));
      tl.add(name + ".qweight", "I32", {p.in * p.bits / 32, p.out}, std::move(p.qweight));
      tl.add(name + ".qzeros", "I32", {p.n_groups, p.out * p.bits / 32}, std::move(p.qzeros));
      tl.add(name + ".scales", "F16", {p.n_groups, p.out}, std::move(p.scales));
      tl.add(name + ".g_idx", "I32", {p.in}, std::move(p.g_idx));
    }
    ++rep.packed_linears;
  } else if (lo.fp8) {
    Fp8Matrix m = *lo.fp8;
    if (permute) to_hf_rows(m, hd);
    tl.add(name + ".weight", "F8_E4M3", {m.rows, m.cols}, std::move(m.codes));
    if (m.per_channel) tl.add(name + ".weight_scale", "F32", {m.rows, 1}, std::move(m.scales));
    else tl.add(name + ".weight_scale", "F32", {1}, std::move(m.scales));
    ++rep.packed_linears;
  } else {
    std::vector<float> w = lo.effective;
    if (permute) to_hf_rows(w, lo.rows, lo.cols, hd);
    tl.add_floats(name + ".weight", w, {lo.rows, lo.cols}, f32);
    ++rep.float_linears;
  }
  return Status::Ok();
}

Status write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  out.close();
  if (!out) return IoError("cannot write " + p.string());
  return Status::Ok();
}

}  // namespace

int64_t gguf_row_of_hf_row(int64_t hf_row, int64_t head_dim) {
  const int64_t half = head_dim / 2, h = hf_row / head_dim, rr = hf_row % head_dim;
  return h * head_dim + 2 * (rr % half) + rr / half;
}

std::pair<int64_t, int64_t> fit_gptq_v1_zeros(QuantizedMatrix& q) {
  const int maxq = (1 << q.bits) - 1;
  int64_t shifted = 0, clamped = 0;
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t g = 0; g < q.n_groups; ++g) {
      float& z = q.zeros[r * q.n_groups + g];
      if (z != 0.0f) continue;
      bool full = false;
      for (int64_t c = 0; c < q.cols; ++c)
        if (q.group_of(c) == g && q.codes[r * q.cols + c] == maxq) full = true;
      for (int64_t c = 0; c < q.cols; ++c) {
        uint8_t& code = q.codes[r * q.cols + c];
        if (q.group_of(c) == g && code < maxq) ++code;
      }
      z = 1.0f;
      ++(full ? clamped : shifted);
    }
  return {shifted, clamped};
}

Result<HfQuantConfig> validate_hf_export(const ModelQuantOptions& o, const ModelConfig& cfg) {
  HfQuantConfig c = base_config(o);
  const Precision base = default_precision(o);
  if (base.kind == Precision::Kind::kInt && base.quant.group == kPerTensor && o.per_linear.empty())
    return Unsupported("per-tensor integer scales have no directory format (AutoGPTQ/AutoAWQ are per group or "
                       "per channel); use --group 0 or a group size, or write a .gguf");
  const int64_t qd = cfg.head_dim() * cfg.n_heads;
  const int64_t rows[7] = {qd, cfg.kv_dim(), cfg.kv_dim(), cfg.dim, cfg.hidden_dim, cfg.hidden_dim, cfg.dim};
  const int64_t cols[7] = {cfg.dim, cfg.dim, cfg.dim, qd, cfg.dim, cfg.dim, cfg.hidden_dim};
  for (int L = 0; L < cfg.n_layers; ++L)
    for (int i = 0; i < 7; ++i)
      FRUGAL_RETURN_IF_ERROR(fit_linear(c, o, linear_precision(o, L, i), L, i, rows[i], cols[i]));
  return c;
}

Status check_hf_output_dir(const std::string& out_dir) {
  std::error_code ec;
  const fs::path out = fs::path(out_dir).lexically_normal();
  const fs::path target = out.has_filename() ? out : out.parent_path();
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) return InvalidArgument("output path " + target.string() + " exists and is not a directory");
    if (!fs::is_empty(target, ec))
      return InvalidArgument("output directory " + target.string() + " exists and is not empty");
  }
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec)) return NotFound("output directory " + parent.string() + " does not exist");
  if (access(parent.c_str(), W_OK) != 0) return IoError("output directory " + parent.string() + " is not writable");
  if (fs::exists(target.string() + ".tmp", ec))
    return InvalidArgument(target.string() + ".tmp exists (left by an interrupted run?); remove it first");
  return Status::Ok();
}

Result<HfExportReport> write_quantized_hf_dir(const Model& m, const ModelQuantResult& r, const ModelQuantOptions& o,
                                              const HfExportOptions& e, const std::string& out_dir) {
  const ModelConfig& cfg = m.config;
  if ((int)r.layers.size() != cfg.n_layers) return InvalidArgument("quantization result does not match the model's layers");
  FRUGAL_RETURN_IF_ERROR(check_hf_output_dir(out_dir));
  HfExportReport rep;
  FRUGAL_ASSIGN_OR_RETURN(rep.config, validate_hf_export(o, cfg));
  const bool permute = cfg.rope_layout == RopeLayout::kAdjacent;
  const int64_t hd = cfg.head_dim();

  TensorList tl;
  tl.add_floats("model.embed_tokens.weight", to_floats(m.weights.token_embd), {cfg.vocab_size, cfg.dim},
                e.f32_unquantized);
  for (int L = 0; L < cfg.n_layers; ++L) {
    const QuantizedLayer& ql = r.layers[L];
    const LayerWeights& lw = m.weights.layers[L];
    const std::string p = fmt::format("model.layers.{}.", L);
    tl.add_floats(p + "input_layernorm.weight", ql.norms_changed ? ql.attn_norm : to_floats(lw.attn_norm), {cfg.dim},
                  e.f32_unquantized);
    tl.add_floats(p + "post_attention_layernorm.weight", ql.norms_changed ? ql.ffn_norm : to_floats(lw.ffn_norm),
                  {cfg.dim}, e.f32_unquantized);
    for (int i = 0; i < 7; ++i)
      FRUGAL_RETURN_IF_ERROR(add_linear(tl, rep.config, ql.linears[i], module_name(L, i), hd, permute && i < 2,
                                        e.f32_unquantized, rep));
  }
  tl.add_floats("model.norm.weight", to_floats(m.weights.output_norm), {cfg.dim}, e.f32_unquantized);
  const bool tied = cfg.tied_embeddings || m.weights.output.data == m.weights.token_embd.data;
  if (!tied) tl.add_floats("lm_head.weight", to_floats(m.weights.output), {cfg.vocab_size, cfg.dim}, e.f32_unquantized);

  ModelConfig out_cfg = cfg;
  out_cfg.tied_embeddings = tied;
  nlohmann::ordered_json j = config_to_hf_json(out_cfg, e.f32_unquantized ? "float32" : "float16",
                                              m.tokenizer ? m.tokenizer->bos() : -1, m.tokenizer ? m.tokenizer->eos() : -1);
  j["quantization_config"] = hf_quant_config_to_json(rep.config);

  const fs::path out = fs::path(out_dir).lexically_normal();
  const fs::path target = out.has_filename() ? out : out.parent_path();
  TmpDir tmp{fs::path(target.string() + ".tmp")};
  std::error_code ec;
  if (!fs::create_directory(tmp.path, ec)) return IoError("cannot create " + tmp.path.string() + ": " + ec.message());
  FRUGAL_RETURN_IF_ERROR(safetensors::write_safetensors_raw((tmp.path / "model.safetensors").string(), tl.tensors(),
                                                            {{"format", "pt"}}));
  FRUGAL_RETURN_IF_ERROR(write_text(tmp.path / "config.json", j.dump(2) + "\n"));
  if (m.format == ModelFormat::kSafetensors && fs::is_directory(m.path, ec)) {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"}) {
      const fs::path src = fs::path(m.path) / f;
      if (!fs::exists(src, ec)) continue;
      if (!fs::copy_file(src, tmp.path / f, ec)) return IoError("cannot copy " + src.string() + ": " + ec.message());
      if (std::string(f) == "tokenizer.json") rep.tokenizer_copied = true;
    }
  }
  for (const auto& entry : fs::directory_iterator(tmp.path, ec)) rep.bytes += entry.file_size(ec);
  if (fs::exists(target, ec)) fs::remove(target, ec);  // an empty directory (checked above)
  fs::rename(tmp.path, target, ec);
  if (ec) return IoError("cannot rename " + tmp.path.string() + " to " + target.string() + ": " + ec.message());
  tmp.keep = true;

  if (rep.gptq_zero_shifted)
    rep.notes.push_back(fmt::format("{} groups with zero 0 stored exactly as codes+1 / zero 1 (AutoGPTQ v1 stores "
                                    "zero−1)", rep.gptq_zero_shifted));
  if (rep.gptq_zero_clamped)
    rep.notes.push_back(fmt::format("{} groups with zero 0 and code {} in use: stored as zero 1, their top codes moved "
                                    "down one step (AutoGPTQ v1 cannot store zero 0)",
                                    rep.gptq_zero_clamped, (1 << rep.config.bits) - 1));
  if (!rep.tokenizer_copied)
    rep.notes.push_back("no tokenizer.json written (the input's tokenizer is not converted); copy the model's "
                        "tokenizer.json into the directory to run it by text");
  return rep;
}

}  // namespace frugal::quant
