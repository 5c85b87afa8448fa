// SPDX-License-Identifier: MIT
// cls_pool, mean_pool, l2_normalize against long-double sums; strided views, empty sequences,
// padded rows never read, large values, errors.
#include <cmath>
#include <limits>

#include <catch2/catch.hpp>

#include <xfmr/models/pooling.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

using namespace xfmr;

TEMPLATE_TEST_CASE("pooling: CLS, masked mean and L2 against long double", "[models][pooling]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(21);
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  for (const Index n : {1, 7, 33}) {
    const Index batch = 5, H = 19;
    // hidden is a column block of a wider matrix (strided rows); padded rows hold NaN.
    RowMatrix<T> wide = xfmr_test::random_matrix<T>(rng, batch * n, H + 6, -3, 3);
    LengthVector lengths(batch);
    for (Index b = 0; b < batch; ++b) lengths[b] = b == 1 ? 0 : Index(rng() % std::uint64_t(n + 1));
    lengths[batch - 1] = n;
    for (Index b = 0; b < batch; ++b)
      for (Index t = lengths[b]; t < n; ++t)
        wide.row(b * n + t).setConstant(std::numeric_limits<T>::quiet_NaN());
    const auto hidden = wide.middleCols(2, H);
    RowMatrix<T> mean(batch, H), cls(batch, H);
    mean_pool<T>(hidden, n, lengths, mean);
    cls_pool<T>(hidden, n, cls);
    RowMatrix<T> l2 = mean;
    l2_normalize<T>(l2);
    for (Index b = 0; b < batch; ++b) {
      long double norm2 = 0;
      std::vector<long double> m(static_cast<std::size_t>(H), 0);
      for (Index c = 0; c < H; ++c) {
        for (Index t = 0; t < lengths[b]; ++t) m[std::size_t(c)] += hidden(b * n + t, c);
        m[std::size_t(c)] /= std::max<long double>(lengths[b], 1e-9L);
        norm2 += m[std::size_t(c)] * m[std::size_t(c)];
      }
      const long double norm = std::max(std::sqrt(norm2), 1e-12L);
      for (Index c = 0; c < H; ++c) {
        CHECK(std::fabs(mean(b, c) - m[std::size_t(c)]) <= tol * 3);
        CHECK(std::fabs(l2(b, c) - m[std::size_t(c)] / norm) <= tol);
        if (lengths[b] > 0) CHECK(cls(b, c) == hidden(b * n, c));
      }
      if (lengths[b] == 0) {
        CHECK(mean.row(b).isZero(0));
        CHECK(l2.row(b).isZero(0));
      } else {
        CHECK(std::fabs(l2.row(b).norm() - T(1)) <= tol * 10);
      }
    }
  }
}

TEST_CASE("pooling: l2_normalize neither overflows nor underflows in the squares",
          "[models][pooling]") {
  RowMatrix<float> x(3, 4);
  x << 3e30f, 4e30f, 0, 0,   //
      3e-30f, 4e-30f, 0, 0,  //
      0, 0, 0, 0;
  l2_normalize<float>(x);
  CHECK(x(0, 0) == Approx(0.6f));
  CHECK(x(0, 1) == Approx(0.8f));
  // sqrt(2.5e-59) = 5e-30 < 1e-12: torch's F.normalize divides by max(‖x‖, 1e-12).
  CHECK(x(1, 0) == Approx(3e-18f));
  CHECK(x.row(2).isZero(0));
}

TEST_CASE("pooling: shape and length errors", "[models][pooling][errors]") {
  RowMatrix<float> hidden = RowMatrix<float>::Zero(6, 4), out(2, 4);
  LengthVector lengths(2);
  lengths << 3, 1;
  REQUIRE_NOTHROW(mean_pool<float>(hidden, 3, lengths, out));
  XFMR_REQUIRE_INVALID(mean_pool<float>(hidden, 4, lengths, out),
                       "xfmr::mean_pool: expected hidden to have batch*n rows for n=4 (got 6x4)");
  lengths << 4, 1;
  XFMR_REQUIRE_INVALID(mean_pool<float>(hidden, 3, lengths, out),
                       "expected lengths in [0, n=3] (got 4 at sequence 0)");
  LengthVector three(3);
  three << 1, 1, 1;
  XFMR_REQUIRE_INVALID(mean_pool<float>(hidden, 3, three, out),
                       "expected one length per sequence: batch=2 lengths (got 3)");
  RowMatrix<float> small(3, 4);
  XFMR_REQUIRE_INVALID(cls_pool<float>(hidden, 3, small),
                       "xfmr::cls_pool: expected out to be 2x4 (got 3x4)");
  XFMR_REQUIRE_INVALID(cls_pool<float>(hidden, 0, out),
                       "expected hidden to have batch*n rows, n >= 1 (got 6x4, n=0)");
}
