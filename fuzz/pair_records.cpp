// Pairs records (data/pair_format.h) through the real reader: the input is written as a
// .jsonl or .tsv file (its first byte picks), indexed by LineIndex with bad records skipped,
// and every indexed record read back. The index validated each line with the same parser
// that reads it, so no read may fail, and every record has a non-empty query and positive.
#include <cstdint>
#include <string>

#include "bireco/data/sources.h"
#include "bireco/util/error.h"
#include "fuzz_support.h"

namespace {

bool blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bireco::data;
  if (size == 0) return 0;
  const bool tsv = data[0] == 't';  // seeds start with 't' (tsv) or 'j' (jsonl)
  const auto file = bireco::fuzz::write_input(tsv ? "pairs.tsv" : "pairs.jsonl", data + 1, size - 1);
  SourceOptions options;
  options.on_bad_record = BadRecordPolicy::kSkip;
  options.use_index_cache = false;
  std::unique_ptr<Dataset> dataset;
  try {
    dataset = open_pairs_file(file, options, InstructionTable());
  } catch (const bireco::Error&) {
    return 0;  // e.g. a line longer than the index can hold
  }
  for (int64_t i = 0; i < dataset->size(); ++i) {
    const PairRecord record = dataset->read(i);
    BIRECO_FUZZ_CHECK(!blank(record.query) && !blank(record.positive));
    for (const std::string& negative : record.negatives) BIRECO_FUZZ_CHECK(!blank(negative));
  }
  return 0;
}
