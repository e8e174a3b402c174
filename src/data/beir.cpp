// BEIR folders as pair datasets: one record per positive qrels judgement (see sources.h).
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "bireco/data/qrels.h"
#include "bireco/data/sources.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/strings.h"

namespace bireco::data {
namespace {

using nlohmann::json;

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// `_id` as a string (BEIR writes strings; a number is accepted as its decimal form).
std::optional<std::string> id_of(const json& object) {
  const auto it = object.find("_id");
  if (it == object.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  return std::nullopt;
}

std::string string_field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct Parsed {
  std::string id, title, text;
};

// Why a corpus (with_title) or queries line is bad, or nullopt with `out` filled.
std::optional<std::string> parse_beir_line(std::string_view line, bool with_title, Parsed* out) {
  json object;
  try {
    object = json::parse(line.begin(), line.end());
  } catch (const json::parse_error& e) {
    return "malformed JSON (syntax error at byte " + std::to_string(e.byte) + ")";
  } catch (const json::exception& e) {
    return "malformed JSON (" + util::json_error_text(e) + ")";
  }
  if (!object.is_object()) return "expected a JSON object";
  auto id = id_of(object);
  if (!id) return "field '_id' is missing or not a string";
  const auto text = object.find("text");
  if (text == object.end()) return "field 'text' is missing";
  if (!text->is_string()) return "field 'text' must be a string";
  out->id = std::move(*id);
  out->text = text->get<std::string>();
  out->title = with_title ? string_field(object, "title") : std::string();
  if (blank(out->text) && blank(out->title)) {
    return with_title ? "fields 'title' and 'text' are both empty" : "field 'text' is empty";
  }
  return std::nullopt;
}

class BeirFolder final : public Dataset {
 public:
  BeirFolder(const std::filesystem::path& folder, const SourceOptions& options,
             const InstructionTable& instructions)
      : name_(folder.filename().empty() ? folder.parent_path().filename().string()
                                        : folder.filename().string()),
        instructions_(instructions),
        corpus_path_(folder / "corpus.jsonl"),
        queries_path_(folder / "queries.jsonl"),
        policy_(options.on_bad_record) {
    corpus_ids_ = scan(corpus_path_, true, &corpus_index_);
    query_ids_ = scan(queries_path_, false, &queries_index_);
    corpus_ = std::make_unique<RecordFile>(corpus_path_);
    queries_ = std::make_unique<RecordFile>(queries_path_);

    // qrels: an optional header (qrels.h), then query-id \t corpus-id \t score; every
    // score > 0 is a pair.
    const std::filesystem::path qrels = folder / "qrels" / (options.beir_split + ".tsv");
    LineValidator take = [&](std::string_view line) -> std::optional<std::string> {
      Judgement j;
      if (auto why = parse_qrels_line(line, &j)) return why;
      const auto q = query_ids_.find(j.query);
      if (q == query_ids_.end()) return "query-id '" + j.query + "' is not in queries.jsonl";
      const auto d = corpus_ids_.find(j.document);
      if (d == corpus_ids_.end()) return "corpus-id '" + j.document + "' is not in corpus.jsonl";
      if (j.score > 0) pairs_.push_back({q->second, d->second});
      return std::nullopt;
    };
    IndexOptions index_options;
    index_options.on_bad_record = policy_;
    index_options.first_line = qrels_header_line(qrels) + 1;
    index_options.use_cache = false;  // the validator collects the pairs
    const LineIndex qrels_index = LineIndex::build(qrels, take, index_options);
    skipped_ += qrels_index.skipped();
    if (first_skipped_.empty()) first_skipped_ = qrels_index.first_skipped();
  }

  const std::string& name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(pairs_.size()); }
  int64_t skipped() const override { return skipped_; }
  std::string first_skipped() const override { return first_skipped_; }

  PairRecord read(int64_t i) const override {
    const auto [q, d] = pairs_[static_cast<size_t>(i)];
    PairRecord record;
    record.query = load(*queries_, queries_index_, queries_path_, q, false).text;
    const Parsed doc = load(*corpus_, corpus_index_, corpus_path_, d, true);
    record.positive = blank(doc.title) ? doc.text : doc.title + " " + doc.text;
    record.instruction = instructions_.lookup(name_, i);
    record.dataset = name_;
    return record;
  }

 private:
  // Indexes a corpus or queries file (validating each line) and maps ids to entries.
  std::unordered_map<std::string, int64_t> scan(const std::filesystem::path& file,
                                                bool with_title,
                                                std::vector<LineIndex::Entry>* entries) {
    std::vector<std::string> ids;
    LineValidator validate = [&](std::string_view line) -> std::optional<std::string> {
      Parsed parsed;
      auto why = parse_beir_line(line, with_title, &parsed);
      if (!why) ids.push_back(std::move(parsed.id));
      return why;
    };
    IndexOptions index_options;
    index_options.on_bad_record = policy_;
    index_options.use_cache = false;  // the validator collects the ids
    const LineIndex index = LineIndex::build(file, validate, index_options);
    skipped_ += index.skipped();
    if (first_skipped_.empty()) first_skipped_ = index.first_skipped();
    std::unordered_map<std::string, int64_t> by_id;
    for (int64_t k = 0; k < index.size(); ++k) {
      entries->push_back(index.entry(k));
      by_id.emplace(ids[static_cast<size_t>(k)], k);
    }
    return by_id;
  }

  static Parsed load(const RecordFile& file, const std::vector<LineIndex::Entry>& index,
                     const std::filesystem::path& path, int64_t k, bool with_title) {
    const LineIndex::Entry& e = index[static_cast<size_t>(k)];
    std::string line = file.read(e.offset, e.length);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Parsed parsed;
    if (auto why = parse_beir_line(line, with_title, &parsed)) {
      throw Error(path.string() + ":" + std::to_string(e.line) + ": " + *why +
                  " (the file changed since it was indexed?)");
    }
    return parsed;
  }

  std::string name_;
  InstructionTable instructions_;
  std::filesystem::path corpus_path_, queries_path_;
  BadRecordPolicy policy_;
  std::unordered_map<std::string, int64_t> corpus_ids_, query_ids_;
  std::vector<LineIndex::Entry> corpus_index_, queries_index_;
  std::unique_ptr<RecordFile> corpus_, queries_;
  std::vector<std::pair<int64_t, int64_t>> pairs_;  // (query entry, corpus entry)
  int64_t skipped_ = 0;
  std::string first_skipped_;
};

}  // namespace

std::unique_ptr<Dataset> open_beir_folder(const std::filesystem::path& folder,
                                          const SourceOptions& options,
                                          const InstructionTable& instructions) {
  if (!std::filesystem::is_directory(folder)) {
    throw Error("data.train: '" + folder.string() + "' is not a BEIR folder");
  }
  if (options.min_negatives > 0) {
    throw Error("data.train: BEIR folder '" + folder.string() + "' has no hard negatives, " +
                "objective.contrastive.hard_negatives asks for " +
                std::to_string(options.min_negatives) + " (set it to 0)");
  }
  return std::make_unique<BeirFolder>(folder, options, instructions);
}

}  // namespace bireco::data
