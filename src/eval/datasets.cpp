// Readers for evaluation data: BEIR folders, STS pairs, reranking lists, texts to embed.
#include "bireco/eval/datasets.h"

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "bireco/data/qrels.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/strings.h"

namespace bireco::eval {
namespace {

using nlohmann::json;

// Calls `take(line, where, n)` for each non-blank line n (1-based; line ends stripped);
// `where` is "file:n" for messages.
void for_each_line(const std::filesystem::path& file,
                   const std::function<void(const std::string&, const std::string&, size_t)>& take) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open");
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    take(line, file.string() + ":" + std::to_string(n), n);
  }
}

json parse_object(const std::string& line, const std::string& where) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    throw Error(where + ": malformed JSON (syntax error at byte " + std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {
    throw Error(where + ": malformed JSON (" + util::json_error_text(e) + ")");
  }
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  return j;
}

std::string string_field(const json& j, const char* key, const std::string& where, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(where + ": field '" + key + "' is missing");
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  throw Error(where + ": field '" + key + "' must be a string");
}

double number_field(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) throw Error(where + ": field '" + key + "' must be a number");
  return it->get<double>();
}

std::vector<std::string> string_list(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) return {};
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array()) throw Error(where + ": field '" + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& s : *it) {
    if (!s.is_string()) throw Error(where + ": field '" + key + "' must be a list of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

double parse_double(const std::string& cell, const std::string& where, const std::string& what) {
  try {
    size_t used = 0;
    const double v = std::stod(cell, &used);
    if (used == cell.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(where + ": " + what + " '" + cell + "' is not a number");
}

}  // namespace

Qrels read_qrels(const std::filesystem::path& file) {
  Qrels qrels;
  bool first = true;
  for_each_line(file, [&](const std::string& line, const std::string& where, size_t) {
    const bool header = first && data::is_qrels_header(line);
    first = false;
    if (header) return;
    data::Judgement j;
    if (auto why = data::parse_qrels_line(line, &j)) throw Error(where + ": " + *why);
    qrels[j.query][j.document] = j.score;
  });
  return qrels;
}

BeirSplit read_beir(const std::filesystem::path& folder, const std::string& split) {
  if (!std::filesystem::is_directory(folder)) throw Error("--data: '" + folder.string() + "' is not a BEIR folder");
  BeirSplit beir;
  beir.qrels = read_qrels(folder / "qrels" / (split + ".tsv"));
  for_each_line(folder / "corpus.jsonl", [&](const std::string& line, const std::string& where, size_t) {
    const json j = parse_object(line, where);
    const std::string title = string_field(j, "title", where, false);
    const std::string text = string_field(j, "text", where);
    beir.corpus.ids.push_back(string_field(j, "_id", where));
    // (title + " " + text).strip(), as MTEB and BEIR join a document: an export embeds the same
    // string in MTEB as here (surrounding whitespace is tokenized).
    std::string joined = title.empty() ? text : title + " " + text;
    const char* space = " \t\n\v\f\r";
    const size_t first = joined.find_first_not_of(space);
    joined = first == std::string::npos
                 ? ""
                 : joined.substr(first, joined.find_last_not_of(space) - first + 1);
    beir.corpus.texts.push_back(std::move(joined));
  });
  for_each_line(folder / "queries.jsonl", [&](const std::string& line, const std::string& where, size_t) {
    const json j = parse_object(line, where);
    std::string id = string_field(j, "_id", where);
    if (beir.qrels.count(id) == 0) return;
    beir.queries.ids.push_back(std::move(id));
    beir.queries.texts.push_back(string_field(j, "text", where));
  });
  return beir;
}

BeirSplit cap_beir(BeirSplit split, int64_t max_queries, int64_t max_corpus) {
  if (max_queries > 0 && static_cast<int64_t>(split.queries.ids.size()) > max_queries) {
    split.queries.ids.resize(static_cast<size_t>(max_queries));
    split.queries.texts.resize(static_cast<size_t>(max_queries));
    Qrels kept;
    for (const auto& id : split.queries.ids) kept[id] = split.qrels.at(id);
    split.qrels = std::move(kept);
  }
  if (max_corpus > 0 && static_cast<int64_t>(split.corpus.ids.size()) > max_corpus) {
    std::set<std::string> judged;
    for (const auto& [query, docs] : split.qrels)
      for (const auto& [doc, grade] : docs) judged.insert(doc);
    std::vector<bool> keep(split.corpus.ids.size());
    int64_t kept = 0;
    for (size_t i = 0; i < keep.size(); ++i) {
      keep[i] = judged.count(split.corpus.ids[i]) > 0;
      if (keep[i]) ++kept;
    }
    for (size_t i = 0; i < keep.size() && kept < max_corpus; ++i) {
      if (keep[i]) continue;
      keep[i] = true;
      ++kept;
    }
    Texts corpus;
    for (size_t i = 0; i < keep.size(); ++i) {
      if (!keep[i]) continue;
      corpus.ids.push_back(std::move(split.corpus.ids[i]));
      corpus.texts.push_back(std::move(split.corpus.texts[i]));
    }
    split.corpus = std::move(corpus);
  }
  return split;
}

StsPairs read_sts(const std::filesystem::path& file) {
  StsPairs pairs;
  const bool jsonl = file.extension() == ".jsonl";
  for_each_line(file, [&](const std::string& line, const std::string& where, size_t) {
    if (jsonl) {
      const json j = parse_object(line, where);
      pairs.first.push_back(string_field(j, "sentence1", where));
      pairs.second.push_back(string_field(j, "sentence2", where));
      pairs.gold.push_back(number_field(j, "score", where));
      return;
    }
    // STS-B: some lines carry extra fields (sources) after the seventh; they are ignored.
    const auto cells = util::split(line, '\t');
    if (cells.size() < 7) throw Error(where + ": expected at least 7 tab-separated fields (STS-B layout)");
    pairs.gold.push_back(parse_double(cells[4], where, "score"));
    pairs.first.push_back(cells[5]);
    pairs.second.push_back(cells[6]);
  });
  if (pairs.gold.size() < 2) throw Error(file.string() + ": needs at least 2 scored pairs");
  return pairs;
}

std::vector<RerankingSample> read_reranking(const std::filesystem::path& file) {
  std::vector<RerankingSample> samples;
  for_each_line(file, [&](const std::string& line, const std::string& where, size_t) {
    const json j = parse_object(line, where);
    RerankingSample s;
    s.query = string_field(j, "query", where);
    s.positive = string_list(j, "positive", where);
    s.negative = string_list(j, "negative", where);
    samples.push_back(std::move(s));
  });
  return samples;
}

Texts read_texts(const std::filesystem::path& file) {
  Texts texts;
  const bool jsonl = file.extension() == ".jsonl";
  std::set<std::string> seen;
  for_each_line(file, [&](const std::string& line, const std::string& where, size_t line_number) {
    std::string id = std::to_string(line_number);
    if (jsonl) {
      const json j = parse_object(line, where);
      texts.texts.push_back(string_field(j, "text", where));
      if (j.contains("id")) id = string_field(j, "id", where);
    } else {
      texts.texts.push_back(line);
    }
    if (!seen.insert(id).second) throw Error(where + ": duplicate id '" + id + "'");
    texts.ids.push_back(std::move(id));
  });
  return texts;
}

}  // namespace bireco::eval
