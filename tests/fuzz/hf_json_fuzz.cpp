// libFuzzer target: Hugging Face model-directory JSON. The same input is read as tokenizer.json (a
// tokenizer that loads then encodes and decodes a few strings), as config.json, and as the
// tokenizer_config.json beside a fixed small tokenizer.json (special tokens, add_bos/eos and the chat
// template, which is then applied to a short conversation). Each either loads or throws
// specula::Error naming the file (not a JSON library exception).
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
  static const std::string kTokenizer =
      R"({"added_tokens": [{"id": 4, "content": "<s>", "special": true}, {"id": 5, "content": "</s>", "special": true}],)"
      R"( "pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2,)"
      R"( "\u0120": 3, "<s>": 4, "</s>": 5}, "merges": ["a b"]}})";
  static const std::string tok_path = fuzz::write_input(reinterpret_cast<const uint8_t*>(kTokenizer.data()),
                                                        kTokenizer.size(), "fixed_tokenizer.json");
  const std::string cfg_path = fuzz::write_input(data, size, "tokenizer_config.json");
  try {
    const Tokenizer t = Tokenizer::from_hf_json(tok_path, cfg_path);
    const std::string chat = t.apply_chat_template({{"system", "s"}, {"user", "ab"}, {"assistant", "b"}}, true);
    (void)t.encode(chat, true, true);
  } catch (const Error&) {
  }
  return 0;
}
