// GGUF v3 writer (see gguf.h). Metadata is encoded in insertion order, tensor data follows the
// tensor infos, each tensor starting at a multiple of the alignment and padded to it (as ggml's
// and gguf-py's writers do), so files are byte-identical to gguf-py's for the same content.
#include <cstring>
#include <limits>

#include "formats/atomic_file.h"
#include "formats/gguf.h"

namespace frugal::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kVersion = 3;

template <class T>
void put(std::string* out, T x) {
  char buf[sizeof(T)];
  std::memcpy(buf, &x, sizeof(T));
  out->append(buf, sizeof(T));
}

void put_string(std::string* out, std::string_view s) {
  put<uint64_t>(out, s.size());
  out->append(s.data(), s.size());
}

// Integer payload of a value declared with an integer type, range-checked against [lo, hi].
Status int_payload(const Value& v, const std::string& what, int64_t lo, uint64_t hi,
                   uint64_t* bits) {
  if (const uint64_t* u = std::get_if<uint64_t>(&v.v)) {
    if (*u > hi) return InvalidArgument(what + ": value " + std::to_string(*u) + " does not fit in " + value_type_name(v.type));
    *bits = *u;
    return Status::Ok();
  }
  if (const int64_t* i = std::get_if<int64_t>(&v.v)) {
    if (*i < lo || (*i > 0 && (uint64_t)*i > hi))
      return InvalidArgument(what + ": value " + std::to_string(*i) + " does not fit in " + value_type_name(v.type));
    *bits = (uint64_t)*i;
    return Status::Ok();
  }
  return InvalidArgument(what + " is declared " + value_type_name(v.type) +
                         " but does not hold an integer");
}

Status encode_value(const Value& v, const std::string& what, int depth, std::string* out);

Status encode_payload(const Value& v, const std::string& what, int depth, std::string* out) {
  uint64_t bits = 0;
  switch (v.type) {
    case ValueType::U8:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, 0, UINT8_MAX, &bits));
      put<uint8_t>(out, (uint8_t)bits);
      return Status::Ok();
    case ValueType::I8:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, INT8_MIN, INT8_MAX, &bits));
      put<int8_t>(out, (int8_t)bits);
      return Status::Ok();
    case ValueType::U16:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, 0, UINT16_MAX, &bits));
      put<uint16_t>(out, (uint16_t)bits);
      return Status::Ok();
    case ValueType::I16:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, INT16_MIN, INT16_MAX, &bits));
      put<int16_t>(out, (int16_t)bits);
      return Status::Ok();
    case ValueType::U32:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, 0, UINT32_MAX, &bits));
      put<uint32_t>(out, (uint32_t)bits);
      return Status::Ok();
    case ValueType::I32:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, INT32_MIN, INT32_MAX, &bits));
      put<int32_t>(out, (int32_t)bits);
      return Status::Ok();
    case ValueType::U64:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, 0, UINT64_MAX, &bits));
      put<uint64_t>(out, bits);
      return Status::Ok();
    case ValueType::I64:
      FRUGAL_RETURN_IF_ERROR(int_payload(v, what, INT64_MIN, INT64_MAX, &bits));
      put<int64_t>(out, (int64_t)bits);
      return Status::Ok();
    case ValueType::F32:
    case ValueType::F64: {
      Result<double> d = v.as_f64();
      if (!d.ok()) return InvalidArgument(what + " is declared " + value_type_name(v.type) + " but does not hold a number");
      if (v.type == ValueType::F32) put<float>(out, (float)*d);
      else put<double>(out, *d);
      return Status::Ok();
    }
    case ValueType::BOOL: {
      const bool* b = std::get_if<bool>(&v.v);
      if (!b) return InvalidArgument(what + " is declared bool but does not hold a bool");
      put<uint8_t>(out, *b ? 1 : 0);
      return Status::Ok();
    }
    case ValueType::STRING: {
      const std::string* s = std::get_if<std::string>(&v.v);
      if (!s) return InvalidArgument(what + " is declared string but does not hold a string");
      put_string(out, *s);
      return Status::Ok();
    }
    case ValueType::ARRAY: {
      const std::vector<Value>* xs = v.array();
      if (!xs) return InvalidArgument(what + " is declared array but does not hold elements");
      if ((uint32_t)v.elem_type > (uint32_t)ValueType::F64)
        return InvalidArgument(what + ": invalid array element type " + std::to_string((uint32_t)v.elem_type));
      if (depth >= 16) return InvalidArgument(what + ": arrays nested deeper than 16");
      put<uint32_t>(out, (uint32_t)v.elem_type);
      put<uint64_t>(out, xs->size());
      for (size_t i = 0; i < xs->size(); ++i) {
        const Value& x = (*xs)[i];
        const std::string wi = what + "[" + std::to_string(i) + "]";
        if (x.type != v.elem_type)
          return InvalidArgument(wi + " has type " + value_type_name(x.type) +
                                 " in an array of " + value_type_name(v.elem_type));
        FRUGAL_RETURN_IF_ERROR(encode_payload(x, wi, depth + 1, out));
      }
      return Status::Ok();
    }
  }
  return InvalidArgument(what + ": invalid value type " + std::to_string((uint32_t)v.type));
}

Status encode_value(const Value& v, const std::string& what, int depth, std::string* out) {
  put<uint32_t>(out, (uint32_t)v.type);
  return encode_payload(v, what, depth, out);
}

}  // namespace

void GgufWriter::set(std::string key, Value value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

Status GgufWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data, size_t nbytes) {
  const std::string what = "tensor '" + name + "'";
  for (const PendingTensor& t : tensors_)
    if (t.name == name) return InvalidArgument("GGUF writer: duplicate " + what);
  Result<uint32_t> gt = ggml_from_dtype(dtype);
  if (!gt.ok()) return InvalidArgument("GGUF writer: " + what + ": " + gt.status().message());
  if (shape.empty() || shape.size() > 4)
    return InvalidArgument("GGUF writer: " + what + " must have 1 to 4 dimensions, has " +
                           std::to_string(shape.size()));
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("GGUF writer: " + what + " has a negative dimension");
    if (__builtin_mul_overflow(numel, (uint64_t)d, &numel) ||
        numel > (uint64_t)std::numeric_limits<int64_t>::max())
      return InvalidArgument("GGUF writer: " + what + " has too many elements");
  }
  const DTypeInfo& info = dtype_info(dtype);
  if (shape.back() % info.block_elems != 0)
    return InvalidArgument("GGUF writer: " + what + " row length " + std::to_string(shape.back()) +
                           " is not a multiple of the " + info.name + " block size " +
                           std::to_string(info.block_elems));
  const uint64_t expect = numel / info.block_elems * info.block_bytes;
  if (expect != nbytes)
    return InvalidArgument("GGUF writer: " + what + " of shape " + shape_to_string(shape) + " " +
                           info.name + " needs " + std::to_string(expect) + " bytes, got " +
                           std::to_string(nbytes));
  if (!data && nbytes) return InvalidArgument("GGUF writer: " + what + " has no data");
  tensors_.push_back({std::move(name), dtype, std::move(shape), data, nbytes});
  return Status::Ok();
}

Status GgufWriter::write(const std::string& path) const {
  const std::string ctx = "GGUF writer (" + path + "): ";
  if (!formats::is_pow2(alignment_) || alignment_ > (uint64_t{1} << 30))
    return InvalidArgument(ctx + "alignment " + std::to_string(alignment_) +
                           " must be a power of two of at most 2^30");
  // general.alignment is what readers use; it must agree with the layout we write.
  bool have_alignment_key = false;
  for (const auto& [key, value] : kv_) {
    if (key != "general.alignment") continue;
    Result<uint64_t> a = value.as_u64(key);
    if (!a.ok() || *a != alignment_)
      return InvalidArgument(ctx + "general.alignment is " + value.to_string() +
                             " but the writer aligns to " + std::to_string(alignment_));
    have_alignment_key = true;
  }

  std::string header;
  put<uint32_t>(&header, kMagic);
  put<uint32_t>(&header, kVersion);
  put<uint64_t>(&header, tensors_.size());
  const bool add_alignment_key = !have_alignment_key && alignment_ != 32;
  put<uint64_t>(&header, kv_.size() + (add_alignment_key ? 1 : 0));
  for (const auto& [key, value] : kv_) {
    put_string(&header, key);
    FRUGAL_RETURN_IF_ERROR(encode_value(value, ctx + "metadata key '" + key + "'", 0, &header));
  }
  if (add_alignment_key) {
    put_string(&header, "general.alignment");
    FRUGAL_RETURN_IF_ERROR(encode_value(Value::u32((uint32_t)alignment_), ctx, 0, &header));
  }

  uint64_t offset = 0;  // relative to the data section
  for (const PendingTensor& t : tensors_) {
    put_string(&header, t.name);
    put<uint32_t>(&header, (uint32_t)t.shape.size());
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(&header, (uint64_t)*it);
    put<uint32_t>(&header, ggml_from_dtype(t.dtype).value());  // checked in add_tensor
    put<uint64_t>(&header, offset);
    offset += formats::align_up(t.nbytes, alignment_);
  }

  formats::AtomicFile out;
  FRUGAL_RETURN_IF_ERROR(out.open(path));
  FRUGAL_RETURN_IF_ERROR(out.write(header.data(), header.size()));
  FRUGAL_RETURN_IF_ERROR(out.write_zeros(formats::align_up(header.size(), alignment_) - header.size()));
  for (const PendingTensor& t : tensors_) {
    FRUGAL_RETURN_IF_ERROR(out.write(t.data, t.nbytes));
    FRUGAL_RETURN_IF_ERROR(out.write_zeros(formats::align_up(t.nbytes, alignment_) - t.nbytes));
  }
  return out.commit();
}

}  // namespace frugal::gguf
