#include "bireco/train/resume_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "bireco/util/strings.h"
#include "bireco/util/xxhash64.h"

namespace bireco::train {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

constexpr size_t kBlock = 4096;
constexpr size_t kBlocks = 64;

// XXH64 of the size and up to kBlocks blocks of kBlock bytes spread evenly over `file`.
uint64_t sampled_xxh64(const fs::path& file, uint64_t size) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file.string() + ": cannot open: " + std::strerror(errno));
  std::string bytes(reinterpret_cast<const char*>(&size), sizeof size);
  const uint64_t blocks = std::min<uint64_t>(kBlocks, (size + kBlock - 1) / kBlock);
  char buffer[kBlock];
  for (uint64_t i = 0; i < blocks; ++i) {
    // Block i starts at i/(blocks-1) of the way to the last block: the first and last included.
    const uint64_t last = size > kBlock ? size - kBlock : 0;
    const off_t at = static_cast<off_t>(blocks == 1 ? 0 : last * i / (blocks - 1));
    const ssize_t n = ::pread(fd, buffer, kBlock, at);
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      throw Error(file.string() + ": read failed: " + std::strerror(saved));
    }
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return util::xxhash64(bytes.data(), bytes.size());
}

std::string hex(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// Keys whose value does not change the trajectory: where outputs go, how often they are
// written, logging, the transport of collectives, and memory/speed knobs proven equal
// (tests/model, tests/objective). data.train is compared through its files.
bool is_operational(const std::string& key) {
  for (const char* prefix : {"checkpoint.", "dist."})
    if (key.rfind(prefix, 0) == 0) return true;
  for (const char* exact :
       {"train.log_every", "train.log_level", "train.max_skipped_steps", "model.device",
        "model.gradient_checkpointing", "objective.loss_chunk_tokens",
        "objective.loss_head_gradient", "data.train"})
    if (key == exact) return true;
  return false;
}

// Appends to `out` each key path under `prefix` where `before` and `now` differ (a section on
// one side and a value on the other, e.g. model.lora null -> {r: 4, ...}, is one difference);
// keys only one side has go to `unrecorded` / `retired`.
struct Comparison {
  std::vector<std::string> out, unrecorded, retired;
};
void compare(const json& before, const json& now, const std::string& prefix, Comparison& c) {
  if (!prefix.empty() && is_operational(prefix)) return;
  auto path = [&](const std::string& key) { return prefix.empty() ? key : prefix + "." + key; };
  if (before.is_object() && now.is_object()) {
    for (const auto& [key, value] : now.items()) {
      if (before.contains(key))
        compare(before[key], value, path(key), c);
      else if (!is_operational(path(key)))
        c.unrecorded.push_back(path(key));
    }
    for (const auto& [key, value] : before.items())
      if (!now.contains(key) && !is_operational(path(key))) c.retired.push_back(path(key));
    return;
  }
  if (before != now)
    c.out.push_back(prefix + ": " + before.dump() + " at the checkpoint, " + now.dump() + " now");
}

std::string file_name(const json& entry) {
  return fs::path(entry.value("path", std::string())).filename().string();
}

}  // namespace

json data_fingerprint(const config::DataConfig& data) {
  json files = json::array();
  auto add = [&](const fs::path& file) {
    if (config::is_index_cache(file)) return;
    const uint64_t size = fs::file_size(file);
    files.push_back({{"path", fs::absolute(file).lexically_normal().string()},
                     {"size", size},
                     {"xxh64", hex(sampled_xxh64(file, size))}});
  };
  for (const auto& pattern : data.train) {
    for (const fs::path& path : config::expand_glob(pattern)) {
      if (!fs::is_directory(path)) {
        add(path);
        continue;
      }
      std::vector<fs::path> inside;
      for (const auto& entry : fs::recursive_directory_iterator(path))
        if (entry.is_regular_file()) inside.push_back(entry.path());
      std::sort(inside.begin(), inside.end());
      for (const auto& file : inside) add(file);
    }
  }
  return files;
}

std::vector<std::string> run_differences(const json& saved_config, const json& saved_data,
                                         const json& config_now, const json& data_now,
                                         std::vector<std::string>* notes) {
  Comparison c;
  compare(saved_config, config_now, "", c);
  std::vector<std::string> out = std::move(c.out);
  if (notes && !c.retired.empty())
    notes->push_back("recorded in the checkpoint but no longer a config key, not compared: " +
                     util::join(c.retired, ", "));
  if (notes && !c.unrecorded.empty())
    notes->push_back("not recorded in the checkpoint (written by an older bireco), not compared: " +
                     util::join(c.unrecorded, ", "));

  if (!saved_data.is_array()) {
    if (notes)
      notes->push_back(
          "the checkpoint records no data fingerprint (written by an older bireco): the data files "
          "are not compared, only their record count");
    return out;
  }
  const size_t common = std::min(saved_data.size(), data_now.size());
  for (size_t i = 0; i < common; ++i) {
    const json& a = saved_data[i];
    const json& b = data_now[i];
    const std::string where = "data file " + std::to_string(i) + " (" + file_name(b) + ")";
    if (file_name(a) != file_name(b)) {
      out.push_back("data file " + std::to_string(i) + ": " + a.value("path", "?") +
                    " at the checkpoint, " + b.value("path", "?") + " now");
    } else if (a.value("size", json()) != b.value("size", json())) {
      out.push_back(where + ": size " + a.value("size", json()).dump() + " at the checkpoint, " +
                    b.value("size", json()).dump() + " now");
    } else if (a.value("xxh64", json()) != b.value("xxh64", json())) {
      out.push_back(where + ": same size, other content (sampled xxh64 " +
                    a.value("xxh64", std::string("?")) + " at the checkpoint, " +
                    b.value("xxh64", std::string("?")) + " now)");
    }
  }
  for (size_t i = common; i < saved_data.size(); ++i)
    out.push_back("data file " + std::to_string(i) + ": " + saved_data[i].value("path", "?") +
                  " at the checkpoint, absent now");
  for (size_t i = common; i < data_now.size(); ++i)
    out.push_back("data file " + std::to_string(i) + ": absent at the checkpoint, " +
                  data_now[i].value("path", "?") + " now");
  return out;
}

}  // namespace bireco::train
