// manifest.json: the last file written into a checkpoint folder, listing every other file
// with its size and XXH64, so that a folder is known complete (the manifest exists and
// parses) and a truncated or bit-rotted file is refused by name instead of loaded.
//
//   {"format": "bireco-manifest", "version": 1, "checksum": "xxh64",
//    "files": {"model.safetensors": {"size": 123, "xxh64": "44bc2cf5ad770999"}, ...}}
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace bireco::util {

constexpr const char* kManifestFile = "manifest.json";

struct ManifestEntry {
  uint64_t size = 0;
  uint64_t xxh64 = 0;
};
using Manifest = std::map<std::string, ManifestEntry>;  // relative path (with '/') -> entry

// Lists every regular file under `dir` (manifest.json aside) and writes DIR/manifest.json
// through a DurableFile. Call it last, once nothing else will be written into `dir`.
void write_manifest(const std::filesystem::path& dir);

bool has_manifest(const std::filesystem::path& dir);

// DIR/manifest.json parsed; Error naming it when missing or malformed.
Manifest read_manifest(const std::filesystem::path& dir);

enum class ManifestCheck { kSizes, kChecksums };

// "" when the files listed match; else one line naming the first bad file, e.g.
// "out/step-40/model.safetensors: size 123 != manifest 456 (truncated or corrupted checkpoint)".
// `only` (relative paths) restricts the check to those files; empty: every listed file.
std::string manifest_problem(const std::filesystem::path& dir, ManifestCheck check,
                             const std::vector<std::string>& only = {});

// manifest_problem as an Error.
void verify_manifest(const std::filesystem::path& dir, ManifestCheck check,
                     const std::vector<std::string>& only = {});

}  // namespace bireco::util
