// GGUF metadata values and ggml type tables (no file I/O here).
#include <cstdio>

#include "formats/gguf.h"

namespace frugal::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "invalid";
}

// ---- ggml types -----------------------------------------------------------------------------

namespace {

struct GgmlTypeRow {
  uint32_t id;
  const char* name;
  uint64_t block_elems;
  uint64_t block_bytes;
};

// Block geometry per ggml type id, as in ggml's type traits (sizeof(block_*)) and gguf-py's
// GGML_QUANT_SIZES. One deliberate difference from gguf-py 0.19: Q8_1 is 36 bytes (fp16 d and
// s + 32 int8) as in current ggml-common.h; gguf-py still lists the old 40-byte fp32 layout.
// Retired ids (4, 5, 31-33, 36-38) are absent and therefore unknown.
constexpr GgmlTypeRow kGgmlTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},
};

const GgmlTypeRow* find_ggml(uint32_t id) {
  for (const GgmlTypeRow& r : kGgmlTypes)
    if (r.id == id) return &r;
  return nullptr;
}

struct DTypeGgml {
  DType dtype;
  uint32_t ggml;
};
constexpr DTypeGgml kDTypeMap[] = {
    {DType::F32, 0}, {DType::F16, 1},  {DType::BF16, 30}, {DType::Q8_0, 8},
    {DType::Q4_0, 2}, {DType::Q4_1, 3}, {DType::I8, 24},   {DType::I32, 26},
};

}  // namespace

std::optional<GgmlTypeSize> ggml_type_size(uint32_t ggml_type) {
  const GgmlTypeRow* r = find_ggml(ggml_type);
  if (!r) return std::nullopt;
  return GgmlTypeSize{r->block_elems, r->block_bytes};
}

std::string ggml_type_name(uint32_t ggml_type) {
  const GgmlTypeRow* r = find_ggml(ggml_type);
  return r ? std::string(r->name) : "type " + std::to_string(ggml_type);
}

Result<DType> dtype_from_ggml(uint32_t ggml_type) {
  for (const DTypeGgml& m : kDTypeMap)
    if (m.ggml == ggml_type) return m.dtype;
  return Unsupported("ggml type " + ggml_type_name(ggml_type) + " is not supported by frugal");
}

Result<uint32_t> ggml_from_dtype(DType t) {
  for (const DTypeGgml& m : kDTypeMap)
    if (m.dtype == t) return m.ggml;
  return Unsupported(std::string("dtype ") + dtype_name(t) + " has no ggml equivalent");
}

// ---- Value ----------------------------------------------------------------------------------

namespace {

std::string key_prefix(std::string_view key) {
  return key.empty() ? std::string("metadata value") : "metadata key '" + std::string(key) + "'";
}

Status type_mismatch(std::string_view key, const Value& v, const char* wanted) {
  std::string got = value_type_name(v.type);
  if (v.is_array()) got += std::string(" of ") + value_type_name(v.elem_type);
  return InvalidArgument(key_prefix(key) + " has type " + got + ", expected " + wanted);
}

}  // namespace

Result<uint64_t> Value::as_u64(std::string_view key) const {
  if (const uint64_t* u = std::get_if<uint64_t>(&v)) return *u;
  if (const int64_t* i = std::get_if<int64_t>(&v)) {
    if (*i < 0)
      return InvalidArgument(key_prefix(key) + " is negative (" + std::to_string(*i) +
                             "), expected a non-negative integer");
    return (uint64_t)*i;
  }
  return type_mismatch(key, *this, "a non-negative integer");
}

Result<int64_t> Value::as_i64(std::string_view key) const {
  if (const int64_t* i = std::get_if<int64_t>(&v)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(&v)) {
    if (*u > (uint64_t)INT64_MAX)
      return InvalidArgument(key_prefix(key) + " value " + std::to_string(*u) +
                             " does not fit in a signed 64-bit integer");
    return (int64_t)*u;
  }
  return type_mismatch(key, *this, "an integer");
}

Result<double> Value::as_f64(std::string_view key) const {
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const uint64_t* u = std::get_if<uint64_t>(&v)) return (double)*u;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return (double)*i;
  return type_mismatch(key, *this, "a number");
}

Result<bool> Value::as_bool(std::string_view key) const {
  if (const bool* b = std::get_if<bool>(&v)) return *b;
  return type_mismatch(key, *this, "a bool");
}

Result<std::string> Value::as_string(std::string_view key) const {
  if (const std::string* s = std::get_if<std::string>(&v)) return *s;
  return type_mismatch(key, *this, "a string");
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  if (is_array() && elem_type != o.elem_type) return false;
  return v == o.v;
}

std::string Value::to_string(size_t max_elems) const {
  if (const uint64_t* u = std::get_if<uint64_t>(&v)) return std::to_string(*u);
  if (const int64_t* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const double* d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), type == ValueType::F64 ? "%.17g" : "%.9g", *d);
    return buf;
  }
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const std::string* s = std::get_if<std::string>(&v)) {
    std::string out = "\"";
    const size_t limit = 80;
    for (size_t k = 0; k < s->size() && k < limit; ++k) {
      const char c = (*s)[k];
      if (c == '\n') out += "\\n";
      else if (c == '"') out += "\\\"";
      else out += c;
    }
    if (s->size() > limit) out += "...";
    return out + "\"";
  }
  const std::vector<Value>& xs = std::get<std::vector<Value>>(v);
  std::string out = std::string("[") + value_type_name(elem_type) + " x " +
                    std::to_string(xs.size());
  for (size_t k = 0; k < xs.size() && k < max_elems; ++k)
    out += (k == 0 ? ": " : ", ") + xs[k].to_string(max_elems);
  if (xs.size() > max_elems) out += ", ...";
  return out + "]";
}

namespace {
Value make(ValueType t, decltype(Value::v) payload) {
  Value x;
  x.type = t;
  x.v = std::move(payload);
  return x;
}
}  // namespace

Value Value::u8(uint8_t x) { return make(ValueType::U8, (uint64_t)x); }
Value Value::i8(int8_t x) { return make(ValueType::I8, (int64_t)x); }
Value Value::u16(uint16_t x) { return make(ValueType::U16, (uint64_t)x); }
Value Value::i16(int16_t x) { return make(ValueType::I16, (int64_t)x); }
Value Value::u32(uint32_t x) { return make(ValueType::U32, (uint64_t)x); }
Value Value::i32(int32_t x) { return make(ValueType::I32, (int64_t)x); }
Value Value::u64(uint64_t x) { return make(ValueType::U64, x); }
Value Value::i64(int64_t x) { return make(ValueType::I64, x); }
Value Value::f32(float x) { return make(ValueType::F32, (double)x); }
Value Value::f64(double x) { return make(ValueType::F64, x); }
Value Value::boolean(bool x) { return make(ValueType::BOOL, x); }
Value Value::string(std::string s) { return make(ValueType::STRING, std::move(s)); }

Value Value::array(ValueType elem_type, std::vector<Value> elems) {
  Value x = make(ValueType::ARRAY, std::move(elems));
  x.elem_type = elem_type;
  return x;
}

Value Value::string_array(const std::vector<std::string>& xs) {
  std::vector<Value> e;
  e.reserve(xs.size());
  for (const std::string& s : xs) e.push_back(string(s));
  return array(ValueType::STRING, std::move(e));
}

Value Value::f32_array(const std::vector<float>& xs) {
  std::vector<Value> e;
  e.reserve(xs.size());
  for (float f : xs) e.push_back(f32(f));
  return array(ValueType::F32, std::move(e));
}

Value Value::i32_array(const std::vector<int32_t>& xs) {
  std::vector<Value> e;
  e.reserve(xs.size());
  for (int32_t i : xs) e.push_back(i32(i));
  return array(ValueType::I32, std::move(e));
}

}  // namespace frugal::gguf
