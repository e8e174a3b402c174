// Shared by the fuzz targets: a scratch folder for parsers that read files, and the one
// failure check. A target catches bireco::Error (the documented answer to bad input); any
// other exception escapes, and libFuzzer reports it as a crash (a bug: the parser must turn
// it into a bireco::Error naming the file).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bireco::fuzz {

// A folder made once per process under $TMPDIR. libFuzzer leaves through _Exit, so it is not
// removed here: run the targets with TMPDIR set to a folder removed afterwards, as
// scripts/sanitize.sh does (in /dev/shm: a disk-backed /tmp made the file-reading targets
// wait on I/O, 3x fewer executions).
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "bireco-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    return std::filesystem::path(pattern);
  }();
  return dir;
}

// Writes the input to `name` in the scratch folder (replacing it) and returns its path.
inline std::filesystem::path write_input(const std::string& name, const uint8_t* data,
                                         size_t size) {
  const std::filesystem::path file = scratch_dir() / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();
  return file;
}

// An invariant of a parser's result that does not hold: reported as a crash.
#define BIRECO_FUZZ_CHECK(cond)                                                      \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

}  // namespace bireco::fuzz
