// The tokenizer files of a checkpoint or export, rewritten so that Hugging Face tokenizers give
// bireco's ids by default: tokenizer.json's post-processor puts BOS, the template's head, the
// text, the template's tail and EOS together exactly as text::EmbeddingTemplate does, so
// AutoTokenizer(dir)(text), and therefore sentence-transformers and MTEB, need no extra code.
#pragma once

#include <filesystem>
#include <string>

#include "bireco/config/stage_config.h"

namespace bireco::train {

struct EmbeddingTokenizer {
  std::string query_prompt;  // the sentence-transformers prompt of a query with the instruction
  std::string query_suffix;  // instruction_format after {text}: no prompt can express it
  std::string pad_token;     // the pad token written (the source's, else EOS, else unknown)
};

// Rewrites DIR's tokenizer files (as save_pretrained copied them from the model, or text.tokenizer
// when it names a file) in place; a DIR without any (a bare test fixture) gets a warning, no files:
//   tokenizer.json: the source's (or, with only tokenizer.model,
//   text::sentencepiece_tokenizer_json)
//     with a TemplateProcessing post-processor: [BOS] head $A tail [EOS] as fixed ids. HF counts
//     those when truncating, so truncation to max_length cuts only the text, as bireco does.
//   tokenizer_config.json: PreTrainedTokenizerFast (a Llama class would rebuild the
//     post-processor from add_bos_token), BOS/EOS/unknown/pad tokens, model_max_length
//     text.max_length, right padding; special_tokens_map.json is removed (transformers lets it
//     override tokenizer_config.json); tokenizer.model, if any, stays (HF does not read it).
// Then reloads DIR with bireco's own tokenizer and checks, on probe texts and the template's
// parts, that the text's ids are the source's and that add_special_tokens gives the template's
// ids: a mismatch is a bireco::Error naming the text, so no export embeds differently in HF.
EmbeddingTokenizer write_embedding_tokenizer(const std::filesystem::path& dir,
                                             const config::TextConfig& text,
                                             const std::string& instruction);

}  // namespace bireco::train
