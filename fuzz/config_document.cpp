// A stage config through the real read path: the document parser (the input's first byte
// picks JSON or YAML, as the file extension does) and the schema read into a StageConfig,
// then the resolved config back to JSON.
#include <cstdint>
#include <string>

#include "bireco/config/document.h"
#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bireco::config;
  if (size == 0) return 0;
  const bool yaml = data[0] == 'y';  // seeds start with 'y' (YAML) or 'j' (JSON)
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const Document doc = yaml ? parse_yaml_text(text, "fuzz.yaml")
                              : parse_json_text(text, "fuzz.json");
    const StageConfig config = read_stage(doc);
    // What the run prints and writes beside its outputs must exist for any accepted config.
    BIRECO_FUZZ_CHECK(to_json(config).is_object());
  } catch (const bireco::Error&) {
  }
  return 0;
}
