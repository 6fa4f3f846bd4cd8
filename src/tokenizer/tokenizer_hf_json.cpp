// Tokenizer::from_tokenizer_json: Hugging Face tokenizer.json files with a BPE model.
//
// Supported configurations (anything else is reported as Unsupported, naming the component):
//  * byte-level: pre_tokenizer made of Sequence / Split(Regex|String, behavior "Isolated") /
//    Digits / ByteLevel(add_prefix_space=false), no normalizer (GPT-2, SmolLM, Llama 3).
//  * SentencePiece-style: BPE with byte_fallback and either the normalizer
//    Sequence[Prepend("▁"), Replace(" ", "▁")] (Llama 2) or a Metaspace pre-tokenizer with split=false.
// added_tokens become CONTROL (special) or USER_DEFINED tokens; a TemplateProcessing
// post-processor that adds a special token before/after the text sets add_bos/add_eos.
#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

using nlohmann::json;
using namespace tokenizer_internal;

namespace {

constexpr const char* kMetaspace = "\xE2\x96\x81";  // "▁"
constexpr int kMaxDepth = 16;  // Sequence nesting accepted (real files use 1 or 2)

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound(fmt::format("{}: no such file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(fmt::format("{}: cannot open", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError(fmt::format("{}: read failed", path));
  return ss.str();
}

std::string type_of(const json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string()
             ? node["type"].get<std::string>()
             : std::string();
}

// A literal string as a PCRE2 pattern.
std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = (unsigned char)c;
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Byte-level pre-tokenizer stages. Sets *byte_level when a ByteLevel step is present.
Status collect_stages(const json& node, std::vector<std::string>& patterns, bool* byte_level,
                      int depth = 0) {
  if (node.is_null()) return Status::Ok();
  if (depth > kMaxDepth) return Corrupt("tokenizer.json: pre-tokenizers nested too deeply");
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& p : node.at("pretokenizers"))
      FRUGAL_RETURN_IF_ERROR(collect_stages(p, patterns, byte_level, depth + 1));
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    *byte_level = true;
    if (node.value("add_prefix_space", false))
      return Unsupported("tokenizer.json: ByteLevel pre-tokenizer with add_prefix_space=true");
    if (node.value("use_regex", true)) patterns.push_back(kGpt2Pattern);
    return Status::Ok();
  }
  if (type == "Digits") {
    patterns.push_back(node.value("individual_digits", false) ? kDigitsPattern : R"(\p{N}+)");
    return Status::Ok();
  }
  if (type == "Split") {
    const std::string behavior = node.value("behavior", std::string());
    if (behavior != "Isolated" || node.value("invert", false))
      return Unsupported(fmt::format("tokenizer.json: Split pre-tokenizer with behavior '{}'{}",
                                     behavior, node.value("invert", false) ? " inverted" : ""));
    const json& pat = node.at("pattern");
    if (pat.contains("Regex")) {
      patterns.push_back(pat["Regex"].get<std::string>());
    } else if (pat.contains("String")) {
      patterns.push_back(regex_escape(pat["String"].get<std::string>()));
    } else {
      return Corrupt("tokenizer.json: Split pre-tokenizer without a pattern");
    }
    return Status::Ok();
  }
  return Unsupported(fmt::format("tokenizer.json: pre-tokenizer '{}'", type));
}

// SentencePiece-style normalization: sets *prefix (Prepend "▁") and checks a Replace(" ", "▁").
Status read_spm_normalizer(const json& node, bool* prefix, bool* replace, int depth = 0) {
  if (node.is_null()) return Status::Ok();
  if (depth > kMaxDepth) return Corrupt("tokenizer.json: normalizers nested too deeply");
  const std::string type = type_of(node);
  if (type == "Sequence") {
    for (const json& n : node.at("normalizers"))
      FRUGAL_RETURN_IF_ERROR(read_spm_normalizer(n, prefix, replace, depth + 1));
    return Status::Ok();
  }
  if (type == "Prepend" && node.value("prepend", std::string()) == kMetaspace) {
    *prefix = true;
    return Status::Ok();
  }
  if (type == "Replace" && node.value("content", std::string()) == kMetaspace &&
      node.at("pattern").value("String", std::string()) == " ") {
    *replace = true;
    return Status::Ok();
  }
  return Unsupported(fmt::format("tokenizer.json: normalizer '{}'", type));
}

// add_bos / add_eos from a TemplateProcessing post-processor (possibly inside a Sequence).
void read_post_processor(const json& node, const std::map<std::string, int32_t>& added,
                         TokenizerSpec& s, int depth = 0) {
  const std::string type = type_of(node);
  if (type == "Sequence" && node.contains("processors") && depth < kMaxDepth) {
    for (const json& p : node["processors"]) read_post_processor(p, added, s, depth + 1);
    return;
  }
  if (type != "TemplateProcessing" || !node.contains("single")) return;
  bool seen_text = false;
  for (const json& item : node["single"]) {
    if (item.contains("Sequence")) {
      seen_text = true;
    } else if (item.contains("SpecialToken")) {
      auto it = added.find(item["SpecialToken"].value("id", std::string()));
      if (it == added.end()) continue;
      if (!seen_text) {
        s.bos = it->second;
        s.add_bos = true;
      } else {
        s.eos = it->second;
        s.add_eos = true;
      }
    }
  }
}

std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v["content"].get<std::string>();
  return {};
}

// bos/eos/add_bos/chat_template from a tokenizer_config.json.
void read_tokenizer_config(const json& c, const std::map<std::string, int32_t>& ids,
                           TokenizerSpec& s) {
  auto id_of = [&](const char* key, int32_t* out) {
    if (!c.contains(key)) return;
    auto it = ids.find(token_content(c[key]));
    if (it != ids.end()) *out = it->second;
  };
  id_of("bos_token", &s.bos);
  id_of("eos_token", &s.eos);
  id_of("unk_token", &s.unk);
  id_of("pad_token", &s.pad);
  if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) s.add_bos = c["add_bos_token"];
  if (c.contains("add_eos_token") && c["add_eos_token"].is_boolean()) s.add_eos = c["add_eos_token"];
  if (c.contains("chat_template")) {
    const json& t = c["chat_template"];
    if (t.is_string()) {
      s.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& e : t)
        if (e.value("name", std::string()) == "default") s.chat_template = e.value("template", std::string());
    }
  }
}

Result<TokenizerSpec> spec_from_json(const json& j) {
  TokenizerSpec s;
  const json& model = j.at("model");
  const std::string mtype = model.value("type", std::string("BPE"));
  if (mtype != "BPE") return Unsupported(fmt::format("tokenizer.json: model type '{}' (only BPE)", mtype));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      return Unsupported(fmt::format("tokenizer.json: BPE with {}", key));

  // Vocabulary: model.vocab plus added_tokens, which must cover ids 0..n-1 between them.
  std::map<int64_t, std::string> by_id;
  for (const auto& [text, id] : model.at("vocab").items()) by_id[id.get<int64_t>()] = text;
  std::map<int64_t, int32_t> added_type;
  std::map<std::string, int32_t> added_ids;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& a : j["added_tokens"]) {
      const int64_t id = a.at("id").get<int64_t>();
      const std::string content = a.at("content").get<std::string>();
      if (a.value("lstrip", false) || a.value("rstrip", false) || a.value("single_word", false))
        return Unsupported(fmt::format(
            "tokenizer.json: added token '{}' uses lstrip/rstrip/single_word", content));
      by_id[id] = content;
      added_type[id] = (int32_t)(a.value("special", false) ? TokenType::kControl
                                                            : TokenType::kUserDefined);
      added_ids[content] = (int32_t)id;
    }
  }
  if (by_id.empty()) return InvalidArgument("tokenizer.json: empty vocabulary");
  if (by_id.begin()->first < 0 || by_id.rbegin()->first >= INT32_MAX)
    return Corrupt("tokenizer.json: token id out of range");
  const size_t n = (size_t)by_id.rbegin()->first + 1;
  if (by_id.size() != n)
    return Corrupt(fmt::format("tokenizer.json: ids are not dense ({} tokens, largest id {})",
                               by_id.size(), n - 1));
  s.tokens.reserve(n);
  for (auto& [id, text] : by_id) s.tokens.push_back(std::move(text));
  s.token_types.assign(n, (int32_t)TokenType::kNormal);
  for (auto [id, type] : added_type) s.token_types[id] = type;
  std::map<std::string, int32_t> ids_by_text;  // for special-token names
  for (size_t i = 0; i < n; ++i) ids_by_text[s.tokens[i]] = (int32_t)i;

  if (model.contains("merges") && model["merges"].is_array()) {
    s.merges.reserve(model["merges"].size());
    for (const json& m : model["merges"]) {
      if (m.is_string()) {
        s.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2) {
        const std::string l = m[0].get<std::string>(), r = m[1].get<std::string>();
        if (l.find(' ', 1) != std::string::npos)
          return Unsupported(fmt::format("tokenizer.json: merge of '{}' containing a space", l));
        s.merges.push_back(l + " " + r);
      } else {
        return Corrupt("tokenizer.json: a merge is neither \"a b\" nor [a, b]");
      }
    }
  }
  s.ignore_merges = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = ids_by_text.find(model["unk_token"].get<std::string>());
    if (it != ids_by_text.end()) {
      s.unk = it->second;
      s.token_types[s.unk] = (int32_t)TokenType::kUnknown;
    }
  }

  const json null_json;
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : null_json;
  const json& norm = j.contains("normalizer") ? j["normalizer"] : null_json;
  bool byte_level = type_of(j.contains("decoder") ? j["decoder"] : null_json) == "ByteLevel";
  if (type_of(pre) != "Metaspace") {
    FRUGAL_RETURN_IF_ERROR(collect_stages(pre, s.pre_patterns, &byte_level));
  }
  if (byte_level) {
    if (!norm.is_null())
      return Unsupported(fmt::format("tokenizer.json: normalizer '{}' on a byte-level tokenizer",
                                     type_of(norm)));
    s.model = "gpt2";
    s.pre = "tokenizer.json";
    if (s.pre_patterns.empty()) s.pre_patterns.push_back("(?!)");  // no splitting at all
  } else {
    s.model = "llama";
    s.pre = "";
    if (!s.pre_patterns.empty())
      return Unsupported("tokenizer.json: regex pre-tokenizer on a SentencePiece-style tokenizer");
    bool prefix = false, replace = false;
    FRUGAL_RETURN_IF_ERROR(read_spm_normalizer(norm, &prefix, &replace));
    if (type_of(pre) == "Metaspace") {
      if (pre.value("replacement", std::string()) != kMetaspace || pre.value("split", false))
        return Unsupported("tokenizer.json: Metaspace pre-tokenizer with split=true or another "
                           "replacement character");
      replace = true;
      prefix = pre.value("prepend_scheme", std::string("always")) != "never" &&
               pre.value("add_prefix_space", true);
    }
    if (!replace)
      return Unsupported("tokenizer.json: neither byte-level nor SentencePiece-style (no ByteLevel "
                         "step, no ' ' → '▁' replacement)");
    s.add_space_prefix = prefix;
    s.byte_fallback = model.value("byte_fallback", false);
    for (size_t i = 0; i < n; ++i) {
      const std::string& t = s.tokens[i];
      if (s.token_types[i] == (int32_t)TokenType::kNormal && t.size() == 6 && t.rfind("<0x", 0) == 0 &&
          t[5] == '>')
        s.token_types[i] = (int32_t)TokenType::kByte;
    }
  }
  if (j.contains("post_processor")) read_post_processor(j["post_processor"], added_ids, s);
  return s;
}

}  // namespace

Result<Tokenizer> Tokenizer::from_tokenizer_json(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_file(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(fmt::format("{}: not valid JSON", path));
  TokenizerSpec spec;
  try {
    FRUGAL_ASSIGN_OR_RETURN(spec, spec_from_json(j));
    const std::filesystem::path p(path);
    const std::filesystem::path config = p.parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (p.filename() == "tokenizer.json" && std::filesystem::exists(config, ec)) {
      FRUGAL_ASSIGN_OR_RETURN(std::string ctext, read_file(config.string()));
      const json c = json::parse(ctext, nullptr, false);
      if (c.is_discarded() || !c.is_object())
        return Corrupt(fmt::format("{}: not valid JSON", config.string()));
      std::map<std::string, int32_t> ids;
      for (size_t i = 0; i < spec.tokens.size(); ++i) ids[spec.tokens[i]] = (int32_t)i;
      read_tokenizer_config(c, ids, spec);
    }
  } catch (const json::exception& e) {
    return Corrupt(fmt::format("{}: unexpected structure: {}", path, e.what()));
  }
  auto tok = Tokenizer::create(std::move(spec));
  if (!tok.ok()) return Status(tok.status().code(), fmt::format("{}: {}", path, tok.status().message()));
  return tok;
}

}  // namespace frugal
