// Instruction table, pairs-file datasets and opening a DataConfig's sources (see sources.h).
#include "bireco/data/sources.h"
#include "bireco/data/text_lines.h"

#include <glob.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::data {
namespace {

using nlohmann::json;

// A jsonl or tsv file of pairs, indexed by byte offsets and read with pread.
class PairsFile final : public Dataset {
 public:
  PairsFile(const std::filesystem::path& file, const SourceOptions& options,
            const InstructionTable& instructions)
      : name_(file.stem().string()), fields_(options.fields), instructions_(instructions),
        is_tsv_(file.extension() == ".tsv"), file_(file) {
    IndexOptions index_options;
    index_options.on_bad_record = options.on_bad_record;
    index_options.use_cache = options.use_index_cache;
    LineValidator validate;
    if (is_tsv_) {
      std::ifstream in(file, std::ios::binary);
      std::string first;
      std::getline(in, first);
      if (!first.empty() && first.back() == '\r') first.pop_back();
      columns_ = tsv_columns_from_header(first, fields_);
      index_options.first_line = columns_.has_header ? 2 : 1;
      validate = [this](std::string_view line) {
        return parse_tsv_pair(line, columns_, fields_, nullptr);
      };
    } else {
      validate = [this](std::string_view line) {
        return parse_jsonl_pair(line, fields_, nullptr);
      };
    }
    index_options.validator_key = std::string(is_tsv_ ? "tsv" : "jsonl") + "|" + fields_.query +
                                  "|" + fields_.positive + "|" + fields_.negative;
    index_ = LineIndex::build(file, validate, index_options);
  }

  const std::string& name() const override { return name_; }
  int64_t size() const override { return index_.size(); }
  int64_t skipped() const override { return index_.skipped(); }
  std::string first_skipped() const override { return index_.first_skipped(); }

  PairRecord read(int64_t i) const override {
    const LineIndex::Entry& e = index_.entry(i);
    std::string line = file_.read(e.offset, e.length);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    PairRecord record;
    const auto why = is_tsv_ ? parse_tsv_pair(line, columns_, fields_, &record)
                             : parse_jsonl_pair(line, fields_, &record);
    if (why) {
      throw Error(index_.file().string() + ":" + std::to_string(e.line) + ": " + *why +
                  " (the file changed since it was indexed?)");
    }
    record.instruction = instructions_.lookup(name_, i);
    record.dataset = name_;
    return record;
  }

 private:
  std::string name_;
  PairFields fields_;
  InstructionTable instructions_;
  bool is_tsv_;
  TsvColumns columns_;
  LineIndex index_;
  RecordFile file_;
};

// Expands a glob; a pattern without wildcards is returned as is (so a missing file gets the
// open error that names it).
std::vector<std::string> expand(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  glob_t g{};
  std::vector<std::string> paths;
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  if (paths.empty()) throw Error("data.train: '" + pattern + "' matches no file");
  return paths;  // glob(3) sorts
}

}  // namespace

std::map<std::string, std::vector<std::string>> InstructionTable::load_table(
    const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("data.instructions: cannot open " + file.string());
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::parse_error& e) {
    throw Error(file.string() + ": malformed JSON (syntax error at byte " +
                std::to_string(e.byte) + ")");
  } catch (const json::exception& e) {
    throw Error(file.string() + ": malformed JSON (" + util::json_error_text(e) + ")");
  }
  if (!doc.is_object()) throw Error(file.string() + ": expected an object dataset -> instruction");
  std::map<std::string, std::vector<std::string>> table;
  for (const auto& [key, value] : doc.items()) {
    if (!key.empty() && key[0] == '_') continue;
    std::vector<std::string> entries;
    if (value.is_string()) {
      entries.push_back(value.get<std::string>());
    } else if (value.is_array() && (value.size() == 1 || value.size() == 2)) {
      for (const auto& v : value) {
        if (!v.is_string()) break;
        entries.push_back(v.get<std::string>());
      }
    }
    if (entries.empty() || (value.is_array() && entries.size() != value.size())) {
      throw Error(file.string() + ": key '" + key +
                  "' must be a string or a list of 1 or 2 strings");
    }
    table[key] = std::move(entries);
  }
  return table;
}

InstructionTable InstructionTable::from_config(const config::DataConfig& data) {
  InstructionTable t;
  if (!data.instructions.empty()) t.table = load_table(data.instructions);
  t.overrides = data.instruction_overrides;
  t.default_instruction = data.default_instruction;
  return t;
}

const std::string& InstructionTable::lookup(const std::string& dataset, int64_t index) const {
  if (auto it = overrides.find(dataset); it != overrides.end()) return it->second;
  if (auto it = table.find(dataset); it != table.end()) {
    return it->second[static_cast<size_t>(index % static_cast<int64_t>(it->second.size()))];
  }
  return default_instruction;
}

SourceOptions source_options_from_config(const config::DataConfig& data) {
  SourceOptions o;
  o.fields = {data.query_field, data.positive_field, data.negative_field};
  o.on_bad_record = parse_bad_record_policy(data.on_bad_record);
  o.beir_split = data.beir_split;
  return o;
}

std::unique_ptr<Dataset> open_pairs_file(const std::filesystem::path& file,
                                         const SourceOptions& options,
                                         const InstructionTable& instructions) {
  return std::make_unique<PairsFile>(file, options, instructions);
}

std::vector<std::unique_ptr<Dataset>> open_datasets(const config::DataConfig& data) {
  const SourceOptions options = source_options_from_config(data);
  const InstructionTable instructions = InstructionTable::from_config(data);
  if (data.train.empty()) throw Error("data.train: no training data given");
  std::vector<std::unique_ptr<Dataset>> datasets;
  for (const std::string& pattern : data.train) {
    for (const std::string& path : expand(pattern)) {
      if (data.format == "beir") {
        datasets.push_back(open_beir_folder(path, options, instructions));
      } else if (data.format == "text") {
        datasets.push_back(open_text_file(path, options));
      } else {
        datasets.push_back(open_pairs_file(path, options, instructions));
      }
    }
  }
  return datasets;
}

}  // namespace bireco::data
