// Problems visible at start-up are reported at start-up: a dataset smaller than the global
// batch, a dataset missing from the instruction table, too few hard negatives.
#include <gtest/gtest.h>

#include "bireco/data/dataset_checks.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::data {
namespace {
using ::bireco::test::error_of;
using test::TempDir;
using test::write_file;

std::string records(int n, int negatives = 0) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += "{\"query\":\"q\",\"positive\":\"p\",\"negative\":[";
    for (int k = 0; k < negatives; ++k) text += std::string(k ? "," : "") + "\"n\"";
    text += "]}\n";
  }
  return text;
}

TEST(DataChecks, DatasetSmallerThanTheGlobalBatchIsNamed) {
  TempDir dir;
  write_file(dir / "big.jsonl", records(8));
  write_file(dir / "tiny.jsonl", records(3));
  config::DataConfig data;
  data.train = {(dir / "*.jsonl").string()};
  const auto datasets = open_datasets(data);
  const auto warnings = check_datasets(datasets, data, 4);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "data.train: dataset 'tiny' has 3 records, fewer than one global batch of 4 "
            "(train.batch_size x world size): with data.homogeneous_batches and data.drop_last "
            "it contributes no batch");
  data.drop_last = false;  // its batch is filled by repeating it
  EXPECT_TRUE(check_datasets(datasets, data, 4).empty());
  data.drop_last = true;
  data.homogeneous_batches = false;  // pooled with the others
  EXPECT_TRUE(check_datasets(datasets, data, 4).empty());
}

TEST(DataChecks, DatasetMissingFromTheInstructionTableIsNamed) {
  TempDir dir;
  write_file(dir / "nq.jsonl", records(2));
  write_file(dir / "scifact.jsonl", records(2));
  write_file(dir / "table.json", R"({"nq": "Retrieve passages"})");
  config::DataConfig data;
  data.train = {(dir / "*.jsonl").string()};
  data.instructions = (dir / "table.json").string();
  const auto datasets = open_datasets(data);
  const auto warnings = check_datasets(datasets, data, 1);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "data.instructions: dataset 'scifact' has no entry in " + data.instructions +
                " nor in data.instruction_overrides, and data.default_instruction is empty: its "
                "queries get no instruction");
  data.instruction_overrides["scifact"] = "Retrieve abstracts";
  EXPECT_TRUE(check_datasets(datasets, data, 1).empty());
  data.instruction_overrides.clear();
  data.default_instruction = "Retrieve";  // the table's fallback, as configured
  EXPECT_TRUE(check_datasets(datasets, data, 1).empty());
}

// objective.contrastive.hard_negatives: k is checked while indexing: an error naming file and
// line (not a collate error when the record's batch comes), or a skipped record.
TEST(DataChecks, TooFewHardNegativesIsAnErrorNamingFileAndLine) {
  TempDir dir;
  write_file(dir / "e5.jsonl", records(2, 2) + records(1, 1) + records(1, 3));
  config::DataConfig data;
  data.train = {(dir / "e5.jsonl").string()};
  EXPECT_EQ(open_datasets(data, 1)[0]->size(), 4);
  EXPECT_EQ(error_of([&] { open_datasets(data, 2); }),
            (dir / "e5.jsonl").string() +
                ":3: the record has 1 hard negatives ('negative'), "
                "objective.contrastive.hard_negatives asks for 2");
  data.on_bad_record = "skip";
  const auto datasets = open_datasets(data, 2);
  EXPECT_EQ(datasets[0]->size(), 3);
  EXPECT_EQ(datasets[0]->skipped(), 1);
  write_file(dir / "beir" / "corpus.jsonl", "{\"_id\":\"d\",\"text\":\"t\"}\n");
  data.format = "beir";
  data.train = {(dir / "beir").string()};
  EXPECT_NE(error_of([&] { open_datasets(data, 1); }).find("has no hard negatives"),
            std::string::npos);
}

}  // namespace
}  // namespace bireco::data
