// SPDX-License-Identifier: MIT
// BertWhitening: whitened statistics, the naive reference, streaming/merged fits, β/γ, the 1e4
// offset, sign invariance, the float transform kernel, and error messages. Retrieval is in
// retrieval.test.cpp, the eigensolver in whitening_eigen.test.cpp, the file format in
// tests/io/whitening_format.test.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/heads/whitening.hpp>

#include "reference/whitening.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using Catch::Contains;
using xfmr::BertWhitening;
using xfmr::CovarianceNormalization;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::WhiteningConfig;

namespace {

double rel_err(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / std::max(b.cwiseAbs().maxCoeff(), 1e-300);
}

// Offset + a decaying spectrum (well separated eigenvalues 4, 2.8, 2, …) in a random basis.
template <typename T>
RowMatrix<T> anisotropic(std::mt19937_64& rng, Index n, Index d, double offset) {
  std::normal_distribution<double> g(0.0, 1.0);
  Eigen::MatrixXd basis(d, d);
  for (Index i = 0; i < basis.size(); ++i) basis.data()[i] = g(rng);
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(basis);
  const Eigen::MatrixXd q = qr.householderQ();
  RowMatrix<T> x(n, d);
  Eigen::VectorXd z(d);
  for (Index r = 0; r < n; ++r) {
    for (Index j = 0; j < d; ++j) z[j] = g(rng) * 2.0 * std::pow(0.7, 0.5 * double(j));
    const Eigen::VectorXd v = q * z;
    for (Index j = 0; j < d; ++j) x(r, j) = static_cast<T>(offset + v[j]);
  }
  return x;
}

Eigen::MatrixXd covariance(const Eigen::MatrixXd& y, double den) {
  const Eigen::RowVectorXd m = y.colwise().mean();
  const Eigen::MatrixXd c = y.rowwise() - m;
  return c.transpose() * c / den;
}

template <typename T>
Eigen::MatrixXd transformed(const BertWhitening<T>& w, const RowMatrix<T>& x) {
  RowMatrix<T> out(x.rows(), w.components());
  w.transform(x, out);
  return out.template cast<double>();
}

Eigen::MatrixXd cosines(const Eigen::MatrixXd& y) {
  Eigen::MatrixXd u = y;
  for (Index r = 0; r < u.rows(); ++r) u.row(r) /= u.row(r).norm();
  return u * u.transpose();
}

}  // namespace

TEMPLATE_TEST_CASE("Whitened training set has mean 0 and covariance I_k", "[whitening]", float,
                   double) {
  auto rng = xfmr_test::make_rng(11);
  const Index d = 30, n = 700;
  const RowMatrix<TestType> x = anisotropic<TestType>(rng, n, d, 2.0);
  for (const Index k : {Index(7), Index(25), d}) {
    for (const auto norm : {CovarianceNormalization::Population, CovarianceNormalization::Sample}) {
      WhiteningConfig c;
      c.components = k;
      c.normalization = norm;
      c.epsilon = 0;  // exact identity (the data is full rank)
      BertWhitening<TestType> w(d, c);
      w.fit(x);
      const double den = norm == CovarianceNormalization::Sample ? double(n - 1) : double(n);
      const Eigen::MatrixXd y = transformed(w, x);
      INFO("k=" << k << " sample=" << (norm == CovarianceNormalization::Sample));
      // float: Gram and transform run in float; the spectrum spans κ = λ_max/λ_min ≈ 3e4 here,
      // and the smallest whitened directions carry ~eps_float·κ ≈ 2e-3 of relative error.
      const double tol = std::is_same_v<TestType, float> ? 2e-3 : 1e-9;
      CHECK(y.colwise().mean().cwiseAbs().maxCoeff() < tol);
      CHECK((covariance(y, den) - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() < tol);
      // W_kᵀ Σ W_k = I_k, with Σ from the reference.
      const auto ref = xfmr_ref::whitening(x, k, 1, 1, 0, norm == CovarianceNormalization::Sample);
      const Eigen::MatrixXd wk = w.whitening_matrix().template cast<double>();
      CHECK((wk.transpose() * ref.sigma * wk - Eigen::MatrixXd::Identity(k, k))
                .cwiseAbs()
                .maxCoeff() < 10 * tol);
      // Eigenvalues descending and equal to the reference's.
      const Eigen::VectorXd& lam = w.eigenvalues();
      for (Index i = 1; i < d; ++i) CHECK(lam[i] <= lam[i - 1]);
      CHECK(rel_err(lam, ref.eigenvalues) < (std::is_same_v<TestType, float> ? 1e-5 : 1e-11));
      CHECK(w.rank() == d);
      CHECK(w.count() == n);
    }
  }
}

TEMPLATE_TEST_CASE("BertWhitening matches the naive reference for beta, gamma, k", "[whitening]",
                   float, double) {
  auto rng = xfmr_test::make_rng(12);
  const Index d = 26, n = 200;
  const RowMatrix<TestType> x = anisotropic<TestType>(rng, n, d, -1.5);
  const RowMatrix<TestType> q = anisotropic<TestType>(rng, 9, d, -1.5);  // unseen vectors
  for (const double beta : {1.0, 0.5, 0.0})
    for (const double gamma : {1.0, 0.5, 0.0})
      for (const Index k : {Index(5), d}) {
        WhiteningConfig c;
        c.components = k;
        c.beta = beta;
        c.gamma = gamma;
        BertWhitening<TestType> w(d, c);
        w.fit(x);
        const auto ref = xfmr_ref::whitening(x, k, beta, gamma, 1e-6);
        // Inner products between whitened vectors do not depend on eigenvector signs.
        const Eigen::MatrixXd g = xfmr_ref::gram(transformed(w, q)),
                              gref = xfmr_ref::gram(xfmr_ref::apply(ref, q));
        INFO("beta=" << beta << " gamma=" << gamma << " k=" << k);
        CHECK(rel_err(g, gref) < (std::is_same_v<TestType, float> ? 2e-4 : 1e-9));
        CHECK(rel_err(w.mean(), xfmr_ref::moments(x).mean) < 1e-12);
      }
}

TEST_CASE("beta = gamma = 0 with k = D is a rotation: cosines and norms unchanged",
          "[whitening]") {
  auto rng = xfmr_test::make_rng(13);
  const Index d = 33;
  const RowMatrix<double> x = anisotropic<double>(rng, 150, d, 4.0);
  WhiteningConfig c;
  c.beta = 0;
  c.gamma = 0;
  BertWhitening<double> w(d, c);
  w.fit(x);
  const Eigen::MatrixXd y = transformed(w, x);
  CHECK(rel_err(cosines(y), cosines(x)) < 1e-12);
  CHECK(rel_err(y.rowwise().norm(), x.rowwise().norm()) < 1e-12);
  // And standard whitening does change them (the test above can fail).
  BertWhitening<double> full(d);
  full.fit(x);
  CHECK(rel_err(cosines(transformed(full, x)), cosines(x)) > 0.1);
}

TEST_CASE("Cosines do not depend on the eigenvector signs", "[whitening]") {
  auto rng = xfmr_test::make_rng(14);
  const Index d = 20, k = 12;
  const RowMatrix<double> x = anisotropic<double>(rng, 120, d, 1.0);
  WhiteningConfig c;
  c.components = k;
  BertWhitening<double> w(d, c);
  w.fit(x);
  const Eigen::MatrixXd y = transformed(w, x);
  std::uniform_int_distribution<int> coin(0, 1);
  Eigen::MatrixXd flipped = w.whitening_matrix();
  for (Index j = 0; j < k; ++j)
    if (coin(rng)) flipped.col(j) *= -1;
  Eigen::MatrixXd xc = x;
  xc.rowwise() -= w.mean().transpose();
  const Eigen::MatrixXd yf = xc * flipped;
  CHECK(rel_err(cosines(yf), cosines(y)) < 1e-12);
  // The library's own convention: the largest-magnitude entry of each column is positive.
  for (Index j = 0; j < k; ++j) {
    Index arg = 0;
    w.whitening_matrix().col(j).cwiseAbs().maxCoeff(&arg);
    CHECK(w.whitening_matrix()(arg, j) > 0);
  }
}

TEMPLATE_TEST_CASE("Streaming and merged fits equal the one-shot fit", "[whitening]", float,
                   double) {
  auto rng = xfmr_test::make_rng(15);
  const Index d = 27, n = 400, k = 10;
  const RowMatrix<TestType> x = anisotropic<TestType>(rng, n, d, 3.0);
  WhiteningConfig c;
  c.components = k;
  c.batch_rows = 50;
  BertWhitening<TestType> one(d, c);
  one.fit(x);
  const Eigen::MatrixXd g1 = xfmr_ref::gram(transformed(one, x));

  BertWhitening<TestType> stream(d, c);
  for (Index r0 = 0; r0 < n; r0 += 37) stream.partial_fit(x.middleRows(r0, std::min<Index>(37, n - r0)));
  stream.finalize();

  BertWhitening<TestType> a(d, c), b(d, c), m(d, c);
  a.partial_fit(x.bottomRows(n - 123));
  b.partial_fit(x.topRows(123));
  m.merge(a);
  m.merge(b);  // shards in the other order
  m.finalize();

  const double tol = std::is_same_v<TestType, float> ? 1e-4 : 1e-10;
  for (const auto* w : {&stream, &m}) {
    CHECK(w->count() == n);
    CHECK(rel_err(xfmr_ref::gram(transformed(*w, x)), g1) < tol);
    CHECK(rel_err(w->eigenvalues(), one.eigenvalues()) < tol);
  }
}

TEST_CASE("Float whitening with a 1e4 common offset still whitens", "[whitening][offset]") {
  auto rng = xfmr_test::make_rng(16);
  const Index d = 24, n = 3000, k = 12;
  const RowMatrix<float> x = anisotropic<float>(rng, n, d, 1e4);
  WhiteningConfig c;
  c.components = k;
  BertWhitening<float> w(d, c);
  w.fit(x);
  const Eigen::MatrixXd y = transformed(w, x);
  // Input resolution at 1e4 is 2^-10 ≈ 1e-3 against a spread of ~0.1..2: ~1e-3 relative.
  CHECK(y.colwise().mean().cwiseAbs().maxCoeff() < 1e-4);  // float(μ)'s rounding is corrected
  CHECK((covariance(y, double(n)) - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff() < 5e-3);
  const auto ref = xfmr_ref::whitening(x, k);
  CHECK(rel_err(xfmr_ref::gram(y), xfmr_ref::gram(xfmr_ref::apply(ref, x))) < 5e-3);
}

TEST_CASE("Float transform kernel matches a double product for odd shapes and strided views",
          "[whitening][transform]") {
  auto rng = xfmr_test::make_rng(17);
  for (const Index d : {3, 25, 50})
    for (const Index k : {1, 2, 23, 25}) {
      if (k > d) continue;
      const RowMatrix<float> x = anisotropic<float>(rng, 120, d, 0.5);
      WhiteningConfig c;
      c.components = k;
      BertWhitening<float> w(d, c);
      w.fit(x);
      for (const Index rows : {1, 3, 4, 5, 63, 64, 65, 130}) {
        const RowMatrix<float> big = xfmr_test::random_matrix<float>(rng, rows, d + 5);
        const auto xs = big.block(0, 2, rows, d);  // strided rows
        RowMatrix<float> outbig = RowMatrix<float>::Constant(rows, k + 4, -7.0f);
        w.transform(xs, outbig.block(0, 1, rows, k));
        Eigen::MatrixXd xc = xs.cast<double>();
        xc.rowwise() -= w.mean().transpose();
        const Eigen::MatrixXd expect = xc * w.whitening_matrix().cast<double>();
        INFO("d=" << d << " k=" << k << " rows=" << rows);
        CHECK(rel_err(outbig.block(0, 1, rows, k).cast<double>(), expect) < 1e-5);
        CHECK((outbig.leftCols(1).array() == -7.0f).all());  // nothing outside out is touched
        CHECK((outbig.rightCols(3).array() == -7.0f).all());
      }
    }
}

TEMPLATE_TEST_CASE("Single vectors, L2 normalisation and zero vectors", "[whitening][transform]",
                   float, double) {
  auto rng = xfmr_test::make_rng(18);
  const Index d = 16, k = 9;
  const RowMatrix<TestType> x = anisotropic<TestType>(rng, 100, d, 1.0);
  WhiteningConfig c;
  c.components = k;
  c.normalize = true;
  BertWhitening<TestType> w(d, c);
  w.fit(x);
  RowMatrix<TestType> all(100, k);
  w.transform(x, all);
  for (Index r = 0; r < 100; ++r)
    CHECK(std::abs(all.row(r).template cast<double>().norm() - 1.0) < 1e-5);
  xfmr::RowVector<TestType> v = x.row(17), out(k);
  w.transform(v, out);  // a vector is a 1 × D matrix
  CHECK(rel_err(out.template cast<double>(), all.row(17).template cast<double>()) < 1e-6);
  // x = μ whitens to 0 (exactly in double; in float fl(μ) ≠ μ leaves a tiny vector that is
  // normalised): the norm is clipped at 1e-8 instead of dividing by zero.
  xfmr::RowVector<TestType> mu = w.mean().transpose().template cast<TestType>();
  w.transform(mu, out);
  CHECK(out.allFinite());
  if constexpr (std::is_same_v<TestType, double>) CHECK(out.norm() == 0.0);
}

TEST_CASE("Rank-deficient data (N <= D): regularised by epsilon, or an error if strict",
          "[whitening]") {
  auto rng = xfmr_test::make_rng(19);
  const Index d = 40, n = 15;
  const RowMatrix<double> x = anisotropic<double>(rng, n, d, 1.0);
  WhiteningConfig c;
  c.components = 20;
  c.epsilon = 1e-10;  // leaves the real directions whitened to ~1e-7
  BertWhitening<double> w(d, c);
  w.fit(x);
  CHECK(w.rank() == n - 1);  // centred rank
  const Eigen::MatrixXd y = transformed(w, x);
  CHECK(y.allFinite());
  // The n−1 real directions are whitened; the rest are ~0 (data has no variance there).
  const Eigen::MatrixXd cov = covariance(y, double(n));
  CHECK((cov.topLeftCorner(n - 1, n - 1) - Eigen::MatrixXd::Identity(n - 1, n - 1))
            .cwiseAbs()
            .maxCoeff() < 1e-4);
  c.strict_rank = true;
  BertWhitening<double> strict(d, c);
  XFMR_REQUIRE_INVALID(strict.fit(x), "the covariance has rank 14 < components=20");
  c.components = 14;
  BertWhitening<double> ok(d, c);
  ok.fit(x);
  CHECK(ok.rank() == 14);
}

TEMPLATE_TEST_CASE("epsilon = 0 with fewer independent directions than components throws and "
                   "names the numerical rank",
                   "[whitening][errors]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(23);
  const Index d = 24, n = 11;  // centred rank n − 1 = 10
  const RowMatrix<T> x = anisotropic<T>(rng, n, d, 1.0);
  WhiteningConfig c;
  c.epsilon = 0;
  c.components = 12;
  BertWhitening<T> w(d, c);
  REQUIRE_THROWS_AS(w.fit(x), std::runtime_error);
  REQUIRE_THROWS_WITH(w.fit(x), Contains("numerical rank 10 < components=12"));
  CHECK(!w.fitted());
  // At the numerical rank it fits, and the whitening matrix is finite.
  c.components = 10;
  BertWhitening<T> ok(d, c);
  ok.fit(x);
  CHECK(ok.whitening_matrix().allFinite());
  CHECK(transformed(ok, x).allFinite());
  // A rotation (gamma = 0) divides by nothing: no error at any k.
  c.components = 20;
  c.gamma = 0;
  BertWhitening<T> rot(d, c);
  rot.fit(x);
  CHECK(rot.whitening_matrix().allFinite());
  // Exactly repeated rows: 3 distinct points, rank 2 (the old result was inf/NaN, silently).
  RowMatrix<T> rep(9, d);
  for (Index i = 0; i < 9; ++i) rep.row(i) = x.row(i % 3);
  c.gamma = 1;
  c.components = 3;
  BertWhitening<T> r2(d, c);
  REQUIRE_THROWS_WITH(r2.fit(rep), Contains("numerical rank 2 < components=3"));
}

TEST_CASE("BertWhitening reports misuse with a clear message", "[whitening][errors]") {
  WhiteningConfig c;
  c.components = 9;
  XFMR_REQUIRE_INVALID(BertWhitening<float>(8, c),
                       "xfmr::BertWhitening: components must be in [0, dim] (0 = all) (got "
                       "components=9, dim=8)");
  XFMR_REQUIRE_INVALID(BertWhitening<float>(0), "dim must be > 0 (got dim=0)");
  c = {};
  c.beta = std::numeric_limits<double>::quiet_NaN();
  XFMR_REQUIRE_INVALID(BertWhitening<double>(4, c), "beta and gamma must be finite");
  c = {};
  c.epsilon = -1;
  XFMR_REQUIRE_INVALID(BertWhitening<double>(4, c), "epsilon must be finite and >= 0 (got epsilon=-1)");
  c = {};
  c.batch_rows = 0;
  XFMR_REQUIRE_INVALID(BertWhitening<double>(4, c), "batch_rows must be > 0");

  BertWhitening<float> w(4);
  RowMatrix<float> x = RowMatrix<float>::Random(10, 4), out(10, 4);
  REQUIRE_THROWS_AS(w.transform(x, out), std::logic_error);
  REQUIRE_THROWS_WITH(w.transform(x, out),
                      "xfmr::BertWhitening: transform() needs a fitted whitener: call fit(), "
                      "finalize() or load() first");
  REQUIRE_THROWS_WITH(w.whitening_matrix(), Contains("whitening_matrix() needs a fitted"));
  std::ostringstream os;
  REQUIRE_THROWS_WITH(w.save(os), Contains("save() needs a fitted"));
  XFMR_REQUIRE_INVALID(w.finalize(), "fitting needs at least 2 rows (got 0)");
  XFMR_REQUIRE_INVALID(w.fit(x.topRows(1)), "fitting needs at least 2 rows (got 1)");
  RowMatrix<float> wide(10, 5);
  wide.setZero();
  XFMR_REQUIRE_INVALID(w.fit(wide), "x must have dim=4 columns (got 10x5)");
  RowMatrix<float> bad = x;
  bad(3, 1) = std::numeric_limits<float>::infinity();
  XFMR_REQUIRE_INVALID(w.fit(bad), "x must be finite");
  XFMR_REQUIRE_INVALID(w.fit(RowMatrix<float>::Constant(6, 4, 2.5f)),
                       "the covariance is zero (all rows equal)");

  w.fit(x);
  RowMatrix<float> small(9, 4);
  XFMR_REQUIRE_INVALID(w.transform(x, small), "out must be 10x4 (got 9x4)");
  XFMR_REQUIRE_INVALID(w.transform(wide, out), "x must have dim=4 columns (got 10x5)");
  XFMR_REQUIRE_INVALID(w.transform(x, x), "out must not overlap x");
  BertWhitening<float> other(5);
  XFMR_REQUIRE_INVALID(w.merge(other), "merge needs a whitener of the same dim=4 (got dim=5)");
  REQUIRE_THROWS_AS(w.merge(other), std::logic_error);
  // A constant column is fine with gamma = 0 (pure rotation of rank-deficient data).
  c = {};
  c.gamma = 0;
  BertWhitening<float> rot(4, c);
  rot.fit(RowMatrix<float>::Constant(6, 4, 2.5f));
  CHECK(rot.fitted());
}
