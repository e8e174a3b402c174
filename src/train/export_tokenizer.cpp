// tokenizer.json / tokenizer_config.json that carry the embedding template (export_tokenizer.h).
#include "bireco/train/export_tokenizer.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bireco/text/embedding_template.h"
#include "bireco/text/sentencepiece_json.h"
#include "bireco/text/tokenizer.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/log.h"

namespace bireco::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
}

// id -> token string of a tokenizer.json (added tokens, then the model's vocabulary), for the
// ids in `wanted` only.
std::map<int32_t, std::string> token_strings(const json& tokenizer,
                                             const std::vector<int32_t>& wanted) {
  std::map<int32_t, std::string> out;
  for (const int32_t id : wanted) out[id];
  auto take = [&](int64_t id, const std::string& token) {
    const auto it = out.find(static_cast<int32_t>(id));
    if (it != out.end() && it->second.empty()) it->second = token;
  };
  if (const auto it = tokenizer.find("added_tokens"); it != tokenizer.end() && it->is_array())
    for (const auto& t : *it) take(t.value("id", int64_t{-1}), t.value("content", std::string()));
  const json& vocab = tokenizer.at("model").value("vocab", json());
  if (vocab.is_object()) {
    for (const auto& [token, id] : vocab.items())
      if (id.is_number_integer()) take(id.get<int64_t>(), token);
  } else if (vocab.is_array()) {  // Unigram: [[piece, score], ...], the id is the index
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i].is_array() && !vocab[i].empty())
        take(static_cast<int64_t>(i), vocab[i][0].get<std::string>());
  }
  for (const auto& [id, token] : out)
    if (token.empty())
      throw Error("tokenizer.json: id " + std::to_string(id) + " has no token string");
  return out;
}

// [BOS] head $A tail [EOS] as TemplateProcessing; a ByteLevel post-processor of the source is
// kept in front (it only trims offsets).
json template_post_processor(const json& source, const text::EmbeddingTemplate& tmpl,
                             const std::map<int32_t, std::string>& tokens) {
  json single = json::array(), pair = json::array(), specials = json::object();
  auto special = [&](const std::string& name, const std::vector<int32_t>& ids) {
    if (ids.empty()) return;
    json strings = json::array();
    for (const int32_t id : ids) strings.push_back(tokens.at(id));
    specials[name] = {{"id", name}, {"ids", ids}, {"tokens", strings}};
    single.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
    pair.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
  };
  if (tmpl.bos()) special("bireco:bos", {*tmpl.bos()});
  special("bireco:head", tmpl.head());
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  pair.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  special("bireco:tail", tmpl.tail());
  if (tmpl.eos()) special("bireco:eos", {*tmpl.eos()});
  const json processor = {{"type", "TemplateProcessing"},
                          {"single", single},
                          {"pair", pair},
                          {"special_tokens", specials}};
  auto is_byte_level = [](const json& p) {
    return p.is_object() && p.value("type", "") == "ByteLevel";
  };
  json kept = json::array();
  if (is_byte_level(source)) kept.push_back(source);
  if (source.is_object() && source.value("type", "") == "Sequence")
    for (const auto& p : source.value("processors", json::array()))
      if (is_byte_level(p)) kept.push_back(p);
  if (kept.empty()) return processor;
  kept.push_back(processor);
  return {{"type", "Sequence"}, {"processors", kept}};
}

}  // namespace

EmbeddingTokenizer write_embedding_tokenizer(const fs::path& dir, const config::TextConfig& text,
                                             const std::string& instruction) {
  // save_pretrained copied the tokenizer files of a folder; text.tokenizer may name a file.
  const auto has_tokenizer = [&] {
    return fs::is_regular_file(dir / "tokenizer.json") ||
           fs::is_regular_file(dir / "tokenizer.model");
  };
  if (!has_tokenizer() && !text.tokenizer.empty() && fs::is_regular_file(text.tokenizer)) {
    const fs::path file = text.tokenizer;
    util::copy_file_durably(
        file, dir / (file.extension() == ".model" ? "tokenizer.model" : "tokenizer.json"));
    if (fs::is_regular_file(file.parent_path() / "tokenizer_config.json"))
      util::copy_file_durably(file.parent_path() / "tokenizer_config.json",
                              dir / "tokenizer_config.json");
  }
  EmbeddingTokenizer out;
  out.query_prompt = text::instruction_prefix(text, instruction);
  out.query_suffix = text::instruction_suffix(text, instruction);
  if (!has_tokenizer()) {
    // A bare model (tests' fixtures): nothing to carry the template.
    log::warn(
        dir.string(),
        " has no tokenizer.json or tokenizer.model: add the model's tokenizer before loading it "
        "with transformers or sentence-transformers");
    return out;
  }
  const auto source = text::Tokenizer::load(dir);
  const text::EmbeddingTemplate tmpl(*source, text);
  json tokenizer = fs::is_regular_file(dir / "tokenizer.json")
                       ? read_json(dir / "tokenizer.json")
                       : text::sentencepiece_tokenizer_json(dir / "tokenizer.model");

  std::vector<int32_t> wanted = tmpl.head();
  const std::vector<int32_t> tail = tmpl.tail();
  wanted.insert(wanted.end(), tail.begin(), tail.end());
  for (const auto& id : {source->bos_id(), source->eos_id(), source->pad_id()})
    if (id) wanted.push_back(*id);
  const auto tokens = token_strings(tokenizer, wanted);
  tokenizer["post_processor"] =
      template_post_processor(tokenizer.value("post_processor", json()), tmpl, tokens);
  // Padding and truncation are the caller's (sentence-transformers passes max_length).
  tokenizer["truncation"] = nullptr;
  tokenizer["padding"] = nullptr;

  json config = fs::is_regular_file(dir / "tokenizer_config.json")
                    ? read_json(dir / "tokenizer_config.json")
                    : json::object();
  if (!config.is_object())
    throw Error((dir / "tokenizer_config.json").string() + ": expected a JSON object");
  for (const char* key :
       {"add_bos_token", "add_eos_token", "tokenizer_file", "vocab_file", "merges_file",
        "sp_model_kwargs", "legacy", "add_prefix_space", "is_local", "local_files_only"})
    config.erase(key);
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (source->bos_id()) config["bos_token"] = tokens.at(*source->bos_id());
  if (source->eos_id()) config["eos_token"] = tokens.at(*source->eos_id());
  const json& model = tokenizer.at("model");
  if (model.contains("unk_token") && model["unk_token"].is_string())
    config["unk_token"] = model["unk_token"];
  // A batch needs a pad token; last-token pooling reads the attention mask, so any id does.
  if (source->pad_id())
    out.pad_token = tokens.at(*source->pad_id());
  else if (source->eos_id())
    out.pad_token = tokens.at(*source->eos_id());
  else if (config.contains("unk_token"))
    out.pad_token = config["unk_token"].get<std::string>();
  if (!out.pad_token.empty()) config["pad_token"] = out.pad_token;
  config["model_max_length"] = text.max_length > 0 ? text.max_length : int64_t{1} << 40;
  config["padding_side"] = "right";
  config["clean_up_tokenization_spaces"] = false;

  util::write_file_durably(dir / "tokenizer.json", tokenizer.dump(2, ' ', false) + "\n");
  util::write_file_durably(dir / "tokenizer_config.json", config.dump(2) + "\n");
  // transformers lets special_tokens_map.json override tokenizer_config.json's tokens; the
  // config now says everything. tokenizer.model stays for SentencePiece users (HF reads
  // tokenizer.json: PreTrainedTokenizerFast has no slow vocabulary file).
  fs::remove(dir / "special_tokens_map.json");

  // What HF will do, checked with bireco's reading of the same files.
  const auto written = text::Tokenizer::load(dir);
  std::vector<std::string> probes = text::tokenizer_probe_texts();
  probes.push_back(text.template_);
  probes.push_back(out.query_prompt + "a query");
  for (const auto& probe : probes) {
    const std::string shown = json(probe).dump();
    if (written->encode(probe, false) != source->encode(probe, false))
      throw Error(
          (dir / "tokenizer.json").string() + ": tokenizes " + shown +
          " differently from the model's own tokenizer; the export would not embed as bireco does");
    if (written->encode(probe, true) != tmpl.encode(probe, "", 0).ids)
      throw Error((dir / "tokenizer.json").string() +
                  ": its post-processor does not give bireco's template ids for " + shown);
  }
  return out;
}

}  // namespace bireco::train
