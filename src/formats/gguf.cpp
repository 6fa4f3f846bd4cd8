// GGUF reader: parses the memory-mapped file up front, checking every length, count and offset
// against the file size (see gguf.h for the layout).
#include <cstring>
#include <limits>

#include "formats/atomic_file.h"
#include "formats/gguf.h"

namespace frugal::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxDims = 4;              // ggml's GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 16;       // nested arrays deeper than this are treated as corrupt
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;

// Smallest encoding of one element of type t inside an array (used to reject absurd counts
// before allocating anything).
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: return 8;   // u64 length
    case ValueType::ARRAY: return 12;   // u32 type + u64 count
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= (uint32_t)ValueType::F64; }

std::string magic_repr(const uint8_t* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const unsigned c = p[i];
    if (c >= 0x20 && c < 0x7f) {
      s += (char)c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      s += buf;
    }
  }
  return s;
}

uint32_t bswap32(uint32_t x) { return __builtin_bswap32(x); }

}  // namespace

// Sequential bounds-checked reader over the mapping. Every failure names the file, what was
// being read and where.
class GgufFile::Parser {
 public:
  Parser(const std::string& path, const uint8_t* data, uint64_t size)
      : path_(path), data_(data), size_(size) {}

  Status parse(GgufFile* f);

 private:
  Status corrupt(const std::string& what) const { return Corrupt(path_ + ": " + what); }

  Status need(uint64_t n, const std::string& what) const {
    if (n > size_ - pos_)
      return corrupt(what + " at offset " + std::to_string(pos_) + " needs " + std::to_string(n) +
                     " bytes, but the file ends at " + std::to_string(size_));
    return Status::Ok();
  }

  template <class T>
  Status read(T* out, const std::string& what) {
    FRUGAL_RETURN_IF_ERROR(need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  template <class T>
  T take() {  // caller has checked bounds
    T x;
    std::memcpy(&x, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }

  Status read_string(std::string* out, const std::string& what) {
    uint64_t len = 0;
    FRUGAL_RETURN_IF_ERROR(read(&len, what + " length"));
    if (len > size_ - pos_)
      return corrupt(what + ": string length " + std::to_string(len) + " at offset " +
                     std::to_string(pos_ - 8) + " runs past the end of the file (size " +
                     std::to_string(size_) + ")");
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status read_value(ValueType t, Value* out, const std::string& what, int depth);
  Status read_array(Value* out, const std::string& what, int depth);
  Status read_tensor_info(TensorInfo* ti, uint64_t index);
  Status check_tensor_extent(TensorInfo* ti, uint64_t data_offset, uint64_t alignment) const;

  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

Status GgufFile::Parser::read_value(ValueType t, Value* out, const std::string& what, int depth) {
  out->type = t;
  switch (t) {
    case ValueType::U8: { uint8_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (uint64_t)x; break; }
    case ValueType::I8: { int8_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (int64_t)x; break; }
    case ValueType::U16: { uint16_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (uint64_t)x; break; }
    case ValueType::I16: { int16_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (int64_t)x; break; }
    case ValueType::U32: { uint32_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (uint64_t)x; break; }
    case ValueType::I32: { int32_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (int64_t)x; break; }
    case ValueType::U64: { uint64_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = x; break; }
    case ValueType::I64: { int64_t x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = x; break; }
    case ValueType::F32: { float x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = (double)x; break; }
    case ValueType::F64: { double x = 0; FRUGAL_RETURN_IF_ERROR(read(&x, what)); out->v = x; break; }
    case ValueType::BOOL: {
      uint8_t x;
      FRUGAL_RETURN_IF_ERROR(read(&x, what));
      out->v = x != 0;  // ggml writes 0/1; any non-zero byte reads as true
      break;
    }
    case ValueType::STRING: {
      std::string s;
      FRUGAL_RETURN_IF_ERROR(read_string(&s, what));
      out->v = std::move(s);
      break;
    }
    case ValueType::ARRAY: return read_array(out, what, depth + 1);
  }
  return Status::Ok();
}

Status GgufFile::Parser::read_array(Value* out, const std::string& what, int depth) {
  if (depth > kMaxArrayDepth)
    return corrupt(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  uint32_t et = 0;
  uint64_t count = 0;
  FRUGAL_RETURN_IF_ERROR(read(&et, what + " element type"));
  if (!valid_value_type(et))
    return corrupt(what + ": invalid array element type " + std::to_string(et));
  FRUGAL_RETURN_IF_ERROR(read(&count, what + " element count"));
  const ValueType elem = (ValueType)et;
  if (count > (size_ - pos_) / min_encoded_size(elem))
    return corrupt(what + ": array of " + std::to_string(count) + " " + value_type_name(elem) +
                   " elements cannot fit in the " + std::to_string(size_ - pos_) +
                   " bytes left in the file");
  out->type = ValueType::ARRAY;
  out->elem_type = elem;
  std::vector<Value> xs(count);
  if (elem == ValueType::STRING) {
    // Hot path (tokenizer vocabularies of 10^5 strings): inline the bounds checks.
    for (uint64_t i = 0; i < count; ++i) {
      if (size_ - pos_ < 8) return need(8, what + "[" + std::to_string(i) + "] length");
      const uint64_t len = take<uint64_t>();
      if (len > size_ - pos_)
        return corrupt(what + "[" + std::to_string(i) + "]: string length " + std::to_string(len) +
                       " at offset " + std::to_string(pos_ - 8) +
                       " runs past the end of the file (size " + std::to_string(size_) + ")");
      xs[i].type = ValueType::STRING;
      xs[i].v.emplace<std::string>(reinterpret_cast<const char*>(data_ + pos_), len);
      pos_ += len;
    }
  } else if (elem == ValueType::ARRAY) {
    for (uint64_t i = 0; i < count; ++i)
      FRUGAL_RETURN_IF_ERROR(read_array(&xs[i], what + "[" + std::to_string(i) + "]", depth + 1));
  } else {
    // Fixed-size scalars: the count check above already proved they all fit.
    for (uint64_t i = 0; i < count; ++i)
      FRUGAL_RETURN_IF_ERROR(read_value(elem, &xs[i], what, depth));
  }
  out->v = std::move(xs);
  return Status::Ok();
}

Status GgufFile::Parser::read_tensor_info(TensorInfo* ti, uint64_t index) {
  const std::string where = "tensor info #" + std::to_string(index);
  FRUGAL_RETURN_IF_ERROR(read_string(&ti->name, where + " name"));
  const std::string what = "tensor '" + ti->name + "'";
  uint32_t n_dims = 0;
  FRUGAL_RETURN_IF_ERROR(read(&n_dims, what + " n_dims"));
  if (n_dims > (uint32_t)kMaxDims)
    return corrupt(what + " has " + std::to_string(n_dims) + " dimensions (at most " +
                   std::to_string(kMaxDims) + " allowed)");
  ti->dims.resize(n_dims);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    FRUGAL_RETURN_IF_ERROR(read(&ti->dims[d], what + " dims"));
    uint64_t next = 0;
    if (__builtin_mul_overflow(numel, ti->dims[d], &next) ||
        next > (uint64_t)std::numeric_limits<int64_t>::max())
      return corrupt(what + ": the element count of its dims overflows 63 bits");
    numel = next;
  }
  FRUGAL_RETURN_IF_ERROR(read(&ti->ggml_type, what + " ggml type"));
  FRUGAL_RETURN_IF_ERROR(read(&ti->offset, what + " offset"));
  return Status::Ok();
}

Status GgufFile::Parser::check_tensor_extent(TensorInfo* ti, uint64_t data_offset,
                                             uint64_t alignment) const {
  const std::string what = "tensor '" + ti->name + "'";
  const std::optional<GgmlTypeSize> ts = ggml_type_size(ti->ggml_type);
  if (!ts)
    return Unsupported(path_ + ": " + what + " has unknown ggml type id " +
                       std::to_string(ti->ggml_type) + ", whose size frugal cannot compute");
  const uint64_t row = ti->dims.empty() ? 1 : ti->dims[0];
  if (row % ts->block_elems != 0)
    return corrupt(what + " has row length " + std::to_string(row) +
                   ", not a multiple of the " + ggml_type_name(ti->ggml_type) + " block size " +
                   std::to_string(ts->block_elems));
  uint64_t numel = 1;
  for (uint64_t d : ti->dims) numel *= d;  // checked for overflow when read
  if (__builtin_mul_overflow(numel / ts->block_elems, ts->block_bytes, &ti->nbytes))
    return corrupt(what + ": byte size overflows 64 bits");
  if (ti->offset % alignment != 0)
    return corrupt(what + " offset " + std::to_string(ti->offset) +
                   " is not a multiple of the alignment " + std::to_string(alignment));
  const uint64_t avail = size_ > data_offset ? size_ - data_offset : 0;
  if (ti->offset > avail || ti->nbytes > avail - ti->offset)
    return corrupt(what + " (" + std::to_string(ti->nbytes) + " bytes at data offset " +
                   std::to_string(ti->offset) + ") extends past the end of the file (data section " +
                   "starts at " + std::to_string(data_offset) + ", file size " +
                   std::to_string(size_) + ")");
  return Status::Ok();
}

Status GgufFile::Parser::parse(GgufFile* f) {
  if (size_ == 0) return corrupt("file is empty, not a GGUF file");
  if (size_ < 4) return corrupt("file is too small (" + std::to_string(size_) + " bytes) for a GGUF header");
  const uint32_t magic = take<uint32_t>();
  if (magic != kMagic)
    return corrupt("not a GGUF file (magic bytes '" + magic_repr(data_) + "', expected 'GGUF')");
  uint32_t version = 0;
  FRUGAL_RETURN_IF_ERROR(read(&version, "GGUF version"));
  if (version == 1)
    return Unsupported(path_ + ": GGUF version 1 is not supported (frugal reads versions 2 and 3)");
  if (version != 2 && version != 3) {
    if (bswap32(version) == 2 || bswap32(version) == 3)
      return Unsupported(path_ + ": big-endian GGUF files are not supported");
    return Unsupported(path_ + ": GGUF version " + std::to_string(version) +
                       " is not supported (frugal reads versions 2 and 3)");
  }
  f->version_ = version;

  uint64_t n_tensors = 0, n_kv = 0;
  FRUGAL_RETURN_IF_ERROR(read(&n_tensors, "tensor count"));
  FRUGAL_RETURN_IF_ERROR(read(&n_kv, "metadata key/value count"));
  // Smallest possible entries: kv = 8 (key length) + 4 (type) + 1; tensor info = 8 + 4 + 4 + 8.
  if (n_kv > (size_ - pos_) / 13)
    return corrupt("metadata count " + std::to_string(n_kv) + " cannot fit in a " +
                   std::to_string(size_) + "-byte file");
  if (n_tensors > (size_ - pos_) / 24)
    return corrupt("tensor count " + std::to_string(n_tensors) + " cannot fit in a " +
                   std::to_string(size_) + "-byte file");

  f->kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    FRUGAL_RETURN_IF_ERROR(read_string(&key, "metadata key #" + std::to_string(i)));
    const std::string what = "metadata key '" + key + "'";
    uint32_t type = 0;
    FRUGAL_RETURN_IF_ERROR(read(&type, what + " value type"));
    if (!valid_value_type(type))
      return corrupt(what + " has invalid value type " + std::to_string(type));
    Value v;
    FRUGAL_RETURN_IF_ERROR(read_value((ValueType)type, &v, what, 0));
    if (!f->kv_index_.emplace(key, f->kv_.size()).second)
      return corrupt("duplicate metadata key '" + key + "'");
    f->kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = f->find("general.alignment")) {
    Result<uint64_t> al = a->as_u64("general.alignment");
    if (!al.ok()) return corrupt(al.status().message());
    if (!formats::is_pow2(*al) || *al > kMaxAlignment)
      return corrupt("general.alignment " + std::to_string(*al) +
                     " must be a non-zero power of two (at most 2^30)");
    f->alignment_ = *al;
  }

  f->tensors_.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo& ti = f->tensors_[i];
    FRUGAL_RETURN_IF_ERROR(read_tensor_info(&ti, i));
    if (!f->tensor_index_.emplace(ti.name, i).second)
      return corrupt("duplicate tensor '" + ti.name + "'");
  }
  f->data_offset_ = formats::align_up(pos_, f->alignment_);
  for (TensorInfo& ti : f->tensors_)
    FRUGAL_RETURN_IF_ERROR(check_tensor_extent(&ti, f->data_offset_, f->alignment_));
  return Status::Ok();
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  GgufFile f;
  f.file_ = std::make_shared<MappedFile>(std::move(mapped));
  Parser parser(f.file_->path(), f.file_->data(), f.file_->size());
  FRUGAL_RETURN_IF_ERROR(parser.parse(&f));
  return f;
}

// ---- lookups --------------------------------------------------------------------------------

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Looks a key up; NotFound naming the file and key.
Result<const Value*> lookup(const GgufFile& f, std::string_view key) {
  const Value* v = f.find(key);
  if (!v) return NotFound(f.path() + ": metadata key '" + std::string(key) + "' not found");
  return v;
}

template <class T>
Result<T> in_file(const GgufFile& f, Result<T> r) {
  if (r.ok()) return r;
  return Corrupt(f.path() + ": " + r.status().message());
}

// The elements of an array value, or Corrupt naming the key.
Result<const std::vector<Value>*> array_of(const GgufFile& f, std::string_view key,
                                           const Value& v) {
  if (!v.is_array())
    return Corrupt(f.path() + ": metadata key '" + std::string(key) + "' has type " +
                   value_type_name(v.type) + ", expected an array");
  return v.array();
}

}  // namespace

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  return in_file(*this, v->as_u64(key));
}

Result<int64_t> GgufFile::get_i64(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  return in_file(*this, v->as_i64(key));
}

Result<double> GgufFile::get_f64(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  return in_file(*this, v->as_f64(key));
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  return in_file(*this, v->as_bool(key));
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  return in_file(*this, v->as_string(key));
}

Result<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<Value>* xs, array_of(*this, key, *v));
  std::vector<std::string> out;
  out.reserve(xs->size());
  for (const Value& x : *xs) {
    FRUGAL_ASSIGN_OR_RETURN(std::string s, in_file(*this, x.as_string(key)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<Value>* xs, array_of(*this, key, *v));
  std::vector<float> out;
  out.reserve(xs->size());
  for (const Value& x : *xs) {
    FRUGAL_ASSIGN_OR_RETURN(double d, in_file(*this, x.as_f64(key)));
    out.push_back((float)d);
  }
  return out;
}

Result<std::vector<int32_t>> GgufFile::get_i32_array(std::string_view key) const {
  FRUGAL_ASSIGN_OR_RETURN(const Value* v, lookup(*this, key));
  FRUGAL_ASSIGN_OR_RETURN(const std::vector<Value>* xs, array_of(*this, key, *v));
  std::vector<int32_t> out;
  out.reserve(xs->size());
  for (const Value& x : *xs) {
    FRUGAL_ASSIGN_OR_RETURN(int64_t i, in_file(*this, x.as_i64(key)));
    if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max())
      return Corrupt(path() + ": metadata key '" + std::string(key) + "' element " +
                     std::to_string(i) + " does not fit in int32");
    out.push_back((int32_t)i);
  }
  return out;
}

Result<TensorView> GgufFile::tensor(std::string_view name) const {
  const TensorInfo* ti = find_tensor(name);
  if (!ti) return NotFound(path() + ": no tensor named '" + std::string(name) + "'");
  Result<DType> dt = dtype_from_ggml(ti->ggml_type);
  if (!dt.ok())
    return Unsupported(path() + ": tensor '" + ti->name + "' has ggml type " +
                       ggml_type_name(ti->ggml_type) + ", which frugal does not support");
  TensorView t;
  t.name = ti->name;
  t.dtype = *dt;
  t.shape.assign(ti->dims.rbegin(), ti->dims.rend());  // outermost first
  t.data = tensor_data(*ti);
  t.nbytes = ti->nbytes;
  return t;
}

}  // namespace frugal::gguf
