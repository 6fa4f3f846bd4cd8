// Safetensors reader (single file, or a Hugging Face directory, sharded or not) and writer.
//
// File layout: u64 little-endian N, then N bytes of JSON header, then the byte buffer.
//   header = { "<tensor name>": { "dtype": "F32" | "F16" | "BF16" | "I32" | ...,
//                                 "shape": [outermost, ..., innermost],
//                                 "data_offsets": [begin, end] },   // relative to the buffer
//              "__metadata__": { "<key>": "<string>", ... } }       // optional
// Tensors are row-major (C order), so shapes map directly to TensorView shapes.
//
// A directory is opened through "model.safetensors.index.json" ({"weight_map": {name: shard}})
// when present, else through "model.safetensors". Every shard is memory-mapped and kept alive
// by the SafetensorsModel; views point into the mappings and stay valid while it lives (moves
// included). Every dtype, shape and offset is checked against the file at open().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/tensor.h"

namespace frugal::safetensors {

// One tensor as described by its header entry. `dtype` is empty for safetensors dtypes frugal
// has no DType for (U8, F64, F8_E4M3, ...); the raw bytes are still bounds-checked.
struct TensorEntry {
  std::string name;
  std::string dtype_name;        // as in the header, e.g. "BF16"
  std::optional<DType> dtype;    // F32, F16, BF16, I32, I8 map to frugal DTypes
  std::vector<int64_t> shape;    // outermost first
  const uint8_t* data = nullptr; // into the shard's mapping
  size_t nbytes = 0;
  std::string file;              // the shard it lives in (full path)
};

class SafetensorsModel {
 public:
  // `dir_or_file`: a .safetensors file, or a directory holding model.safetensors.index.json or
  // model.safetensors.
  static Result<SafetensorsModel> open(const std::string& dir_or_file);

  // A view if the tensor exists and has a frugal DType; nullptr otherwise.
  const TensorView* find(std::string_view name) const;
  // NotFound naming the tensor; Unsupported naming the tensor and its dtype when frugal has no
  // DType for it.
  Result<TensorView> tensor(std::string_view name) const;
  // Header entry of any tensor (whatever its dtype), or nullptr.
  const TensorEntry* entry(std::string_view name) const;

  std::vector<std::string> names() const;  // sorted
  size_t size() const { return entries_.size(); }
  // "__metadata__" of every shard merged, plus the index's "metadata" values that are strings.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The file(s) opened, in order.
  std::vector<std::string> files() const;
  const std::string& source() const { return source_; }

 private:
  struct Tensor {
    TensorEntry entry;
    TensorView view;  // valid when entry.dtype has a value
  };
  std::string source_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::map<std::string, Tensor, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;

  friend class ShardLoader;
};

// The safetensors dtype string for a DType ("F32", "F16", "BF16", "I8", "I32"), or nullopt for
// block-quantized types, which safetensors cannot describe.
std::optional<std::string> dtype_to_safetensors(DType t);

// Writes `tensors` (in order, each tensor's bytes contiguous) with `metadata` as __metadata__.
// The header is padded with spaces so the buffer starts 8-byte aligned. Written to
// "<path>.tmp" and renamed over `path` when complete.
Status write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

// A tensor given by its safetensors dtype string, for dtypes frugal has no DType for
// ("F8_E4M3", "F8_E5M2", "U8", ...). elem_bytes: bytes per element of that dtype.
struct RawTensor {
  std::string name;
  std::string dtype;            // as written in the header
  int elem_bytes = 1;
  std::vector<int64_t> shape;   // outermost first
  const void* data = nullptr;
  size_t nbytes = 0;
};
// As write_safetensors, for raw tensors (same checks, same write-then-rename).
Status write_safetensors_raw(const std::string& path, const std::vector<RawTensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {});

}  // namespace frugal::safetensors
