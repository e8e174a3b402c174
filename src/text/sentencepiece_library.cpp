#include "bireco/text/sentencepiece_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "bireco/util/error.h"

namespace bireco::text {
namespace {

namespace fs = std::filesystem;

constexpr const char* kShimName = "libbireco_sentencepiece.so";

template <typename Fn>
void bind(void* handle, const char* name, Fn& fn, const std::string& path) {
  void* symbol = ::dlsym(handle, name);
  if (symbol == nullptr) {
    throw Error("SentencePiece shim " + path + " has no symbol " + name +
                " (built from another version of bireco?)");
  }
  fn = reinterpret_cast<Fn>(symbol);
}

SentencePieceLibrary open_library() {
  if (!SentencePieceLibrary::kLoadable) {
    throw Error("tokenizer.model files cannot be read in this AddressSanitizer build (ASan "
                "refuses the RTLD_DEEPBIND dlopen of the SentencePiece shim)");
  }
  std::string tried;
  for (const std::string& path : SentencePieceLibrary::candidate_paths()) {
    if (!fs::exists(path)) {
      tried += (tried.empty() ? " " : "; ") + path + " (absent)";
      continue;
    }
    // RTLD_DEEPBIND: the shim and libsentencepiece resolve their symbols (protobuf 3.14)
    // in their own scope before the global one, where LibTorch's protobuf 3.21 lives.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      const char* why = ::dlerror();
      tried += (tried.empty() ? " " : "; ") + path + " (" +
               (why != nullptr ? why : "dlopen failed") + ")";
      continue;
    }
    SentencePieceLibrary lib;
    lib.path = path;
    bind(handle, "bireco_spm_load", lib.load, path);
    bind(handle, "bireco_spm_free", lib.free, path);
    bind(handle, "bireco_spm_vocab_size", lib.vocab_size, path);
    bind(handle, "bireco_spm_bos_id", lib.bos_id, path);
    bind(handle, "bireco_spm_eos_id", lib.eos_id, path);
    bind(handle, "bireco_spm_unk_id", lib.unk_id, path);
    bind(handle, "bireco_spm_pad_id", lib.pad_id, path);
    bind(handle, "bireco_spm_id_to_piece", lib.id_to_piece, path);
    bind(handle, "bireco_spm_is_control", lib.is_control, path);
    bind(handle, "bireco_spm_is_unknown", lib.is_unknown, path);
    bind(handle, "bireco_spm_is_byte", lib.is_byte, path);
    bind(handle, "bireco_spm_encode", lib.encode, path);
    bind(handle, "bireco_spm_decode", lib.decode, path);
    return lib;  // the handle stays open for the life of the process
  }
  throw Error(std::string("cannot load the SentencePiece shim ") + kShimName +
              " (needed for tokenizer.model files; set BIRECO_SENTENCEPIECE_SHIM to its path). "
              "Tried:" +
              tried);  // one line: the CLI prints it as is
}

}  // namespace

std::vector<std::string> SentencePieceLibrary::candidate_paths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("BIRECO_SENTENCEPIECE_SHIM"); env != nullptr && *env != '\0') {
    paths.emplace_back(env);  // an explicit choice: nothing else is tried
    return paths;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    paths.push_back((exe.parent_path() / kShimName).string());
    paths.push_back((exe.parent_path().parent_path() / kShimName).string());
  }
#ifdef BIRECO_SENTENCEPIECE_SHIM_BUILD_PATH
  paths.emplace_back(BIRECO_SENTENCEPIECE_SHIM_BUILD_PATH);
#endif
  return paths;
}

const SentencePieceLibrary& SentencePieceLibrary::get() {
  // Built on first success (a failed load is retried, and reported, on the next call) and
  // never destroyed: tokenizers held in statics call into it while the process exits.
  static std::mutex mutex;
  static SentencePieceLibrary* library = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (library == nullptr) library = new SentencePieceLibrary(open_library());
  return *library;
}

}  // namespace bireco::text
