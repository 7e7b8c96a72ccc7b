// Chat templates by family, as llama.cpp's llm_chat_detect_template / llm_chat_apply_template do it
// (no Jinja engine). ChatML templates that inject a default system prompt when the conversation has
// none (SmolLM2, Qwen2.5) get that prompt, as rendering the Jinja template would.
#include <cctype>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/tokenizer.h"

namespace specula {

namespace {

enum class ChatFamily { ChatML, Gemma, Llama3, Phi3, Zephyr };

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string excerpt(std::string_view t) {
  std::string e(t.substr(0, 60));
  for (char& c : e)
    if (c == '\n' || c == '\r') c = ' ';
  return t.size() > 60 ? e + "..." : e;
}

ChatFamily detect_family(const Tokenizer& tok) {
  const std::string& t = tok.spec().chat_template;
  if (t.empty()) {
    if (tok.find_token("<start_of_turn>")) return ChatFamily::Gemma;
    if (tok.find_token("<|im_start|>")) return ChatFamily::ChatML;
    fail("the model has no chat template (tokenizer.chat_template) and its vocabulary matches no known chat format");
  }
  auto unsupported = [&](std::string_view family) -> ChatFamily {
    fail("unsupported chat template family '{}' (supported: chatml, gemma, llama3, phi3, zephyr): {}", family,
         excerpt(t));
  };
  // Same order of checks as llama.cpp, so that a template is put in the same family.
  if (contains(t, "<|im_start|>")) {
    if (contains(t, "<|im_sep|>")) return unsupported("phi4");
    if (contains(t, "<end_of_utterance>")) return unsupported("smolvlm");
    return ChatFamily::ChatML;
  }
  if (t.rfind("mistral", 0) == 0 || contains(t, "[INST]")) return unsupported("mistral/llama2");
  if (contains(t, "<|assistant|>") && contains(t, "<|end|>")) return ChatFamily::Phi3;
  if (contains(t, "[gMASK]<sop>")) return unsupported("chatglm4");
  if (contains(t, "<|assistant|>") && contains(t, "<|user|>")) return unsupported("falcon3/glmedge");
  if (contains(t, "<|user|>") && contains(t, "<|endoftext|>")) return ChatFamily::Zephyr;
  if (contains(t, "bos_token + message['role']")) return unsupported("monarch");
  if (contains(t, "<start_of_turn>")) return ChatFamily::Gemma;
  if (contains(t, "<|start_header_id|>") && contains(t, "<|end_header_id|>")) return ChatFamily::Llama3;
  fail("unrecognised chat template (supported families: chatml, gemma, llama3, phi3, zephyr): {}", excerpt(t));
}

// A Jinja string literal '<|im_start|>system...<|im_end|>...' in a ChatML template: the system turn
// the template emits when the conversation does not start with one.
std::optional<std::string> chatml_default_system(const std::string& t) {
  const std::string_view marker = "<|im_start|>system";
  for (size_t p = t.find(marker); p != std::string::npos; p = t.find(marker, p + 1)) {
    if (p == 0 || (t[p - 1] != '\'' && t[p - 1] != '"')) continue;
    const char quote = t[p - 1];
    std::string lit;
    size_t i = p;
    bool closed = false;
    for (; i < t.size(); ++i) {
      const char c = t[i];
      if (c == quote) {
        closed = true;
        break;
      }
      if (c == '\\' && i + 1 < t.size()) {
        const char e = t[++i];
        lit.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
        continue;
      }
      lit.push_back(c);
    }
    if (closed && contains(lit, "<|im_end|>")) return lit;
  }
  return std::nullopt;
}

std::string trim_ascii_space(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const {
  std::string out;
  switch (detect_family(*this)) {
    case ChatFamily::ChatML: {
      if (auto sys = chatml_default_system(spec().chat_template); sys && !messages.empty() &&
                                                                  messages.front().role != "system")
        out += *sys;
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatFamily::Gemma: {
      // No system role: its text is merged into the next user turn. "assistant" is "model".
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system += trim_ascii_space(m.content);
          continue;
        }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        out += "<start_of_turn>" + role + "\n";
        if (!system.empty() && role != "model") {
          out += system + "\n\n";
          system.clear();
        }
        out += trim_ascii_space(m.content) + "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    }
    case ChatFamily::Llama3: {
      for (const ChatMessage& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim_ascii_space(m.content) + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatFamily::Phi3: {
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;
    }
    case ChatFamily::Zephyr: {
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|endoftext|>\n";
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;
    }
  }
  return out;
}

}  // namespace specula
