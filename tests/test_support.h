// Paths and helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "bireco/util/error.h"

namespace bireco::test {

// tests/data in the source tree (small fixtures committed with their source and licence).
inline std::filesystem::path data_dir() { return BIRECO_TEST_DATA_DIR; }
inline std::filesystem::path source_dir() { return BIRECO_SOURCE_DIR; }
// The built `bireco` executable, for end-to-end CLI tests.
inline std::filesystem::path bireco_binary() { return BIRECO_BINARY; }

// ../shared beside the checkout, or $BIRECO_SHARED_DIR.
inline std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("BIRECO_SHARED_DIR")) return env;
  return BIRECO_DEFAULT_SHARED_DIR;
}

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "bireco-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the bireco::Error that `body` throws, or "" when it throws none.
template <class F>
std::string error_of(F&& body) {
  try {
    body();
  } catch (const ::bireco::Error& e) {
    return e.what();
  }
  return "";
}

// Result of running a command line through the shell.
struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int raw = ::pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

// The Python that holds the pinned Python stack (scripts/lib/python-tools.txt): $BIRECO_PYTHON, or
// the one the build was configured with ("" when neither is set).
inline std::string python() {
  if (const char* env = std::getenv("BIRECO_PYTHON"); env != nullptr && *env != '\0') return env;
  return BIRECO_DEFAULT_PYTHON;
}

// "" when python() imports every module of `modules` (space-separated), else why not.
inline std::string python_lacks(const std::string& modules) {
  if (python().empty()) return "no Python configured (set BIRECO_PYTHON)";
  std::string imports;
  for (size_t at = 0; at < modules.size();) {
    const size_t end = std::min(modules.find(' ', at), modules.size());
    if (end > at) imports += "import " + modules.substr(at, end - at) + "; ";
    at = end + 1;
  }
  const auto result = run_command("'" + python() + "' -c '" + imports + "'");
  if (result.status == 0) return "";
  return python() + " cannot import " + modules + ": " + result.output.substr(0, 400);
}

// Whether a missing Python stack fails the test instead of skipping it: scripts/test.sh installs
// the stack and sets BIRECO_REQUIRE_PYTHON_TOOLS=1, so in CI these tests never skip silently.
inline bool python_tools_required() {
  const char* env = std::getenv("BIRECO_REQUIRE_PYTHON_TOOLS");
  return env != nullptr && std::string(env) == "1";
}

// The real pretrained model's Hugging Face folder (SmolLM2-135M-Instruct, made by
// scripts/get_smollm2.sh): $BIRECO_SMOLLM2_DIR, or models/smollm2 of the checkout.
inline std::filesystem::path smollm2_dir() {
  if (const char* env = std::getenv("BIRECO_SMOLLM2_DIR"); env != nullptr && *env != '\0')
    return env;
  return source_dir() / "models" / "smollm2";
}

// Whether a missing SmolLM2 folder fails the test instead of skipping it: scripts/test.sh sets
// BIRECO_REQUIRE_SMOLLM2=1 once it has made the folder.
inline bool smollm2_required() {
  const char* env = std::getenv("BIRECO_REQUIRE_SMOLLM2");
  return env != nullptr && std::string(env) == "1";
}

}  // namespace bireco::test

// Skips (or fails, under BIRECO_REQUIRE_SMOLLM2=1) when the SmolLM2 folder is not there.
#define BIRECO_REQUIRE_SMOLLM2()                                                              \
  do {                                                                                        \
    const auto bireco_smollm2 = ::bireco::test::smollm2_dir();                                \
    if (!std::filesystem::exists(bireco_smollm2 / "model.safetensors")) {                     \
      const std::string why = "needs the SmolLM2-135M-Instruct folder " +                     \
                              bireco_smollm2.string() + " (scripts/get_smollm2.sh makes it)"; \
      if (::bireco::test::smollm2_required()) FAIL() << why;                                  \
      GTEST_SKIP() << why;                                                                    \
    }                                                                                         \
  } while (0)

// Skips (with the reason printed) when ../shared is not beside the checkout.
#define BIRECO_REQUIRE_SHARED(relative)                                                   \
  do {                                                                                    \
    if (!std::filesystem::exists(::bireco::test::shared_dir() / (relative))) {            \
      GTEST_SKIP() << "needs " << (::bireco::test::shared_dir() / (relative)).string()    \
                   << " (the team's shared folder beside the checkout, or set "           \
                      "BIRECO_SHARED_DIR)";                                               \
    }                                                                                     \
  } while (0)

// Skips (or fails, under BIRECO_REQUIRE_PYTHON_TOOLS=1) when the pinned Python stack lacks
// `modules`, e.g. BIRECO_REQUIRE_PYTHON("transformers peft").
#define BIRECO_REQUIRE_PYTHON(modules)                                              \
  do {                                                                              \
    const std::string bireco_lacks = ::bireco::test::python_lacks(modules);         \
    if (!bireco_lacks.empty()) {                                                    \
      if (::bireco::test::python_tools_required()) FAIL() << bireco_lacks;          \
      GTEST_SKIP() << bireco_lacks                                                  \
                   << " (scripts/lib/deps.sh bireco_install_python_tools installs " \
                      "the pinned stack)";                                          \
    }                                                                               \
  } while (0)
