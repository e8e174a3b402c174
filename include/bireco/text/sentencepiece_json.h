// A SentencePiece BPE model (Llama-2's or Mistral's tokenizer.model) written as the Hugging Face
// tokenizer.json that transformers' LlamaConverter builds from it, so that an export of a model
// that came with only tokenizer.model loads in transformers 5 without its own conversion (which
// needs the sentencepiece protobuf stubs and, when they fail, falls back to reading the file as
// tiktoken and fails).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bireco::text {

// The tokenizer.json: BPE with byte fallback over the model's pieces, merges from every split of
// a piece into two pieces, ranked by the merged piece's score (highest first), then the left and
// right pieces' ids (transformers' SentencePieceExtractor, which wrote Llama-2's tokenizer.json);
// normalizer Prepend("▁") + Replace(" ", "▁"); the control and unknown pieces as special added
// tokens; post-processor BOS + text. Throws bireco::Error naming the file when it does not load.
nlohmann::json sentencepiece_tokenizer_json(const std::filesystem::path& model_file);

// Texts on which a converted tokenizer must give the SentencePiece model's ids (spaces, runs of
// spaces, newlines and tabs, digits, non-Latin scripts, bytes SentencePiece does not cover).
const std::vector<std::string>& tokenizer_probe_texts();

}  // namespace bireco::text
