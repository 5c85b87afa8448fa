// SPDX-License-Identifier: MIT
// distributed/mpi.hpp: shard ranges, the fingerprint check (a deliberate mismatch ends in the
// same std::invalid_argument on every rank, never in a hang: ctest's TIMEOUT would fail the run),
// gather_rows in rank order with uneven and empty blocks.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/distributed/mpi.hpp>

#include "mpi/mpi_support.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using Catch::Contains;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {
const MPI_Comm kComm = MPI_COMM_WORLD;
}

TEST_CASE("shard_range splits n items contiguously in rank order", "[mpi][shard]") {
  for (const Index n : {0, 1, 2, 3, 7, 100, 1001})
    for (int p = 1; p <= 6; ++p) {
      Index next = 0;
      for (int r = 0; r < p; ++r) {
        const auto s = xfmr::mpi::shard_range(n, r, p);
        INFO("n=" << n << " p=" << p << " r=" << r);
        CHECK(s.begin == next);
        CHECK((s.size() == n / p || s.size() == n / p + 1));
        next = s.end;
      }
      CHECK(next == n);
    }
  XFMR_REQUIRE_INVALID(xfmr::mpi::shard_range(5, 2, 2),
                       "xfmr::mpi::shard_range: expected n >= 0 and 0 <= rank < size (got n=5, "
                       "rank=2, size=2)");
  XFMR_REQUIRE_INVALID(xfmr::mpi::shard_range(-1, 0, 1), "(got n=-1");
}

TEST_CASE("require_same passes when every rank agrees", "[mpi][require_same]") {
  enum class Kind { A, B };
  CHECK_NOTHROW(xfmr::mpi::require_same(kComm, "agree", Index(768), sizeof(float), Kind::B, true));
  CHECK_NOTHROW(xfmr::mpi::require_same(kComm, "nothing"));
  const std::vector<std::int64_t> many(20, 7);
  CHECK_NOTHROW(xfmr::mpi::require_same_values(kComm, "many", many.data(), many.size()));
}

TEST_CASE("require_same: a deliberate mismatch throws on every rank, naming ranks and values",
          "[mpi][require_same]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  REQUIRE(size >= 2);
  SECTION("the last rank has another width") {
    const Index dim = rank == size - 1 ? 384 : 768;
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { xfmr::mpi::require_same(kComm, "fit [dim, sizeof(T)]", dim, sizeof(double)); });
    CHECK(msg == "xfmr::mpi::require_same: expected every rank to agree on fit [dim, sizeof(T)] "
                 "(got rank 0: [768, 8]; rank " + std::to_string(size - 1) + ": [384, 8])");
  }
  SECTION("every odd rank has another dtype") {
    const std::string msg = xfmr_test::invalid_argument_message([&] {
      xfmr::mpi::require_same(kComm, "dtype", rank % 2 ? sizeof(float) : sizeof(double));
    });
    std::string expected = "(got rank 0: [8]";
    for (int r = 1; r < size; r += 2) expected += "; rank " + std::to_string(r) + ": [4]";
    CHECK_THAT(msg, Contains(expected + ")"));
  }
  SECTION("rank 1 passes a different number of values") {
    const std::string msg = xfmr_test::invalid_argument_message([&] {
      if (rank == 1)
        xfmr::mpi::require_same(kComm, "lengths", 5, 6, 7);
      else
        xfmr::mpi::require_same(kComm, "lengths", 5, 6);
    });
    CHECK_THAT(msg, Contains("(got rank 0: [5, 6]; rank 1: [5, 6, 7])"));
  }
  SECTION("rank 0 reached another check") {
    const std::string msg = xfmr_test::invalid_argument_message([&] {
      xfmr::mpi::require_same(kComm, rank == 0 ? "ring attention" : "whitening", 1);
    });
    // Every rank names the others relative to rank 0's check.
    CHECK_THAT(msg, Contains("rank 1: a different check"));
  }
  SECTION("more than 8 values: the first 8 are shown") {
    std::vector<std::int64_t> v(10, 1);
    v[9] = rank == 0 ? 1 : 2;  // a difference beyond the values shown still fails
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { xfmr::mpi::require_same_values(kComm, "long", v.data(), v.size()); });
    CHECK_THAT(msg, Contains("rank 0: [1, 1, 1, 1, 1, 1, 1, 1, … (10 values)]; rank 1: [1"));
  }
  // Every rank threw and is back in step: a collective after the failures completes.
  CHECK(xfmr_test::all_ranks(kComm, true));
}

TEST_CASE("gather_rows gathers uneven blocks on root in rank order", "[mpi][gather]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto rng = xfmr_test::shared_rng(kComm, 1);
  const Index n = 37 + size, cols = 5;
  const RowMatrix<double> all = xfmr_test::random_matrix<double>(rng, n, cols);
  // Uneven shards, rank 1's empty: cuts at 0, 0 + 0 (rank 1 empty) …
  std::vector<Index> cut(static_cast<std::size_t>(size) + 1, 0);
  for (int r = 0; r < size; ++r)
    cut[std::size_t(r) + 1] = r == 1 ? cut[std::size_t(r)] : std::min(n, cut[std::size_t(r)] + 3 + 5 * r);
  cut[std::size_t(size)] = n;
  const Index b = cut[std::size_t(rank)], e = cut[std::size_t(rank) + 1];
  for (const int root : {0, size - 1}) {
    const RowMatrix<double> got = xfmr::mpi::gather_rows<double>(kComm, all.middleRows(b, e - b), root);
    INFO("root " << root);
    if (rank == root) {
      CHECK(got == all);
    } else {
      CHECK(got.rows() == 0);
      CHECK(got.cols() == cols);
    }
  }
  // Strided rows (a column block): gathered as a compact matrix.
  RowMatrix<float> wide = xfmr_test::random_matrix<float>(rng, n, 9);
  const RowMatrix<float> got =
      xfmr::mpi::gather_rows<float>(kComm, wide.block(b, 2, e - b, 4), 0);
  if (rank == 0) CHECK(got == wide.middleCols(2, 4));
  // Disagreeing widths: every rank throws.
  const RowMatrix<float> bad(2, rank == 0 ? 3 : 4);
  const std::string msg = xfmr_test::invalid_argument_message(
      [&] { xfmr::mpi::gather_rows<float>(kComm, bad, 0); });
  CHECK_THAT(msg, Contains("agree on gather_rows [cols, sizeof(T), root] (got rank 0: [3, 4, 0]; "
                           "rank 1: [4, 4, 0]"));
  XFMR_REQUIRE_INVALID(xfmr::mpi::gather_rows<float>(kComm, wide, size),
                       "xfmr::mpi::gather_rows: expected 0 <= root < size=");
}
