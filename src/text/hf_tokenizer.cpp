#include "bireco/text/hf_tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::text {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_text_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read " + file.string());
  std::string text;
  in.seekg(0, std::ios::end);
  text.resize(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in) throw Error("cannot read " + file.string());
  return text;
}

json parse_json_file(const fs::path& file) {
  const std::string text = read_text_file(file);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
}

// The vocabulary: {"token": id, ...} -> id-indexed strings.
std::vector<std::string> read_vocab(const json& j, const std::string& path,
                                    const JsonContext& ctx) {
  if (!j.is_object()) ctx.fail(path, "expected an object {token: id}");
  int64_t max_id = -1;
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      ctx.fail(json_path(path, token), "expected a non-negative id, got " + util::json_excerpt(id));
    }
    max_id = std::max(max_id, id.get<int64_t>());
  }
  std::vector<std::string> vocab(static_cast<size_t>(max_id + 1));
  for (const auto& [token, id] : j.items()) {
    std::string& slot = vocab[static_cast<size_t>(id.get<int64_t>())];
    if (!slot.empty()) {
      ctx.fail(json_path(path, token),
               "id " + std::to_string(id.get<int64_t>()) + " is also given to '" + slot + "'");
    }
    if (token.empty()) ctx.fail(path, "an empty token");
    slot = token;
  }
  return vocab;
}

// Merges as "a b" strings (split at the space that leaves two tokens of the vocabulary; a
// vocabulary may hold tokens with spaces) or as ["a", "b"] pairs.
std::vector<std::pair<std::string, std::string>> read_merges(const json& j, const std::string& path,
                                                             const JsonContext& ctx,
                                                             const TokenIndex& vocab) {
  if (!j.is_array()) ctx.fail(path, "expected a list");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const json& m = j[i];
    if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    if (!m.is_string()) ctx.fail(item_path, "expected \"a b\" or [\"a\", \"b\"], got " + util::json_excerpt(m));
    const std::string& s = m.get_ref<const std::string&>();
    const size_t first = s.find(' ');
    if (first == std::string::npos) ctx.fail(item_path, "expected \"a b\", got \"" + s + "\"");
    size_t split = first;
    if (s.find(' ', first + 1) != std::string::npos) {
      for (size_t at = first; at != std::string::npos; at = s.find(' ', at + 1)) {
        if (at > 0 && at + 1 < s.size() && vocab.find(std::string_view(s).substr(0, at)) &&
            vocab.find(std::string_view(s).substr(at + 1))) {
          split = at;
          break;
        }
      }
    }
    merges.emplace_back(s.substr(0, split), s.substr(split + 1));
  }
  return merges;
}

std::unique_ptr<BpeModel> make_model(const json& j, const JsonContext& ctx) {
  const std::string path = "model";
  const std::string type = ctx.find(j, "type") != nullptr ? ctx.type_of(j, path) : "BPE";
  if (type != "BPE") ctx.unsupported(json_path(path, "type"), type);
  if (const json* dropout = ctx.find(j, "dropout"); dropout != nullptr && !dropout->is_null()) {
    if (!dropout->is_number() || dropout->get<double>() != 0.0) {
      ctx.fail(json_path(path, "dropout"),
               "unsupported " + util::json_excerpt(*dropout) + " (BPE dropout is for training)");
    }
  }
  BpeOptions options;
  if (const json* unk = ctx.find(j, "unk_token"); unk != nullptr && !unk->is_null()) {
    options.unk_token = ctx.string_at(j, path, "unk_token");
  }
  options.continuing_subword_prefix = ctx.string_or(j, path, "continuing_subword_prefix", "");
  options.end_of_word_suffix = ctx.string_or(j, path, "end_of_word_suffix", "");
  options.fuse_unk = ctx.bool_or(j, path, "fuse_unk", false);
  options.byte_fallback = ctx.bool_or(j, path, "byte_fallback", false);
  options.ignore_merges = ctx.bool_or(j, path, "ignore_merges", false);

  std::vector<std::string> vocab =
      read_vocab(ctx.at(j, path, "vocab"), json_path(path, "vocab"), ctx);
  TokenIndex index;
  index.build(&vocab);
  const json* merges_json = ctx.find(j, "merges");
  std::vector<std::pair<std::string, std::string>> merges;
  if (merges_json != nullptr && !merges_json->is_null()) {
    merges = read_merges(*merges_json, json_path(path, "merges"), ctx, index);
  }
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options),
                                    ctx.file() + ": " + path);
}

std::vector<AddedToken> read_added_tokens(const json& root, const JsonContext& ctx) {
  std::vector<AddedToken> tokens;
  const json* list = ctx.find(root, "added_tokens");
  if (list == nullptr || list->is_null()) return tokens;
  if (!list->is_array()) ctx.fail("added_tokens", "expected a list");
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json& t = (*list)[i];
    AddedToken token;
    const json& id = ctx.at(t, path, "id");
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      ctx.fail(json_path(path, "id"), "expected a non-negative id, got " + util::json_excerpt(id));
    }
    token.id = id.get<int32_t>();
    token.content = ctx.string_at(t, path, "content");
    if (token.content.empty()) ctx.fail(json_path(path, "content"), "empty");
    token.special = ctx.bool_or(t, path, "special", false);
    token.lstrip = ctx.bool_or(t, path, "lstrip", false);
    token.rstrip = ctx.bool_or(t, path, "rstrip", false);
    token.single_word = ctx.bool_or(t, path, "single_word", false);
    // Rust's default: special tokens are not normalized, others are.
    token.normalized = ctx.bool_or(t, path, "normalized", !token.special);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A special-token entry of tokenizer_config.json / special_tokens_map.json: "<s>", or
// {"content": "<s>", ...}, or null.
std::optional<std::string> special_token_name(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object()) {
    const auto it = value.find("content");
    if (it != value.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

bool is_llama_class(const std::string& name) {
  static const std::set<std::string> classes = {"LlamaTokenizer",     "LlamaTokenizerFast",
                                                "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
                                                "GemmaTokenizer",     "GemmaTokenizerFast"};
  return classes.count(name) > 0;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::load(const fs::path& tokenizer_json) {
  if (!fs::exists(tokenizer_json))
    throw Error("tokenizer file not found: " + tokenizer_json.string());
  const json root = parse_json_file(tokenizer_json);
  const JsonContext ctx(tokenizer_json.string());
  if (!root.is_object()) ctx.fail("", "expected a JSON object");

  std::unique_ptr<HfTokenizer> t(new HfTokenizer);
  t->model_ = make_model(ctx.at(root, "", "model"), ctx);
  auto member = [&](const char* key) -> const json& {
    static const json null_json;
    const json* value = ctx.find(root, key);
    return value != nullptr ? *value : null_json;
  };
  t->normalizer_ = make_normalizer(member("normalizer"), "normalizer", ctx);
  t->pre_tokenizer_ = make_pre_tokenizer(member("pre_tokenizer"), "pre_tokenizer", ctx);
  t->decoder_ = make_decoder(member("decoder"), "decoder", ctx);
  t->post_processor_ = make_post_processor(member("post_processor"), "post_processor", ctx);

  t->added_tokens_ = read_added_tokens(root, ctx);
  t->vocab_size_ = t->model_->size();
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (size_t i = 0; i < t->added_tokens_.size(); ++i) {
    const AddedToken& token = t->added_tokens_[i];
    t->added_by_id_[token.id] = i;
    t->added_by_content_.emplace(token.content, token.id);
    t->vocab_size_ = std::max<int64_t>(t->vocab_size_, token.id + 1);
    if (token.normalized && t->normalizer_) {
      normalized.push_back(token);
      normalized_patterns.push_back(t->normalizer_->normalize(token.content));
    } else {
      raw.push_back(token);
      raw_patterns.push_back(token.content);
    }
  }
  t->raw_matcher_.build(std::move(raw), std::move(raw_patterns));
  t->normalized_matcher_.build(std::move(normalized), std::move(normalized_patterns));

  // BOS / EOS / pad as transformers takes them.
  const fs::path dir = tokenizer_json.parent_path();
  json config = json::object(), special_map = json::object();
  const fs::path config_file = dir / "tokenizer_config.json";
  const fs::path map_file = dir / "special_tokens_map.json";
  const bool has_config = fs::exists(config_file), has_map = fs::exists(map_file);
  if (has_config) config = parse_json_file(config_file);
  if (has_map) special_map = parse_json_file(map_file);
  auto resolve = [&](const char* key) -> std::optional<int32_t> {
    std::optional<std::string> name;
    const fs::path* source = nullptr;
    if (special_map.is_object() && special_map.contains(key)) {
      name = special_token_name(special_map[key]);
      source = &map_file;
    } else if (config.is_object() && config.contains(key)) {
      name = special_token_name(config[key]);
      source = &config_file;
    }
    if (!name) return std::nullopt;
    const auto id = t->token_to_id(*name);
    if (!id) {
      throw Error(source->string() + ": " + key + ": '" + *name + "' is not a token of " +
                  tokenizer_json.string());
    }
    return id;
  };
  if (has_config || has_map) {
    t->bos_ = resolve("bos_token");
    t->eos_ = resolve("eos_token");
    t->pad_ = resolve("pad_token");
  } else {
    const auto& post = t->post_processor_;
    if (!post.prefix.empty()) t->bos_ = post.prefix.front();
    if (!post.suffix.empty()) t->eos_ = post.suffix.back();
  }
  // transformers' LlamaTokenizerFast (and Gemma's) rebuilds the post-processor from
  // add_bos_token (default true) and add_eos_token (default false).
  if (config.is_object() && is_llama_class(config.value("tokenizer_class", std::string()))) {
    const bool add_bos = config.value("add_bos_token", true);
    const bool add_eos = config.value("add_eos_token", false);
    PostProcessor post;
    if (add_bos && t->bos_) post.prefix.push_back(*t->bos_);
    if (add_eos && t->eos_) post.suffix.push_back(*t->eos_);
    t->post_processor_ = post;
  }
  // Every id the post-processor adds must decode. A template whose special token names an id
  // that is neither in the vocabulary nor an added token is a broken file (an edited added
  // token id; found by fuzz/tokenizer_json): HF's decode drops such ids silently.
  for (const std::vector<int32_t>* ids : {&t->post_processor_.prefix, &t->post_processor_.suffix}) {
    for (const int32_t id : *ids) {
      if (t->id_to_token(id) == nullptr) {
        ctx.fail("post_processor", "adds id " + std::to_string(id) +
                                       ", which is neither in the model's vocabulary nor an "
                                       "added token");
      }
    }
  }
  return t;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  const auto it = added_by_content_.find(std::string(token));
  if (it != added_by_content_.end()) return it->second;
  return model_->token_to_id(token);
}

const std::string* HfTokenizer::id_to_token(int32_t id) const {
  const auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return &added_tokens_[it->second].content;
  return model_->id_to_token(id);
}

void HfTokenizer::encode_text(std::string_view text, bool at_start,
                              std::vector<int32_t>& out) const {
  std::vector<Piece> pieces;
  pieces.push_back({std::string(text), at_start});
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  for (const auto& piece : pieces) model_->tokenize(piece.text, out);
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = post_processor_.prefix;
  auto encode_normalized = [&](std::string_view raw, bool at_start) {
    if (!normalizer_) {
      encode_text(raw, at_start, ids);
      return;
    }
    const std::string normalized = normalizer_->normalize(raw);
    if (normalized_matcher_.empty()) {
      encode_text(normalized, at_start, ids);
      return;
    }
    for (const auto& s : normalized_matcher_.split(normalized)) {
      if (s.id >= 0) {
        ids.push_back(s.id);
      } else {
        encode_text(std::string_view(normalized).substr(s.begin, s.end - s.begin),
                    at_start && s.begin == 0, ids);
      }
    }
  };
  if (raw_matcher_.empty()) {
    if (!text.empty()) encode_normalized(text, true);
  } else {
    for (const auto& s : raw_matcher_.split(text)) {
      if (s.id >= 0) {
        ids.push_back(s.id);
      } else {
        encode_normalized(text.substr(s.begin, s.end - s.begin), s.begin == 0);
      }
    }
  }
  if (add_special_tokens) {
    ids.insert(ids.end(), post_processor_.suffix.begin(), post_processor_.suffix.end());
  }
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const auto added = added_by_id_.find(id);
    if (added != added_by_id_.end()) {
      const AddedToken& token = added_tokens_[added->second];
      if (!(skip_special_tokens && token.special)) tokens.push_back(token.content);
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (token == nullptr) {
      throw Error("cannot decode id " + std::to_string(id) + ": not in the vocabulary (size " +
                  std::to_string(vocab_size_) + ")");
    }
    tokens.push_back(*token);
  }
  if (!decoder_) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  decoder_->decode_chain(tokens);
  std::string text;
  for (const auto& token : tokens) text += token;
  return text;
}

}  // namespace bireco::text
