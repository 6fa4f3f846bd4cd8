#include "quant/gguf_export.h"

#include <cstring>
#include <deque>
#include <map>
#include <filesystem>

#include <fmt/format.h>

#include "base/half.h"
#include "quant/ggml_blocks.h"

namespace frugal::quant {

DType native_ggml_type(const QuantizedMatrix& q) {
  if (!q.g_idx.empty() || q.group != 32) return DType::F32;
  if (q.bits == 8 && q.symmetric) return DType::Q8_0;
  if (q.bits == 4 && q.symmetric) return DType::Q4_0;
  if (q.bits == 4 && !q.symmetric) return DType::Q4_1;
  return DType::F32;
}

std::vector<uint8_t> encode_ggml(const QuantizedMatrix& q, DType t) {
  const int64_t nb = q.cols / kQK;
  std::vector<uint8_t> out(dtype_row_bytes(t, q.cols) * (size_t)q.rows);
  uint8_t* dst = out.data();
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const GroupParams gp = q.params(r, b);
      const uint8_t* c = q.codes.data() + r * q.cols + b * kQK;
      if (t == DType::Q8_0) {
        BlockQ8_0 blk;
        blk.d = f32_to_fp16(gp.scale);
        for (int j = 0; j < kQK; ++j) blk.qs[j] = (int8_t)((int)c[j] - 128);
        std::memcpy(dst, &blk, sizeof blk);
        dst += sizeof blk;
      } else if (t == DType::Q4_0) {
        BlockQ4_0 blk;
        blk.d = f32_to_fp16(gp.scale);
        for (int j = 0; j < kQK / 2; ++j) blk.qs[j] = (uint8_t)(c[j] | (c[j + kQK / 2] << 4));
        std::memcpy(dst, &blk, sizeof blk);
        dst += sizeof blk;
      } else {
        BlockQ4_1 blk;
        blk.d = f32_to_fp16(gp.scale);
        blk.m = f32_to_fp16(-gp.scale * gp.zero);
        for (int j = 0; j < kQK / 2; ++j) blk.qs[j] = (uint8_t)(c[j] | (c[j + kQK / 2] << 4));
        std::memcpy(dst, &blk, sizeof blk);
        dst += sizeof blk;
      }
    }
  return out;
}

Result<GgufExportReport> write_quantized_gguf(const gguf::GgufFile& in, const ModelQuantResult& r,
                                              const ModelQuantOptions& o, const std::string& out_path) {
  gguf::GgufWriter w(in.alignment());
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.file_type" || key == "general.alignment") continue;
    w.set(key, value);
  }
  w.set("frugal.quantize.method", gguf::Value::string(method_name(o.method)));
  if (o.method == Method::kFp8) {
    w.set("frugal.quantize.fp8", gguf::Value::string(o.fp8 == Fp8Format::kE4M3 ? "e4m3" : "e5m2"));
  } else if (o.method != Method::kSmoothQuant) {
    w.set("frugal.quantize.bits", gguf::Value::u32((uint32_t)o.quant.bits));
    w.set("frugal.quantize.group", gguf::Value::i32((int32_t)o.quant.group));
    w.set("frugal.quantize.symmetric", gguf::Value::boolean(o.quant.symmetric));
  }
  std::deque<std::vector<uint8_t>> keep;  // buffers stay valid until write()
  std::map<std::string, std::pair<DType, const std::vector<uint8_t>*>> replaced;
  GgufExportReport rep;
  auto put_f32 = [&](const std::string& name, const std::vector<float>& v) {
    std::vector<uint8_t> bytes(v.size() * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    keep.push_back(std::move(bytes));
    replaced[name] = {DType::F32, &keep.back()};
  };
  for (size_t L = 0; L < r.layers.size(); ++L) {
    const QuantizedLayer& ql = r.layers[L];
    for (int i = 0; i < 7; ++i) {
      const std::string name = fmt::format("blk.{}.{}.weight", L, kLinearNames[i]);
      const QuantizedLinearOut& lo = ql.linears[i];
      const DType t = lo.q ? native_ggml_type(*lo.q) : DType::F32;
      if (t != DType::F32) {
        keep.push_back(encode_ggml(*lo.q, t));
        replaced[name] = {t, &keep.back()};
        rep.native_type = dtype_name(t);
        ++rep.ggml_tensors;
      } else if (lo.precision.kind == Precision::Kind::kFloat && lo.precision.float_type == DType::F16) {
        // Kept in 16-bit by a mixed-precision policy: stored as F16 (exact: the values are fp16).
        std::vector<uint8_t> bytes(lo.effective.size() * sizeof(uint16_t));
        for (size_t j = 0; j < lo.effective.size(); ++j) {
          const uint16_t h = f32_to_fp16(lo.effective[j]);
          std::memcpy(bytes.data() + 2 * j, &h, 2);
        }
        keep.push_back(std::move(bytes));
        replaced[name] = {DType::F16, &keep.back()};
        ++rep.f16_tensors;
      } else {
        put_f32(name, lo.effective);
        ++rep.fake_tensors;
      }
    }
    if (ql.norms_changed) {
      put_f32(fmt::format("blk.{}.attn_norm.weight", L), ql.attn_norm);
      put_f32(fmt::format("blk.{}.ffn_norm.weight", L), ql.ffn_norm);
    }
  }
  for (const gguf::TensorInfo& ti : in.tensors()) {
    std::vector<int64_t> shape(ti.dims.rbegin(), ti.dims.rend());
    auto it = replaced.find(ti.name);
    if (it != replaced.end()) {
      FRUGAL_RETURN_IF_ERROR(w.add_tensor(ti.name, it->second.first, shape, it->second.second->data(),
                                          it->second.second->size()));
      continue;
    }
    FRUGAL_ASSIGN_OR_RETURN(DType t, gguf::dtype_from_ggml(ti.ggml_type));
    FRUGAL_RETURN_IF_ERROR(w.add_tensor(ti.name, t, shape, in.tensor_data(ti), ti.nbytes));
  }
  FRUGAL_RETURN_IF_ERROR(w.write(out_path));
  std::error_code ec;
  rep.file_bytes = std::filesystem::file_size(out_path, ec);
  return rep;
}

}  // namespace frugal::quant
