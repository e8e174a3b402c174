// Loads libbireco_sentencepiece.so at run time (see sentencepiece_c_api.h for why it is never
// linked) and exposes its C functions.
#pragma once

#include <string>
#include <vector>

#include "bireco/text/sentencepiece_c_api.h"

// AddressSanitizer aborts a process that dlopen()s with RTLD_DEEPBIND, so builds under it
// (BIRECO_SANITIZE / BIRECO_FUZZ, cmake/torch_free.cmake) read no tokenizer.model.
#if defined(__SANITIZE_ADDRESS__)
#define BIRECO_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIRECO_ADDRESS_SANITIZER 1
#endif
#endif

namespace bireco::text {

struct SentencePieceLibrary {
  decltype(&bireco_spm_load) load;
  decltype(&bireco_spm_free) free;
  decltype(&bireco_spm_vocab_size) vocab_size;
  decltype(&bireco_spm_bos_id) bos_id;
  decltype(&bireco_spm_eos_id) eos_id;
  decltype(&bireco_spm_unk_id) unk_id;
  decltype(&bireco_spm_pad_id) pad_id;
  decltype(&bireco_spm_id_to_piece) id_to_piece;
  decltype(&bireco_spm_is_control) is_control;
  decltype(&bireco_spm_is_unknown) is_unknown;
  decltype(&bireco_spm_is_byte) is_byte;
  decltype(&bireco_spm_encode) encode;
  decltype(&bireco_spm_decode) decode;
  std::string path;  // the file that was loaded

  // The process-wide instance, loaded on first use with dlopen(RTLD_NOW | RTLD_LOCAL |
  // RTLD_DEEPBIND). Throws bireco::Error listing the places searched when no shim loads
  // (and, in an ASan build, without trying).
  static const SentencePieceLibrary& get();

  // False in an ASan build, where get() always throws.
#ifdef BIRECO_ADDRESS_SANITIZER
  static constexpr bool kLoadable = false;
#else
  static constexpr bool kLoadable = true;
#endif

  // Where the shim is looked for: $BIRECO_SENTENCEPIECE_SHIM alone when set; else the
  // folder of the running executable, its parent, then the build tree
  // (BIRECO_SENTENCEPIECE_SHIM_BUILD_PATH).
  static std::vector<std::string> candidate_paths();
};

}  // namespace bireco::text
