// A tokenizer.json through HfTokenizer::load (the vocab, merges, added tokens and every
// pipeline stage it reads), then a fixed text encoded and decoded with what loaded. Each id
// must be inside the vocabulary and decode must give valid UTF-8 (hf_tokenizer.h).
#include <cstdint>
#include <string>

#include "bireco/text/hf_tokenizer.h"
#include "bireco/text/unicode.h"
#include "bireco/util/error.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = bireco::fuzz::write_input("tokenizer.json", data, size);
  std::unique_ptr<bireco::text::HfTokenizer> tokenizer;
  try {
    tokenizer = bireco::text::HfTokenizer::load(file);
  } catch (const bireco::Error&) {
    return 0;
  }
  // ASCII, a space run, Latin-1, CJK, an emoji, an ill-formed byte, and an added-token shape.
  const std::string text = "Hello  world caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 \xff<s>\n";
  for (bool special : {false, true}) {
    std::vector<int32_t> ids;
    try {
      ids = tokenizer->encode(text, special);
    } catch (const bireco::Error&) {
      continue;  // e.g. a model with no unknown token for a byte it cannot spell
    }
    for (int32_t id : ids) BIRECO_FUZZ_CHECK(id >= 0 && id < tokenizer->vocab_size());
    // Every id is in the vocabulary, decode's one documented error: it must not throw.
    BIRECO_FUZZ_CHECK(bireco::text::unicode::is_valid_utf8(tokenizer->decode(ids)));
  }
  return 0;
}
