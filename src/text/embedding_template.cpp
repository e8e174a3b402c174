// EmbeddingTemplate: BOS, head, instructed text, tail, EOS, each tokenized alone; truncates only
// the text.
#include "bireco/text/embedding_template.h"

#include <algorithm>
#include <string>

#include "bireco/util/error.h"

namespace bireco::text {
namespace {

constexpr std::string_view kText = "{text}";
constexpr std::string_view kInstruction = "{instruction}";

size_t count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

EmbeddingTemplate::EmbeddingTemplate(const Tokenizer& tokenizer, const config::TextConfig& text)
    : tokenizer_(tokenizer), text_(text) {
  if (count(text_.template_, kText) != 1) {
    throw Error("text.template: must contain {text} exactly once, got '" + text_.template_ + "'");
  }
  if (count(text_.instruction_format, kText) != 1) {
    throw Error("text.instruction_format: must contain {text} exactly once, got '" +
                text_.instruction_format + "'");
  }
}

std::vector<int32_t> EmbeddingTemplate::head() const {
  return tokenizer_.encode(std::string_view(text_.template_).substr(0, text_.template_.find(kText)),
                           false);
}

std::vector<int32_t> EmbeddingTemplate::tail() const {
  const size_t slot = text_.template_.find(kText);
  return tokenizer_.encode(std::string_view(text_.template_).substr(slot + kText.size()), false);
}

std::optional<int32_t> EmbeddingTemplate::bos() const {
  return text_.add_bos ? tokenizer_.bos_id() : std::nullopt;
}

std::optional<int32_t> EmbeddingTemplate::eos() const {
  return text_.add_eos ? tokenizer_.eos_id() : std::nullopt;
}

namespace {

// `part` with each {instruction} replaced in one pass (braces inside the instruction are never
// read as placeholders).
std::string substitute(std::string_view part, std::string_view instruction) {
  std::string out;
  for (size_t pos = 0; pos < part.size();) {
    if (part.compare(pos, kInstruction.size(), kInstruction) == 0) {
      out.append(instruction);
      pos += kInstruction.size();
    } else {
      out += part[pos++];
    }
  }
  return out;
}

}  // namespace

std::string instruction_prefix(const config::TextConfig& text, std::string_view instruction) {
  if (instruction.empty()) return "";
  const std::string& format = text.instruction_format;
  if (format.find(kInstruction) == std::string::npos) {
    throw Error("text.instruction_format: has no {instruction}, but an instruction was given");
  }
  return substitute(std::string_view(format).substr(0, format.find(kText)), instruction);
}

std::string instruction_suffix(const config::TextConfig& text, std::string_view instruction) {
  if (instruction.empty()) return "";
  const std::string& format = text.instruction_format;
  const size_t at = format.find(kText);
  if (at == std::string::npos) return "";
  return substitute(std::string_view(format).substr(at + kText.size()), instruction);
}

EncodedText EmbeddingTemplate::encode(std::string_view text, std::string_view instruction,
                                      int64_t max_length) const {
  // The instructed text is one string, tokenized at once, as sentence-transformers tokenizes
  // prompt + text; the template's head and tail are fixed ids around it.
  const std::string prefix = instruction_prefix(instruction);
  std::string body = prefix;
  body.append(text);
  body += instruction_suffix(instruction);
  std::vector<int32_t> ids = tokenizer_.encode(body, false);
  // The instruction's tokens are those `ids` shares with the prefix alone (a token that
  // straddles the separator and the text counts as text).
  const size_t instruction_len =
      prefix.empty() ? 0 : common_prefix(ids, tokenizer_.encode(prefix, false));

  const std::optional<int32_t> bos_id = bos();
  const std::optional<int32_t> eos_id = eos();
  const std::vector<int32_t> head_ids = head(), tail_ids = tail();
  const int64_t fixed =
      (bos_id ? 1 : 0) + (eos_id ? 1 : 0) + static_cast<int64_t>(head_ids.size() + tail_ids.size());
  if (max_length > 0 && fixed + static_cast<int64_t>(ids.size()) > max_length) {
    // Too long: HF's truncation cuts the sequence's ids at the end and keeps the
    // post-processor's (BOS, head, tail, EOS).
    const int64_t room = max_length - fixed;
    if (room < static_cast<int64_t>(instruction_len)) {
      throw Error("text.max_length " + std::to_string(max_length) +
                  " leaves no room for the text: BOS/EOS, the template and the instruction take " +
                  std::to_string(fixed + static_cast<int64_t>(instruction_len)) + " tokens");
    }
    ids.resize(static_cast<size_t>(room));
  }
  EncodedText out;
  out.prefix_length = (bos_id ? 1 : 0) + static_cast<int64_t>(head_ids.size() + instruction_len);
  out.ids.reserve(static_cast<size_t>(fixed) + ids.size());
  if (bos_id) out.ids.push_back(*bos_id);
  out.ids.insert(out.ids.end(), head_ids.begin(), head_ids.end());
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.ids.insert(out.ids.end(), tail_ids.begin(), tail_ids.end());
  if (eos_id) out.ids.push_back(*eos_id);
  return out;
}

}  // namespace bireco::text
