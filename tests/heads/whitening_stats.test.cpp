// SPDX-License-Identifier: MIT
// WhiteningStats: blocked Welford/Chan statistics against a two-pass long-double reference,
// merges in any order, the large-offset case, the float Gram kernel (every ISA), errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/heads/whitening_stats.hpp>
#include <xfmr/simd/gemm_pack.hpp>

#include "reference/whitening.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using Catch::Contains;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::WhiteningStats;

namespace {

// max |a − b| / max |b|: a whole-matrix relative error.
double rel_err(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-300);
}

// Anisotropic data: offset + a few dominant directions + noise, like BERT sentence vectors.
template <typename T>
RowMatrix<T> anisotropic(std::mt19937_64& rng, Index n, Index d, double offset) {
  std::normal_distribution<double> g(0.0, 1.0);
  RowMatrix<double> dirs(3, d);
  for (Index i = 0; i < dirs.size(); ++i) dirs.data()[i] = g(rng);
  RowMatrix<T> x(n, d);
  for (Index r = 0; r < n; ++r) {
    const double a = 5 * g(rng), b = 2 * g(rng), c = g(rng);
    for (Index j = 0; j < d; ++j)
      x(r, j) = static_cast<T>(offset + a * dirs(0, j) + b * dirs(1, j) + c * dirs(2, j) +
                               0.3 * g(rng));
  }
  return x;
}

}  // namespace

TEMPLATE_TEST_CASE("WhiteningStats matches two-pass statistics for odd sizes and blockings",
                   "[whitening][stats]", float, double) {
  auto rng = xfmr_test::make_rng(1);
  // Widths around the 24-float panel (1, 23, 25, 49), block sizes that split rows unevenly.
  for (const Index d : {1, 7, 23, 25, 49}) {
    for (const Index n : {2, 3, 31, 300}) {
      for (const Index batch : {1, 7, 4096}) {
        const RowMatrix<TestType> x = anisotropic<TestType>(rng, n, d, 3.0);
        WhiteningStats s(d, batch);
        s.add<TestType>(x);
        const auto ref = xfmr_ref::moments(x);
        INFO("d=" << d << " n=" << n << " batch=" << batch);
        REQUIRE(s.count() == n);
        // float: Gram in float over <= batch rows, ~1e-6; double: ~1e-13.
        const double tol = std::is_same_v<TestType, float> ? 2e-5 : 1e-11;
        CHECK(rel_err(s.mean(), ref.mean) < tol);
        CHECK(rel_err(s.scatter(), ref.scatter) < tol);
        CHECK((s.scatter() - s.scatter().transpose()).cwiseAbs().maxCoeff() == 0.0);
        CHECK(rel_err(s.covariance(), ref.scatter / double(n)) < tol);
        CHECK(rel_err(s.covariance(xfmr::CovarianceNormalization::Sample),
                      ref.scatter / double(n - 1)) < tol);
      }
    }
  }
}

TEST_CASE("WhiteningStats: strided views, empty batches and exact_gram", "[whitening][stats]") {
  auto rng = xfmr_test::make_rng(2);
  const RowMatrix<float> big = anisotropic<float>(rng, 90, 40, -2.0);
  const RowMatrix<float> x = big.block(5, 3, 70, 30);  // compact copy of a strided block
  WhiteningStats a(30, 16), b(30, 16), exact(30, 16, /*exact_gram=*/true);
  a.add<float>(big.block(5, 3, 70, 30));  // strided view, no copy
  b.add<float>(x);
  b.add<float>(x.topRows(0));  // empty: no-op
  exact.add<float>(x);
  const auto ref = xfmr_ref::moments(x);
  CHECK(a.count() == 70);
  CHECK(b.count() == 70);
  CHECK(a.scatter() == b.scatter());
  CHECK(rel_err(exact.scatter(), ref.scatter) < 1e-12);  // double Gram on float data
  CHECK(rel_err(a.scatter(), ref.scatter) < 2e-5);
}

TEST_CASE("WhiteningStats: merging shards in any order equals one pass", "[whitening][stats]") {
  auto rng = xfmr_test::make_rng(3);
  const Index d = 37, n = 500;
  const RowMatrix<double> x = anisotropic<double>(rng, n, d, 50.0);
  WhiteningStats whole(d, 64);
  whole.add<double>(x);
  for (int trial = 0; trial < 5; ++trial) {
    // Random cut points, then merge the shards in a random order (and as a random tree).
    std::vector<Index> cuts = {0, n};
    std::uniform_int_distribution<Index> u(1, n - 1);
    for (int c = 0; c < 6; ++c) cuts.push_back(u(rng));
    std::sort(cuts.begin(), cuts.end());
    std::vector<WhiteningStats> shards;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
      shards.emplace_back(d, 64);
      shards.back().add<double>(x.middleRows(cuts[i], cuts[i + 1] - cuts[i]));  // may be empty
    }
    std::shuffle(shards.begin(), shards.end(), rng);
    while (shards.size() > 1) {
      std::uniform_int_distribution<std::size_t> pick(0, shards.size() - 2);
      const std::size_t i = pick(rng);
      shards[i].merge(shards[i + 1]);
      shards.erase(shards.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    }
    CHECK(shards[0].count() == n);
    CHECK(rel_err(shards[0].mean(), whole.mean()) < 1e-13);
    CHECK(rel_err(shards[0].scatter(), whole.scatter()) < 1e-12);
  }
  WhiteningStats empty(d);
  empty.merge(whole);  // empty ⊕ S = S
  CHECK(empty.scatter() == whole.scatter());
  CHECK(empty.mean() == whole.mean());
}

TEST_CASE("WhiteningStats stays accurate with a 1e4 common offset (naive E[xx]-mm fails)",
          "[whitening][stats][offset]") {
  auto rng = xfmr_test::make_rng(4);
  const Index d = 20, n = 4000;
  const RowMatrix<float> x = anisotropic<float>(rng, n, d, 1e4);
  const auto ref = xfmr_ref::moments(x);  // of the float data as given
  for (const Index batch : {Index(1), Index(100), Index(4096)}) {
    WhiteningStats s(d, batch);
    s.add<float>(x);
    INFO("batch=" << batch);
    CHECK(rel_err(s.scatter(), ref.scatter) < 2e-5);
    CHECK(rel_err(s.mean(), ref.mean) < 1e-12);
  }
  // The textbook streaming formula Σ = E[xxᵀ] − μμᵀ, accumulated in float as the input type
  // would suggest, loses everything to cancellation at this offset: this is what the test guards.
  Eigen::MatrixXf exx = Eigen::MatrixXf::Zero(d, d);
  Eigen::VectorXf mu = Eigen::VectorXf::Zero(d);
  for (Index r = 0; r < n; ++r) {
    exx += x.row(r).transpose() * x.row(r);
    mu += x.row(r).transpose();
  }
  exx /= float(n);
  mu /= float(n);
  const Eigen::MatrixXd naive = (exx - mu * mu.transpose()).cast<double>() * double(n);
  CHECK(rel_err(naive, ref.scatter) > 1e-2);
}

// detail::gram_lower_f32<Isa> is the whole float fit path below WhiteningStats::add: centring of
// kc rows into Y, pack_a of Yᵀ and pack_b of Y, and the GEMM engine's G += YᵀY over the lower
// tiles (GemmPart::Lower). The sweep crosses what each stage blocks on: widths around the
// register tile (mr = 6 rows, nr = 2 vectors) and over the engine's mc = 144 row block, row
// counts that leave a partial kc block, and a kc larger than the engine's own k block (256 floats
// on AVX2) so the engine splits k and sums partial products. Inputs are strided and misaligned;
// G has a wider row stride whose padding columns, and the entries above the diagonal that no
// engine tile reaches (j >= i + mr + nr - 1), carry canaries that must survive.
TEST_CASE("Gram kernel equals the long-double reference on every ISA",
          "[whitening][stats][simd]") {
  auto rng = xfmr_test::make_rng(5);
  for (const Index d : {1, 5, 6, 7, 17, 24, 25, 50, 150, 161}) {
    for (const Index rows : {1, 3, 9, 300}) {
      const Index ld = d + 3;  // strided rows
      // One float past the matrices' own alignment: x and s start misaligned.
      const RowMatrix<float> xbuf = xfmr_test::random_matrix<float>(rng, rows, ld + 1);
      const RowMatrix<float> sbuf = xfmr_test::random_matrix<float>(rng, 1, d + 1);
      const float* x = xbuf.data() + 1;
      const float* s = sbuf.data() + 1;
      std::vector<long double> acc(static_cast<std::size_t>(d * d), 0.0L),
          y(static_cast<std::size_t>(d));
      for (Index r = 0; r < rows; ++r) {
        for (Index c = 0; c < d; ++c)
          y[std::size_t(c)] = static_cast<long double>(x[r * ld + c]) - s[c];
        for (Index i = 0; i < d; ++i)
          for (Index j = 0; j <= i; ++j)
            acc[std::size_t(i * d + j)] += y[std::size_t(i)] * y[std::size_t(j)];
      }
      Eigen::MatrixXd ref(d, d);
      for (Index i = 0; i < d; ++i)
        for (Index j = 0; j <= i; ++j)
          ref(i, j) = ref(j, i) = static_cast<double>(acc[std::size_t(i * d + j)]);
      for (const Index kc : {Index(7), Index(256), Index(300)}) {
        xfmr_test::for_each_isa([&](auto isa) {
          using Isa = decltype(isa);
          constexpr Index mr = xfmr::simd::GemmShape<float, Isa>::mr;
          constexpr Index nr = xfmr::simd::GemmShape<float, Isa>::nr;
          const Index dpad = d + 2;  // G with a wider row stride
          const float canary = -12345.25f;
          std::vector<float> g(std::size_t(dpad * dpad), canary),
              pack(std::size_t(xfmr::detail::gram_scratch_size<Isa>(d, kc)));
          for (Index i = 0; i < d; ++i)
            for (Index j = 0; j < std::min(d, i + mr + nr - 1); ++j) g[std::size_t(i * dpad + j)] = 0;
          xfmr::detail::gram_lower_f32<Isa>(x, rows, d, ld, s, g.data(), dpad, pack.data(), kc);
          Eigen::MatrixXd out(d, d);
          for (Index i = 0; i < d; ++i)
            for (Index j = 0; j <= i; ++j) out(i, j) = out(j, i) = g[std::size_t(i * dpad + j)];
          Index bad_guards = 0;
          for (Index i = 0; i < dpad; ++i)
            for (Index j = 0; j < dpad; ++j)
              if ((i >= d || j >= d || j >= i + mr + nr - 1) && !(g[std::size_t(i * dpad + j)] == canary))
                ++bad_guards;
          INFO(Isa::name << " d=" << d << " rows=" << rows << " kc=" << kc);
          CHECK(rel_err(out, ref) < 1e-5);
          CHECK(bad_guards == 0);
        });
      }
    }
  }
}

TEST_CASE("WhiteningStats rejects bad input with a clear message", "[whitening][stats][errors]") {
  XFMR_REQUIRE_INVALID(WhiteningStats(0), "xfmr::WhiteningStats: dim must be > 0 (got dim=0)");
  XFMR_REQUIRE_INVALID(WhiteningStats(4, 0), "batch_rows must be > 0 (got batch_rows=0)");
  WhiteningStats s(4, 2);
  RowMatrix<float> wrong(3, 5);
  wrong.setZero();
  XFMR_REQUIRE_INVALID(s.add<float>(wrong), "x must have dim=4 columns (got 3x5)");
  RowMatrix<double> x = RowMatrix<double>::Ones(5, 4);
  x(0, 0) = 2;
  s.add<double>(x);
  const Eigen::MatrixXd before = s.scatter();
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()}) {
    RowMatrix<double> y = x;
    y(4, 2) = bad;  // in the last block: the earlier blocks must not be folded in either
    XFMR_REQUIRE_INVALID(s.add<double>(y), "x must be finite (got a non-finite value in rows [4, 5))");
  }
  CHECK(s.count() == 5);
  CHECK(s.scatter() == before);
  WhiteningStats other(5);
  XFMR_REQUIRE_INVALID(s.merge(other), "merge needs statistics of the same dim=4 (got dim=5)");
  REQUIRE_THROWS_AS(s.merge(other), std::logic_error);  // invalid_argument is a logic_error
  WhiteningStats one(4);
  one.add<double>(x.topRows(1));
  REQUIRE_THROWS_AS(one.covariance(), std::logic_error);
  REQUIRE_THROWS_WITH(one.covariance(), "xfmr::WhiteningStats: covariance needs at least 2 rows (got 1)");
}

TEST_CASE("WhiteningStats: the flat buffer round-trips bit for bit and merges like the object",
          "[whitening][stats][buffer]") {
  auto rng = xfmr_test::make_rng(6);
  for (const Index d : {1, 2, 5, 31}) {
    const RowMatrix<double> x = anisotropic<double>(rng, 77, d, 10.0);
    WhiteningStats a(d, 16), b(d, 16);
    a.add<double>(x.topRows(40));
    b.add<double>(x.bottomRows(37));
    const std::vector<double> buf = a.to_buffer();
    REQUIRE(buf.size() == WhiteningStats::buffer_size(d));
    REQUIRE(buf.size() == std::size_t(2 + d + d * (d + 1) / 2));
    // The documented layout.
    CHECK(buf[0] == double(d));
    CHECK(buf[1] == 40.0);
    for (Index j = 0; j < d; ++j) CHECK(buf[std::size_t(2 + j)] == a.mean()[j]);
    const Eigen::MatrixXd ca = a.scatter();
    std::size_t at = std::size_t(2 + d);
    for (Index i = 0; i < d; ++i)
      for (Index j = 0; j <= i; ++j) CHECK(buf[at++] == ca(i, j));
    // Round trip into an object that held other statistics (from_buffer replaces them).
    WhiteningStats r(d, 3, true);
    r.add<double>(x.bottomRows(5));
    r.from_buffer(buf);
    CHECK(r.count() == a.count());
    CHECK(r.mean() == a.mean());
    CHECK(r.scatter() == a.scatter());
    CHECK(r.batch_rows() == 3);  // how rows are added is not part of the statistics
    // Merging a received buffer equals merging the object, bit for bit.
    WhiteningStats via_object = b, via_buffer = b, received(d);
    via_object.merge(a);
    received.from_buffer(buf.data(), buf.size());
    via_buffer.merge(received);
    CHECK(via_buffer.scatter() == via_object.scatter());
    CHECK(via_buffer.mean() == via_object.mean());
    // a ⊕ b and b ⊕ a: the same statistics to rounding (the merge order is not significant).
    WhiteningStats ab = a;
    ab.merge(b);
    CHECK(rel_err(ab.scatter(), via_object.scatter()) < 1e-14);
    CHECK(rel_err(ab.mean(), via_object.mean()) < 1e-15);
    CHECK(ab.count() == 77);
  }
  WhiteningStats empty(3);
  const std::vector<double> e = empty.to_buffer();
  CHECK(e == std::vector<double>{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("WhiteningStats::from_buffer rejects bad buffers and keeps its statistics",
          "[whitening][stats][buffer][errors]") {
  WhiteningStats s(2);
  s.add<double>(RowMatrix<double>::Identity(2, 2));
  const std::vector<double> good = s.to_buffer();  // [2, 2, .5, .5, .5, -.5, .5]
  const Eigen::MatrixXd before = s.scatter();
  XFMR_REQUIRE_INVALID(s.from_buffer(good.data(), 6),
                       "xfmr::WhiteningStats: from_buffer needs 7 doubles for dim=2 (got 6)");
  std::vector<double> b = good;
  b[0] = 3;
  XFMR_REQUIRE_INVALID(s.from_buffer(b), "from_buffer needs a buffer of dim=2 (got dim=3)");
  for (const double n : {-1.0, 2.5, 1e17, std::numeric_limits<double>::quiet_NaN()}) {
    b = good;
    b[1] = n;
    XFMR_REQUIRE_INVALID(s.from_buffer(b), "from_buffer needs a row count that is an integer");
  }
  b = good;
  b[6] = std::numeric_limits<double>::infinity();
  XFMR_REQUIRE_INVALID(s.from_buffer(b), "from_buffer needs finite statistics");
  CHECK(s.count() == 2);
  CHECK(s.scatter() == before);
}
