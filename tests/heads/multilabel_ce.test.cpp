// SPDX-License-Identifier: MIT
// Multilabel categorical cross-entropy: the pairwise/threshold reference, agreement of the
// dense, soft and sparse forms, finite-difference gradients, masking, extreme logits, the soft
// optimum, errors.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/heads/multilabel_ce.hpp>

#include "reference/multilabel_ce.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
using Vector = Eigen::VectorXd;

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Random 0/1 labels (some rows all-negative, some all-positive) and their index form.
struct Labels {
  RowMatrix<double> dense;
  xfmr::LabelIndexMatrix sparse;  // padded with -1
};

Labels random_labels(std::mt19937_64& rng, Index rows, Index classes) {
  Labels l{RowMatrix<double>::Zero(rows, classes), xfmr::LabelIndexMatrix::Constant(rows, classes + 1, -1)};
  std::uniform_real_distribution<double> u(0, 1);
  for (Index r = 0; r < rows; ++r) {
    const double p = r == 0 ? 0.0 : r == 1 ? 1.0 : 0.3;
    Index k = 0;
    for (Index c = 0; c < classes; ++c)
      if (u(rng) < p) l.dense(r, c) = 1, l.sparse(r, k++) = c;
  }
  return l;
}

std::vector<double> row_of(const RowMatrix<double>& m, Index r) {
  return std::vector<double>(m.row(r).data(), m.row(r).data() + m.cols());
}

}  // namespace

TEST_CASE("multilabel CE equals the pairwise/threshold form; dense, soft and sparse agree",
          "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng();
  for (const Index classes : {1, 2, 7, 33}) {
    const Index rows = 6;
    RowMatrix<double> s = xfmr_test::random_matrix<double>(rng, rows, classes, -8.0, 8.0);
    s(3, 0) = -kInf;  // masked
    const Labels labels = random_labels(rng, rows, classes);
    Vector dense(rows), soft(rows), sparse(rows);
    RowMatrix<double> g_dense(rows, classes), g_soft(rows, classes), g_sparse(rows, classes);
    xfmr::multilabel_ce<double>(s, labels.dense, dense, g_dense);
    xfmr::multilabel_ce_soft<double>(s, labels.dense, soft, g_soft);
    xfmr::multilabel_ce_sparse<double>(s, labels.sparse, sparse, g_sparse);
    for (Index r = 0; r < rows; ++r) {
      std::vector<int> y(static_cast<std::size_t>(classes));
      for (Index c = 0; c < classes; ++c) y[std::size_t(c)] = labels.dense(r, c) != 0;
      const double expected = double(xfmr_ref::zlpr_pairwise(row_of(s, r), y));
      CHECK(dense[r] == Approx(expected).epsilon(1e-13).margin(1e-15));
      CHECK(soft[r] == dense[r]);
      CHECK(sparse[r] == dense[r]);
    }
    CHECK(g_soft == g_dense);
    CHECK(g_sparse == g_dense);
    CHECK(g_dense(3, 0) == 0.0);  // masked: no gradient
  }
}

TEST_CASE("multilabel CE gradient matches finite differences; positives pushed up",
          "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng(1);
  const Index rows = 5, classes = 11;
  RowMatrix<double> s = xfmr_test::random_matrix<double>(rng, rows, classes, -3.0, 3.0);
  RowMatrix<double> y = xfmr_test::random_matrix<double>(rng, rows, classes, 0.0, 1.0);
  y(0, 0) = 0, y(0, 1) = 1;  // hard labels in a soft matrix
  Vector loss(rows), lp(rows), lm(rows);
  RowMatrix<double> g(rows, classes);
  xfmr::multilabel_ce_soft<double>(s, y, loss, g);
  const double h = 1e-6;
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < classes; ++c) {
      RowMatrix<double> sp = s, sm = s;
      sp(r, c) += h, sm(r, c) -= h;
      xfmr::multilabel_ce_soft<double>(sp, y, lp);
      xfmr::multilabel_ce_soft<double>(sm, y, lm);
      CHECK(g(r, c) == Approx((lp[r] - lm[r]) / (2 * h)).epsilon(1e-6).margin(1e-8));
    }
  // Hard labels: the gradient of a positive is negative (descent raises it), of a negative > 0.
  CHECK(g(0, 1) < 0);
  CHECK(g(0, 0) > 0);
}

TEST_CASE("multilabel CE float matches double", "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng(2);
  const Index rows = 4, classes = 40;
  const RowMatrix<double> s = xfmr_test::random_matrix<double>(rng, rows, classes, -10.0, 10.0);
  const Labels labels = random_labels(rng, rows, classes);
  Vector ld(rows);
  Eigen::VectorXf lf(rows);
  RowMatrix<double> gd(rows, classes);
  RowMatrix<float> gf(rows, classes);
  xfmr::multilabel_ce<double>(s, labels.dense, ld, gd);
  xfmr::multilabel_ce<float>(s.cast<float>(), labels.dense.cast<float>(), lf, gf);
  for (Index r = 0; r < rows; ++r) CHECK(lf[r] == Approx(ld[r]).epsilon(1e-5).margin(1e-6));
  CHECK((gf.cast<double>() - gd).cwiseAbs().maxCoeff() < 1e-6);
}

TEST_CASE("multilabel CE is stable at logits of ±1e4 and with empty positive sets",
          "[multilabel_ce]") {
  RowMatrix<double> s(3, 4);
  s << 1e4, 1e4, -1e4, -1e4,   // positives high, negatives low: loss ≈ 0
      1e4, 1e4, 1e4, -1e4,     // one negative at 1e4: loss ≈ 1e4 + log(1)
      -1e4, -2.0, 0.5, -1e4;   // no positives: log(1 + e^-2 + e^0.5)
  RowMatrix<double> y(3, 4);
  y << 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0;
  Vector loss(3);
  RowMatrix<double> g(3, 4);
  xfmr::multilabel_ce<double>(s, y, loss, g);
  CHECK(loss[0] == Approx(0.0).margin(1e-300));
  CHECK(loss[1] == Approx(1e4).epsilon(1e-15));
  CHECK(loss[2] == Approx(std::log(1 + std::exp(-2.0) + std::exp(0.5))).epsilon(1e-15));
  CHECK(g.allFinite());
  CHECK(g(1, 2) == Approx(1.0));
  RowMatrix<float> sf = s.cast<float>();
  Eigen::VectorXf lf(3);
  xfmr::multilabel_ce<float>(sf, y.cast<float>(), lf);
  CHECK(lf.allFinite());
  CHECK(lf[1] == Approx(1e4f));
}

TEST_CASE("multilabel CE: masked (-inf) classes contribute nothing; +inf negatives give +inf",
          "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng(3);
  const RowMatrix<double> s = xfmr_test::random_matrix<double>(rng, 2, 6, -2.0, 2.0);
  RowMatrix<double> y(2, 6);
  y << 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1;
  RowMatrix<double> masked(2, 8), ym(2, 8);
  masked << s.row(0), -kInf, -kInf, s.row(1), -kInf, -kInf;
  ym << y.row(0), 1, 0, y.row(1), 0, 1;  // labels on masked classes are ignored too
  Vector l(2), lm(2);
  RowMatrix<double> gm(2, 8);
  xfmr::multilabel_ce<double>(s, y, l);
  xfmr::multilabel_ce<double>(masked, ym, lm, gm);
  CHECK(lm[0] == l[0]);
  CHECK(lm[1] == l[1]);
  CHECK(gm.rightCols(2).isZero(0));

  RowMatrix<double> inf(1, 3);
  inf << kInf, 0.5, kInf;
  RowMatrix<double> yi(1, 3);
  yi << 0, 1, 0;
  Vector li(1);
  RowMatrix<double> gi(1, 3);
  xfmr::multilabel_ce<double>(inf, yi, li, gi);
  CHECK(li[0] == kInf);
  CHECK(gi(0, 0) == 0.5);
  CHECK(gi(0, 2) == 0.5);
}

TEST_CASE("soft multilabel CE: optimum at s = logit(y)/2, near-0/1 labels snap, reference",
          "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng(4);
  const Index classes = 9;
  RowMatrix<double> y = xfmr_test::random_matrix<double>(rng, 1, classes, 0.05, 0.95);
  RowMatrix<double> s(1, classes);
  for (Index c = 0; c < classes; ++c) s(0, c) = 0.5 * std::log(y(0, c) / (1 - y(0, c)));
  Vector loss(1);
  RowMatrix<double> g(1, classes);
  xfmr::multilabel_ce_soft<double>(s, y, loss, g);
  CHECK(g.cwiseAbs().maxCoeff() < 1e-14);
  CHECK(loss[0] == Approx(double(xfmr_ref::zlpr_soft(row_of(s, 0), row_of(y, 0)))).epsilon(1e-14));
  // Moving away from the optimum increases the loss.
  RowMatrix<double> s2 = s;
  s2(0, 3) += 0.1;
  Vector loss2(1);
  xfmr::multilabel_ce_soft<double>(s2, y, loss2);
  CHECK(loss2[0] > loss[0]);

  // A label of 1e-9 on a logit masked with a finite -1e7 counts as 0 (bert4keras' epsilon).
  RowMatrix<double> sm(1, 2), ys(1, 2), yh(1, 2);
  sm << -1e7, 1.0;
  ys << 1e-9, 1 - 1e-9;
  yh << 0, 1;
  Vector a(1), b(1);
  xfmr::multilabel_ce_soft<double>(sm, ys, a);
  xfmr::multilabel_ce<double>(sm, yh, b);
  CHECK(a[0] == b[0]);
}

TEST_CASE("multilabel CE works on strided views", "[multilabel_ce]") {
  auto rng = xfmr_test::make_rng(5);
  const RowMatrix<double> big = xfmr_test::random_matrix<double>(rng, 7, 13, -4.0, 4.0);
  const Labels labels = random_labels(rng, 3, 5);
  Vector l1(3), l2(3);
  RowMatrix<double> gbig = RowMatrix<double>::Constant(7, 13, 99.0);
  xfmr::multilabel_ce<double>(big.block(2, 3, 3, 5), labels.dense, l1, gbig.block(2, 3, 3, 5));
  const RowMatrix<double> compact = big.block(2, 3, 3, 5);
  RowMatrix<double> g(3, 5);
  xfmr::multilabel_ce<double>(compact, labels.dense, l2, g);
  CHECK(l1 == l2);
  CHECK(RowMatrix<double>(gbig.block(2, 3, 3, 5)) == g);
  gbig.block(2, 3, 3, 5).setConstant(99.0);
  CHECK((gbig.array() == 99.0).all());  // nothing outside the view was written
}

TEST_CASE("multilabel CE rejects bad input with clear messages", "[multilabel_ce][errors]") {
  RowMatrix<double> s = RowMatrix<double>::Zero(2, 3), y = RowMatrix<double>::Zero(2, 3);
  Vector loss(2), short_loss(1);
  RowMatrix<double> g(2, 3), bad_g(3, 2);
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, y, short_loss),
                       "loss must have one entry per row of logits (2) (got 1)");
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, RowMatrix<double>::Zero(2, 4), loss),
                       "labels must have as many columns as logits (3) (got 4)");
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, RowMatrix<double>::Zero(3, 3), loss),
                       "labels must have as many rows as logits (2) (got 3)");
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, y, loss, bad_g),
                       "grad must be the shape of logits (2x3) (got 3x2)");
  y(1, 2) = 0.5;
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, y, loss),
                       "dense labels must be 0 or 1 (got 0.5 at row 1, column 2)");
  y(1, 2) = 1.5;
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce_soft<double>(s, y, loss),
                       "soft labels must be in [0, 1] (got 1.5 at row 1, column 2)");
  y(1, 2) = 0;
  s(0, 1) = std::nan("");
  loss.setConstant(7.0);
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce<double>(s, y, loss),
                       "logits must not be NaN (got NaN at row 0, column 1)");
  CHECK((loss.array() == 7.0).all());  // nothing written on error
  s(0, 1) = 0;
  xfmr::LabelIndexMatrix idx(2, 2);
  idx << 0, 3, -1, -1;
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce_sparse<double>(s, idx, loss),
                       "positive indices must be in [0, 3) or -1 for padding (got 3 at row 0, entry 1)");
  idx << 2, 2, -1, -1;
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce_sparse<double>(s, idx, loss),
                       "positive indices of a row must be distinct (got 2 twice in row 0)");
  XFMR_REQUIRE_INVALID(xfmr::multilabel_ce_sparse<double>(s, xfmr::LabelIndexMatrix(1, 1), loss),
                       "labels must have as many rows as logits (2) (got 1)");
}
