// Speculative decoding on the real models:
//  - KV rollback leaves no stale state (acceptance item 3): a test drafter proposes random chains (a
//    correct prefix of random length, then wrong tokens) or random trees (the correct continuation hidden
//    among random siblings and random sub-chains) and scribbles NaN bytes into every cache slot beyond the
//    committed prefix; at every step the committed slots [0, size) of the target cache (keys, values of
//    every layer, positions) must equal, byte for byte, the cache of plain token-by-token decoding of the
//    same tokens, and the output must equal plain greedy decoding. Byte equality holds because the engine
//    is batch-invariant; for trees it also needs attention to be invariant to where (which slot) an
//    unmasked key sits, since tree verification computes a node's attention over non-contiguous slots.
//  - A draft model with a different vocabulary is refused (acceptance item 5).
#include <gtest/gtest.h>

#include <cstring>

#include "core/generator.h"
#include "core/model.h"
#include "core/model_config.h"
#include "core/tokenizer.h"
#include "draft/model_drafter.h"
#include "draft/ngram_drafter.h"
#include "kernels/ops.h"
#include "tests/test_util.h"
#include "verify/speculative.h"

namespace specula {
namespace {

std::vector<Token> encode(const Model& m, const char* text) { return m.tokenizer().encode(text, true, false); }

// Proposes random trees around the known greedy continuation and checks the committed cache each step.
class CheckingDrafter : public Drafter {
 public:
  CheckingDrafter(const KvCache& ref, std::vector<Token> ref_tokens, int64_t n_layer, int64_t n_head_kv, uint64_t seed, bool trees)
      : ref_(ref), ref_tokens_(std::move(ref_tokens)), n_layer_(n_layer), n_head_kv_(n_head_kv), rng_(seed), trees_(trees) {}
  std::string describe() const override { return "checking"; }
  bool deterministic() const override { return true; }
  void begin(std::span<const Token>, int64_t) override {}
  int64_t max_nodes(int64_t k) const override { return 4 * k; }
  int64_t checked_steps = 0, tree_steps = 0;

  void propose(const DraftContext& ctx, int64_t max_k, Draft& out) override {
    out.clear();
    KvCache& c = *ctx.target_cache;
    const int64_t n = c.size();
    ASSERT_EQ(n + 1, static_cast<int64_t>(ctx.tokens.size()));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(ctx.tokens[static_cast<size_t>(i)], ref_tokens_[static_cast<size_t>(i)]) << "token " << i;
    // Committed slots must equal plain decoding's, byte for byte.
    const size_t kb = static_cast<size_t>(c.k_row_elems() * c.elem_bytes()), vb = static_cast<size_t>(c.v_row_elems() * c.elem_bytes());
    KvCache& ref = const_cast<KvCache&>(ref_);
    for (int64_t l = 0; l < n_layer_; ++l) {
      ASSERT_EQ(std::memcmp(c.k(l), ref.k(l), kb * static_cast<size_t>(n)), 0) << "keys differ, layer " << l << ", " << n << " slots";
      ASSERT_EQ(std::memcmp(c.v(l), ref.v(l), vb * static_cast<size_t>(n)), 0) << "values differ, layer " << l;
      // The transposed key copy (AVX-512 CPUs) holds the committed keys too: slot s of head h at
      // [h][s / 16][d][s % 16] (move_slot moves accepted tree nodes into place in it as well).
      if (const void* kt = c.k_transposed(l); kt != nullptr) {
        const int64_t B = KvCache::kKeyBlock, nb = c.key_blocks(), eb = c.elem_bytes();
        const int64_t D = c.k_row_elems() / n_head_kv_;
        const auto* t = static_cast<const uint8_t*>(kt);
        const auto* k = static_cast<const uint8_t*>(c.k(l));
        for (int64_t sl = 0; sl < n; ++sl)
          for (int64_t h = 0; h < n_head_kv_; ++h)
            for (int64_t e = 0; e < D; ++e)
              ASSERT_EQ(std::memcmp(t + (((h * nb + sl / B) * D + e) * B + sl % B) * eb, k + ((sl * n_head_kv_ + h) * D + e) * eb,
                                    static_cast<size_t>(eb)), 0)
                  << "transposed keys differ, layer " << l << " slot " << sl;
      }
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c.positions()[i], ref_.positions()[i]) << "position of slot " << i;
    ++checked_steps;
    // Stale state would show up: fill every uncommitted slot with NaN bytes.
    for (int64_t l = 0; l < n_layer_; ++l) {
      std::memset(static_cast<uint8_t*>(c.k(l)) + kb * static_cast<size_t>(n), 0xFF, kb * static_cast<size_t>(c.capacity() - n));
      std::memset(static_cast<uint8_t*>(c.v(l)) + vb * static_cast<size_t>(n), 0xFF, vb * static_cast<size_t>(c.capacity() - n));
    }
    // Random tree: along the correct path, each level gets 0-2 wrong siblings (random order) and
    // continues with probability 0.75; wrong siblings get random chains.
    const int64_t depth = 1 + static_cast<int64_t>(rng_.uniform() * static_cast<double>(max_k));
    int32_t parent = -1;
    for (int64_t d = 0; d < depth; ++d) {
      const size_t at = static_cast<size_t>(n + 1 + d);
      if (at >= ref_tokens_.size()) break;
      // Chains: one token per level, the wrong one only where the correct path stops.
      const bool right_here = rng_.uniform() < 0.8;
      const int n_wrong = trees_ ? static_cast<int>(rng_.uniform() * 3) : right_here ? 0 : 1;
      const int right_pos = static_cast<int>(rng_.uniform() * (n_wrong + 1));
      const bool right_present = trees_ ? rng_.uniform() < 0.8 : right_here;
      int32_t right = -1;
      for (int s = 0; s <= n_wrong; ++s) {
        if (out.size() >= ctx.max_nodes) break;
        if (s == right_pos) {
          if (right_present) right = out.add(ref_tokens_[at], parent);
          continue;
        }
        Token w = static_cast<Token>(rng_.uniform() * 1000);
        if (w == ref_tokens_[at]) ++w;
        int32_t wn = out.add(w, parent);
        for (int64_t dd = d + 1; trees_ && dd < depth && rng_.uniform() < 0.5 && out.size() < ctx.max_nodes; ++dd)
          wn = out.add(static_cast<Token>(rng_.uniform() * 1000), wn);
      }
      if (right < 0 || (trees_ && rng_.uniform() > 0.75)) break;
      parent = right;
    }
    if (!out.is_chain()) ++tree_steps;
  }

 private:
  const KvCache& ref_;
  std::vector<Token> ref_tokens_;
  int64_t n_layer_, n_head_kv_;
  Rng rng_;
  bool trees_;
};

void rollback_case(const char* file, bool trees) {
  const std::string path = test::model_path(file);
  if (path.empty()) GTEST_SKIP() << file << " not installed";
  auto model = Model::load(path);
  for (const char* text : {"The history of the printing press begins", "def fibonacci(n):\n    \"\"\"Return the n-th"}) {
    const std::vector<Token> prompt = encode(*model, text);
    GenerateConfig gc;
    gc.max_tokens = 48;
    gc.stop_at_eog = false;
    Rng r0(0);
    const GenerateResult plain = generate(*model, prompt, gc, Sampler(SamplerConfig{}), r0);
    // Reference cache: plain decoding (prompt prefill, then one token at a time) of prompt + output.
    std::vector<Token> all = prompt;
    all.insert(all.end(), plain.tokens.begin(), plain.tokens.end());
    const int64_t ctx = static_cast<int64_t>(prompt.size()) + gc.max_tokens;
    KvCache ref = model->make_cache(ctx, KvDType::F16);
    Logits l;
    prefill(*model, prompt, ref, gc.prefill_chunk, l);
    for (size_t i = prompt.size(); i + 1 < all.size(); ++i) {
      const Pos p = static_cast<Pos>(i);
      model->forward(std::span<const Token>(&all[i], 1), std::span<const Pos>(&p, 1), ref, nullptr, l, {LogitsFor::Last});
    }
    for (uint64_t seed : {1u, 2u, 3u}) {
      CheckingDrafter d(ref, all, model->config().n_layer, model->config().n_head_kv, seed, trees);
      GreedyVerifier v;
      SpecConfig sc;
      sc.gen = gc;
      sc.k = 6;
      Rng rng(0);
      const SpecResult r = speculative_generate(*model, d, v, prompt, sc, Sampler(SamplerConfig{}), rng);
      EXPECT_EQ(r.tokens, plain.tokens) << file << " seed " << seed;
      EXPECT_GT(d.checked_steps, 5);
      if (trees) EXPECT_GT(d.tree_steps, 0);
      else EXPECT_EQ(d.tree_steps, 0);
      EXPECT_GT(r.stats.accepted, 0);
      EXPECT_LT(r.stats.accepted, r.stats.drafted);
      std::printf("[kv-rollback] %s seed %llu: %lld steps checked (%lld trees), %lld/%lld drafted tokens accepted\n", file,
                  static_cast<unsigned long long>(seed), static_cast<long long>(d.checked_steps),
                  static_cast<long long>(d.tree_steps), static_cast<long long>(r.stats.accepted),
                  static_cast<long long>(r.stats.drafted));
    }
  }
}

TEST(SpecKvRollback, ChainsSmolLM2) { rollback_case(test::kSmolLM2, false); }
TEST(SpecKvRollback, ChainsGemma3) { rollback_case(test::kGemma3, false); }
TEST(SpecKvRollback, TreesSmolLM2) { rollback_case(test::kSmolLM2, true); }
TEST(SpecKvRollback, TreesGemma3) { rollback_case(test::kGemma3, true); }

// Verification passes larger than the kernels' batch-invariant pass size could change the target's
// logits (hence the greedy output): such a tree budget is refused up front.
TEST(SpecLimits, TreeBudgetAboveTheInvariantPassSizeIsRefused) {
  const std::string path = test::model_path(test::kSmolLM2);
  if (path.empty()) GTEST_SKIP() << test::kSmolLM2 << " not installed";
  auto model = Model::load(path);
  const std::vector<Token> prompt = encode(*model, "Hello");
  NgramDrafter d(NgramConfig{});
  GreedyVerifier v;
  SpecConfig sc;
  sc.gen.max_tokens = 4;
  sc.max_nodes = ops::max_invariant_tokens();  // + the accepted token: one too many
  Rng rng(0);
  test::expect_error([&] { speculative_generate(*model, d, v, prompt, sc, Sampler(SamplerConfig{}), rng); },
                     {"max_nodes", "verification pass"});
  sc.max_nodes = ops::max_invariant_tokens() - 1;
  EXPECT_NO_THROW(speculative_generate(*model, d, v, prompt, sc, Sampler(SamplerConfig{}), rng));
}

TEST(ModelDrafter, RefusesDifferentVocabulary) {
  const std::string a = test::model_path(test::kSmolLM2), b = test::model_path(test::kGemma3);
  if (a.empty() || b.empty()) GTEST_SKIP() << "needs both models";
  LoadOptions lo;
  auto target = Model::load(a, lo);
  auto draft = Model::load(b, lo);
  test::expect_error([&] { ModelDrafter d(*draft, *target, LmDraftConfig{}); }, {"different vocabularies", "draft model"});
  // The same file in another precision is a valid pair.
  lo.weights_dtype = WeightsDType::F16;
  auto f16 = Model::load(a, lo);
  EXPECT_NO_THROW(ModelDrafter(*f16, *target, LmDraftConfig{}));
}

}  // namespace
}  // namespace specula
