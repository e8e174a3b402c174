// Instruction table, pairs-file datasets and opening a DataConfig's sources (see sources.h).
#include "bireco/data/sources.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/config/load.h"
#include "bireco/data/text_lines.h"
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
    }
    // Too few hard negatives is found here, naming the line, not when its batch comes.
    const int64_t k = options.min_negatives;
    validate = [this, k](std::string_view line) -> std::optional<std::string> {
      PairRecord record;
      if (auto why = is_tsv_ ? parse_tsv_pair(line, columns_, fields_, k > 0 ? &record : nullptr)
                             : parse_jsonl_pair(line, fields_, k > 0 ? &record : nullptr))
        return why;
      if (k > 0 && static_cast<int64_t>(record.negatives.size()) < k) {
        return "the record has " + std::to_string(record.negatives.size()) + " hard negatives ('" +
               fields_.negative + "'), objective.contrastive.hard_negatives asks for " +
               std::to_string(k);
      }
      return std::nullopt;
    };
    index_options.validator_key = std::string(is_tsv_ ? "tsv" : "jsonl") + "|" + fields_.query +
                                  "|" + fields_.positive + "|" + fields_.negative +
                                  (k > 0 ? "|negatives>=" + std::to_string(k) : "");
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

// The files of one dataset as one: a folder of shards (`data/nq/part-*.jsonl`). Records are
// numbered across the files in their sorted order; the instruction is looked up by that number
// (so a two-entry table alternates across the whole dataset, not per file).
class ShardedDataset final : public Dataset {
 public:
  ShardedDataset(std::string name, std::vector<std::unique_ptr<Dataset>> parts,
                 const InstructionTable& instructions)
      : name_(std::move(name)), parts_(std::move(parts)), instructions_(instructions) {
    for (const auto& part : parts_) {
      starts_.push_back(size_);
      size_ += part->size();
      skipped_ += part->skipped();
      if (first_skipped_.empty()) first_skipped_ = part->first_skipped();
    }
  }

  const std::string& name() const override { return name_; }
  int64_t size() const override { return size_; }
  int64_t skipped() const override { return skipped_; }
  std::string first_skipped() const override { return first_skipped_; }

  PairRecord read(int64_t i) const override {
    const auto after = std::upper_bound(starts_.begin(), starts_.end(), i);  // the next part's start
    const auto part = static_cast<size_t>(after - starts_.begin() - 1);
    PairRecord record = parts_[part]->read(i - starts_[part]);
    record.instruction = instructions_.lookup(name_, i);
    record.dataset = name_;
    return record;
  }

 private:
  std::string name_;
  std::vector<std::unique_ptr<Dataset>> parts_;
  InstructionTable instructions_;
  std::vector<int64_t> starts_;  // first record of each part
  int64_t size_ = 0, skipped_ = 0;
  std::string first_skipped_;
};

// The data files of a folder given as one dataset: its `.jsonl` (and, for pairs, `.tsv`)
// files, sorted; hidden files and bireco's index caches are not data.
std::vector<std::filesystem::path> shard_files(const std::filesystem::path& folder,
                                               const std::string& format) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const auto& path = entry.path();
    const std::string name = path.filename().string();
    const std::string ext = path.extension().string();
    if (!entry.is_regular_file() || name.empty() || name[0] == '.' || config::is_index_cache(path))
      continue;
    if (ext == ".jsonl" || (ext == ".tsv" && format != "text")) files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw Error("data.train: folder '" + folder.string() + "' holds no " +
                (format == "text" ? ".jsonl" : ".jsonl or .tsv") + " file");
  }
  return files;
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

std::vector<std::unique_ptr<Dataset>> open_datasets(const config::DataConfig& data,
                                                    int64_t hard_negatives) {
  SourceOptions options = source_options_from_config(data);
  options.min_negatives = hard_negatives;
  const InstructionTable instructions = InstructionTable::from_config(data);
  if (data.train.empty()) throw Error("data.train: no training data given");
  std::vector<std::unique_ptr<Dataset>> datasets;
  const auto open_file = [&](const std::filesystem::path& file) {
    return data.format == "text" ? open_text_file(file, options)
                                 : open_pairs_file(file, options, instructions);
  };
  for (const std::string& pattern : data.train) {
    const std::vector<std::filesystem::path> paths = config::expand_glob(pattern);
    if (paths.empty()) {
      throw Error("data.train: '" + pattern + "' " +
                  (pattern.find_first_of("*?[") == std::string::npos ? "does not exist"
                                                                     : "matches no file"));
    }
    for (const std::filesystem::path& path : paths) {
      if (data.format == "beir") {
        datasets.push_back(open_beir_folder(path, options, instructions));
      } else if (std::filesystem::is_directory(path)) {
        std::vector<std::unique_ptr<Dataset>> parts;
        for (const auto& file : shard_files(path, data.format)) parts.push_back(open_file(file));
        const std::string name = path.filename().empty() ? path.parent_path().filename().string()
                                                         : path.filename().string();
        datasets.push_back(std::make_unique<ShardedDataset>(name, std::move(parts), instructions));
      } else {
        datasets.push_back(open_file(path));
      }
    }
  }
  return datasets;
}

}  // namespace bireco::data
