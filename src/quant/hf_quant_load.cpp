#include "quant/hf_quant_load.h"

#include <cstring>

#include <fmt/format.h>

#include "base/fp8.h"
#include "base/half.h"
#include "quant/engine_pack.h"
#include "quant/pack.h"

namespace frugal::quant {

namespace {

using safetensors::TensorEntry;

class Tensors {
 public:
  Tensors(const safetensors::SafetensorsModel& st, std::string module) : st_(st), module_(std::move(module)) {}

  const TensorEntry* find(const char* suffix) const { return st_.entry(module_ + "." + suffix); }

  Result<const TensorEntry*> need(const char* suffix, const char* dtype, size_t rank) const {
    const TensorEntry* e = find(suffix);
    const std::string name = module_ + "." + suffix;
    if (!e) return Corrupt(fmt::format("{}: tensor '{}' is missing", st_.source(), name));
    if (dtype && e->dtype_name != dtype)
      return Corrupt(fmt::format("{}: tensor '{}' has dtype {}, expected {}", st_.source(), name, e->dtype_name, dtype));
    if (e->shape.size() != rank)
      return Corrupt(fmt::format("{}: tensor '{}' has rank {}, expected {}", st_.source(), name, e->shape.size(), rank));
    return e;
  }

  Status shape_error(const char* what) const {
    return Corrupt(fmt::format("{}: {} tensors of '{}' have inconsistent shapes", st_.source(), what, module_));
  }
  const std::string& module() const { return module_; }
  const std::string& source() const { return st_.source(); }

 private:
  const safetensors::SafetensorsModel& st_;
  std::string module_;
};

std::vector<int32_t> read_i32(const TensorEntry& e) {
  std::vector<int32_t> v(e.nbytes / 4);
  std::memcpy(v.data(), e.data, v.size() * 4);
  return v;
}

// F16 / BF16 / F32 values as floats.
Result<std::vector<float>> read_floats(const TensorEntry& e) {
  const size_t n = (size_t)(e.nbytes / (e.dtype_name == "F32" ? 4 : 2));
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) {
    if (e.dtype_name == "F32") {
      std::memcpy(&v[k], e.data + 4 * k, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, e.data + 2 * k, 2);
      if (e.dtype_name == "F16") v[k] = fp16_to_f32(h);
      else if (e.dtype_name == "BF16") v[k] = bf16_to_f32(h);
      else return Corrupt(fmt::format("tensor '{}' has dtype {}, expected F16, BF16 or F32", e.name, e.dtype_name));
    }
  }
  return v;
}

// The scales of a [G, out] tensor, as fp16 bits when stored as F16 (else converted and kept as
// floats in `exact` so nothing is rounded).
Status read_scales(const TensorEntry& e, std::vector<uint16_t>* fp16, std::vector<float>* exact) {
  FRUGAL_ASSIGN_OR_RETURN(*exact, read_floats(e));
  fp16->resize(exact->size());
  for (size_t k = 0; k < exact->size(); ++k) (*fp16)[k] = f32_to_fp16((*exact)[k]);
  return Status::Ok();
}

// Repacks q into its exact engine dtype or F16.
Result<LoadedLinear> to_engine(const QuantizedMatrix& q, const std::string& module, std::string why_not_exact) {
  LoadedLinear out;
  std::optional<DType> t = exact_engine_dtype(q);
  if (t && t != DType::I8_ROW)  // fp16 block scales: exact only when the scales are fp16 values
    for (float s : q.scales)
      if (fp16_to_f32(f32_to_fp16(s)) != s) {
        t.reset();
        why_not_exact = "scales are not fp16 values";
        break;
      }
  const DType dt = t ? *t : DType::F16;
  FRUGAL_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, encode_engine(q, dt));
  if (!t) out.fallback = std::move(why_not_exact);
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  out.view.name = module + ".weight";
  out.view.dtype = dt;
  out.view.shape = {q.rows, q.cols};
  out.view.data = buf->data();
  out.view.nbytes = buf->size();
  out.buffer = std::shared_ptr<const void>(buf, buf->data());
  return out;
}

std::string no_dtype_reason(const QuantizedMatrix& q) {
  if (!q.g_idx.empty()) return "act-order g_idx (columns not in group order)";
  if (q.bits != 4 && q.bits != 8) return fmt::format("{}-bit", q.bits);
  if (q.group == kPerChannel || q.n_groups == 1)
    return fmt::format("{}-bit per channel{}", q.bits, q.bits == 8 ? " asymmetric" : "");
  return fmt::format("{}-bit g{}", q.bits, q.group);
}

Result<LoadedLinear> load_gptq(const Tensors& t, const HfQuantConfig& c) {
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* qw, t.need("qweight", "I32", 2));
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* qz, t.need("qzeros", "I32", 2));
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* sc, t.need("scales", nullptr, 2));
  const TensorEntry* gi = t.find("g_idx");
  if (t.find("bias")) return Unsupported(fmt::format("{}: '{}' has a bias (not supported)", t.source(), t.module()));
  PackedGptq p;
  p.out = qw->shape[1];
  p.n_groups = sc->shape[0];
  if (gi) {
    if (gi->dtype_name != "I32" || gi->shape.size() != 1) return t.shape_error("GPTQ g_idx");
    p.in = gi->shape[0];
    if (p.in <= 0 || (qw->shape[0] * 32) % p.in) return t.shape_error("GPTQ");
    p.bits = (int)(qw->shape[0] * 32 / p.in);
  } else {
    p.bits = c.bits;
    p.in = qw->shape[0] * 32 / c.bits;
  }
  if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 8) return t.shape_error("GPTQ");
  if (sc->shape[1] != p.out || p.n_groups <= 0 || p.in % p.n_groups) return t.shape_error("GPTQ");
  p.group = p.in / p.n_groups;  // one group spanning the row for per-channel checkpoints
  if (qz->shape[0] != p.n_groups || qz->shape[1] * 32 != p.out * p.bits) return t.shape_error("GPTQ");
  p.qweight = read_i32(*qw);
  p.qzeros = read_i32(*qz);
  std::vector<float> exact;
  FRUGAL_RETURN_IF_ERROR(read_scales(*sc, &p.scales, &exact));
  if (gi) {
    p.g_idx = read_i32(*gi);
  } else {
    p.g_idx.resize((size_t)p.in);
    for (int64_t i = 0; i < p.in; ++i) p.g_idx[i] = (int32_t)(p.group > 0 ? i / p.group : 0);
  }
  Result<QuantizedMatrix> q = unpack_autogptq(p);
  if (!q.ok()) return Corrupt(fmt::format("{}: '{}': {}", t.source(), t.module(), q.status().message()));
  for (int64_t o = 0; o < q->rows; ++o)
    for (int64_t g = 0; g < q->n_groups; ++g) {
      q->scales[o * q->n_groups + g] = exact[g * p.out + o];
      if (!c.zeros_minus_one) q->zeros[o * q->n_groups + g] -= 1.0f;  // gptq_v2 stores zeros as they are
    }
  q->symmetric = c.sym;
  return to_engine(*q, t.module(), no_dtype_reason(*q));
}

Result<LoadedLinear> load_awq(const Tensors& t) {
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* qw, t.need("qweight", "I32", 2));
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* qz, t.need("qzeros", "I32", 2));
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* sc, t.need("scales", nullptr, 2));
  if (t.find("bias")) return Unsupported(fmt::format("{}: '{}' has a bias (not supported)", t.source(), t.module()));
  PackedAwq p;
  p.in = qw->shape[0];
  p.out = qw->shape[1] * 8;
  p.n_groups = sc->shape[0];
  if (sc->shape[1] != p.out || p.n_groups <= 0 || p.in % p.n_groups || qz->shape[0] != p.n_groups ||
      qz->shape[1] * 8 != p.out)
    return t.shape_error("AWQ");
  p.group = p.in / p.n_groups;
  p.qweight = read_i32(*qw);
  p.qzeros = read_i32(*qz);
  std::vector<float> exact;
  FRUGAL_RETURN_IF_ERROR(read_scales(*sc, &p.scales, &exact));
  Result<QuantizedMatrix> q = unpack_autoawq(p);
  if (!q.ok()) return Corrupt(fmt::format("{}: '{}': {}", t.source(), t.module(), q.status().message()));
  for (int64_t o = 0; o < q->rows; ++o)
    for (int64_t g = 0; g < q->n_groups; ++g) q->scales[o * q->n_groups + g] = exact[g * p.out + o];
  return to_engine(*q, t.module(), no_dtype_reason(*q));
}

// compressed-tensors / fp8: <module>.weight (I8 or F8_E4M3) [out, in] + weight_scale.
Result<LoadedLinear> load_scaled_8bit(const Tensors& t, const HfQuantConfig& c) {
  FRUGAL_ASSIGN_OR_RETURN(const TensorEntry* w, t.need("weight", nullptr, 2));
  const TensorEntry* s = t.find("weight_scale");
  if (!s) return Corrupt(fmt::format("{}: tensor '{}.weight_scale' is missing", t.source(), t.module()));
  const bool fp8 = w->dtype_name == "F8_E4M3";
  if (!fp8 && w->dtype_name != "I8")
    return Unsupported(fmt::format("{}: '{}.weight' has dtype {} (expected I8 or F8_E4M3)", t.source(), t.module(),
                                   w->dtype_name));
  if (fp8 != c.weight_float && c.method == HfQuantMethod::kCompressedTensors)
    return Corrupt(fmt::format("{}: '{}.weight' is {} but the config says {}", t.source(), t.module(), w->dtype_name,
                               c.weight_float ? "float" : "int"));
  const int64_t rows = w->shape[0], cols = w->shape[1];
  FRUGAL_ASSIGN_OR_RETURN(std::vector<float> scales, read_floats(*s));
  if ((int64_t)scales.size() != rows && scales.size() != 1) return t.shape_error("weight_scale");
  LoadedLinear out;
  std::vector<uint8_t> bytes;
  if (fp8) {
    Fp8Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.format = Fp8Format::kE4M3;
    m.per_channel = scales.size() != 1;
    m.codes.assign(w->data, w->data + w->nbytes);
    m.scales = std::move(scales);
    bytes = encode_engine_fp8(m);
  } else {
    bytes = encode_engine_i8_rows(reinterpret_cast<const int8_t*>(w->data), scales, rows, cols);
  }
  auto buf = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  out.view.name = t.module() + ".weight";
  out.view.dtype = fp8 ? DType::E4M3_ROW : DType::I8_ROW;
  out.view.shape = {rows, cols};
  out.view.data = buf->data();
  out.view.nbytes = buf->size();
  out.buffer = std::shared_ptr<const void>(buf, buf->data());
  return out;
}

}  // namespace

bool has_quantized_linear(const safetensors::SafetensorsModel& st, const HfQuantConfig& c, const std::string& module) {
  if (c.method == HfQuantMethod::kGptq || c.method == HfQuantMethod::kAwq) return st.entry(module + ".qweight") != nullptr;
  return st.entry(module + ".weight_scale") != nullptr;
}

Result<std::optional<LoadedLinear>> load_quantized_linear(const safetensors::SafetensorsModel& st,
                                                          const HfQuantConfig& c, const std::string& module) {
  if (!has_quantized_linear(st, c, module)) return std::optional<LoadedLinear>();
  const Tensors t(st, module);
  Result<LoadedLinear> r = c.method == HfQuantMethod::kGptq  ? load_gptq(t, c)
                           : c.method == HfQuantMethod::kAwq ? load_awq(t)
                                                             : load_scaled_8bit(t, c);
  if (!r.ok()) return r.status();
  return std::optional<LoadedLinear>(std::move(*r));
}

}  // namespace frugal::quant
