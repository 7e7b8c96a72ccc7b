#include "draft/self_drafter.h"

#include "core/error.h"

namespace specula {

SelfDrafter::SelfDrafter(Model& target, std::unique_ptr<Strategy> strategy, LmDraftConfig cfg)
    : LmDrafter(cfg), target_(target), strategy_(std::move(strategy)) {}

std::string SelfDrafter::describe() const {
  const YAML::Node y = strategy_->to_yaml();
  std::vector<std::string> kvs;
  for (const auto& kv : y) {
    const std::string k = kv.first.as<std::string>();
    if (k == "name") continue;
    std::vector<std::string> items;
    if (kv.second.IsSequence())
      for (const auto& e : kv.second) items.push_back(e.as<std::string>());
    else
      items.push_back(kv.second.as<std::string>());
    kvs.push_back(fmt::format("{}={}", k, join(items, ",")));
  }
  kvs.push_back(fmt::format("branches={}", cfg_.branches));
  return fmt::format("{}:{}", strategy_->name(), join(kvs, ","));
}

int64_t SelfDrafter::sync(const DraftContext& ctx, Logits& out) {
  KvCache& c = *ctx.target_cache;
  committed_ = c.size();
  if (committed_ != static_cast<int64_t>(ctx.tokens.size()) - 1)
    fail("self-draft: target cache holds {} slots but {} tokens are committed (expected all but the last)", committed_,
         ctx.tokens.size());
  const Token t = ctx.tokens.back();
  const Pos p = static_cast<Pos>(committed_);
  const ForwardOptions fo = pass_options();
  target_.forward(std::span<const Token>(&t, 1), std::span<const Pos>(&p, 1), c, &strategy_->forward_plan(), out, fo);
  ++stats_.forwards;
  ++stats_.fed_tokens;
  return c.size();
}

void SelfDrafter::feed(Token t, Pos pos, const DraftContext& ctx, Logits& out) {
  const ForwardOptions fo = pass_options();
  target_.forward(std::span<const Token>(&t, 1), std::span<const Pos>(&pos, 1), *ctx.target_cache,
                  &strategy_->forward_plan(), out, fo);
  ++stats_.forwards;
  ++stats_.fed_tokens;
}

void SelfDrafter::rollback(int64_t n, const DraftContext& ctx) { ctx.target_cache->truncate(n); }

void SelfDrafter::finish(const DraftContext& ctx) { ctx.target_cache->truncate(committed_); }

}  // namespace specula
