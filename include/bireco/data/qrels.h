// BEIR qrels lines (query-id \t corpus-id \t score), shared by the training reader (beir.cpp)
// and evaluation (eval/datasets.cpp), so that both decide alike whether a file has a header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace bireco::data {

struct Judgement {
  std::string query, document;
  int64_t score = 0;
};

// Why `line` is not a judgement ("expected query-id, corpus-id, score separated by tabs",
// "score 'x' is not an integer"), or nullopt with `out` (may be null) filled.
std::optional<std::string> parse_qrels_line(std::string_view line, Judgement* out);

// Whether the first non-blank line is a header rather than a judgement: BEIR writes
// "query-id\tcorpus-id\tscore", but qrels from trec tools or converted by hand often have
// none, so a first line of three or more tab-separated cells whose score is not an integer
// is a header; anything else is read as data (and a bad line is reported as such).
bool is_qrels_header(std::string_view first_line);

// The 1-based number of `file`'s header line, 0 when it has none (see is_qrels_header).
uint64_t qrels_header_line(const std::filesystem::path& file);

}  // namespace bireco::data
