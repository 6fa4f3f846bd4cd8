// GGUF reader and writer (versions 2 and 3).
//
// File layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv pairs (string key, u32 value type, payload), tensor infos (string name, u32 n_dims,
// u64 dims[n_dims] innermost first, u32 ggml type, u64 offset relative to the data section),
// padding to `general.alignment` (default 32), data section.
//
// The reader memory-maps the file, parses everything up front and bounds-checks every length,
// count, offset and tensor extent against the file size, so a corrupt file yields a Status and
// never a crash or an out-of-bounds read. Tensor data is used in place from the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/tensor.h"

namespace frugal::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* value_type_name(ValueType t);

// ggml tensor type ids (the subset frugal names; others are reported as unsupported by id).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, I8 = 24, I32 = 26,
  BF16 = 30,
};
// Our DType for a ggml type id, or Unsupported naming the type.
Result<DType> dtype_from_ggml(uint32_t ggml_type);
Result<uint32_t> ggml_from_dtype(DType t);
std::string ggml_type_name(uint32_t ggml_type);  // "Q4_K", or "type 42" when unknown

// Storage geometry of a ggml type: `block_bytes` bytes hold `block_elems` weights along a row.
// Known for every type id ggml has published (K-quants, IQ*, TQ*, MXFP4, ...), including ones
// frugal cannot compute with, so their tensors can still be bounds-checked and skipped.
struct GgmlTypeSize {
  uint64_t block_elems = 0;
  uint64_t block_bytes = 0;
};
std::optional<GgmlTypeSize> ggml_type_size(uint32_t ggml_type);  // nullopt: unknown id

// A metadata value. Scalars are widened into one of u64 / i64 / f64 / bool / string; `type`
// keeps the type as written. Arrays hold their element type and elements (arrays may nest).
struct Value {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // for ARRAY
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<Value>> v;

  bool is_array() const { return type == ValueType::ARRAY; }
  // Typed access; a type mismatch (e.g. a string read as an integer) is an error naming `key`.
  Result<uint64_t> as_u64(std::string_view key = "") const;  // any non-negative integer type
  Result<int64_t> as_i64(std::string_view key = "") const;   // any integer type
  Result<double> as_f64(std::string_view key = "") const;    // any numeric type
  Result<bool> as_bool(std::string_view key = "") const;
  Result<std::string> as_string(std::string_view key = "") const;
  const std::vector<Value>* array() const { return std::get_if<std::vector<Value>>(&v); }

  // Short human-readable rendering ("576", "\"llama\"", "[string x 49152: \"<unk>\", ...]").
  std::string to_string(size_t max_elems = 4) const;
  bool operator==(const Value& o) const;

  static Value u8(uint8_t x);
  static Value i8(int8_t x);
  static Value u16(uint16_t x);
  static Value i16(int16_t x);
  static Value u32(uint32_t x);
  static Value i32(int32_t x);
  static Value u64(uint64_t x);
  static Value i64(int64_t x);
  static Value f32(float x);
  static Value f64(double x);
  static Value boolean(bool x);
  static Value string(std::string s);
  // An array of `elem_type`; every element must have that type (checked by GgufWriter::write).
  // Nesting: elem_type ARRAY with elements that are themselves arrays.
  static Value array(ValueType elem_type, std::vector<Value> elems);
  static Value string_array(const std::vector<std::string>& xs);
  static Value f32_array(const std::vector<float>& xs);
  static Value i32_array(const std::vector<int32_t>& xs);
};

struct TensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> dims;  // as in the file: innermost (row length) first
  uint64_t offset = 0;         // relative to the data section
  uint64_t nbytes = 0;         // computed from type and dims
};

class GgufFile {
 public:
  static Result<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return file_->size(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;  // nullptr if absent
  // Convenience getters: NotFound naming file and key if absent; Corrupt naming file and key on a
  // type mismatch (e.g. a string read as an integer, a negative value read as u64).
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<double> get_f64(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_f32_array(std::string_view key) const;
  Result<std::vector<int32_t>> get_i32_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent
  // A view into the mapping with shape outermost-first. NotFound if absent; Unsupported naming
  // the tensor and its ggml type if frugal has no DType for it.
  Result<TensorView> tensor(std::string_view name) const;
  // Raw bytes of a tensor (info.nbytes of them, bounds-checked at open), whatever its type.
  const uint8_t* tensor_data(const TensorInfo& info) const {
    return file_->data() + data_offset_ + info.offset;
  }

 private:
  class Parser;  // gguf.cpp
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes a GGUF v3 file: metadata in insertion order, tensors aligned to `alignment`. The file is
// written to "<path>.tmp" and renamed over `path` only when complete, so a failure leaves nothing.
class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}
  void set(std::string key, Value value);  // replaces an existing key
  // `shape` outermost-first; data is copied at write time from `data` (must stay valid).
  Status add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                    size_t nbytes);
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;
    size_t nbytes;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace frugal::gguf
