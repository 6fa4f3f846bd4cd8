#include "quant/precision.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "base/half.h"

namespace frugal::quant {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return out;
}

bool parse_int(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

Status bad(std::string_view name) {
  return InvalidArgument(fmt::format(
      "unknown precision '{}' (f32, f16, q8_0, q4_0, q4_1, int8, intB-gG[-sym], intB-ch[-sym] with B in "
      "2/3/4/8, fp8, fp8-ch, fp8-e5m2, fp8-e5m2-ch)",
      name));
}

}  // namespace

Result<Precision> parse_precision(std::string_view name) {
  const std::string s = lower(name);
  if (s == "f32") return Precision::floating(DType::F32);
  if (s == "f16") return Precision::floating(DType::F16);
  if (s == "q8_0") return Precision::integer(8, 32, true);
  if (s == "q4_0") return Precision::integer(4, 32, true);
  if (s == "q4_1") return Precision::integer(4, 32, false);
  if (s == "int8") return Precision::integer(8, kPerChannel, true);
  if (s.rfind("fp8", 0) == 0) {
    Precision p;
    p.kind = Precision::Kind::kFp8;
    std::string_view rest = std::string_view(s).substr(3);
    if (rest.rfind("-e5m2", 0) == 0) { p.fp8 = Fp8Format::kE5M2; rest.remove_prefix(5); }
    else if (rest.rfind("-e4m3", 0) == 0) rest.remove_prefix(5);
    if (rest == "-ch") { p.fp8_per_channel = true; rest = {}; }
    if (!rest.empty()) return bad(name);
    return p;
  }
  // intB-gG[-sym|-asym] or intB-ch[-sym|-asym]
  if (s.rfind("int", 0) != 0) return bad(name);
  std::string_view rest = std::string_view(s).substr(3);
  const size_t dash = rest.find('-');
  int64_t bits = 0;
  if (dash == std::string_view::npos || !parse_int(rest.substr(0, dash), bits)) return bad(name);
  rest.remove_prefix(dash + 1);
  bool sym = false;
  for (std::string_view suf : {std::string_view("-sym"), std::string_view("-asym")})
    if (rest.size() > suf.size() && rest.substr(rest.size() - suf.size()) == suf) {
      sym = suf == "-sym";
      rest.remove_suffix(suf.size());
      break;
    }
  int64_t group = 0;
  if (rest == "ch") group = kPerChannel;
  else if (rest.size() < 2 || rest[0] != 'g' || !parse_int(rest.substr(1), group) || group <= 0) return bad(name);
  Precision p = Precision::integer((int)bits, group, sym);
  if (Status st = validate(p.quant, group > 0 ? group : 1); !st.ok())
    return InvalidArgument(fmt::format("precision '{}': {}", name, st.message()));
  return p;
}

std::string precision_name(const Precision& p) {
  switch (p.kind) {
    case Precision::Kind::kFloat: return p.float_type == DType::F32 ? "f32" : "f16";
    case Precision::Kind::kFp8:
      return fmt::format("fp8{}{}", p.fp8 == Fp8Format::kE5M2 ? "-e5m2" : "", p.fp8_per_channel ? "-ch" : "");
    case Precision::Kind::kInt: break;
  }
  const IntQuantParams& q = p.quant;
  if (q.group == 32 && q.symmetric && q.bits == 8) return "q8_0";
  if (q.group == 32 && q.bits == 4) return q.symmetric ? "q4_0" : "q4_1";
  if (q.group == kPerChannel && q.bits == 8 && q.symmetric) return "int8";
  const std::string g = q.group == kPerChannel ? "ch" : q.group == kPerTensor ? "tensor" : fmt::format("g{}", q.group);
  return fmt::format("int{}-{}{}", q.bits, g, q.symmetric ? "-sym" : "");
}

Layout precision_layout(const Precision& p) {
  switch (p.kind) {
    case Precision::Kind::kFloat: return p.float_type == DType::F32 ? kLayoutF32 : kLayoutF16;
    case Precision::Kind::kFp8: return p.fp8_per_channel ? kLayoutFp8Channel : kLayoutFp8Tensor;
    case Precision::Kind::kInt: break;
  }
  const IntQuantParams& q = p.quant;
  if (q.group == kPerTensor) {  // one scale (+ zero) for the tensor
    Layout l{(double)q.bits, 1, 0, false, q.symmetric ? 2 : 4};
    return l;
  }
  return int_layout(q.bits, q.group, q.symmetric ? ZeroStorage::kNone : ZeroStorage::kFp16);
}

Status validate_precision(const Precision& p, int64_t cols) {
  if (p.kind == Precision::Kind::kFloat && p.float_type != DType::F32 && p.float_type != DType::F16)
    return InvalidArgument("float precisions are f32 and f16");
  if (p.kind != Precision::Kind::kInt) return Status::Ok();
  return validate(p.quant, cols);
}

Result<std::vector<float>> fake_quantize(const float* w, int64_t rows, int64_t cols, const Precision& p) {
  FRUGAL_RETURN_IF_ERROR(validate_precision(p, cols));
  switch (p.kind) {
    case Precision::Kind::kFloat: {
      std::vector<float> out(w, w + rows * cols);
      if (p.float_type == DType::F16)
        for (float& v : out) v = fp16_to_f32(f32_to_fp16(v));
      return out;
    }
    case Precision::Kind::kFp8: {
      FRUGAL_ASSIGN_OR_RETURN(Fp8Matrix q, quantize_fp8(w, rows, cols, p.fp8, p.fp8_per_channel));
      return dequantize(q);
    }
    case Precision::Kind::kInt: break;
  }
  FRUGAL_ASSIGN_OR_RETURN(QuantizedMatrix q, quantize_rtn(w, rows, cols, p.quant));
  return dequantize(q);
}

}  // namespace frugal::quant
