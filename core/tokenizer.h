#pragma once
// Tokenizers that reproduce llama.cpp's tokenization of the same model file exactly:
//  * "gpt2":  byte-level BPE (SmolLM2, Llama 3, Qwen2, GPT-2, ...): special tokens are split out
//             first, then a pre-tokenizer (hand-written scanners equivalent to llama.cpp's regexes,
//             chosen by the `pre` name), GPT-2 byte->unicode mapping, then rank-ordered merges.
//  * "llama": SentencePiece BPE (Gemma, Llama 1/2, Mistral): spaces escaped as U+2581, character
//             symbols merged by highest score, byte fallback to <0xNN> tokens.
// Checked against llama.cpp (PyPI llama-cpp-python) golden fixtures: tests/core/tokenizer_test.cpp.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace specula {

class GgufFile;

// GGUF token types (tokenizer.ggml.token_type), numbered as in the file.
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

// Everything that defines a tokenizer, as read from a GGUF file or a tokenizer.json.
struct TokenizerSpec {
  std::string model;                // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE)
  std::string pre;                  // pre-tokenizer name for "gpt2": "default", "gpt2", "smollm", "llama3", "qwen2", ...
  std::vector<std::string> tokens;  // id -> text
  std::vector<float> scores;        // id -> score ("llama"); may be empty for "gpt2"
  std::vector<TokenType> types;     // id -> type; empty means all Normal
  std::vector<std::string> merges;  // "left right", in rank order ("gpt2")
  int32_t bos = -1;                 // -1: none
  int32_t eos = -1;
  int32_t unk = -1;
  int32_t pad = -1;
  int32_t eot = -1;                 // -1: detected from the vocabulary as llama.cpp does
  int32_t eom = -1;
  bool add_bos = false;             // encode(add_special=true) prepends bos
  bool add_eos = false;             // encode(add_special=true) appends eos
  bool add_space_prefix = false;    // "llama": prefix a space to text that starts a fragment
  std::string chat_template;        // Jinja source, if the file carries one
};

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

// How decode() renders a token sequence (llama.cpp's llama_detokenize flags).
struct DecodeOptions {
  bool remove_special = false;   // drop a leading BOS / trailing EOS that encode(add_special) would add
  bool unparse_special = true;   // render control tokens as their text (otherwise they produce nothing)
};

class Tokenizer {
 public:
  // Validates `spec` (sizes, ids in range, merges present for "gpt2", known pre-tokenizer, ...).
  // Throws specula::Error.
  explicit Tokenizer(TokenizerSpec spec);

  // Reads the tokenizer.* metadata of a GGUF file. Throws specula::Error naming the file and key.
  static Tokenizer from_gguf(const GgufFile& gguf);
  // Reads a Hugging Face tokenizer.json (model.type "BPE": byte-level, or SentencePiece-style with
  // byte_fallback) and, when the path is non-empty, tokenizer_config.json for bos/eos/add_bos and the
  // chat template. Throws specula::Error naming the file.
  static Tokenizer from_hf_json(const std::string& tokenizer_json_path,
                                const std::string& tokenizer_config_json_path_or_empty);

  // add_special: prepend BOS / append EOS as the model specifies (add_bos / add_eos).
  // parse_special: recognise control-token text such as <|im_start|>; user-defined tokens are
  // always recognised. Any byte string is accepted (invalid UTF-8 is handled as llama.cpp does).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Concatenated pieces, with llama.cpp's llama_detokenize rules (leading-space removal where the
  // tokenizer adds a space prefix, clean-up of spaces before punctuation for the pre-tokenizers
  // that ask for it). Throws specula::Error for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, DecodeOptions options = {}) const;

  // Bytes of one token as llama_token_to_piece(special=true) outputs them.
  std::string token_to_piece(int32_t id) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 when the model has none
  int32_t eos() const;
  int32_t eot() const;
  bool is_eog(int32_t id) const;          // end of generation: eos, eot, <|im_end|>, <end_of_turn>, ...
  bool is_control(int32_t id) const;      // control or unknown-type token (not rendered as text)
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocabulary lookup
  const TokenizerSpec& spec() const;

  // Renders a conversation with the model's chat template. Templates are recognised by family, as
  // llama.cpp's llm_chat_detect_template does (no Jinja engine): ChatML (incl. the default system
  // prompt that SmolLM2's template injects), Gemma (also chosen when the file has no template but the
  // vocabulary has <start_of_turn>), Llama 3, Phi-3, Zephyr. Throws specula::Error otherwise.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  struct State;  // internal, defined in core/tokenizer_internal.h

 private:
  std::shared_ptr<const State> state_;
};

}  // namespace specula
