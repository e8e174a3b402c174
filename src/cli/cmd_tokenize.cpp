// `bireco tokenize`: tokenize (or decode) jsonl texts with a tokenizer directory or file
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bireco/cli/command.h"
#include "bireco/text/tokenizer.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::cli {
namespace {

struct TokenizeOptions {
  std::string tokenizer, input;
  bool add_special_tokens = false, decode = false;
};

// Lines are read and written in blocks so that encode_batch can use every core while the
// output keeps the input's order.
constexpr size_t kBlockLines = 4096;

std::string location(const std::string& file, size_t line) {
  return file + ":" + std::to_string(line);
}

// One input line as JSON; a syntax error names file:line.
nlohmann::json parse_json_line(const std::string& line, const std::string& where) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid JSON: " + util::json_error_text(e));
  }
}

std::string parse_text(const std::string& line, const std::string& where) {
  const nlohmann::json j = parse_json_line(line, where);
  if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
    throw Error(where + ": expected {\"text\": \"...\"}, got " + line.substr(0, 80));
  }
  return j["text"].get<std::string>();
}

std::vector<int32_t> parse_ids(const std::string& line, const std::string& where,
                               int64_t vocab_size) {
  const nlohmann::json j = parse_json_line(line, where);
  if (!j.is_object() || !j.contains("ids") || !j["ids"].is_array()) {
    throw Error(where + ": expected {\"ids\": [...]}, got " + line.substr(0, 80));
  }
  std::vector<int32_t> ids;
  for (const auto& id : j["ids"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size) {
      throw Error(where + ": id " + id.dump() + " is not in the vocabulary (size " +
                  std::to_string(vocab_size) + ")");
    }
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o) {
  const auto tokenizer = text::Tokenizer::load(o.tokenizer);
  std::ifstream file;
  std::istream* in = &std::cin;
  if (o.input != "-") {
    file.open(o.input, std::ios::binary);
    if (!file) throw Error("cannot read " + o.input);
    in = &file;
  }
  const std::string name = o.input == "-" ? "<stdin>" : o.input;
  std::string line;
  size_t line_number = 0;
  bool more = true;
  while (more) {
    std::vector<std::string> lines;
    while (lines.size() < kBlockLines && (more = static_cast<bool>(std::getline(*in, line)))) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(std::move(line));
    }
    std::string out;
    if (o.decode) {
      for (size_t i = 0; i < lines.size(); ++i) {
        const auto where = location(name, line_number + i + 1);
        const auto ids = parse_ids(lines[i], where, tokenizer->vocab_size());
        out += nlohmann::json{{"text", tokenizer->decode(ids)}}.dump() + "\n";
      }
    } else {
      std::vector<std::string> texts;
      texts.reserve(lines.size());
      for (size_t i = 0; i < lines.size(); ++i) {
        texts.push_back(parse_text(lines[i], location(name, line_number + i + 1)));
      }
      for (const auto& ids : tokenizer->encode_batch(texts, o.add_special_tokens)) {
        out += "{\"ids\":[";
        for (size_t k = 0; k < ids.size(); ++k) {
          if (k > 0) out += ',';
          out += std::to_string(ids[k]);
        }
        out += "]}\n";
      }
    }
    line_number += lines.size();
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

Command add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* sub = app.add_subcommand(
      "tokenize", "tokenize (or decode) jsonl texts with a tokenizer directory or file");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer directory, tokenizer.json or .model")
      ->required();
  sub->add_option("--input", o->input, "texts.jsonl ({\"text\": ...} per line; - for stdin)")
      ->required();
  sub->add_flag("--add-special-tokens", o->add_special_tokens, "add BOS etc. as HF does");
  sub->add_flag("--decode", o->decode, "input lines are {\"ids\": [...]}; print {\"text\": ...}");
  return {sub, [o]() -> int { return run_tokenize(*o); }};
}

}  // namespace bireco::cli
