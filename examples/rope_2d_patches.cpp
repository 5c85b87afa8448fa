// SPDX-License-Identifier: MIT
// 2D RoPE on an image patch grid: the attention logit between two patches depends only on their
// offset (Δrow, Δcol), not on where they are (Su, kexue.fm/archives/8397).
#include <cmath>
#include <cstdio>
#include <random>

#include <xfmr/xfmr.hpp>

int main() {
  const xfmr::Index rows = 10, cols = 14, heads = 4, head_dim = 64;
  const xfmr::Index patches = rows * cols, width = heads * head_dim;

  // Every patch gets the same query and key content, so any difference between logits comes from
  // the positions alone.
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  xfmr::RowVector<float> q0(width), k0(width);
  for (xfmr::Index i = 0; i < width; ++i) {
    q0[i] = normal(rng);
    k0[i] = normal(rng);
  }
  xfmr::RowMatrix<float> q = q0.replicate(patches, 1), k = k0.replicate(patches, 1);

  // Patch t sits at (row, col) = (t / cols, t % cols). RowFirst: the first half of each head is
  // rotated by the row index, the second half by the column index.
  const xfmr::Rope2D<float> rope(head_dim);
  rope.apply_grid(q, rows, cols, xfmr::GridAxes::RowFirst);
  rope.apply_grid(k, rows, cols, xfmr::GridAxes::RowFirst);

  // Logit of head h between the query at (r1, c1) and the key at (r2, c2).
  const auto logit = [&](xfmr::Index h, xfmr::Index r1, xfmr::Index c1, xfmr::Index r2,
                         xfmr::Index c2) {
    return q.row(r1 * cols + c1).segment(h * head_dim, head_dim)
        .dot(k.row(r2 * cols + c2).segment(h * head_dim, head_dim));
  };

  std::printf("grid %ldx%ld patches, %ld heads of %ld channels\n", static_cast<long>(rows),
              static_cast<long>(cols), static_cast<long>(heads), static_cast<long>(head_dim));
  bool relative = true, axes_distinct = true;
  for (xfmr::Index h = 0; h < heads; ++h) {
    const float a = logit(h, 0, 0, 2, 3);   // offset (Δrow, Δcol) = (+2, +3)
    const float b = logit(h, 6, 9, 8, 12);  // the same offset elsewhere on the grid
    const float c = logit(h, 0, 0, 3, 2);   // offset (+3, +2): same distance, other direction
    std::printf("head %ld: (0,0)->(2,3) %+.6f   (6,9)->(8,12) %+.6f   (0,0)->(3,2) %+.6f\n",
                static_cast<long>(h), a, b, c);
    const float tol = 1e-5f * q0.segment(h * head_dim, head_dim).norm() *
                      k0.segment(h * head_dim, head_dim).norm();
    relative = relative && std::fabs(a - b) <= tol;
    axes_distinct = axes_distinct && std::fabs(a - c) > 100 * tol;
  }
  std::printf("same offset, same logit: %s; swapped offset, different logit: %s\n",
              relative ? "yes" : "NO", axes_distinct ? "yes" : "NO");
  return relative && axes_distinct ? 0 : 1;
}
