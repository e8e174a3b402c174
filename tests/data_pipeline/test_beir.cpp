// The BEIR reader on a hand-made folder and on the shared SciFact copy.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bireco/data/sources.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::data {
namespace {
using nlohmann::json;
using test::TempDir;
using test::write_file;

TEST(DataBeir, TinyFolderGivesPositivePairs) {
  TempDir dir;
  const auto folder = dir / "tiny";
  write_file(folder / "corpus.jsonl",
             R"({"_id": "d1", "title": "Title one", "text": "Text one."})" "\n"
             R"({"_id": "d2", "title": "", "text": "Text two."})" "\n"
             R"({"_id": "d3", "text": "Text three."})" "\n");
  write_file(folder / "queries.jsonl",
             R"({"_id": "q1", "text": "first?", "metadata": {}})" "\n"
             R"({"_id": "q2", "text": "second?"})" "\n");
  write_file(folder / "qrels/test.tsv",
             "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t0\nq2\td2\t2\nq2\td3\t1\n");
  SourceOptions options;
  options.beir_split = "test";
  InstructionTable instructions;
  instructions.default_instruction = "Retrieve";
  const auto dataset = open_beir_folder(folder, options, instructions);
  EXPECT_EQ(dataset->name(), "tiny");
  ASSERT_EQ(dataset->size(), 3);  // the score-0 judgement is not a pair
  const PairRecord r0 = dataset->read(0), r1 = dataset->read(1), r2 = dataset->read(2);
  EXPECT_EQ(r0.query, "first?");
  EXPECT_EQ(r0.positive, "Title one Text one.");
  EXPECT_EQ(r1.query, "second?");
  EXPECT_EQ(r1.positive, "Text two.");
  EXPECT_EQ(r2.positive, "Text three.");
  EXPECT_TRUE(r2.negatives.empty());
  EXPECT_EQ(r2.instruction, "Retrieve");

  write_file(folder / "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td9\t1\n");
  try {
    open_beir_folder(folder, options, instructions);
    ADD_FAILURE() << "an unknown corpus-id was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (folder / "qrels/test.tsv").string() + ":2: corpus-id 'd9' is not in corpus.jsonl");
  }
  options.on_bad_record = BadRecordPolicy::kSkip;
  EXPECT_EQ(open_beir_folder(folder, options, instructions)->skipped(), 1);
}

// A qrels file without BEIR's header row keeps its first judgement; with one, the header is
// skipped; a bad score elsewhere names file and line.
TEST(DataBeir, QrelsHeaderIsDetectedNotAssumed) {
  TempDir dir;
  const auto folder = dir / "tiny";
  write_file(folder / "corpus.jsonl", R"({"_id": "d1", "text": "one"})"
                                      "\n"
                                      R"({"_id": "d2", "text": "two"})"
                                      "\n");
  write_file(folder / "queries.jsonl", R"({"_id": "q1", "text": "first?"})"
                                       "\n");
  SourceOptions options;
  options.beir_split = "test";
  write_file(folder / "qrels/test.tsv", "q1\td1\t1\nq1\td2\t1\n");
  EXPECT_EQ(open_beir_folder(folder, options, {})->size(), 2);
  write_file(folder / "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1\n");
  EXPECT_EQ(open_beir_folder(folder, options, {})->size(), 2);
  write_file(folder / "qrels/test.tsv", "q1\td1\t1\nq1\td2\tyes\n");
  try {
    open_beir_folder(folder, options, {});
    ADD_FAILURE() << "a non-integer score was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              (folder / "qrels/test.tsv").string() + ":2: score 'yes' is not an integer");
  }
}

TEST(DataBeir, SharedSciFactMatchesStraightParse) {
  BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact/qrels/test.tsv");
  const auto folder = test::shared_dir() / "realdata/datasets/beir-scifact";
  std::map<std::string, std::string> queries, docs;
  {
    std::ifstream in(folder / "queries.jsonl");
    for (std::string line; std::getline(in, line);) {
      const json q = json::parse(line);
      queries[q["_id"]] = q["text"];
    }
    std::ifstream corpus(folder / "corpus.jsonl");
    for (std::string line; std::getline(corpus, line);) {
      const json d = json::parse(line);
      const std::string title = d["title"];
      docs[d["_id"]] = title.empty() ? d["text"].get<std::string>() : title + " " +
                                                                          d["text"].get<std::string>();
    }
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  {
    std::ifstream in(folder / "qrels/test.tsv");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
      if (std::stoi(line.substr(t2 + 1)) > 0) {
        pairs.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1)});
      }
    }
  }
  SourceOptions options;
  options.beir_split = "test";
  const auto dataset = open_beir_folder(folder, options, {});
  ASSERT_EQ(dataset->size(), static_cast<int64_t>(pairs.size()));
  EXPECT_EQ(dataset->size(), 339);
  for (size_t i = 0; i < pairs.size(); i += 17) {
    const PairRecord r = dataset->read(static_cast<int64_t>(i));
    EXPECT_EQ(r.query, queries.at(pairs[i].first)) << i;
    EXPECT_EQ(r.positive, docs.at(pairs[i].second)) << i;
  }
}

}  // namespace
}  // namespace bireco::data

namespace bireco::data {
namespace {

TEST(DataDemo, BundledDemoDataHasNoBadRecords) {
  const auto demo = test::source_dir() / "data/demo";
  SourceOptions options;
  options.use_index_cache = false;  // leave the source tree alone
  const auto train = open_pairs_file(demo / "train/scifact.jsonl", options, {});
  EXPECT_EQ(train->size(), 320);
  EXPECT_EQ(train->read(0).negatives.size(), 1u);
  options.beir_split = "test";
  const auto test = open_beir_folder(demo / "scifact-test", options, {});
  EXPECT_EQ(test->size(), 339);  // every test judgement of SciFact has score 1
  EXPECT_EQ(test->skipped(), 0);
}

}  // namespace
}  // namespace bireco::data
