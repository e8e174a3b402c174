// SentencePiece BPE model -> tokenizer.json (LlamaConverter's layout).
#include "bireco/text/sentencepiece_json.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "bireco/util/error.h"

namespace bireco::text {
namespace {

using nlohmann::json;

// Byte offsets of the UTF-8 character starts inside `piece` after the first (the split points).
std::vector<size_t> split_points(const std::string& piece) {
  std::vector<size_t> at;
  for (size_t i = 1; i < piece.size(); ++i)
    if ((static_cast<unsigned char>(piece[i]) & 0xC0) != 0x80) at.push_back(i);
  return at;
}

}  // namespace

nlohmann::json sentencepiece_tokenizer_json(const std::filesystem::path& model_file) {
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.Load(model_file.string()); !status.ok())
    throw Error(model_file.string() + ": not a SentencePiece model: " + status.ToString());
  const int n = sp.GetPieceSize();
  // Pieces a merge may produce or consume: the ordinary ones (not control, unknown, unused or
  // <0xNN> byte pieces), as SentencePiece's BPE only merges those.
  auto ordinary = [&](int id) {
    return !sp.IsControl(id) && !sp.IsUnknown(id) && !sp.IsUnused(id) && !sp.IsByte(id);
  };
  std::unordered_map<std::string, int> ids;
  ids.reserve(static_cast<size_t>(n));
  json vocab = json::object();
  json added = json::array();
  bool has_bytes = false;
  for (int id = 0; id < n; ++id) {
    const std::string& piece = sp.IdToPiece(id);
    ids.emplace(piece, id);
    vocab[piece] = id;
    has_bytes = has_bytes || sp.IsByte(id);
    if (sp.IsControl(id) || sp.IsUnknown(id))
      added.push_back({{"id", id},
                       {"content", piece},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", true}});
  }
  // (-score of the merged piece, left id, right id): the rank of each merge. transformers lists
  // every pair of pieces whose concatenation is a piece, left then right in id order, and sorts
  // them stably by the piece's score; pieces of equal score (Llama-2's runs of "▁", all -1e9)
  // keep that pair order.
  std::vector<std::tuple<float, int, int>> merges;
  for (int id = 0; id < n; ++id) {
    if (!ordinary(id)) continue;
    const std::string& piece = sp.IdToPiece(id);
    for (const size_t at : split_points(piece)) {
      const auto left = ids.find(piece.substr(0, at));
      const auto right = ids.find(piece.substr(at));
      if (left == ids.end() || right == ids.end()) continue;
      if (!ordinary(left->second) || !ordinary(right->second)) continue;
      merges.emplace_back(-sp.GetScore(id), left->second, right->second);
    }
  }
  std::sort(merges.begin(), merges.end());
  json merge_list = json::array();
  for (const auto& [score, left, right] : merges)
    merge_list.push_back({sp.IdToPiece(left), sp.IdToPiece(right)});

  const std::string unk = sp.unk_id() >= 0 ? sp.IdToPiece(sp.unk_id()) : std::string();
  json post = nullptr;
  if (sp.bos_id() >= 0 && sp.bos_id() < n) {
    const std::string bos = sp.IdToPiece(sp.bos_id());
    post = {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {sp.bos_id()}}, {"tokens", {bos}}}}}}};
  }
  const std::string space = "\xe2\x96\x81";  // ▁
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", space}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", space}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor", post},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", space}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", unk.empty() ? json(nullptr) : json(unk)},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", true},
            {"byte_fallback", has_bytes},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

const std::vector<std::string>& tokenizer_probe_texts() {
  static const std::vector<std::string> texts = {
      "Hello world",
      "  two leading spaces, and  two inside  ",
      "line one\nline two\n\n\ttabbed\r\n",
      "Numbers 1234567 and 3.14159, dates 2024-01-31.",
      "Über naïve façade — “quotes” and ‘apostrophes’ … ½",
      "日本語のテキストと中文文本",
      "Привет, мир! Γειά σου κόσμε",
      "emoji 🙂🚀 and rare \xf0\x9f\xa6\x9c symbols ∑∫√",
      "CamelCaseIdentifiers_with_underscores and URLs https://example.org/a?b=c",
      "The p53 protein (TP53) regulates apoptosis in >90% of cells; IC50 = 0.5 μM."};
  return texts;
}

}  // namespace bireco::text
