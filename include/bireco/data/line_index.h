// Byte offsets of the valid records of a line-based file (jsonl, tsv), so a multi-GB file is
// neither parsed in full at every start nor held in memory: records are read on demand with
// pread. Every line is validated once while indexing; the index is cached beside the file
// as `<file>.idx.bin`, keyed by the file's size and mtime and by what validated it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bireco::data {

// What to do with a line the validator rejects (config `data.on_bad_record`).
enum class BadRecordPolicy { kError, kSkip };
BadRecordPolicy parse_bad_record_policy(const std::string& name);

// Returns why `line` (without its line end) is not a valid record, e.g. "field 'positive' is
// missing", or nullopt when it is. Whitespace-only lines are never records and never reach it.
using LineValidator = std::function<std::optional<std::string>(std::string_view line)>;

struct IndexOptions {
  BadRecordPolicy on_bad_record = BadRecordPolicy::kError;
  // Identifies the validator (format, field names): a cached index made under another key is
  // rebuilt.
  std::string validator_key;
  // Lines before this one (1-based) are not records, e.g. 2 skips a tsv header.
  uint64_t first_line = 1;
  // Write and reuse `<file>.idx.bin`; when the folder is read-only the index stays in memory.
  bool use_cache = true;
};

class LineIndex {
 public:
  struct Entry {
    uint64_t offset = 0;  // byte offset of the line in the file
    uint32_t length = 0;  // bytes, line end excluded
    uint32_t line = 0;    // 1-based line number, for messages
  };

  // Indexes `file`, or loads a current cache. With kError, the first bad line is a
  // bireco::Error "<file>:<line>: <why>"; with kSkip it is counted.
  static LineIndex build(const std::filesystem::path& file, const LineValidator& validate,
                         const IndexOptions& options);

  // `<file>.idx.bin`
  static std::filesystem::path cache_path(const std::filesystem::path& file);

  const std::filesystem::path& file() const { return file_; }
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  const Entry& entry(int64_t i) const { return entries_[static_cast<size_t>(i)]; }
  // Bad lines skipped under kSkip, and the first one's message (empty when none).
  int64_t skipped() const { return skipped_; }
  const std::string& first_skipped() const { return first_skipped_; }
  // True when this index came from `<file>.idx.bin` rather than a scan.
  bool from_cache() const { return from_cache_; }

 private:
  std::filesystem::path file_;
  std::vector<Entry> entries_;
  int64_t skipped_ = 0;
  std::string first_skipped_;
  bool from_cache_ = false;
};

// A file read at offsets (pread), opened on demand for each read: no descriptor is held
// between reads, so any number of files can be datasets. Thread-safe, no shared position.
class RecordFile {
 public:
  explicit RecordFile(const std::filesystem::path& file);

  // The bytes [offset, offset + length); a short read or a file that cannot be opened is a
  // bireco::Error naming the file.
  std::string read(uint64_t offset, uint32_t length) const;

 private:
  std::filesystem::path file_;
};

}  // namespace bireco::data
