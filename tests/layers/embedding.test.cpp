// SPDX-License-Identifier: MIT
// Embedding (layers/embedding.hpp): gather and add by id (exact copies and sums), strided
// outputs, learned absolute positions by range, and every error with its message; a bad id
// anywhere leaves the output untouched.
#include <cstdint>
#include <limits>

#include <catch2/catch.hpp>
#include <xfmr/layers/embedding.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::Embedding;
using xfmr::IdVector;
using xfmr::Index;
using xfmr::RowMatrix;

TEMPLATE_TEST_CASE("Embedding::forward gathers table rows by id, add sums them",
                   "[layers][embedding]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(501);
  const RowMatrix<T> table = xfmr_test::random_matrix<T>(rng, 97, 13);
  const Embedding<T> emb(table);
  CHECK(emb.rows() == 97);
  CHECK(emb.dim() == 13);
  IdVector ids(9);
  ids << 0, 96, 5, 5, 42, 1, 95, 0, 17;
  // Strided output: a column block of a wider buffer with canaries around it.
  const T canary = T(-31.5);
  RowMatrix<T> big = RowMatrix<T>::Constant(9, 20, canary);
  emb.forward(ids, big.block(0, 4, 9, 13));
  for (Index t = 0; t < ids.size(); ++t) CHECK(big.block(t, 4, 1, 13) == table.row(ids[t]));
  CHECK((big.leftCols(4).array() == canary).all());
  CHECK((big.rightCols(3).array() == canary).all());

  const RowMatrix<T> base = xfmr_test::random_matrix<T>(rng, 9, 13);
  RowMatrix<T> sum = base;
  emb.add(ids, sum);
  for (Index t = 0; t < ids.size(); ++t) CHECK(sum.row(t) == base.row(t) + table.row(ids[t]));

  // Positions 3 … 11 by range equal the same ids gathered.
  RowMatrix<T> by_range = base, by_ids = base;
  emb.add_range(3, by_range);
  IdVector pos(9);
  for (Index t = 0; t < 9; ++t) pos[t] = 3 + t;
  emb.add(pos, by_ids);
  CHECK(by_range == by_ids);

  // Empty id vectors are fine.
  RowMatrix<T> none(0, 13);
  emb.forward(IdVector(0), none);
  emb.add(IdVector(0), none);
  emb.add_range(97, none);
}

TEMPLATE_TEST_CASE("Embedding rejects ids outside the table before writing anything",
                   "[layers][embedding]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(502);
  const Embedding<T> emb(xfmr_test::random_matrix<T>(rng, 10, 4));
  RowMatrix<T> out = RowMatrix<T>::Constant(4, 4, T(7));
  const RowMatrix<T> before = out;
  IdVector ids(4);
  ids << 1, 2, 3, 10;
  XFMR_REQUIRE_INVALID(emb.forward(ids, out),
                       "xfmr::Embedding: forward expected ids in [0, 10) (the table's rows) (got "
                       "id 10 at index 3)");
  CHECK(out == before);
  ids << 1, -1, 3, 4;
  XFMR_REQUIRE_INVALID(emb.add(ids, out),
                       "xfmr::Embedding: add expected ids in [0, 10) (the table's rows) (got id "
                       "-1 at index 1)");
  CHECK(out == before);
  ids << 0, 1, 2, std::numeric_limits<std::int64_t>::max();
  XFMR_REQUIRE_INVALID(emb.forward(ids, out), "(got id 9223372036854775807 at index 3)");
  CHECK(out == before);
  ids << 0, 1, 2, 3;
  RowMatrix<T> wrong(4, 5);
  XFMR_REQUIRE_INVALID(emb.forward(ids, wrong),
                       "xfmr::Embedding: forward expected out of 4x4 (ids x dim) (got 4x5)");
  RowMatrix<T> short_out(3, 4);
  XFMR_REQUIRE_INVALID(emb.add(ids, short_out),
                       "xfmr::Embedding: add expected out of 4x4 (ids x dim) (got 3x4)");
  XFMR_REQUIRE_INVALID(emb.add_range(7, out),
                       "xfmr::Embedding: add_range expected positions [7, 11) inside the table's "
                       "10 rows (got 4 rows from position 7)");
  XFMR_REQUIRE_INVALID(emb.add_range(-1, out), "(got 4 rows from position -1)");
  XFMR_REQUIRE_INVALID(emb.add_range(0, wrong),
                       "xfmr::Embedding: add_range expected out with dim=4 columns (got 4x5)");
  CHECK(out == before);
  XFMR_REQUIRE_INVALID(Embedding<T>(RowMatrix<T>(0, 3)),
                       "xfmr::Embedding: expected a table of at least 1x1 (rows x dim) (got 0x3)");
}
