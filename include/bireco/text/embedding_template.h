// Turns a query or document into the token ids the model embeds: BOS, the template's head, the
// (instructed) text, the template's tail and EOS. Each part is tokenized on its own, so that the
// ids are exactly what an exported tokenizer.json gives: its post-processor holds BOS, head, tail
// and EOS as fixed ids around the text (train/export.h), and a query's instruction is a
// sentence-transformers prompt, a prefix of the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/text/tokenizer.h"

namespace bireco::text {

struct EncodedText {
  std::vector<int32_t> ids;
  // Tokens before the text proper: BOS, the template's header and the instruction with its
  // separator. (The authors' code hides these from the reconstruction pass's attention;
  // `objective.reconstruction.reference_quirks` reproduces that.)
  int64_t prefix_length = 0;
};

// text.instruction_format's text before {text} with `instruction` in place of {instruction}: the
// prompt that sentence-transformers puts before a query ("" for an empty instruction); and the
// text after {text} (a prompt cannot express it; usually empty).
std::string instruction_prefix(const config::TextConfig& text, std::string_view instruction);
std::string instruction_suffix(const config::TextConfig& text, std::string_view instruction);

class EmbeddingTemplate {
 public:
  // Keeps a reference to `tokenizer`, which must outlive the template.
  EmbeddingTemplate(const Tokenizer& tokenizer, const config::TextConfig& text);

  // [BOS] + head() + tokens(instruction_format(instruction, text)) + tail() + [EOS if add_eos],
  // at most `max_length` ids: HF's tokenizer(prompt + text, truncation=True, max_length=...) on
  // an exported tokenizer.json, with prompt = instruction_prefix(instruction). When too long,
  // the instructed text's ids are cut at the end (the instruction first, so it survives); BOS,
  // head, tail and EOS always stay. An empty instruction means none (no separator either).
  // max_length <= 0: no truncation. A max_length that cannot hold BOS, the template, the
  // instruction and EOS is a bireco::Error. add_bos / add_eos add nothing when the tokenizer
  // has no such token (Qwen has no BOS). Text is taken as it is (no stripping, as
  // sentence-transformers).
  EncodedText encode(std::string_view text, std::string_view instruction,
                     int64_t max_length) const;

  // The template's text before and after {text}, tokenized alone (without special tokens).
  std::vector<int32_t> head() const;
  std::vector<int32_t> tail() const;
  std::optional<int32_t> bos() const;  // the BOS id added, if any
  std::optional<int32_t> eos() const;
  std::string instruction_prefix(std::string_view instruction) const {
    return text::instruction_prefix(text_, instruction);
  }
  std::string instruction_suffix(std::string_view instruction) const {
    return text::instruction_suffix(text_, instruction);
  }

 private:
  const Tokenizer& tokenizer_;
  config::TextConfig text_;
};

}  // namespace bireco::text
