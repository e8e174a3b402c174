// A SentencePiece .model file through libsentencepiece: plain `encode` (special tokens written
// in the text stay text, as in SentencePiece), the model's own BOS/EOS/pad.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bireco/text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace bireco::text {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws bireco::Error naming the file when it does not load.
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // add_special_tokens puts the model's BOS in front (HF's slow LlamaTokenizer default).
  // Ill-formed UTF-8 is handled by SentencePiece (it becomes U+FFFD).
  std::vector<int32_t> encode(std::string_view text,
                              bool add_special_tokens = false) const override;
  // skip_special_tokens drops control and unknown pieces. An id outside the vocabulary is a
  // bireco::Error.
  std::string decode(const std::vector<int32_t>& ids,
                     bool skip_special_tokens = false) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<int32_t> pad_id() const override { return pad_; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  int64_t vocab_size_ = 0;
  std::optional<int32_t> bos_, eos_, pad_;
  std::unordered_map<std::string, int32_t> piece_to_id_;
  std::vector<bool> special_;  // control or unknown
};

}  // namespace bireco::text
