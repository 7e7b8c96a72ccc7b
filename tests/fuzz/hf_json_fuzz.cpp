// libFuzzer target: Hugging Face model-directory JSON: the same input read as tokenizer.json (a
// tokenizer that loads then encodes and decodes a few strings) and as config.json. Each either loads
// or throws specula::Error naming the file (not a JSON library exception).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/model_config.h"
#include "core/tokenizer.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  const std::string path = fuzz::write_input(data, size, "tokenizer.json");
  try {
    const Tokenizer t = Tokenizer::from_hf_json(path, "");
    for (const char* s : {"ab a b", "  x\xc4\xa0\xff<s>", ""}) {
      const auto ids = t.encode(s, true, true);
      (void)t.decode(ids);
    }
  } catch (const Error&) {
  }
  try {
    (void)config_from_hf_json(path);
  } catch (const Error&) {
  }
  return 0;
}
