// llama2.c checkpoint reader (layout in llama2c.h).
#include "formats/llama2c.h"

#include <cstring>
#include <filesystem>

namespace frugal::llama2c {

namespace {

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);

// a * b with overflow detection, for sizes derived from untrusted header fields.
bool mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

Result<ModelConfig> config_from_header(const Header& h, const std::string& name) {
  auto positive = [&](int32_t v, const char* field) -> Status {
    if (v <= 0)
      return Corrupt(std::string("llama2.c header field ") + field + " is " + std::to_string(v) +
                     ", must be positive");
    return Status::Ok();
  };
  FRUGAL_RETURN_IF_ERROR(positive(h.dim, "dim"));
  FRUGAL_RETURN_IF_ERROR(positive(h.hidden_dim, "hidden_dim"));
  FRUGAL_RETURN_IF_ERROR(positive(h.n_layers, "n_layers"));
  FRUGAL_RETURN_IF_ERROR(positive(h.n_heads, "n_heads"));
  FRUGAL_RETURN_IF_ERROR(positive(h.n_kv_heads, "n_kv_heads"));
  FRUGAL_RETURN_IF_ERROR(positive(h.seq_len, "seq_len"));
  if (h.vocab_size == 0 || h.vocab_size == INT32_MIN)
    return Corrupt("llama2.c header field vocab_size is " + std::to_string(h.vocab_size));
  ModelConfig c;
  c.arch = "llama";
  c.name = name;
  c.vocab_size = h.vocab_size < 0 ? -(int64_t)h.vocab_size : h.vocab_size;
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.max_seq_len = h.seq_len;
  c.rope_base = 10000.0f;
  c.norm_eps = 1e-5f;
  c.tied_embeddings = h.vocab_size > 0;
  c.rope_layout = RopeLayout::kAdjacent;
  Status st = c.validate();
  if (!st.ok()) return Corrupt("llama2.c header: " + st.message());
  return c;
}

Result<Llama2cModel> Llama2cModel::open(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  Llama2cModel m;
  m.file_ = std::make_shared<MappedFile>(std::move(mapped));
  const uint64_t size = m.file_->size();
  if (size < kHeaderBytes)
    return Corrupt(path + ": file is too small (" + std::to_string(size) +
                   " bytes) for a llama2.c header (28 bytes)");
  int32_t f[7];
  std::memcpy(f, m.file_->data(), kHeaderBytes);
  m.header_ = Header{f[0], f[1], f[2], f[3], f[4], f[5], f[6]};
  const std::string stem = std::filesystem::path(path).stem().string();
  Result<ModelConfig> cfg = config_from_header(m.header_, stem);
  if (!cfg.ok()) return Corrupt(path + ": " + cfg.status().message());
  m.config_ = *cfg;
  const ModelConfig& c = m.config_;

  // Element counts of every array (all header fields are positive and < 2^31, so every product
  // of two fits in 64 bits; products of three are checked).
  const uint64_t D = c.dim, H = c.hidden_dim, L = c.n_layers, V = c.vocab_size;
  const uint64_t KV = c.kv_dim(), S = c.max_seq_len, hd = c.head_dim();
  uint64_t dd = 0, kvd = 0, hdd = 0;
  if (!mul(D * D, L, &dd) || !mul(KV * D, L, &kvd) || !mul(H * D, L, &hdd))
    return Corrupt(path + ": llama2.c header dimensions overflow");
  const uint64_t counts[] = {V * D,  L * D, dd, kvd, kvd, dd, L * D, hdd, hdd, hdd, D,
                             S * hd, (c.tied_embeddings ? 0 : V * D)};
  uint64_t floats = 0;
  for (uint64_t n : counts)
    if (__builtin_add_overflow(floats, n, &floats)) return Corrupt(path + ": llama2.c sizes overflow");
  uint64_t expect = 0;
  if (!mul(floats, 4, &expect) || __builtin_add_overflow(expect, kHeaderBytes, &expect))
    return Corrupt(path + ": llama2.c sizes overflow");
  if (expect != size)
    return Corrupt(path + ": llama2.c header (dim " + std::to_string(D) + ", hidden " +
                   std::to_string(H) + ", layers " + std::to_string(L) + ", heads " +
                   std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) + ", vocab " +
                   std::to_string(m.header_.vocab_size) + ", seq " + std::to_string(S) +
                   ") implies " + std::to_string(expect) + " bytes, but the file has " +
                   std::to_string(size));

  const float* base = reinterpret_cast<const float*>(m.file_->data() + kHeaderBytes);
  auto view = [](std::string name, const float* p, std::vector<int64_t> shape) {
    TensorView t;
    t.name = std::move(name);
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.data = p;
    t.nbytes = (size_t)t.numel() * sizeof(float);
    return t;
  };
  const int64_t d = c.dim, h = c.hidden_dim, kv = c.kv_dim();
  const float* p = base;
  const float* embd = p;
  p += V * D;
  const float* rms_att = p;  p += L * D;
  const float* wq = p;       p += dd;
  const float* wk = p;       p += kvd;
  const float* wv = p;       p += kvd;
  const float* wo = p;       p += dd;
  const float* rms_ffn = p;  p += L * D;
  const float* w1 = p;       p += hdd;
  const float* w2 = p;       p += hdd;
  const float* w3 = p;       p += hdd;
  const float* rms_final = p; p += D;
  p += S * hd;  // freq_cis_real and freq_cis_imag, [seq_len, head_dim/2] each
  const float* wcls = c.tied_embeddings ? nullptr : p;

  m.tensors_.push_back(view("token_embd.weight", embd, {(int64_t)V, d}));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m.tensors_.push_back(view(b + "attn_norm.weight", rms_att + l * d, {d}));
    m.tensors_.push_back(view(b + "attn_q.weight", wq + l * d * d, {d, d}));
    m.tensors_.push_back(view(b + "attn_k.weight", wk + l * kv * d, {kv, d}));
    m.tensors_.push_back(view(b + "attn_v.weight", wv + l * kv * d, {kv, d}));
    m.tensors_.push_back(view(b + "attn_output.weight", wo + l * d * d, {d, d}));
    m.tensors_.push_back(view(b + "ffn_norm.weight", rms_ffn + l * d, {d}));
    m.tensors_.push_back(view(b + "ffn_gate.weight", w1 + l * h * d, {h, d}));
    m.tensors_.push_back(view(b + "ffn_down.weight", w2 + l * d * h, {d, h}));
    m.tensors_.push_back(view(b + "ffn_up.weight", w3 + l * h * d, {h, d}));
  }
  m.tensors_.push_back(view("output_norm.weight", rms_final, {d}));
  if (wcls) m.tensors_.push_back(view("output.weight", wcls, {(int64_t)V, d}));
  return m;
}

const TensorView* Llama2cModel::find(std::string_view name) const {
  for (const TensorView& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

Result<TensorView> Llama2cModel::tensor(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  return NotFound(path() + ": no tensor named '" + std::string(name) + "'");
}

}  // namespace frugal::llama2c
