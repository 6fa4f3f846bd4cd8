#include "quant/engine_pack.h"

#include <cstring>

#include <fmt/format.h>

#include "base/half.h"
#include "quant/gguf_export.h"

namespace frugal::quant {

namespace {

// Elements per group along the row (the whole row for per-channel scales).
int64_t row_group(const QuantizedMatrix& q) { return q.group > 0 ? q.group : q.cols; }

bool all_zeros_equal(const QuantizedMatrix& q, float z) {
  for (float x : q.zeros)
    if (x != z) return false;
  return true;
}

void put_f32(uint8_t*& dst, float v) {
  std::memcpy(dst, &v, 4);
  dst += 4;
}

void put_fp16(uint8_t*& dst, float v) {
  const uint16_t h = f32_to_fp16(v);
  std::memcpy(dst, &h, 2);
  dst += 2;
}

// I4_G64(A) / I4_G128(A): per group fp16 d [, fp16 m], G/2 bytes; byte j = q[j] | q[j + G/2] << 4.
std::vector<uint8_t> encode_i4(const QuantizedMatrix& q, DType t) {
  const int64_t G = row_group(q);
  const bool asym = t == DType::I4_G64A || t == DType::I4_G128A;
  std::vector<uint8_t> out(dtype_row_bytes(t, q.cols) * (size_t)q.rows);
  uint8_t* dst = out.data();
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t g = 0; g < q.n_groups; ++g) {
      const GroupParams gp = q.params(r, g);
      put_fp16(dst, gp.scale);
      if (asym) put_fp16(dst, -gp.scale * gp.zero);
      const uint8_t* c = q.codes.data() + r * q.cols + g * G;
      for (int64_t j = 0; j < G / 2; ++j) *dst++ = (uint8_t)((c[j] & 15) | ((c[j + G / 2] & 15) << 4));
    }
  return out;
}

std::vector<uint8_t> encode_f16(const QuantizedMatrix& q) {
  const std::vector<float> w = dequantize(q);
  std::vector<uint8_t> out(w.size() * 2);
  uint8_t* dst = out.data();
  for (float v : w) put_fp16(dst, v);
  return out;
}

}  // namespace

std::optional<DType> exact_engine_dtype(const QuantizedMatrix& q) {
  if (!q.g_idx.empty() || q.group == kPerTensor) return std::nullopt;
  const int64_t G = row_group(q);  // one group spanning the row is the same as per channel
  if (q.bits == 4) {
    const bool sym = all_zeros_equal(q, 8.0f);
    if (G == 32) return sym ? DType::Q4_0 : DType::Q4_1;
    if (G == 64) return sym ? DType::I4_G64 : DType::I4_G64A;
    if (G == 128) return sym ? DType::I4_G128 : DType::I4_G128A;
  }
  if (q.bits == 8 && all_zeros_equal(q, 128.0f)) {
    if (G == q.cols) return DType::I8_ROW;
    if (G == 32) return DType::Q8_0;
  }
  return std::nullopt;
}

Result<std::vector<uint8_t>> encode_engine(const QuantizedMatrix& q, DType t) {
  if ((int64_t)q.codes.size() != q.rows * q.cols || (int64_t)q.scales.size() != q.rows * q.n_groups ||
      (int64_t)q.zeros.size() != q.rows * q.n_groups)
    return InvalidArgument("quantized matrix buffers do not match its shape");
  if (t == DType::F16) return encode_f16(q);
  const std::optional<DType> exact = exact_engine_dtype(q);
  if (exact != t)
    return InvalidArgument(fmt::format("a {}-bit matrix with group {}{} cannot be stored as {}", q.bits, q.group,
                                       q.g_idx.empty() ? "" : " and act-order g_idx", dtype_name(t)));
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q8_0:
      return encode_ggml(q, t);
    case DType::I4_G64: case DType::I4_G64A: case DType::I4_G128: case DType::I4_G128A:
      return encode_i4(q, t);
    case DType::I8_ROW: {
      std::vector<int8_t> codes(q.codes.size());
      for (size_t i = 0; i < codes.size(); ++i) codes[i] = (int8_t)((int)q.codes[i] - 128);
      return encode_engine_i8_rows(codes.data(), q.scales, q.rows, q.cols);
    }
    default:
      return InvalidArgument(fmt::format("no integer repacking into {}", dtype_name(t)));
  }
}

std::vector<uint8_t> encode_engine_i8_rows(const int8_t* q, const std::vector<float>& scales, int64_t rows,
                                           int64_t cols) {
  std::vector<uint8_t> out(dtype_row_bytes(DType::I8_ROW, cols) * (size_t)rows);
  uint8_t* dst = out.data();
  for (int64_t r = 0; r < rows; ++r) {
    put_f32(dst, scales.size() == 1 ? scales[0] : scales[r]);
    std::memcpy(dst, q + r * cols, (size_t)cols);
    dst += cols;
  }
  return out;
}

std::vector<uint8_t> encode_engine_fp8(const Fp8Matrix& m) {
  const DType t = engine_fp8_dtype(m.format);
  std::vector<uint8_t> out(dtype_row_bytes(t, m.cols) * (size_t)m.rows);
  uint8_t* dst = out.data();
  for (int64_t r = 0; r < m.rows; ++r) {
    put_f32(dst, m.per_channel ? m.scales[r] : m.scales[0]);
    std::memcpy(dst, m.codes.data() + r * m.cols, (size_t)m.cols);
    dst += m.cols;
  }
  return out;
}

}  // namespace frugal::quant
