#include "bireco/util/metrics.h"

#include <cerrno>
#include <cstring>

#include "bireco/util/error.h"

namespace bireco::util {

MetricsWriter::MetricsWriter(const std::filesystem::path& dir) : path_(dir / "metrics.jsonl") {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create folder " + dir.string() + ": " + ec.message());
  file_ = std::fopen(path_.c_str(), "a");
  if (file_ == nullptr) {
    throw Error("cannot open " + path_.string() + " for appending: " + std::strerror(errno));
  }
  tensorboard_ = std::make_unique<TensorBoardWriter>(dir / "tensorboard");
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (file_ == nullptr) return;
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw Error("cannot write to " + path_.string() + ": " + std::strerror(errno));
  }
  // Every number but the step itself (booleans and strings are not scalars).
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& [key, value] : record.items())
    if (key != "step" && value.is_number()) scalars.emplace_back(key, value.get<double>());
  tensorboard_->write(record.value("step", int64_t{0}), scalars);
}

}  // namespace bireco::util
