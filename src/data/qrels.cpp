// BEIR qrels lines and header detection (see qrels.h).
#include "bireco/data/qrels.h"

#include <fstream>

#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::data {
namespace {

std::optional<int64_t> integer(const std::string& cell) {
  try {
    size_t used = 0;
    const int64_t value = std::stoll(cell, &used);
    if (used == cell.size()) return value;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> parse_qrels_line(std::string_view line, Judgement* out) {
  const std::vector<std::string> cells = util::split(line, '\t');
  if (cells.size() < 3) return "expected query-id, corpus-id, score separated by tabs";
  const auto score = integer(cells[2]);
  if (!score) return "score '" + cells[2] + "' is not an integer";
  if (out != nullptr) *out = {cells[0], cells[1], *score};
  return std::nullopt;
}

bool is_qrels_header(std::string_view first_line) {
  const std::vector<std::string> cells = util::split(first_line, '\t');
  return cells.size() >= 3 && !integer(cells[2]);
}

uint64_t qrels_header_line(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open");
  std::string line;
  for (uint64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    return is_qrels_header(line) ? n : 0;
  }
  return 0;
}

}  // namespace bireco::data
