// SPDX-License-Identifier: MIT
// Tests for RopeND / Rope2D (SPEC §2): reference values, 2D relativity and invertibility,
// reduction to 1D RoPE, grid helper, inverse, aliasing, cache independence, errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/position/rope.hpp>
#include <xfmr/position/rope_nd.hpp>

#include "reference/rope_nd.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::CoordinateMatrix;
using xfmr::GridAxes;
using xfmr::Index;
using xfmr::RopeLayout;
using xfmr::RowMatrix;
using Coords = std::vector<std::vector<long double>>;

template <typename T>
constexpr double eps = std::numeric_limits<T>::epsilon();

xfmr::RopeNDConfig nd_config(Index head_dim, Index axes, RopeLayout layout,
                             Index cached = 1024) {
  xfmr::RopeNDConfig c;
  c.head_dim = head_dim;
  c.axes = axes;
  c.layout = layout;
  c.cached_positions = cached;
  return c;
}

CoordinateMatrix to_matrix(const Coords& coords) {
  CoordinateMatrix m(static_cast<Index>(coords.size()), static_cast<Index>(coords[0].size()));
  for (Index t = 0; t < m.rows(); ++t)
    for (Index a = 0; a < m.cols(); ++a) m(t, a) = static_cast<std::int64_t>(coords[t][a]);
  return m;
}

/// Token t of a rows × cols grid at (t / cols, t % cols), or (t % cols, t / cols) if swapped.
Coords grid_coords(Index rows, Index cols, bool column_first) {
  Coords c;
  for (Index t = 0; t < rows * cols; ++t) {
    const long double r = static_cast<long double>(t / cols);
    const long double k = static_cast<long double>(t % cols);
    c.push_back(column_first ? std::vector<long double>{k, r} : std::vector<long double>{r, k});
  }
  return c;
}

/// Random coordinates in [0, 3000) on each axis (the cache holds 1024), plus a few far ones.
Coords random_coords(std::mt19937_64& rng, Index tokens, Index axes) {
  std::uniform_int_distribution<long> u(0, 2999);
  const long far[] = {100000, 1000000, 123457};
  Coords c(static_cast<std::size_t>(tokens));
  for (Index t = 0; t < tokens; ++t)
    for (Index a = 0; a < axes; ++a)
      c[t].push_back(t % 11 == 3 ? far[(t + a) % 3] : static_cast<long double>(u(rng)));
  return c;
}

long double max_coord(const Coords& c) {
  long double m = 0;
  for (const auto& row : c)
    for (long double v : row) m = std::max(m, std::fabs(v));
  return m;
}

/// Inputs in [−1, 1]: each output is x_i·c − x_j·s, so T's rounding of c, s and of the kernel's
/// two products costs a few ε_T; the double angle p·θ_r is off by ~4·2^−53·p.
template <typename T>
double rope_tol(long double pmax) {
  return 8 * eps<T> + 16 * (1 + static_cast<double>(pmax)) * std::ldexp(1.0, -53);
}

template <typename T>
double max_abs_diff(const RowMatrix<T>& got, const xfmr_ref::Mat& want) {
  double m = 0;
  for (Index i = 0; i < got.rows(); ++i)
    for (Index j = 0; j < got.cols(); ++j)
      m = std::max(m, static_cast<double>(std::fabs(static_cast<long double>(got(i, j)) -
                                                    want(i, j))));
  return m;
}

/// Per-head logits <q_h, k_h> of one-token rows, in long double.
template <typename T>
std::vector<long double> head_dots(const RowMatrix<T>& q, const RowMatrix<T>& k, Index d) {
  std::vector<long double> out;
  for (Index h = 0; h < q.cols() / d; ++h) {
    long double s = 0;
    for (Index i = 0; i < d; ++i)
      s += static_cast<long double>(q(0, h * d + i)) * static_cast<long double>(k(0, h * d + i));
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("RopeND matches the naive reference for 2 and 3 axes in both layouts",
                   "[rope][rope_nd]", float, double) {
  using T = TestType;
  const Index axes = GENERATE(2, 3);
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index block = GENERATE(2, 6, 8, 16, 18);  // below, at and around the lane counts
  const Index d = axes * block, heads = 3, tokens = 35;
  CAPTURE(axes, static_cast<int>(layout), block);
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(100 * axes + block));
  const xfmr::RopeND<T> rope(nd_config(d, axes, layout));
  const bool inter = layout == RopeLayout::Interleaved;

  SECTION("explicit coordinates, in place, including coordinates past the cache") {
    const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
    const Coords coords = random_coords(rng, tokens, axes);
    RowMatrix<T> y = x;
    rope.apply_at(y, to_matrix(coords));
    const auto want = xfmr_ref::rope_nd(x, d, axes, inter, coords);
    CHECK(max_abs_diff(y, want) <= rope_tol<T>(max_coord(coords)));
  }
  SECTION("strided rows: a block of a wider matrix, the rest untouched") {
    RowMatrix<T> big = xfmr_test::random_matrix<T>(rng, tokens, heads * d + 5);
    const RowMatrix<T> before = big;
    const RowMatrix<T> x = big.middleCols(2, heads * d);
    const Coords coords = random_coords(rng, tokens, axes);
    rope.apply_at(big.middleCols(2, heads * d), to_matrix(coords));
    const RowMatrix<T> y = big.middleCols(2, heads * d);
    CHECK(max_abs_diff(y, xfmr_ref::rope_nd(x, d, axes, inter, coords)) <=
          rope_tol<T>(max_coord(coords)));
    CHECK(big.leftCols(2) == before.leftCols(2));
    CHECK(big.rightCols(3) == before.rightCols(3));
  }
  if (axes == 2) {
    SECTION("a 5 x 7 grid, row first and column first") {
      const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
      for (const bool column_first : {false, true}) {
        RowMatrix<T> y = x;
        rope.apply_grid(y, 5, 7, column_first ? GridAxes::ColumnFirst : GridAxes::RowFirst);
        const auto want = xfmr_ref::rope_nd(x, d, 2, inter, grid_coords(5, 7, column_first));
        CHECK(max_abs_diff(y, want) <= rope_tol<T>(7));
        // A transposed axis assignment must not pass.
        const auto wrong = xfmr_ref::rope_nd(x, d, 2, inter, grid_coords(5, 7, !column_first));
        CHECK(max_abs_diff(y, wrong) > 1e-2);
      }
    }
  }
}

TEMPLATE_TEST_CASE("RopeND 2D logits are relative on each axis separately", "[rope][rope_nd]",
                   float, double) {
  using T = TestType;
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = GENERATE(8, 20, 64), heads = 3;
  CAPTURE(static_cast<int>(layout), d);
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(d));
  const xfmr::RopeND<T> rope(nd_config(d, 2, layout));
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, 1, heads * d);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, 1, heads * d);
  const auto logits = [&](std::int64_t x1, std::int64_t y1, std::int64_t x2, std::int64_t y2) {
    RowMatrix<T> rq(1, heads * d), rk(1, heads * d);
    rope.apply_at(q, rq, CoordinateMatrix{{x1, y1}});
    rope.apply_at(k, rk, CoordinateMatrix{{x2, y2}});
    return head_dots(rq, rk, d);
  };
  // Rounding of the rotated inputs and of d products: a few ε_T per term, scaled by |q||k|;
  // plus the double angle error ~2^−53·p at coordinates up to 1520 (rope_tol).
  const double tol = (4.0 * static_cast<double>(d) * eps<T> + rope_tol<double>(1520)) *
                     static_cast<double>(q.norm() * k.norm());

  const std::int64_t cases[][5] = {// x1, y1, x2, y2, c
                                   {0, 0, 3, 5, 7},     {4, 9, 1, 2, 100},
                                   {13, 2, 13, 2, 11},  {250, 7, 40, 900, 33},
                                   {1000, 1020, 6, 1, 500}};
  for (const auto& cs : cases) {
    const std::int64_t x1 = cs[0], y1 = cs[1], x2 = cs[2], y2 = cs[3], c = cs[4];
    CAPTURE(x1, y1, x2, y2, c);
    const auto base = logits(x1, y1, x2, y2);
    const auto shift_x = logits(x1 + c, y1, x2 + c, y2);
    const auto shift_y = logits(x1, y1 + c, x2, y2 + c);
    // q^T R_{Δx,Δy} k with the reference rotation (Δ may be negative).
    for (Index h = 0; h < heads; ++h) {
      const auto rk = xfmr_ref::rotate_nd(k.data() + h * d, d, 2,
                                          layout == RopeLayout::Interleaved,
                                          {static_cast<long double>(x2 - x1),
                                           static_cast<long double>(y2 - y1)});
      long double rel = 0;
      for (Index i = 0; i < d; ++i) rel += static_cast<long double>(q(0, h * d + i)) * rk[i];
      CHECK(std::fabs(static_cast<double>(shift_x[h] - base[h])) <= tol);
      CHECK(std::fabs(static_cast<double>(shift_y[h] - base[h])) <= tol);
      CHECK(std::fabs(static_cast<double>(rel - base[h])) <= tol);
    }
  }
  // Both axes matter: moving only the key's x (or only its y) changes the logit.
  const auto base = logits(2, 3, 5, 8);
  const auto moved_x = logits(2, 3, 6, 8), moved_y = logits(2, 3, 5, 9);
  for (Index h = 0; h < heads; ++h) {
    CHECK(std::fabs(static_cast<double>(moved_x[h] - base[h])) > 1e-4);
    CHECK(std::fabs(static_cast<double>(moved_y[h] - base[h])) > 1e-4);
  }
}

TEMPLATE_TEST_CASE("RopeND 2D is invertible: distinct grid coordinates give distinct rotations",
                   "[rope][rope_nd]", float, double) {
  using T = TestType;
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = 16, side = 12;
  const xfmr::RopeND<T> rope(nd_config(d, 2, layout));
  // R_{x,y} as a matrix: rotate the d basis vectors (row i = R e_i), all at (x, y).
  std::vector<RowMatrix<T>> mats;
  for (Index x = 0; x < side; ++x)
    for (Index y = 0; y < side; ++y) {
      RowMatrix<T> r = RowMatrix<T>::Identity(d, d);
      CoordinateMatrix c(d, 2);
      c.col(0).setConstant(x);
      c.col(1).setConstant(y);
      rope.apply_at(r, c);
      // Orthogonal: R^T R = I.
      CHECK(((r * r.transpose()) - RowMatrix<T>::Identity(d, d)).cwiseAbs().maxCoeff() <=
            16 * eps<T>);
      mats.push_back(r);
    }
  double closest = 1e9;
  for (std::size_t i = 0; i < mats.size(); ++i)
    for (std::size_t j = i + 1; j < mats.size(); ++j)
      closest = std::min(closest, static_cast<double>((mats[i] - mats[j]).cwiseAbs().maxCoeff()));
  CHECK(closest > 1e-2);
}

TEMPLATE_TEST_CASE("RopeND reduces to 1D Rope on one block when the other coordinates are 0",
                   "[rope][rope_nd]", float, double) {
  using T = TestType;
  const Index axes = GENERATE(2, 3);
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  // 5 heads: Rope's multi-head kernel groups 4 short heads at a time, RopeND does not.
  const Index m = GENERATE(6, 16), d = axes * m, heads = 5, tokens = 6;
  CAPTURE(axes, static_cast<int>(layout), m);
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(axes * 1000 + m));
  const xfmr::RopeND<T> nd(nd_config(d, axes, layout));
  xfmr::RopeConfig c1;
  c1.head_dim = m;
  c1.layout = layout;
  const xfmr::Rope<T> rope1(c1);
  const xfmr::PositionVector pos = (xfmr::PositionVector(tokens) << 0, 1, 77, 1500, 4000, 1000000)
                                       .finished();
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
  for (Index a = 0; a < axes; ++a) {
    CAPTURE(a);
    CoordinateMatrix coords = CoordinateMatrix::Zero(tokens, axes);
    coords.col(a) = pos;
    RowMatrix<T> y = x;
    nd.apply_at(y, coords);
    for (Index h = 0; h < heads; ++h)
      for (Index b = 0; b < axes; ++b) {
        const Index col = h * d + b * m;
        RowMatrix<T> want = x.middleCols(col, m);
        if (b == a) rope1.apply_at(want, pos);  // documented: bit for bit
        CHECK(RowMatrix<T>(y.middleCols(col, m)) == want);
      }
  }
}

TEMPLATE_TEST_CASE("RopeND apply_grid equals apply_at with the explicit coordinates",
                   "[rope][rope_nd]", float, double) {
  using T = TestType;
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = 12, heads = 3, rows = 5, cols = 7;
  auto rng = xfmr_test::make_rng(7);
  const xfmr::RopeND<T> rope(nd_config(d, 2, layout));
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, rows * cols, heads * d);
  CoordinateMatrix row_first(rows * cols, 2), column_first(rows * cols, 2);
  for (Index t = 0; t < rows * cols; ++t) {
    row_first.row(t) << t / cols, t % cols;
    column_first.row(t) << t % cols, t / cols;
  }
  RowMatrix<T> want_r(x.rows(), x.cols()), want_c(x.rows(), x.cols());
  rope.apply_at(x, want_r, row_first);
  rope.apply_at(x, want_c, column_first);

  RowMatrix<T> y = x;
  rope.apply_grid(y, rows, cols);  // RowFirst is the default
  CHECK(y == want_r);
  y = x;
  rope.apply_grid(y, rows, cols, GridAxes::ColumnFirst);
  CHECK(y == want_c);
  CHECK(y != want_r);
  RowMatrix<T> out(x.rows(), x.cols());
  rope.apply_grid(x, out, rows, cols, GridAxes::RowFirst);
  CHECK(out == want_r);
  // The grid shape matters: RowFirst on the 7 × 5 grid is not ColumnFirst on the 5 × 7 grid.
  RowMatrix<T> transposed(x.rows(), x.cols());
  rope.apply_grid(x, transposed, cols, rows, GridAxes::RowFirst);
  CHECK(transposed != want_c);

  RowMatrix<T> back = want_c;
  rope.apply_inverse_grid(back, rows, cols, GridAxes::ColumnFirst);
  CHECK((back - x).cwiseAbs().maxCoeff() <= 8 * eps<T>);
  rope.apply_inverse_grid(want_r, out, rows, cols);
  CHECK((out - x).cwiseAbs().maxCoeff() <= 8 * eps<T>);
}

TEMPLATE_TEST_CASE("RopeND inverse undoes apply and equals rotation by -p", "[rope][rope_nd]",
                   float, double) {
  using T = TestType;
  const Index axes = GENERATE(1, 2, 3);
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = axes * 10, heads = 3, tokens = 13;
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(axes));
  const xfmr::RopeND<T> rope(nd_config(d, axes, layout));
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
  const Coords coords = random_coords(rng, tokens, axes);
  const CoordinateMatrix cm = to_matrix(coords);

  RowMatrix<T> y(tokens, heads * d), back(tokens, heads * d);
  rope.apply_at(x, y, cm);
  rope.apply_inverse_at(y, back, cm);
  CHECK((back - x).cwiseAbs().maxCoeff() <= 8 * eps<T>);

  RowMatrix<T> inv = x;
  rope.apply_inverse_at(inv, cm);
  const auto want = xfmr_ref::rope_nd(x, d, axes, layout == RopeLayout::Interleaved, coords,
                                      10000, -1);
  CHECK(max_abs_diff(inv, want) <= rope_tol<T>(max_coord(coords)));
}

TEMPLATE_TEST_CASE("RopeND in place equals out of place", "[rope][rope_nd]", float, double) {
  using T = TestType;
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = 18, heads = 3, tokens = 10;  // axes = 3, blocks of 6
  auto rng = xfmr_test::make_rng(11);
  const xfmr::RopeND<T> rope(nd_config(d, 3, layout));
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
  const CoordinateMatrix cm = to_matrix(random_coords(rng, tokens, 3));

  RowMatrix<T> out(tokens, heads * d), in_place = x, aliased = x;
  rope.apply_at(x, out, cm);
  rope.apply_at(in_place, cm);
  rope.apply_at(aliased, aliased, cm);  // the out-of-place overload with out == x
  CHECK(out == in_place);
  CHECK(out == aliased);

  rope.apply_inverse_at(out, in_place, cm);
  rope.apply_inverse_at(aliased, cm);
  CHECK(in_place == aliased);
}

TEMPLATE_TEST_CASE("RopeND out of place past kRopeStreamMinBytes (streaming stores) equals in "
                   "place",
                   "[rope][rope_nd]", float, double) {
  using T = TestType;
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  // d = 128: blocks of 64 channels, whole lines (streamable); d = 36: never streamable.
  const Index d = GENERATE(Index(128), Index(36)), heads = 8, cols = heads * d;
  const auto bytes = static_cast<Index>(xfmr::detail::kRopeStreamMinBytes);
  const Index side = 64, tokens = (bytes / static_cast<Index>(sizeof(T) * cols) / side + 1) * side;
  auto rng = xfmr_test::make_rng(12);
  const xfmr::RopeND<T> rope(nd_config(d, 2, layout));
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, cols);
  RowMatrix<T> out = RowMatrix<T>::Constant(tokens, cols, T(-7)), in_place = x;
  rope.apply_grid(x, out, tokens / side, side);
  rope.apply_grid(in_place, tokens / side, side);
  CHECK(out == in_place);
  rope.apply_inverse_grid(in_place, out, tokens / side, side);
  rope.apply_inverse_grid(in_place, tokens / side, side);
  CHECK(out == in_place);
}

TEMPLATE_TEST_CASE("RopeND results do not depend on cached_positions", "[rope][rope_nd]", float,
                   double) {
  using T = TestType;
  const Index axes = GENERATE(2, 3);
  const RopeLayout layout = GENERATE(RopeLayout::Interleaved, RopeLayout::HalfSplit);
  const Index d = axes * 8, heads = 3, tokens = 23;
  auto rng = xfmr_test::make_rng(static_cast<std::uint64_t>(axes + 40));
  const xfmr::RopeND<T> uncached(nd_config(d, axes, layout, 0));
  const xfmr::RopeND<T> cached(nd_config(d, axes, layout, 1024));
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, heads * d);
  std::uniform_int_distribution<std::int64_t> u(0, 1023);
  CoordinateMatrix cm(tokens, axes);
  for (Index i = 0; i < cm.size(); ++i) cm.data()[i] = u(rng);
  cm(0, 0) = 1023;
  cm(1, axes - 1) = 1024;  // first coordinate past the larger cache

  RowMatrix<T> a(tokens, heads * d), b(tokens, heads * d);
  uncached.apply_at(x, a, cm);
  cached.apply_at(x, b, cm);
  CHECK(a == b);
  uncached.apply_inverse_at(x, a, cm);
  cached.apply_inverse_at(x, b, cm);
  CHECK(a == b);
}

TEMPLATE_TEST_CASE("Rope2D is RopeND with two axes", "[rope][rope_nd]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(5);
  const xfmr::Rope2D<T> r2(20);
  const xfmr::RopeND<T> nd(nd_config(20, 2, RopeLayout::Interleaved));
  CHECK(r2.config().axes == 2);
  CHECK(r2.block_dim() == 10);
  CHECK(r2.inv_freq() == nd.inv_freq());
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 12, 60);
  RowMatrix<T> a(12, 60), b(12, 60);
  r2.apply_grid(x, a, 3, 4);
  nd.apply_grid(x, b, 3, 4);
  CHECK(a == b);
}

TEMPLATE_TEST_CASE("RopeND rejects bad arguments with a message", "[rope][rope_nd][errors]",
                   float, double) {
  using T = TestType;
  using R = xfmr::RopeND<T>;
  const auto I = RopeLayout::Interleaved;

  SECTION("configuration") {
    XFMR_REQUIRE_INVALID(R(nd_config(10, 2, I)),
                         "xfmr::RopeND: head_dim must split into 2 even blocks (got "
                         "head_dim=10, axes=2)");
    XFMR_REQUIRE_INVALID(R(nd_config(12, 5, I)),
                         "head_dim must split into 5 even blocks (got head_dim=12, axes=5)");
    XFMR_REQUIRE_INVALID(R(nd_config(0, 2, I)), "head_dim must split into 2 even blocks");
    XFMR_REQUIRE_INVALID(R(nd_config(-8, 2, I)), "head_dim must split into 2 even blocks");
    XFMR_REQUIRE_INVALID(R(nd_config(8, 0, I)), "xfmr::RopeND: axes must be >= 1 (got axes=0)");
    XFMR_REQUIRE_INVALID(R(nd_config(8, 2, static_cast<RopeLayout>(7))),
                         "layout must be RopeLayout::Interleaved or HalfSplit (got 7)");
    XFMR_REQUIRE_INVALID(R(nd_config(8, 2, I, -1)), "cached_positions must be >= 0 (got -1)");
    auto c = nd_config(8, 2, I);
    c.base = 1.0;
    XFMR_REQUIRE_INVALID(R(c), "xfmr::RopeND: base must be finite and > 1 (got base=1)");
    c.base = std::numeric_limits<double>::infinity();
    XFMR_REQUIRE_INVALID(R(c), "base must be finite and > 1");
    XFMR_REQUIRE_INVALID(xfmr::Rope2D<T>(nd_config(24, 3, I)),
                         "xfmr::Rope2D: axes must be 2 (got axes=3)");
    XFMR_REQUIRE_INVALID(xfmr::Rope2D<T>(6), "xfmr::Rope2D: head_dim must split into 2 even");
  }

  SECTION("inputs") {
    const R rope(nd_config(8, 2, I));
    RowMatrix<T> x = RowMatrix<T>::Zero(6, 16);
    CoordinateMatrix ok = CoordinateMatrix::Zero(6, 2);
    XFMR_REQUIRE_INVALID(rope.apply_at(x, CoordinateMatrix::Zero(6, 3)),
                         "xfmr::RopeND: coords must have one column per axis: coords.cols() == "
                         "2 (got 3)");
    XFMR_REQUIRE_INVALID(rope.apply_at(x, CoordinateMatrix::Zero(5, 2)),
                         "coords must have one row per token: coords.rows() == 6 (got 5)");
    CoordinateMatrix neg = ok;
    neg(4, 1) = -3;
    XFMR_REQUIRE_INVALID(rope.apply_at(x, neg),
                         "coordinates must be in [0, 2^53] (got coords(4, 1)=-3)");
    XFMR_REQUIRE_INVALID(rope.apply_inverse_at(x, neg), "(got coords(4, 1)=-3)");
    XFMR_REQUIRE_INVALID(rope.apply_grid(x, 2, 4),
                         "xfmr::RopeND: grid rows·cols must equal the number of tokens (got "
                         "rows=2, cols=4, tokens=6)");
    XFMR_REQUIRE_INVALID(rope.apply_grid(x, 0, 6), "(got rows=0, cols=6, tokens=6)");
    XFMR_REQUIRE_INVALID(rope.apply_grid(x, -2, -3), "(got rows=-2, cols=-3, tokens=6)");
    XFMR_REQUIRE_INVALID(rope.apply_grid(x, 2, 3, static_cast<GridAxes>(5)),
                         "order must be GridAxes::RowFirst or ColumnFirst (got 5)");
    const R rope3(nd_config(12, 3, I));
    RowMatrix<T> x3 = RowMatrix<T>::Zero(6, 12);
    XFMR_REQUIRE_INVALID(rope3.apply_grid(x3, 2, 3), "apply_grid needs axes == 2 (got axes=3)");

    RowMatrix<T> narrow = RowMatrix<T>::Zero(6, 12);
    XFMR_REQUIRE_INVALID(rope.apply_at(narrow, ok),
                         "xfmr::RopeND: x.cols() must be a multiple of head_dim=8 (got 6x12)");
    RowMatrix<T> out = RowMatrix<T>::Zero(5, 16);
    XFMR_REQUIRE_INVALID(rope.apply_at(x, out, ok), "out must be 6x16 like x (got 5x16)");
    XFMR_REQUIRE_INVALID(rope.apply_grid(x, out, 2, 3), "out must be 6x16 like x (got 5x16)");

    // Partial overlap: same stride, shifted by one row.
    RowMatrix<T> big = RowMatrix<T>::Zero(7, 16);
    XFMR_REQUIRE_INVALID(rope.apply_at(big.topRows(6), big.bottomRows(6), ok),
                         "out must be the input itself (same data and stride) or not overlap it");
    // Disjoint views of one buffer are fine.
    RowMatrix<T> tall = RowMatrix<T>::Zero(12, 16);
    REQUIRE_NOTHROW(rope.apply_at(tall.topRows(6), tall.bottomRows(6), ok));
    // Empty input: nothing to do, no error.
    RowMatrix<T> none(0, 16);
    REQUIRE_NOTHROW(rope.apply_at(none, CoordinateMatrix(0, 2)));
    REQUIRE_NOTHROW(rope.apply_grid(none, 0, 5));
  }
}
