#include "draft/draft.h"

#include <algorithm>

#include "core/error.h"

namespace specula {

bool Draft::is_chain() const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].parent != static_cast<int32_t>(i) - 1) return false;
  return true;
}

int32_t Draft::depth() const {
  int32_t d = 0;
  for (const auto& n : nodes) d = std::max(d, n.depth);
  return d;
}

int32_t Draft::add(Token t, int32_t parent) {
  DraftNode n;
  n.token = t;
  n.parent = parent;
  n.depth = parent < 0 ? 1 : nodes[static_cast<size_t>(parent)].depth + 1;
  nodes.push_back(n);
  return static_cast<int32_t>(nodes.size() - 1);
}

int32_t Draft::add(Token t, int32_t parent, std::span<const float> q) {
  if (static_cast<int64_t>(q.size()) != n_vocab) fail("Draft::add: q has {} entries, expected n_vocab {}", q.size(), n_vocab);
  const int32_t i = add(t, parent);
  nodes.back().q_offset = static_cast<int64_t>(q_data.size());
  q_data.insert(q_data.end(), q.begin(), q.end());
  return i;
}

std::span<const float> Draft::q(int64_t i) const {
  const DraftNode& n = nodes[static_cast<size_t>(i)];
  if (n.q_offset < 0) return {};
  return {q_data.data() + n.q_offset, static_cast<size_t>(n_vocab)};
}

float Draft::q_of_token(int64_t i) const {
  const DraftNode& n = nodes[static_cast<size_t>(i)];
  if (n.q_offset < 0) return 1.f;
  return q_data[static_cast<size_t>(n.q_offset + n.token)];
}

}  // namespace specula
