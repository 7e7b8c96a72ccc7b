#pragma once
// Drafting with a separate (smaller or lower-precision) model that shares the target's vocabulary.
// Keeps its own KV cache and the list of tokens it holds; each step it rolls back to the longest
// common prefix with the committed tokens and runs the rest in one forward pass.
#include <memory>

#include "draft/lm_drafter.h"

namespace specula {

// Throws Error unless `draft` and `target` have the same vocabulary: the same number of logits and
// tokenizer entries and the same token text and type at every id, and the same BOS/EOS ids. (Names and
// file paths are not compared: two files of the same model in different precisions are a valid pair.)
void check_same_vocabulary(const Model& draft, const Model& target);

class ModelDrafter : public LmDrafter {
 public:
  // `draft` must outlive the drafter when passed by reference; the owning overload keeps it.
  ModelDrafter(std::unique_ptr<Model> draft, const Model& target, LmDraftConfig cfg, KvDType kv = KvDType::F16);
  ModelDrafter(Model& draft, const Model& target, LmDraftConfig cfg, KvDType kv = KvDType::F16);
  std::string describe() const override;
  void begin(std::span<const Token> prompt, int64_t context) override;
  Model& model() { return *model_; }

 protected:
  int64_t sync(const DraftContext& ctx, Logits& out) override;
  void feed(Token t, Pos pos, const DraftContext& ctx, Logits& out) override;
  void rollback(int64_t n, const DraftContext& ctx) override;

 private:
  std::unique_ptr<Model> owned_;
  Model* model_;
  KvDType kv_;
  KvCache cache_;
  std::vector<Token> held_;  // token in each cache slot
  std::vector<Pos> pos_;
};

}  // namespace specula
