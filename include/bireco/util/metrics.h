// Appends one JSON object per logged step to <dir>/metrics.jsonl (scripts/plot_metrics.py
// reads it), and the same numbers as TensorBoard scalars to <dir>/tensorboard/ (tag = key,
// at the record's "step"). Each line and event is flushed, so a killed run keeps what it logged.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bireco/util/tensorboard.h"

namespace bireco::util {

class MetricsWriter {
 public:
  MetricsWriter() = default;  // writes nothing (ranks other than 0)
  // Opens <dir>/metrics.jsonl for appending and a new event file in <dir>/tensorboard/.
  explicit MetricsWriter(const std::filesystem::path& dir);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace bireco::util
