// SPDX-License-Identifier: MIT
// Sentence vectors from an encoder's padded hidden states: CLS, masked mean, L2 normalisation
// (SPEC §15.4; sentence-transformers Pooling and Normalize).
#ifndef XFMR_MODELS_POOLING_HPP
#define XFMR_MODELS_POOLING_HPP

#include <algorithm>
#include <cmath>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

namespace detail {

template <typename T, class Lengths>
void check_pooling(const char* where, ConstMatrixRef<T> hidden, Index n, const Lengths& lengths,
                   const MatrixRef<T>& out) {
  require(n >= 1, where, "expected n >= 1 (got ", n, ")");
  require(hidden.rows() % n == 0, where, "expected hidden to have batch*n rows for n=", n, " (got ",
          hidden.rows(), "x", hidden.cols(), ")");
  const Index batch = hidden.rows() / n;
  require(out.rows() == batch && out.cols() == hidden.cols(), where, "expected out to be ", batch,
          "x", hidden.cols(), " (got ", out.rows(), "x", out.cols(), ")");
  require(lengths.size() == batch, where, "expected one length per sequence: batch=", batch,
          " lengths (got ", lengths.size(), ")");
  for (Index b = 0; b < batch; ++b)
    require(lengths[b] >= 0 && lengths[b] <= n, where, "expected lengths in [0, n=", n, "] (got ",
            lengths[b], " at sequence ", b, ")");
}

}  // namespace detail

/// Lengths of the sequences of a padded batch (one per sequence).
using LengthVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;
using ConstLengthsRef = const Eigen::Ref<const LengthVector>&;

/// CLS pooling: out.row(b) = hidden.row(b·n), the first token of sequence b.
/// hidden: (batch·n × H), sequence b at rows [b·n, (b+1)·n); out: (batch × H), must not
/// overlap hidden. \throws std::invalid_argument on a shape mismatch.
template <typename T>
void cls_pool(ConstMatrixRef<T> hidden, Index n, MatrixRef<T> out) {
  const char* where = "cls_pool";
  detail::require(n >= 1 && hidden.rows() % n == 0, where,
                  "expected hidden to have batch*n rows, n >= 1 (got ", hidden.rows(), "x",
                  hidden.cols(), ", n=", n, ")");
  const Index batch = hidden.rows() / n;
  detail::require(out.rows() == batch && out.cols() == hidden.cols(), where, "expected out to be ",
                  batch, "x", hidden.cols(), " (got ", out.rows(), "x", out.cols(), ")");
  for (Index b = 0; b < batch; ++b) out.row(b) = hidden.row(b * n);
}

/// Masked mean pooling (sentence-transformers "mean tokens"):
///   out.row(b) = Σ_{t<L_b} hidden.row(b·n + t) / max(L_b, 1e-9),
/// i.e. Σ_t h_t·m_t / max(Σ_t m_t, 1e-9) with m_t = [t < L_b]; a sequence of length 0 gives
/// zeros. Padded rows are never read (they may hold anything). Sums in T, in token order.
/// hidden: (batch·n × H); lengths: batch values in [0, n]; out: (batch × H), must not overlap
/// hidden. \throws std::invalid_argument on a shape mismatch or a length outside [0, n].
template <typename T>
void mean_pool(ConstMatrixRef<T> hidden, Index n, ConstLengthsRef lengths, MatrixRef<T> out) {
  detail::check_pooling<T>("mean_pool", hidden, n, lengths, out);
  for (Index b = 0; b < out.rows(); ++b) {
    const Index len = lengths[b];
    out.row(b).setZero();
    for (Index t = 0; t < len; ++t) out.row(b) += hidden.row(b * n + t);
    out.row(b) /= std::max(static_cast<T>(len), static_cast<T>(1e-9));
  }
}

/// L2 normalisation of every row, in place (torch F.normalize, sentence-transformers
/// Normalize): x ← x / max(‖x‖₂, 1e-12). A zero row stays zero; a non-finite entry propagates.
template <typename T>
void l2_normalize(MatrixRef<T> x) {
  for (Index r = 0; r < x.rows(); ++r) {
    const T norm = x.row(r).stableNorm();  // scaled: no overflow or underflow in the squares
    x.row(r) /= std::max(norm, static_cast<T>(1e-12));
  }
}

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_POOLING_HPP
