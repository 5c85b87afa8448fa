// SPDX-License-Identifier: MIT
// GlobalPointer NER decoding (Su, kexue.fm/archives/8373): a toy sentence with a nested entity,
// weights written by hand in the bert4keras layout, scores → decode_spans → (type, start, end).
//
// Construction. The "encoder" gives token t the one-hot hidden state e_t, so row t of the Keras
// Dense kernel (hidden_size × types·2·head_size) is exactly token t's [q_0 | k_0 | q_1 | k_1].
// Each wanted span (i, j) of type α gets its own RoPE pair r: q_i = (2, 0) and k_j =
// R_{−(j−i)}(1, 0) in pair r, so q_iᵀ R_{j−i} k_j = 2 there and pair r contributes nothing to any
// other (i', j'). The slowest pair (θ ≈ 1e-3, so cos((j−i)θ) ≈ 1 at these distances) carries a
// baseline q = (1, 0), k = (−1, 0) for every token: every other span scores ≈ −1/√d < 0.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include <xfmr/heads/global_pointer.hpp>

int main() {
  using xfmr::Index;
  const std::vector<std::string> tokens = {"[CLS]", "the",  "University", "of", "New",  "York",
                                           "is",    "in",   "New",        "York", "City", "[SEP]"};
  const std::vector<std::string> type_names = {"ORG", "LOC"};
  struct Entity {
    Index type, start, end, pair;  // pair: the RoPE pair reserved for this span
  };
  const std::vector<Entity> entities = {
      {0, 2, 5, 0},   // ORG  University of New York
      {1, 4, 5, 0},   // LOC  New York (nested in the ORG)
      {1, 8, 10, 1},  // LOC  New York City
  };

  const Index n = 16, len = static_cast<Index>(tokens.size());  // padded to 16, 12 real tokens
  xfmr::GlobalPointerConfig config;
  config.hidden_size = n;  // one-hot states
  config.types = 2;
  config.head_size = 8;    // pairs 0–2 for spans, pair 3 (slowest) for the baseline
  const Index d = config.head_size, H = config.types, baseline = d / 2 - 1;

  // Keras Dense kernel, (in, out) = (hidden_size, types·2·head_size); chunk α = [q_α | k_α].
  xfmr::RowMatrix<float> kernel = xfmr::RowMatrix<float>::Zero(n, H * 2 * d);
  auto q = [&](Index t, Index a, Index c) -> float& { return kernel(t, a * 2 * d + c); };
  auto k = [&](Index t, Index a, Index c) -> float& { return kernel(t, a * 2 * d + d + c); };
  for (Index t = 0; t < len; ++t)
    for (Index a = 0; a < H; ++a) {
      q(t, a, 2 * baseline) = 1.0f;
      k(t, a, 2 * baseline) = -1.0f;
    }
  for (const Entity& e : entities) {
    const double theta = std::pow(10000.0, -2.0 * e.pair / d), delta = (e.end - e.start) * theta;
    q(e.start, e.type, 2 * e.pair) = 2.0f;
    k(e.end, e.type, 2 * e.pair) = static_cast<float>(std::cos(delta));       // R_{−δ}(1, 0)
    k(e.end, e.type, 2 * e.pair + 1) = static_cast<float>(-std::sin(delta));
  }
  xfmr::GlobalPointer<float> gp(config);
  gp.set_weights(kernel, xfmr::RowVector<float>::Zero(H * 2 * d));

  // One sequence (batch 1) padded to n; the padded hidden rows are never read.
  xfmr::RowMatrix<float> hidden = xfmr::RowMatrix<float>::Zero(n, n);
  for (Index t = 0; t < len; ++t) hidden(t, t) = 1.0f;
  std::vector<float> scores(static_cast<std::size_t>(H * n * n));
  const xfmr::ScoreTensor<float> view(scores.data(), 1, H, n, n);
  const xfmr::IdVector lengths = xfmr::IdVector::Constant(1, len);
  gp.scores(hidden, lengths, view);

  const auto spans = xfmr::decode_spans(view, lengths);  // score > 0
  std::vector<std::tuple<Index, Index, Index>> got, expected;
  for (const auto& s : spans) {
    std::string text;
    for (Index t = s.start; t <= s.end; ++t) text += (t > s.start ? " " : "") + tokens[t];
    std::printf("%s [%ld, %ld] score %+.3f  \"%s\"\n", type_names[s.type].c_str(),
                static_cast<long>(s.start), static_cast<long>(s.end), s.score, text.c_str());
    got.emplace_back(s.type, s.start, s.end);
  }
  for (const Entity& e : entities) expected.emplace_back(e.type, e.start, e.end);
  std::sort(expected.begin(), expected.end());
  const bool ok = got == expected;
  std::printf("%zu spans decoded, %zu expected (one nested): %s\n", got.size(), expected.size(),
              ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
}
