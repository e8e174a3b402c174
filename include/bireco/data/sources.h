// Training datasets opened from a DataConfig: one Dataset per E5/pairs file or BEIR folder.
// A Dataset knows its size up front (bad records were counted while indexing) and reads any
// record on demand, so the sampler can plan batches before any text is read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/data/line_index.h"
#include "bireco/data/pair_format.h"
#include "bireco/data/record.h"

namespace bireco::data {

// Which instruction a dataset's queries get: `data.instruction_overrides`, else the table
// (`data.instructions`: dataset -> string or list of 1-2 strings; a list of two alternates by
// record index parity, even -> first), else `data.default_instruction`. Keys starting with
// '_' are comments.
class InstructionTable {
 public:
  InstructionTable() = default;
  static InstructionTable from_config(const config::DataConfig& data);
  // Reads a table file; a malformed one is a bireco::Error naming the file and key.
  static std::map<std::string, std::vector<std::string>> load_table(
      const std::filesystem::path& file);

  // The instruction of record `index` (0-based among the dataset's valid records).
  const std::string& lookup(const std::string& dataset, int64_t index) const;

  std::map<std::string, std::vector<std::string>> table;
  std::map<std::string, std::string> overrides;
  std::string default_instruction;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  // File stem for jsonl/tsv ("nq" for data/nq.jsonl), folder name for BEIR.
  virtual const std::string& name() const = 0;
  virtual int64_t size() const = 0;
  // Record `i` in [0, size()), instruction and dataset filled in. Thread-safe.
  virtual PairRecord read(int64_t i) const = 0;
  // Bad records skipped under `on_bad_record: skip`, and the first one's message.
  virtual int64_t skipped() const = 0;
  virtual std::string first_skipped() const = 0;
};

struct SourceOptions {
  PairFields fields;
  BadRecordPolicy on_bad_record = BadRecordPolicy::kError;
  std::string beir_split = "train";
  bool use_index_cache = true;
  // Hard negatives every record must have (objective.contrastive.hard_negatives of a
  // contrastive stage): a record with fewer is a bad record, reported while indexing.
  int64_t min_negatives = 0;
};

SourceOptions source_options_from_config(const config::DataConfig& data);

// An E5/echo or generic pairs file: `.jsonl` (one JSON object per line) or `.tsv` (see
// TsvColumns).
std::unique_ptr<Dataset> open_pairs_file(const std::filesystem::path& file,
                                         const SourceOptions& options,
                                         const InstructionTable& instructions);

// A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv, header optional): one
// record per judgement with score > 0; positive = title + " " + text (text alone without a
// title); no hard negatives. Ids are mapped to byte offsets at open, so the corpus is scanned
// once per start (not cached) but its text stays on disk.
std::unique_ptr<Dataset> open_beir_folder(const std::filesystem::path& folder,
                                          const SourceOptions& options,
                                          const InstructionTable& instructions);

// Every dataset of `data.train` in `data.format`, each entry expanded by config::expand_glob
// (the start-up check's expansion; bireco's `.idx.bin` caches are never data), in sorted order
// per entry. A file is a dataset named by its stem; a folder (formats e5, pairs, text) is one
// dataset named by the folder, made of its .jsonl/.tsv files (shards) in sorted order, with
// one instruction; for `beir` a folder is a BEIR folder. A pattern that matches nothing is a
// bireco::Error naming it. `hard_negatives` > 0: every record needs that many (min_negatives).
std::vector<std::unique_ptr<Dataset>> open_datasets(const config::DataConfig& data,
                                                    int64_t hard_negatives = 0);

}  // namespace bireco::data
