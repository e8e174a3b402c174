// Shared by the text suites: the real tokenizers of ../shared/realdata (loaded once per
// process: the Llama-3.2 file is 17 MB) and readers for the reference files.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bireco/text/tokenizer.h"
#include "test_support.h"

namespace bireco::test {

inline std::filesystem::path realdata() { return shared_dir() / "realdata"; }

// realdata/tokenizers/<name> (a folder, or a file inside it), loaded once.
inline const text::Tokenizer& real_tokenizer(const std::string& relative) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<text::Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[relative];
  if (!slot) slot = text::Tokenizer::load(realdata() / "tokenizers" / relative);
  return *slot;
}

struct Reference {
  std::string text;
  std::vector<int32_t> ids;
};

// realdata/tokenizations/<file>: {"text": ..., "ids": [...]} per line.
inline std::vector<Reference> read_tokenizations(const std::string& file) {
  std::vector<Reference> out;
  std::istringstream in(read_file(realdata() / "tokenizations" / file));
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    out.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()});
  }
  return out;
}

// llama.cpp's ggml-vocab-<name>.gguf.inp / .out: 46 strings and their ids.
inline std::vector<Reference> read_llamacpp(const std::string& name) {
  const auto base = realdata() / "llamacpp_refs" / ("ggml-vocab-" + name + ".gguf");
  const std::string inp = read_file(base.string() + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Reference> out;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(separator, pos);
    if (end == std::string::npos) break;
    out.push_back({inp.substr(pos, end - pos), {}});
    pos = end + separator.size();
  }
  std::istringstream lines(read_file(base.string() + ".out"));
  std::string line;
  for (size_t i = 0; std::getline(lines, line) && i < out.size(); ++i) {
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) out[i].ids.push_back(id);
  }
  return out;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

}  // namespace bireco::test
