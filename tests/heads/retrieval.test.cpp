// SPDX-License-Identifier: MIT
// cosine_top_k: brute force in double over more queries than one 64-row block, exact ties and
// zero rows, strided and misaligned views for every argument (outputs inside guarded larger
// matrices), and error messages. Retrieval after whitening: examples/whitening_retrieval.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/heads/retrieval.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::Index;
using xfmr::RowMatrix;

TEMPLATE_TEST_CASE("cosine_top_k equals brute force; ties go to the lower index",
                   "[retrieval]", float, double) {
  auto rng = xfmr_test::make_rng(20);
  const Index d = 12, m = 150, nq = 70, k = 5;
  RowMatrix<TestType> corpus = xfmr_test::random_matrix<TestType>(rng, m, d);
  corpus.row(40) = corpus.row(7) * TestType(2);  // same direction, exactly: a tie with row 7
  corpus.row(99).setZero();                      // zero vector: cosine 0
  RowMatrix<TestType> queries = xfmr_test::random_matrix<TestType>(rng, nq, d);
  queries.row(0) = corpus.row(7);
  xfmr::TopKIndices idx(nq, k);
  RowMatrix<TestType> scores(nq, k);
  xfmr::cosine_top_k(queries, corpus, k, idx, scores);
  CHECK(idx(0, 0) == 7);  // tie: the lower index first
  CHECK(idx(0, 1) == 40);
  CHECK(std::abs(double(scores(0, 0)) - 1.0) < 1e-5);
  for (Index q = 0; q < nq; ++q) {
    std::vector<std::pair<double, Index>> all;
    for (Index j = 0; j < m; ++j) {
      const double nc = std::max(corpus.row(j).template cast<double>().norm(), 1e-8);
      const double nqn = queries.row(q).template cast<double>().norm();
      all.emplace_back(queries.row(q).template cast<double>().dot(corpus.row(j).template cast<double>()) / (nc * nqn), j);
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (Index j = 0; j < k; ++j) {
      CHECK(std::abs(double(scores(q, j)) - all[std::size_t(j)].first) < 1e-5);
      // Near-ties (rows 7 and 40 against any query) may order either way after rounding.
      const double gap_prev = j > 0 ? all[std::size_t(j) - 1].first - all[std::size_t(j)].first : 1.0;
      const double gap_next = all[std::size_t(j)].first - all[std::size_t(j) + 1].first;
      if (std::min(gap_prev, gap_next) > 1e-5) CHECK(idx(q, j) == all[std::size_t(j)].second);
    }
  }
  XFMR_REQUIRE_INVALID(xfmr::cosine_top_k(queries, corpus, m + 1, idx, scores),
                       "xfmr::cosine_top_k: k must be in [1, corpus rows=150] (got k=151)");
  xfmr::TopKIndices small(nq, k - 1);
  XFMR_REQUIRE_INVALID(xfmr::cosine_top_k(queries, corpus, k, small, scores),
                       "indices and scores must be 70x5");
  RowMatrix<TestType> wide = RowMatrix<TestType>::Zero(3, d + 1);
  XFMR_REQUIRE_INVALID(xfmr::cosine_top_k(wide, corpus, k, idx, scores), "same width");
  queries(5, 5) = std::numeric_limits<TestType>::quiet_NaN();
  XFMR_REQUIRE_INVALID(xfmr::cosine_top_k(queries, corpus, k, idx, scores), "must be finite");
}

TEMPLATE_TEST_CASE("cosine_top_k on strided, misaligned views equals the compact call",
                   "[retrieval]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(22);
  const Index d = 9, m = 41, nq = 67, k = 7;
  // Every input and output is a block at column offset 1 of a wider matrix: rows strided and
  // the first element off the 64-byte alignment the matrices themselves have.
  const RowMatrix<T> big_q = xfmr_test::random_matrix<T>(rng, nq + 2, d + 3);
  const RowMatrix<T> big_c = xfmr_test::random_matrix<T>(rng, m + 1, d + 2);
  const RowMatrix<T> q = big_q.block(1, 1, nq, d), c = big_c.block(1, 1, m, d);
  xfmr::TopKIndices idx(nq, k);
  RowMatrix<T> scores(nq, k);
  xfmr::cosine_top_k(q, c, k, idx, scores);

  const T guard = T(-777);
  xfmr::TopKIndices big_idx = xfmr::TopKIndices::Constant(nq + 2, k + 3, Index(-7));
  RowMatrix<T> big_scores = RowMatrix<T>::Constant(nq + 2, k + 3, guard);
  xfmr::cosine_top_k(big_q.block(1, 1, nq, d), big_c.block(1, 1, m, d), k,
                     big_idx.block(1, 1, nq, k), big_scores.block(1, 1, nq, k));
  CHECK(big_idx.block(1, 1, nq, k) == idx);
  CHECK(big_scores.block(1, 1, nq, k) == scores);
  // Nothing outside the output blocks is written.
  for (Index r = 0; r < nq + 2; ++r)
    for (Index j = 0; j < k + 3; ++j) {
      if (r >= 1 && r <= nq && j >= 1 && j <= k) continue;
      CHECK(big_idx(r, j) == -7);
      CHECK(big_scores(r, j) == guard);
    }
  // Scores descend along each row; k = M returns a permutation of the corpus.
  for (Index r = 0; r < nq; ++r)
    for (Index j = 1; j < k; ++j) CHECK(scores(r, j - 1) >= scores(r, j));
  xfmr::TopKIndices all(nq, m);
  RowMatrix<T> all_scores(nq, m);
  xfmr::cosine_top_k(q, c, m, all, all_scores);
  for (Index r = 0; r < nq; ++r) {
    std::vector<Index> row(all.row(r).data(), all.row(r).data() + m);
    std::sort(row.begin(), row.end());
    for (Index j = 0; j < m; ++j) CHECK(row[std::size_t(j)] == j);
  }
}
