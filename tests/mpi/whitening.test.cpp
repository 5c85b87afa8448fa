// SPDX-License-Identifier: MIT
// distributed/whitening.hpp: the sharded fit equals the single-process fit over the concatenated
// data to 1e-12 (double), shards of unequal sizes and an empty one; every rank ends with the same
// bits; the reduction's counted volume; disagreeing ranks and bad shards end in errors on every
// rank, not in a hang (ctest's TIMEOUT).
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/distributed/whitening.hpp>
#include <xfmr/io/binary_format.hpp>

#include "mpi/mpi_support.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using Catch::Contains;
using xfmr::BertWhitening;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::WhiteningConfig;
using xfmr::WhiteningStats;

namespace {

const MPI_Comm kComm = MPI_COMM_WORLD;

double rel_err(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-300);
}

// Sentence-vector-like data: a large common offset, then a random rotation of coordinates with
// well separated spreads (so the eigenvectors are well conditioned and W_k comparable entrywise).
template <typename T>
RowMatrix<T> corpus(std::mt19937_64& rng, Index n, Index d) {
  std::normal_distribution<double> g(0.0, 1.0);
  Eigen::MatrixXd q = Eigen::MatrixXd::NullaryExpr(d, d, [&] { return g(rng); });
  q = Eigen::HouseholderQR<Eigen::MatrixXd>(q).householderQ();
  RowMatrix<T> x(n, d);
  Eigen::VectorXd z(d);
  for (Index r = 0; r < n; ++r) {
    for (Index j = 0; j < d; ++j) z[j] = g(rng) * (1.0 + 0.5 * double(d - j));
    const Eigen::VectorXd v = q * z;
    for (Index j = 0; j < d; ++j) x(r, j) = static_cast<T>(50.0 + v[j]);
  }
  return x;
}

// Cut points of n rows over p ranks: unequal sizes (rank r's share ∝ r + 1), rank 1's shard
// empty if empty_rank1.
std::vector<Index> uneven_cuts(Index n, int p, bool empty_rank1) {
  std::vector<Index> cut(std::size_t(p) + 1, 0);
  Index weight = 0;
  const auto share = [&](int r) { return empty_rank1 && r == 1 ? 0 : r + 1; };
  for (int r = 0; r < p; ++r) weight += share(r);
  for (int r = 0; r < p; ++r) cut[std::size_t(r) + 1] = cut[std::size_t(r)] + n * share(r) / weight;
  cut[std::size_t(p)] = n;  // the remainder to the last rank
  return cut;
}

template <typename T>
std::int64_t fingerprint(const BertWhitening<T>& w) {
  xfmr::io::Fnv1a64 h;
  h.update(w.mean().data(), sizeof(double) * std::size_t(w.mean().size()));
  h.update(w.eigenvalues().data(), sizeof(double) * std::size_t(w.eigenvalues().size()));
  h.update(w.whitening_matrix().data(), sizeof(T) * std::size_t(w.whitening_matrix().size()));
  return static_cast<std::int64_t>(h.value());
}

}  // namespace

TEST_CASE("fit_whitening over uneven shards equals the single-process fit to 1e-12",
          "[mpi][whitening]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto rng = xfmr_test::shared_rng(kComm, 11);
  const Index n = 1501, d = 33;
  const RowMatrix<double> all = corpus<double>(rng, n, d);
  const bool empty_rank1 = GENERATE(false, true);
  const std::vector<Index> cut = uneven_cuts(n, size, empty_rank1);
  const Index b = cut[std::size_t(rank)], e = cut[std::size_t(rank) + 1];
  if (rank == 1 && empty_rank1) REQUIRE(e == b);  // the empty shard takes part
  if (!empty_rank1) REQUIRE(e - b > 100);

  WhiteningConfig cfg;
  cfg.components = 12;
  cfg.batch_rows = 100;  // many blocks, cut differently from the single-process pass
  BertWhitening<double> single(d, cfg);
  single.fit(all);

  BertWhitening<double> dist(d, cfg);
  const xfmr::mpi::ReduceVolume vol =
      xfmr::mpi::fit_whitening(kComm, dist, all.middleRows(b, e - b));
  REQUIRE(dist.fitted());
  CHECK(dist.count() == n);
  CHECK(dist.stats().count() == n);
  const double e_mean = rel_err(dist.mean(), single.mean());
  const double e_eig = rel_err(dist.eigenvalues(), single.eigenvalues());
  const double e_w = rel_err(dist.whitening_matrix(), single.whitening_matrix());
  const double e_scatter = rel_err(dist.stats().scatter(), single.stats().scatter());
  RowMatrix<double> y_dist(n, 12), y_single(n, 12);
  dist.transform(all, y_dist);
  single.transform(all, y_single);
  const double e_y = rel_err(y_dist, y_single);
  CHECK(e_mean < 1e-12);
  CHECK(e_eig < 1e-12);
  CHECK(e_w < 1e-12);
  CHECK(e_scatter < 1e-12);
  CHECK(e_y < 1e-12);
  if (rank == 0)
    WARN("np " << size << (empty_rank1 ? " (rank 1 empty)" : "") << ", N=" << n << ", D=" << d << ", k=12: max rel. error vs single "
               "process: mean " << e_mean << ", scatter " << e_scatter << ", eigenvalues "
               << e_eig << ", W_k " << e_w << ", transformed " << e_y);
  // The same bits on every rank.
  CHECK_NOTHROW(xfmr::mpi::require_same(kComm, "whitening bits", fingerprint(dist)));
  // The counted volume: P − 1 messages up, P − 1 down, of the flat statistics each.
  CHECK(vol.messages == 2 * (size - 1));
  CHECK(vol.message_bytes == std::int64_t(8 * WhiteningStats::buffer_size(d)));
  CHECK(vol.rounds == 2 * int(std::ceil(std::log2(double(size)))));
}

TEST_CASE("allreduce_whitening_stats: a fixed merge order, the same result every time",
          "[mpi][whitening]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto rng = xfmr_test::shared_rng(kComm, 12);
  const Index n = 400, d = 7;
  const RowMatrix<double> all = corpus<double>(rng, n, d);
  const auto s = xfmr::mpi::shard_range(n, rank, size);
  WhiteningStats whole(d);
  whole.add<double>(all);
  std::vector<double> first;
  for (int run = 0; run < 3; ++run) {
    WhiteningStats local(d);
    local.add<double>(all.middleRows(s.begin, s.size()));
    xfmr::mpi::allreduce_whitening_stats(kComm, local);
    CHECK(local.count() == n);
    CHECK(rel_err(local.scatter(), whole.scatter()) < 1e-13);
    CHECK(rel_err(local.mean(), whole.mean()) < 1e-14);
    if (run == 0) first = local.to_buffer();
    CHECK(local.to_buffer() == first);  // bit-reproducible
  }
  // The tree order, replayed by hand: ((S0 ⊕ S1) ⊕ (S2 ⊕ S3)) for P = 4, S0 ⊕ S1 for P = 2.
  std::vector<WhiteningStats> parts;
  for (int r = 0; r < size; ++r) {
    const auto sr = xfmr::mpi::shard_range(n, r, size);
    parts.emplace_back(d);
    parts.back().add<double>(all.middleRows(sr.begin, sr.size()));
  }
  for (int step = 1; step < size; step *= 2)
    for (int r = 0; r + step < size; r += 2 * step) parts[std::size_t(r)].merge(parts[std::size_t(r + step)]);
  CHECK(parts[0].to_buffer() == first);
}

TEST_CASE("fit_whitening on float shards", "[mpi][whitening]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto rng = xfmr_test::shared_rng(kComm, 13);
  const Index n = 900, d = 40;
  const RowMatrix<float> all = corpus<float>(rng, n, d);
  const auto s = xfmr::mpi::shard_range(n, rank, size);
  WhiteningConfig cfg;
  cfg.components = 16;
  BertWhitening<float> single(d, cfg), dist(d, cfg);
  single.fit(all);
  xfmr::mpi::fit_whitening(kComm, dist, all.middleRows(s.begin, s.size()));
  // Float Gram blocks (~1e-6 each) cut differently: agreement to float rounding.
  CHECK(rel_err(dist.eigenvalues(), single.eigenvalues()) < 1e-5);
  CHECK(rel_err(dist.whitening_matrix().cast<double>(), single.whitening_matrix().cast<double>()) <
        1e-4);
  CHECK_NOTHROW(xfmr::mpi::require_same(kComm, "float whitening bits", fingerprint(dist)));
}

TEST_CASE("fit_whitening: disagreeing ranks and bad shards throw on every rank",
          "[mpi][whitening][errors]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto rng = xfmr_test::shared_rng(kComm, 14);
  const RowMatrix<double> x = corpus<double>(rng, 20, 6);
  SECTION("another dim on the last rank") {
    const Index d = rank == size - 1 ? 5 : 6;
    BertWhitening<double> w(d);
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { xfmr::mpi::fit_whitening(kComm, w, x.leftCols(d)); });
    CHECK_THAT(msg, Contains("xfmr::mpi::require_same: expected every rank to agree on "
                             "fit_whitening [dim, sizeof(T), k,"));
    CHECK_THAT(msg, Contains("rank " + std::to_string(size - 1) + ": [5, 8, 5,"));
    CHECK_FALSE(w.fitted());
  }
  SECTION("another k on rank 0") {
    WhiteningConfig cfg;
    cfg.components = rank == 0 ? 3 : 4;
    BertWhitening<double> w(6, cfg);
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { xfmr::mpi::fit_whitening(kComm, w, x); });
    CHECK_THAT(msg, Contains("(got rank 0: [6, 8, 3,"));
    CHECK_THAT(msg, Contains("; rank 1: [6, 8, 4,"));
  }
  SECTION("a non-finite value in rank 1's shard") {
    RowMatrix<double> mine = x;
    if (rank == 1) mine(3, 2) = std::numeric_limits<double>::quiet_NaN();
    BertWhitening<double> w(6);
    if (rank == 1) {
      CHECK_THAT(xfmr_test::invalid_argument_message(
                     [&] { xfmr::mpi::fit_whitening(kComm, w, mine); }),
                 Contains("xfmr::WhiteningStats: x must be finite"));
    } else {
      CHECK(xfmr_test::message_of<std::runtime_error>(
                [&] { xfmr::mpi::fit_whitening(kComm, w, mine); }) ==
            "xfmr::mpi::fit_whitening: expected every rank to succeed (got an error on rank(s) 1; "
            "see their messages)");
    }
  }
  SECTION("a shard of the wrong width on rank 0") {
    BertWhitening<double> w(6);
    const RowMatrix<double> wrong = rank == 0 ? RowMatrix<double>(x.leftCols(5)) : x;
    if (rank == 0) {
      CHECK(xfmr_test::invalid_argument_message(
                [&] { xfmr::mpi::fit_whitening(kComm, w, wrong); }) ==
            "xfmr::mpi::fit_whitening: expected a shard of dim=6 columns (got 20x5)");
    } else {
      CHECK_THAT(xfmr_test::message_of<std::runtime_error>(
                     [&] { xfmr::mpi::fit_whitening(kComm, w, wrong); }),
                 Contains("got an error on rank(s) 0;"));
    }
  }
  SECTION("one row in all: finalize's error, on every rank") {
    BertWhitening<double> w(6);
    const RowMatrix<double> one = x.topRows(rank == 0 ? 1 : 0);
    CHECK(xfmr_test::invalid_argument_message(
              [&] { xfmr::mpi::fit_whitening(kComm, w, one); }) ==
          "xfmr::BertWhitening: fitting needs at least 2 rows (got 1)");
  }
  CHECK(xfmr_test::all_ranks(kComm, true));  // every rank is back in step
}
