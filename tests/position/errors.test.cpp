// SPDX-License-Identifier: MIT
// Bad input to Rope: every check throws std::invalid_argument naming expected and actual values.
#include <cmath>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <xfmr/position/rope.hpp>
#include <xfmr/tensor.hpp>

using Catch::Contains;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {
xfmr::RopeConfig config(Index d, Index rot) {
  xfmr::RopeConfig c;
  c.head_dim = d;
  c.rotary_dim = rot;
  return c;
}
}  // namespace

TEST_CASE("Rope rejects bad configurations with a clear message", "[rope][errors]") {
  CHECK_THROWS_AS(xfmr::Rope<float>(config(64, 7)), std::invalid_argument);
  CHECK_THROWS_WITH(xfmr::Rope<float>(config(64, 7)),
                    "xfmr::Rope: rotary_dim must be even and <= head_dim (got rotary_dim=7, "
                    "head_dim=64)");
  CHECK_THROWS_WITH(xfmr::Rope<float>(config(64, 66)), Contains("rotary_dim=66"));
  CHECK_THROWS_WITH(xfmr::Rope<float>(config(64, -2)), Contains("rotary_dim=-2"));
  CHECK_THROWS_WITH(xfmr::Rope<float>(config(5, 0)), Contains("rotary_dim=0, head_dim=5"));
  CHECK_THROWS_WITH(xfmr::Rope<float>(config(0, 0)), Contains("head_dim must be > 0"));
  for (const double base : {1.0, 0.5, -3.0, double(INFINITY), double(NAN)}) {
    auto c = config(64, 0);
    c.base = base;
    CHECK_THROWS_WITH(xfmr::Rope<double>(c), Contains("base must be finite and > 1"));
  }
  auto c = config(64, 0);
  c.layout = static_cast<xfmr::RopeLayout>(3);
  CHECK_THROWS_WITH(xfmr::Rope<float>(c), Contains("layout"));
  c = config(64, 0);
  c.cached_positions = -1;
  CHECK_THROWS_WITH(xfmr::Rope<float>(c), Contains("cached_positions must be >= 0"));
  c = config(64, 0);
  c.scaling.type = xfmr::RopeScalingType::Yarn;
  c.scaling.factor = 4;
  CHECK_THROWS_WITH(xfmr::Rope<float>(c), Contains("xfmr::Rope: scaling.original_max_positions"));
}

TEST_CASE("Rope rejects bad shapes and positions with a clear message", "[rope][errors]") {
  const xfmr::Rope<float> rope(config(16, 8));
  RowMatrix<float> x = RowMatrix<float>::Zero(4, 48), small(3, 48);
  RowMatrix<float> odd(4, 40);
  CHECK_THROWS_WITH(rope.apply(odd), "xfmr::Rope: x.cols() must be a multiple of head_dim=16 "
                                     "(got 4x40)");
  CHECK_THROWS_WITH(rope.apply(x, small), "xfmr::Rope: out must be 4x48 like x (got 3x48)");
  CHECK_THROWS_WITH(rope.apply(x, -1), Contains("pos0 must be >= 0") && Contains("pos0=-1"));
  CHECK_THROWS_WITH(rope.apply(x, (Index(1) << 53)), Contains("2^53"));
  xfmr::PositionVector ids(3);
  ids << 0, 1, 2;
  CHECK_THROWS_WITH(rope.apply_at(x, ids), Contains("ids.size() == 4 (got 3)"));
  ids.resize(4);
  ids << 0, 1, -5, 2;
  CHECK_THROWS_WITH(rope.apply_at(x, ids), Contains("ids[2]=-5"));
  CHECK_THROWS_WITH(rope.apply_inverse_at(x, x, ids), Contains("ids[2]=-5"));
  // Partial overlap: out shifted by one row inside the same buffer.
  RowMatrix<float> buf = RowMatrix<float>::Zero(5, 48);
  CHECK_THROWS_WITH(rope.apply(buf.topRows(4), buf.bottomRows(4)), Contains("partial overlap"));
  // Column slices of one fused buffer share no element: accepted, and equal to a copy's result.
  RowMatrix<float> fused = RowMatrix<float>::Random(4, 48);
  RowMatrix<float> expected(4, 16);
  rope.apply(fused.leftCols(16), expected, 3);
  rope.apply(fused.leftCols(16), fused.rightCols(16), 3);
  CHECK(fused.rightCols(16) == expected);
  CHECK_THROWS_WITH(rope.apply(fused.leftCols(16), fused.middleCols(8, 16)),
                    Contains("partial overlap"));
  Eigen::Tensor<float, 3, Eigen::RowMajor> t(2, 3, 8);
  CHECK_THROWS_WITH(rope.apply(xfmr::Rope<float>::Tensor3(t.data(), 2, 3, 8)),
                    "xfmr::Rope: the last tensor dimension must be head_dim=16 (got 8)");
  // Nothing was written by any failing call.
  CHECK((x.array() == 0.0f).all());
}
