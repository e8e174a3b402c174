// Writing and checking manifest.json (see manifest.h).
#include "bireco/util/manifest.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/xxhash64.h"

namespace bireco::util {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "bireco-manifest";
constexpr int kVersion = 1;

std::string hex(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

}  // namespace

void write_manifest(const fs::path& dir) {
  nlohmann::json files = nlohmann::json::object();
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    const std::string rel = fs::relative(entry.path(), dir).generic_string();
    if (rel == kManifestFile) continue;
    files[rel] = {{"size", entry.file_size()}, {"xxh64", hex(xxhash64_file(entry.path()))}};
  }
  const nlohmann::json manifest = {
      {"format", kFormat}, {"version", kVersion}, {"checksum", "xxh64"}, {"files", files}};
  write_file_durably(dir / kManifestFile, manifest.dump(1) + "\n");
}

bool has_manifest(const fs::path& dir) { return fs::is_regular_file(dir / kManifestFile); }

Manifest read_manifest(const fs::path& dir) {
  const fs::path file = dir / kManifestFile;
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw Error(file.string() + ": missing (incomplete checkpoint: its save did not finish)");
  Manifest manifest;
  try {
    const auto json = nlohmann::json::parse(in);
    if (json.value("format", "") != kFormat || json.value("version", 0) != kVersion)
      throw Error(file.string() + ": not a version-" + std::to_string(kVersion) +
                  " bireco manifest");
    for (const auto& [rel, entry] : json.at("files").items()) {
      const fs::path path(rel);
      if (path.is_absolute() || std::find(path.begin(), path.end(), "..") != path.end())
        throw Error(file.string() + ": file `" + rel +
                    "` lies outside the folder (corrupted checkpoint)");
      ManifestEntry e;
      e.size = entry.at("size").get<uint64_t>();
      e.xxh64 = std::stoull(entry.at("xxh64").get<std::string>(), nullptr, 16);
      manifest[rel] = e;
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": unreadable (" + json_error_text(e) + "; corrupted checkpoint)");
  } catch (const std::logic_error& e) {  // stoull
    throw Error(file.string() + ": bad checksum text (corrupted checkpoint)");
  }
  return manifest;
}

std::string manifest_problem(const fs::path& dir, ManifestCheck check,
                             const std::vector<std::string>& only) {
  Manifest manifest;
  try {
    manifest = read_manifest(dir);
  } catch (const Error& e) {
    return e.what();
  }
  for (const auto& rel : only)
    if (!manifest.count(rel))
      return (dir / rel).string() + ": not listed in " + kManifestFile + " (corrupted checkpoint)";
  for (const auto& [rel, expected] : manifest) {
    if (!only.empty() && std::find(only.begin(), only.end(), rel) == only.end()) continue;
    const fs::path file = dir / rel;
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec)
      return file.string() + ": missing (listed in " + kManifestFile +
             "; incomplete or corrupted checkpoint)";
    if (size != expected.size)
      return file.string() + ": size " + std::to_string(size) + " != manifest " +
             std::to_string(expected.size) + " (truncated or corrupted checkpoint)";
    if (check != ManifestCheck::kChecksums) continue;
    uint64_t sum = 0;
    try {
      sum = xxhash64_file(file);
    } catch (const Error& e) {
      return e.what();
    }
    if (sum != expected.xxh64)
      return file.string() + ": xxh64 " + hex(sum) + " != manifest " + hex(expected.xxh64) +
             " (corrupted checkpoint)";
  }
  return "";
}

void verify_manifest(const fs::path& dir, ManifestCheck check,
                     const std::vector<std::string>& only) {
  const std::string problem = manifest_problem(dir, check, only);
  if (!problem.empty()) throw Error(problem);
}

}  // namespace bireco::util
