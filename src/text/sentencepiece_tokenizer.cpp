#include "bireco/text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "bireco/util/error.h"

namespace bireco::text {
namespace {

std::optional<int32_t> valid_id(int32_t id, int64_t size) {
  if (id < 0 || id >= size) return std::nullopt;
  return id;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::filesystem::path& model_file)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  if (!std::filesystem::exists(model_file)) {
    throw Error("tokenizer file not found: " + model_file.string());
  }
  const auto status = processor_->Load(model_file.string());
  if (!status.ok()) {
    throw Error(model_file.string() + ": not a SentencePiece model: " + status.ToString());
  }
  vocab_size_ = processor_->GetPieceSize();
  bos_ = valid_id(processor_->bos_id(), vocab_size_);
  eos_ = valid_id(processor_->eos_id(), vocab_size_);
  pad_ = valid_id(processor_->pad_id(), vocab_size_);
  piece_to_id_.reserve(static_cast<size_t>(vocab_size_));
  special_.resize(static_cast<size_t>(vocab_size_));
  for (int32_t id = 0; id < vocab_size_; ++id) {
    piece_to_id_.emplace(processor_->IdToPiece(id), id);
    special_[id] = processor_->IsControl(id) || processor_->IsUnknown(id);
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text,
                                                    bool add_special_tokens) const {
  std::vector<int> pieces;
  if (!processor_->Encode(text, &pieces).ok())
    throw Error("SentencePiece could not encode a text of " + std::to_string(text.size()) +
                " bytes");
  std::vector<int32_t> ids;
  ids.reserve(pieces.size() + 1);
  if (add_special_tokens && bos_) ids.push_back(*bos_);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids,
                                           bool skip_special_tokens) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) {
      throw Error("cannot decode id " + std::to_string(id) + ": not in the vocabulary (size " +
                  std::to_string(vocab_size_) + ")");
    }
    if (skip_special_tokens && special_[id]) continue;
    kept.push_back(id);
  }
  std::string text;
  if (!processor_->Decode(kept, &text).ok()) throw Error("SentencePiece could not decode the ids");
  return text;
}

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = piece_to_id_.find(std::string(token));
  if (it == piece_to_id_.end()) return std::nullopt;
  return it->second;
}

}  // namespace bireco::text
