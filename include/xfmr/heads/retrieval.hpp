// SPDX-License-Identifier: MIT
// Cosine top-k retrieval: the k corpus rows nearest to each query row by cosine similarity
// (e.g. sentence vectors after BertWhitening, heads/whitening.hpp).
#ifndef XFMR_HEADS_RETRIEVAL_HPP
#define XFMR_HEADS_RETRIEVAL_HPP

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Corpus row indices of a top-k result: (queries × k), row-major, best first in each row.
using TopKIndices = Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {
template <typename T>
void cosine_top_k_impl(ConstMatrixRef<T> queries, ConstMatrixRef<T> corpus, Index k,
                       Eigen::Ref<TopKIndices> indices, MatrixRef<T> scores) {
  const char* where = "cosine_top_k";
  require(queries.cols() == corpus.cols(), where,
          "queries and corpus must have the same width (got ", queries.cols(), " and ",
          corpus.cols(), ")");
  require(k >= 1 && k <= corpus.rows(), where, "k must be in [1, corpus rows=", corpus.rows(),
          "] (got k=", k, ")");
  require(indices.rows() == queries.rows() && indices.cols() == k && scores.rows() == queries.rows() &&
              scores.cols() == k,
          where, "indices and scores must be ", queries.rows(), "x", k, " (got ", indices.rows(),
          "x", indices.cols(), " and ", scores.rows(), "x", scores.cols(), ")");
  require(queries.allFinite() && corpus.allFinite(), where,
          "queries and corpus must be finite (got a non-finite value)");
  // Unit rows (norm clipped at 1e-8 as in bojone/BERT-whitening: a zero row scores 0).
  auto unit = [](ConstMatrixRef<T> m) {
    RowMatrix<T> u = m;
    for (Index r = 0; r < u.rows(); ++r)
      u.row(r) /= static_cast<T>(std::max(u.row(r).template cast<double>().norm(), 1e-8));
    return u;
  };
  const RowMatrix<T> c = unit(corpus);
  constexpr Index kBlock = 64;
  std::vector<Index> order(static_cast<std::size_t>(c.rows()));
  RowMatrix<T> s;
  for (Index q0 = 0; q0 < queries.rows(); q0 += kBlock) {
    const Index nq = std::min(kBlock, queries.rows() - q0);
    const RowMatrix<T> q = unit(queries.middleRows(q0, nq));
    s.noalias() = q * c.transpose();
    for (Index i = 0; i < nq; ++i) {
      const T* row = s.data() + i * s.cols();
      std::iota(order.begin(), order.end(), Index(0));
      // Higher cosine first; equal cosines: lower corpus index first (deterministic).
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](Index a, Index b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      for (Index j = 0; j < k; ++j) {
        indices(q0 + i, j) = order[static_cast<std::size_t>(j)];
        scores(q0 + i, j) = row[order[static_cast<std::size_t>(j)]];
      }
    }
  }
}
}  // namespace detail

/// Cosine top-k retrieval: for every query row, the k corpus rows with the largest cosine
/// cos(q, c) = q·c / (max(‖q‖, 1e-8)·max(‖c‖, 1e-8)), best first; equal cosines are ordered by
/// corpus index (deterministic). Usual use: whiten (and truncate) queries and corpus with the
/// same BertWhitening, then retrieve.
/// Shapes: queries (Q × D), corpus (M × D), indices and scores (Q × k), sized by the caller.
/// Allocates a normalised copy of the corpus and a 64 × M score block per call; keeps no state
/// (thread-safe: concurrent calls share nothing). Norms in double, products in T.
/// \throws std::invalid_argument on a width or output shape mismatch, k outside [1, M], or a
///         non-finite input.
/// T = queries' scalar (float or double; corpus and scores of the same T). A template, so that
/// a translation unit that includes this header without calling it compiles no search.
template <typename Q>
void cosine_top_k(const Eigen::MatrixBase<Q>& queries, ConstMatrixRef<typename Q::Scalar> corpus,
                  Index k, Eigen::Ref<TopKIndices> indices, MatrixRef<typename Q::Scalar> scores) {
  using T = typename Q::Scalar;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cosine_top_k: float or double matrices");
  detail::cosine_top_k_impl<T>(queries, corpus, k, indices, scores);
}

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_RETRIEVAL_HPP
