#include "draft/model_drafter.h"

#include <chrono>

#include "core/error.h"
#include "core/generator.h"
#include "core/tokenizer.h"

namespace specula {

void check_same_vocabulary(const Model& draft, const Model& target) {
  const std::string dn = draft.path(), tn = target.path();
  const int64_t dv = draft.config().n_vocab, tv = target.config().n_vocab;
  if (dv != tv)
    fail("draft model '{}' and target model '{}' have different vocabularies: {} vs {} logits (a draft model must use the "
         "target's tokenizer)", dn, tn, dv, tv);
  if (!draft.has_tokenizer() || !target.has_tokenizer())
    fail("draft model '{}' / target model '{}': both need a tokenizer to check that the vocabularies match", dn, tn);
  const TokenizerSpec& a = draft.tokenizer().spec();
  const TokenizerSpec& b = target.tokenizer().spec();
  if (a.tokens.size() != b.tokens.size())
    fail("draft model '{}' and target model '{}' have different vocabularies: {} vs {} tokens", dn, tn, a.tokens.size(),
         b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    if (a.tokens[i] != b.tokens[i])
      fail("draft model '{}' and target model '{}' have different vocabularies: token {} is '{}' vs '{}'", dn, tn, i,
           a.tokens[i], b.tokens[i]);
    const TokenType ta = a.types.empty() ? TokenType::Normal : a.types[i];
    const TokenType tb = b.types.empty() ? TokenType::Normal : b.types[i];
    if (ta != tb)
      fail("draft model '{}' and target model '{}' have different vocabularies: token {} ('{}') has type {} vs {}", dn, tn,
           i, a.tokens[i], static_cast<int>(ta), static_cast<int>(tb));
  }
  if (a.model != b.model || a.bos != b.bos || a.eos != b.eos)
    fail("draft model '{}' and target model '{}' have different tokenizers: model {}/{}, bos {}/{}, eos {}/{}", dn, tn,
         a.model, b.model, a.bos, b.bos, a.eos, b.eos);
}

ModelDrafter::ModelDrafter(std::unique_ptr<Model> draft, const Model& target, LmDraftConfig cfg, KvDType kv)
    : LmDrafter(cfg), owned_(std::move(draft)), model_(owned_.get()), kv_(kv) {
  check_same_vocabulary(*model_, target);
}

ModelDrafter::ModelDrafter(Model& draft, const Model& target, LmDraftConfig cfg, KvDType kv)
    : LmDrafter(cfg), model_(&draft), kv_(kv) {
  check_same_vocabulary(*model_, target);
}

std::string ModelDrafter::describe() const {
  return fmt::format("model:path={},weights_dtype={},branches={}", model_->path(), to_string(model_->weights_dtype()),
                     cfg_.branches);
}

void ModelDrafter::begin(std::span<const Token> prompt, int64_t context) {
  const auto t0 = std::chrono::steady_clock::now();
  if (cache_.capacity() < context || cache_.dtype() != kv_) cache_ = model_->make_cache(context, kv_);
  cache_.clear();
  held_.clear();
  held_.reserve(static_cast<size_t>(context));
  // Everything but the last prompt token; the first sync() runs it and returns its logits.
  if (prompt.size() > 1) {
    Logits l;
    prefill(*model_, prompt.first(prompt.size() - 1), cache_, 256, l);
    held_.assign(prompt.begin(), prompt.end() - 1);
    ++stats_.forwards;
    stats_.fed_tokens += static_cast<int64_t>(prompt.size() - 1);
  }
  stats_.prefill_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t ModelDrafter::sync(const DraftContext& ctx, Logits& out) {
  const std::span<const Token> s = ctx.tokens;
  // Longest common prefix of what the cache holds and the committed tokens, leaving at least one token
  // to run (its logits are the root's).
  size_t c = 0;
  const size_t lim = std::min(held_.size(), s.size() - 1);
  while (c < lim && held_[c] == s[c]) ++c;
  cache_.truncate(static_cast<int64_t>(c));
  held_.resize(c);
  const size_t n = s.size() - c;
  pos_.resize(n);
  for (size_t i = 0; i < n; ++i) pos_[i] = static_cast<Pos>(c + i);
  const ForwardOptions fo = pass_options();
  model_->forward(s.subspan(c), pos_, cache_, nullptr, out, fo);
  held_.insert(held_.end(), s.begin() + static_cast<std::ptrdiff_t>(c), s.end());
  ++stats_.forwards;
  stats_.fed_tokens += static_cast<int64_t>(n);
  return cache_.size();
}

void ModelDrafter::feed(Token t, Pos pos, const DraftContext& ctx, Logits& out) {
  const ForwardOptions fo = pass_options();
  model_->forward(std::span<const Token>(&t, 1), std::span<const Pos>(&pos, 1), cache_, nullptr, out, fo);
  held_.push_back(t);
  ++stats_.forwards;
  ++stats_.fed_tokens;
}

void ModelDrafter::rollback(int64_t n, const DraftContext& ctx) {
  cache_.truncate(n);
  held_.resize(static_cast<size_t>(n));
}

}  // namespace specula
