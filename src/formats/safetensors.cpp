// Safetensors reader and writer (see safetensors.h for the layout).
#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "formats/atomic_file.h"

namespace frugal::safetensors {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit (100 MB)

struct DTypeRow {
  const char* name;
  uint64_t elem_bytes;       // 0: sub-byte type, not handled
  std::optional<DType> dtype;
};

// Every dtype string the safetensors format defines.
const DTypeRow kDTypes[] = {
    {"F64", 8, std::nullopt},  {"F32", 4, DType::F32},     {"F16", 2, DType::F16},
    {"BF16", 2, DType::BF16},  {"I64", 8, std::nullopt},   {"I32", 4, DType::I32},
    {"I16", 2, std::nullopt},  {"I8", 1, DType::I8},       {"U64", 8, std::nullopt},
    {"U32", 4, std::nullopt},  {"U16", 2, std::nullopt},   {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
    {"F8_E8M0", 1, std::nullopt}, {"F6_E2M3", 0, std::nullopt}, {"F6_E3M2", 0, std::nullopt},
    {"F4", 0, std::nullopt},
};

const DTypeRow* find_dtype(std::string_view name) {
  for (const DTypeRow& r : kDTypes)
    if (name == r.name) return &r;
  return nullptr;
}

// Parses JSON without letting an exception escape; Corrupt with nlohmann's message on failure.
Result<json> parse_json(const std::string& path, const char* what, const char* begin,
                        const char* end) {
  try {
    return json::parse(begin, end);
  } catch (const json::exception& e) {
    return Corrupt(path + ": " + what + " is not valid JSON: " + e.what());
  }
}

Status check_filename(const std::string& index_path, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos)
    return Corrupt(index_path + ": shard name '" + name + "' is not a plain file name");
  return Status::Ok();
}

}  // namespace

// Parses one .safetensors file into a SafetensorsModel.
class ShardLoader {
 public:
  static Status load(const std::string& path, SafetensorsModel* m);
  static Status load_index(const std::string& dir, const std::string& index_path,
                           SafetensorsModel* m);
};

Status ShardLoader::load(const std::string& path, SafetensorsModel* m) {
  FRUGAL_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  auto file = std::make_shared<MappedFile>(std::move(mapped));
  const uint64_t size = file->size();
  auto corrupt = [&](const std::string& what) { return Corrupt(path + ": " + what); };
  if (size < 8)
    return corrupt("file is too small (" + std::to_string(size) + " bytes) for a safetensors header");
  uint64_t n = 0;
  std::memcpy(&n, file->data(), 8);
  if (n > size - 8)
    return corrupt("header length " + std::to_string(n) + " exceeds the file size (" +
                   std::to_string(size) + " bytes)");
  if (n > kMaxHeaderBytes)
    return corrupt("header length " + std::to_string(n) + " exceeds the 100 MB limit");
  const char* hb = reinterpret_cast<const char*>(file->data()) + 8;
  FRUGAL_ASSIGN_OR_RETURN(json header, parse_json(path, "header", hb, hb + n));
  if (!header.is_object()) return corrupt("header is not a JSON object");

  const uint8_t* buffer = file->data() + 8 + n;
  const uint64_t buffer_size = size - 8 - n;
  struct Span { uint64_t begin, end; const std::string* name; };
  std::vector<Span> spans;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object()) return corrupt("__metadata__ is not a JSON object");
      for (auto mt = e.begin(); mt != e.end(); ++mt)
        if (mt.value().is_string()) m->metadata_[mt.key()] = mt.value().get<std::string>();
      continue;
    }
    const std::string what = "tensor '" + name + "'";
    if (!e.is_object()) return corrupt(what + ": header entry is not a JSON object");
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto of = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) return corrupt(what + ": missing or non-string \"dtype\"");
    if (sh == e.end() || !sh->is_array()) return corrupt(what + ": missing or non-array \"shape\"");
    if (of == e.end() || !of->is_array() || of->size() != 2 || !(*of)[0].is_number_unsigned() ||
        !(*of)[1].is_number_unsigned())
      return corrupt(what + ": \"data_offsets\" must be two non-negative integers");

    TensorEntry t;
    t.name = name;
    t.file = path;
    t.dtype_name = dt->get<std::string>();
    const DTypeRow* row = find_dtype(t.dtype_name);
    if (!row || row->elem_bytes == 0)
      return Unsupported(path + ": " + what + " has dtype " + t.dtype_name +
                         ", which frugal cannot read");
    t.dtype = row->dtype;
    uint64_t numel = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) return corrupt(what + ": shape entries must be non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      if (__builtin_mul_overflow(numel, v, &numel) ||
          numel > (uint64_t)std::numeric_limits<int64_t>::max())
        return corrupt(what + ": element count of shape overflows");
      t.shape.push_back((int64_t)v);
    }
    uint64_t expect = 0;
    if (__builtin_mul_overflow(numel, row->elem_bytes, &expect))
      return corrupt(what + ": byte size overflows");
    const uint64_t begin = (*of)[0].get<uint64_t>(), end = (*of)[1].get<uint64_t>();
    if (end < begin)
      return corrupt(what + ": data_offsets [" + std::to_string(begin) + ", " +
                     std::to_string(end) + "] are reversed");
    if (end - begin != expect)
      return corrupt(what + ": data_offsets span " + std::to_string(end - begin) +
                     " bytes but shape " + shape_to_string(t.shape) + " of " + t.dtype_name +
                     " needs " + std::to_string(expect));
    if (end > buffer_size)
      return corrupt(what + ": data_offsets end " + std::to_string(end) +
                     " is past the end of the data (" + std::to_string(buffer_size) + " bytes)");
    t.data = buffer + begin;
    t.nbytes = expect;

    if (m->entries_.count(name))
      return corrupt(what + " also appears in " + m->entries_.find(name)->second.entry.file);
    SafetensorsModel::Tensor& slot = m->entries_[name];
    slot.entry = std::move(t);
    if (slot.entry.dtype) {
      slot.view.name = name;
      slot.view.dtype = *slot.entry.dtype;
      slot.view.shape = slot.entry.shape;
      slot.view.data = slot.entry.data;
      slot.view.nbytes = slot.entry.nbytes;
    }
    if (expect > 0) spans.push_back({begin, end, &slot.entry.name});
  }

  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end)
      return corrupt("tensors '" + *spans[i - 1].name + "' and '" + *spans[i].name +
                     "' overlap in the data buffer");
  m->files_.push_back(std::move(file));
  return Status::Ok();
}

Status ShardLoader::load_index(const std::string& dir, const std::string& index_path,
                               SafetensorsModel* m) {
  FRUGAL_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(index_path));
  const char* b = reinterpret_cast<const char*>(f.data());
  FRUGAL_ASSIGN_OR_RETURN(json index, parse_json(index_path, "index", b, b + f.size()));
  if (!index.is_object()) return Corrupt(index_path + ": index is not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    return Corrupt(index_path + ": missing \"weight_map\" object");
  if (auto md = index.find("metadata"); md != index.end() && md->is_object())
    for (auto it = md->begin(); it != md->end(); ++it)
      if (it.value().is_string()) m->metadata_[it.key()] = it.value().get<std::string>();

  std::vector<std::string> shards;  // in order of first mention
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return Corrupt(index_path + ": weight_map entry for tensor '" + it.key() + "' is not a string");
    const std::string shard = it.value().get<std::string>();
    FRUGAL_RETURN_IF_ERROR(check_filename(index_path, shard));
    if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
  }
  for (const std::string& shard : shards) {
    const std::string p = (fs::path(dir) / shard).string();
    std::error_code ec;
    if (!fs::exists(p, ec))
      return NotFound(index_path + ": shard file '" + shard + "' does not exist (" + p + ")");
    FRUGAL_RETURN_IF_ERROR(load(p, m));
  }
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    const std::string shard = it.value().get<std::string>();
    auto e = m->entries_.find(it.key());
    if (e == m->entries_.end() || fs::path(e->second.entry.file).filename() != shard)
      return Corrupt(index_path + ": tensor '" + it.key() + "' is mapped to shard '" + shard +
                     "' but that shard does not contain it");
  }
  return Status::Ok();
}

Result<SafetensorsModel> SafetensorsModel::open(const std::string& dir_or_file) {
  SafetensorsModel m;
  m.source_ = dir_or_file;
  std::error_code ec;
  if (!fs::is_directory(dir_or_file, ec)) {
    if (!fs::exists(dir_or_file, ec)) return NotFound("no such file or directory: " + dir_or_file);
    FRUGAL_RETURN_IF_ERROR(ShardLoader::load(dir_or_file, &m));
    return m;
  }
  const std::string index = (fs::path(dir_or_file) / "model.safetensors.index.json").string();
  const std::string single = (fs::path(dir_or_file) / "model.safetensors").string();
  if (fs::exists(index, ec)) {
    FRUGAL_RETURN_IF_ERROR(ShardLoader::load_index(dir_or_file, index, &m));
  } else if (fs::exists(single, ec)) {
    FRUGAL_RETURN_IF_ERROR(ShardLoader::load(single, &m));
  } else {
    return NotFound(dir_or_file + ": neither model.safetensors.index.json nor model.safetensors found");
  }
  return m;
}

const TensorView* SafetensorsModel::find(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.entry.dtype) return nullptr;
  return &it->second.view;
}

const TensorEntry* SafetensorsModel::entry(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.entry;
}

Result<TensorView> SafetensorsModel::tensor(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound(source_ + ": no tensor named '" + std::string(name) + "'");
  const TensorEntry& e = it->second.entry;
  if (!e.dtype)
    return Unsupported(e.file + ": tensor '" + e.name + "' has dtype " + e.dtype_name +
                       ", which frugal does not support");
  return it->second.view;
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, t] : entries_) out.push_back(name);
  return out;
}

std::vector<std::string> SafetensorsModel::files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

// ---- writer ---------------------------------------------------------------------------------

std::optional<std::string> dtype_to_safetensors(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
    case DType::I32: return "I32";
    default: return std::nullopt;
  }
}

Status write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<RawTensor> raw;
  raw.reserve(tensors.size());
  for (const TensorView& t : tensors) {
    const std::optional<std::string> dt = dtype_to_safetensors(t.dtype);
    if (!dt)
      return InvalidArgument("safetensors writer (" + path + "): tensor '" + t.name + "' has dtype " +
                             dtype_name(t.dtype) + ", which safetensors cannot store");
    raw.push_back({t.name, *dt, dtype_info(t.dtype).block_bytes, t.shape, t.data, t.nbytes});
  }
  return write_safetensors_raw(path, raw, metadata);
}

Status write_safetensors_raw(const std::string& path, const std::vector<RawTensor>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  const std::string ctx = "safetensors writer (" + path + "): ";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = std::move(md);
  }
  uint64_t offset = 0;
  for (const RawTensor& t : tensors) {
    const std::string what = "tensor '" + t.name + "'";
    if (t.name == "__metadata__" || header.contains(t.name))
      return InvalidArgument(ctx + "duplicate or reserved name: " + what);
    if (t.dtype.empty() || t.elem_bytes <= 0) return InvalidArgument(ctx + what + " has no dtype");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return InvalidArgument(ctx + what + " has a negative dimension");
      numel *= (uint64_t)d;
    }
    const uint64_t expect = numel * (uint64_t)t.elem_bytes;
    if (expect != t.nbytes)
      return InvalidArgument(ctx + what + " of shape " + shape_to_string(t.shape) + " needs " +
                             std::to_string(expect) + " bytes, has " + std::to_string(t.nbytes));
    if (!t.data && t.nbytes) return InvalidArgument(ctx + what + " has no data");
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + expect}}};
    offset += expect;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(ctx + "cannot encode header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // buffer starts 8-byte aligned
  const uint64_t n = text.size();

  formats::AtomicFile out;
  FRUGAL_RETURN_IF_ERROR(out.open(path));
  FRUGAL_RETURN_IF_ERROR(out.write(&n, 8));
  FRUGAL_RETURN_IF_ERROR(out.write(text.data(), text.size()));
  for (const RawTensor& t : tensors) FRUGAL_RETURN_IF_ERROR(out.write(t.data, t.nbytes));
  return out.commit();
}

}  // namespace frugal::safetensors
