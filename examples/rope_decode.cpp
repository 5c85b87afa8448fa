// SPDX-License-Identifier: MIT
// RoPE for incremental decoding: rotate a prompt in one call (prefill), then each new token at
// its own position (decode), and check both give the same keys and the same attention logits.
#include <cmath>
#include <cstdio>

#include <xfmr/xfmr.hpp>

int main() {
  using xfmr::Index;
  using xfmr::RowMatrix;
  const Index heads = 4, head_dim = 64, prompt = 12, generated = 6, total = prompt + generated;

  xfmr::RopeConfig config;
  config.head_dim = head_dim;
  config.layout = xfmr::RopeLayout::HalfSplit;  // HF LLaMA / NeoX checkpoints
  const xfmr::Rope<float> rope(config);

  // Stand-ins for the projected keys of the whole sequence: (tokens × heads·head_dim).
  const RowMatrix<float> keys = RowMatrix<float>::Random(total, heads * head_dim);

  // Reference: the whole sequence rotated at once, positions 0 … total−1.
  RowMatrix<float> all_at_once = keys;
  rope.apply(all_at_once);

  // Decoding: the cache holds rotated keys (rotation is position-local, so cached keys never
  // change). Prefill rotates the prompt; each step rotates one row at position = cache length.
  RowMatrix<float> cache(total, heads * head_dim);
  cache.topRows(prompt) = keys.topRows(prompt);
  rope.apply(cache.topRows(prompt), /*pos0=*/0);
  for (Index pos = prompt; pos < total; ++pos) {
    cache.row(pos) = keys.row(pos);
    rope.apply(cache.middleRows(pos, 1), pos);
  }
  const float max_diff = (cache - all_at_once).cwiseAbs().maxCoeff();
  std::printf("prefill %ld tokens + %ld decode steps: max |decode - one shot| = %g\n",
              static_cast<long>(prompt), static_cast<long>(generated), max_diff);

  // The logit between the newest query and key j depends only on the distance: shifting every
  // position by 1000 (as a longer history would) leaves it unchanged up to rounding.
  RowMatrix<float> q = RowMatrix<float>::Random(1, head_dim), k = keys.topRows(1).leftCols(head_dim);
  RowMatrix<float> q_near = q, k_near = k, q_far = q, k_far = k;
  rope.apply(q_near, total - 1);
  rope.apply(k_near, 3);
  rope.apply(q_far, total - 1 + 1000);
  rope.apply(k_far, 3 + 1000);
  const float near = q_near.row(0).dot(k_near.row(0)), far = q_far.row(0).dot(k_far.row(0));
  std::printf("logit at distance %ld: %.6f, same distance 1000 positions later: %.6f\n",
              static_cast<long>(total - 4), near, far);

  const bool ok = max_diff == 0.0f && std::abs(near - far) <= 1e-4f * (1 + std::abs(near));
  std::printf("%s\n", ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
}
