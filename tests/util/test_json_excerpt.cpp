// json_excerpt: what an error message shows of a user's JSON value, bounded in depth and length.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bireco/util/json_excerpt.h"

namespace bireco::util {
namespace {
using nlohmann::json;

TEST(JsonExcerpt, SmallValuesPrintAsCompactJson) {
  const json v = json::parse(R"({"b": [1, 2.5, "x"], "a": null, "c": {}})");
  EXPECT_EQ(json_excerpt(v), v.dump());
  EXPECT_EQ(json_excerpt(json(7)), "7");
  EXPECT_EQ(json_excerpt(json::array()), "[]");
}

TEST(JsonExcerpt, DeepNestingStopsAtMaxDepth) {
  json v = json::array();
  for (int i = 0; i < 200000; ++i) v = json::array({std::move(v)});  // dump() would recurse 200k deep
  EXPECT_EQ(json_excerpt(v, 200, 3), "[[[[...]]]]");
}

TEST(JsonExcerpt, LongValuesAreCutAndIllFormedUtf8Replaced) {
  EXPECT_EQ(json_excerpt(json(std::vector<int>(100, 1)), 10), "[1,1,1,...");
  EXPECT_EQ(json_excerpt(json(std::string("a\xff"))), "\"a\xef\xbf\xbd\"");
}

}  // namespace
}  // namespace bireco::util
