// The evaluation readers: qrels with and without BEIR's header row.
#include <gtest/gtest.h>

#include "bireco/eval/datasets.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::eval {
namespace {

// Without a header the first line is a judgement; with BEIR's, it is skipped; a bad score
// elsewhere is an error naming file and line.
TEST(EvalDatasets, QrelsHeaderIsDetectedNotAssumed) {
  test::TempDir tmp;
  const auto file = tmp / "test.tsv";
  test::write_file(file, "q1\td1\t1\nq1\td2\t2\nq2\td1\t0\n");
  const Qrels plain = read_qrels(file);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain.at("q1").at("d1"), 1);
  EXPECT_EQ(plain.at("q1").at("d2"), 2);
  test::write_file(file, "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
  const Qrels headed = read_qrels(file);
  ASSERT_EQ(headed.size(), 1u);
  EXPECT_EQ(headed.at("q1").size(), 1u);
  test::write_file(file, "q1\td1\t1\n\nq1\td2\thigh\n");
  try {
    read_qrels(file);
    ADD_FAILURE() << "a non-integer score was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ":3: score 'high' is not an integer");
  }
}

// A document is (title + " " + text).strip(), as MTEB and BEIR join it; queries are kept as they
// are (MTEB does not strip them either).
TEST(EvalDatasets, BeirDocumentsAreJoinedAndStrippedAsMtebDoes) {
  test::TempDir tmp;
  test::write_file(tmp / "qrels/test.tsv", "q1\td1\t1\n");
  test::write_file(tmp / "corpus.jsonl",
                   "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"  body\\n\"}\n"
                   "{\"_id\": \"d2\", \"title\": \" Title\", \"text\": \"body \"}\n"
                   "{\"_id\": \"d3\", \"title\": \"T\", \"text\": \"\"}\n");
  test::write_file(tmp / "queries.jsonl", "{\"_id\": \"q1\", \"text\": \" a query \"}\n");
  const BeirSplit beir = read_beir(tmp.path(), "test");
  EXPECT_EQ(beir.corpus.texts, (std::vector<std::string>{"body", "Title body", "T"}));
  EXPECT_EQ(beir.queries.texts, (std::vector<std::string>{" a query "}));
}

}  // namespace
}  // namespace bireco::eval
