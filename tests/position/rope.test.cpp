// SPDX-License-Identifier: MIT
// Rope<T> against a long-double reference, and the properties of SPEC §1.7.
#include <cmath>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/position/rope.hpp>
#include <xfmr/tensor.hpp>

#include "reference/rope.hpp"
#include "support/random.hpp"

using xfmr::Index;
using xfmr::RopeLayout;
using xfmr::RowMatrix;

namespace {

constexpr RopeLayout kLayouts[] = {RopeLayout::Interleaved, RopeLayout::HalfSplit};

xfmr::RopeConfig config(Index d, Index rot, RopeLayout layout, Index cached = 4096) {
  xfmr::RopeConfig c;
  c.head_dim = d;
  c.rotary_dim = rot;
  c.layout = layout;
  c.cached_positions = cached;
  return c;
}

std::vector<long double> consecutive(Index n, long double pos0) {
  std::vector<long double> p(static_cast<std::size_t>(n));
  for (Index t = 0; t < n; ++t) p[t] = pos0 + t;
  return p;
}

/// Largest per-head relative error ||y − ref|| / ||ref|| over all tokens and heads.
template <typename T>
double max_head_error(const RowMatrix<T>& y, const xfmr_ref::Mat& ref, Index d) {
  double worst = 0;
  for (Index t = 0; t < y.rows(); ++t)
    for (Index h = 0; h < y.cols() / d; ++h) {
      long double err = 0, norm = 0;
      for (Index i = h * d; i < (h + 1) * d; ++i) {
        err += (y(t, i) - ref(t, i)) * (y(t, i) - ref(t, i));
        norm += ref(t, i) * ref(t, i);
      }
      worst = std::max(worst, static_cast<double>(std::sqrt(err / norm)));
    }
  return worst;
}

/// Rounding of cos/sin to T, one product and one fused update: a few units of T's epsilon per
/// head vector (2e-7 for float is the bound, 1.7 epsilon). On top, the double angle
/// p·θ_r carries a relative error of a few 2^-53 (θ_r from exp), so an absolute angle error
/// growing like p·2^-51; it matters only for double tables.
template <typename T>
double head_tolerance(double max_position) {
  return (std::is_same_v<T, float> ? 2e-7 : 4e-16) + max_position * 4.5e-16;
}

template <typename T>
T dot(const T* a, const T* b, Index n) {
  long double s = 0;
  for (Index i = 0; i < n; ++i) s += static_cast<long double>(a[i]) * b[i];
  return static_cast<T>(s);
}

}  // namespace

TEMPLATE_TEST_CASE("Rope matches the long-double reference: layouts, partial rotary, offsets, "
                   "in place and out of place",
                   "[rope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(1);
  // (head_dim, rotary_dim, heads, tokens): sizes around the vector width and odd token counts.
  const Index shapes[][4] = {{2, 2, 1, 1},   {8, 8, 3, 5},    {10, 6, 2, 7},  {16, 16, 1, 9},
                             {18, 18, 2, 3}, {64, 32, 3, 11}, {64, 64, 5, 4}, {128, 96, 2, 13},
                             {130, 130, 1, 2}};
  for (const auto& s : shapes)
    for (const RopeLayout layout : kLayouts) {
      const Index d = s[0], rot = s[1], heads = s[2], n = s[3];
      const Index pos0 = std::uniform_int_distribution<Index>(0, 5000)(rng);
      CAPTURE(d, rot, heads, n, pos0, static_cast<int>(layout));
      const xfmr::Rope<T> rope(config(d, rot, layout));
      const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, heads * d);
      const auto ref = xfmr_ref::rope(x, d, rot, layout == RopeLayout::Interleaved,
                                      consecutive(n, pos0), xfmr_ref::inv_freq(rot, 10000.0L));

      RowMatrix<T> out = RowMatrix<T>::Constant(n, heads * d, std::numeric_limits<T>::quiet_NaN());
      rope.apply(x, out, pos0);
      CHECK(max_head_error(out, ref, d) <= head_tolerance<T>(pos0 + n));

      RowMatrix<T> inplace = x;
      rope.apply(inplace, pos0);
      CHECK(inplace == out);  // same kernel, same tables: bit-identical

      // Strided rows: a block in the middle of a wider matrix, neighbours untouched.
      RowMatrix<T> wide = RowMatrix<T>::Constant(n, heads * d + 7, T(3));
      wide.block(0, 2, n, heads * d) = x;
      rope.apply(wide.block(0, 2, n, heads * d), pos0);
      CHECK(wide.block(0, 2, n, heads * d) == out);
      CHECK((wide.leftCols(2).array() == T(3)).all());
      CHECK((wide.rightCols(5).array() == T(3)).all());
    }
}

TEST_CASE("Rope float tables stay exact at positions up to 2^20 and offsets near 2^24",
          "[rope][precision]") {
  auto rng = xfmr_test::make_rng(2);
  const Index d = 128, heads = 2;
  const Index positions[] = {0, 1, 4095, 100000, 1000000, (1 << 20) - 3, (1 << 24) - 5,
                             (1 << 24) + 17};
  for (const RopeLayout layout : kLayouts)
    for (const Index cached : {Index(0), Index(1 << 20)}) {  // computed on demand and cached
      const xfmr::Rope<float> rope(config(d, d, layout, cached));
      for (const Index p : positions) {
        if (p + 3 > cached && cached != 0 && p < cached) continue;
        CAPTURE(p, cached);
        const RowMatrix<float> x = xfmr_test::random_matrix<float>(rng, 3, heads * d);
        RowMatrix<float> y(3, heads * d);
        rope.apply(x, y, p);
        const auto ref = xfmr_ref::rope(x, d, d, layout == RopeLayout::Interleaved,
                                        consecutive(3, p), xfmr_ref::inv_freq(d, 10000.0L));
        CHECK(max_head_error(y, ref, d) <= head_tolerance<float>(0));
      }
    }
}

TEST_CASE("Rope gives the same bits whether a position is cached or computed on demand",
          "[rope]") {
  auto rng = xfmr_test::make_rng(3);
  for (const RopeLayout layout : kLayouts) {
    const xfmr::Rope<float> cached(config(64, 48, layout, 300)), uncached(config(64, 48, layout, 0));
    const RowMatrix<float> x = xfmr_test::random_matrix<float>(rng, 9, 3 * 64);
    RowMatrix<float> a(9, 3 * 64), b(9, 3 * 64);
    cached.apply(x, a, 295);  // straddles the cache end
    uncached.apply(x, b, 295);
    CHECK(a == b);
  }
}

TEMPLATE_TEST_CASE("Rope relativity: <R_i q, R_j k> depends only on j - i, even at large offsets",
                   "[rope][property]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(4);
  const Index d = 64;
  std::uniform_int_distribution<Index> pos(0, 1 << 12), shift(0, Index(1) << 24);
  for (const RopeLayout layout : kLayouts)
    for (const Index rot : {Index(64), Index(40)}) {
      const xfmr::Rope<T> rope(config(d, rot, layout, 0));
      for (int trial = 0; trial < 20; ++trial) {
        const Index i = pos(rng), j = pos(rng), c = shift(rng);
        CAPTURE(i, j, c, rot);
        const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, 1, d);
        const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, 1, d);
        RowMatrix<T> qi(1, d), kj(1, d), qic(1, d), kjc(1, d);
        rope.apply(q, qi, i);
        rope.apply(k, kj, j);
        rope.apply(q, qic, i + c);
        rope.apply(k, kjc, j + c);
        // q^T R_{j−i} k from the reference: rotate k by j − i (negative allowed).
        const auto kr = xfmr_ref::rotate(k.data(), d, rot, layout == RopeLayout::Interleaved,
                                         static_cast<long double>(j - i),
                                         xfmr_ref::inv_freq(rot, 10000.0L));
        long double expected = 0;
        for (Index t = 0; t < d; ++t) expected += q(0, t) * kr[t];
        // Angle error of T tables at position ~2^24 is ~2^24·eps_T·θ; the logit error follows,
        // scaled by |q||k|.
        const double scale = q.norm() * k.norm();
        const double tol = std::is_same_v<T, float> ? 4e-7 * 2 * std::log2(double(c) + 2) : 1e-9;
        CHECK(std::abs(dot(qi.data(), kj.data(), d) - static_cast<double>(expected)) <=
              (std::is_same_v<T, float> ? 1e-6 : 1e-13) * scale);
        CHECK(std::abs(dot(qic.data(), kjc.data(), d) - dot(qi.data(), kj.data(), d)) <=
              tol * scale);
      }
    }
}

TEMPLATE_TEST_CASE("Rope preserves norms, and apply_inverse undoes apply", "[rope][property]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(5);
  const double eps = std::numeric_limits<T>::epsilon();
  for (const RopeLayout layout : kLayouts) {
    const Index d = 96;
    const xfmr::Rope<T> rope(config(d, 80, layout));
    const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 17, 2 * d);
    RowMatrix<T> y(17, 2 * d), back(17, 2 * d);
    rope.apply(x, y, 1000);
    for (Index t = 0; t < x.rows(); ++t)
      for (Index h = 0; h < 2; ++h)
        CHECK(std::abs(y.row(t).segment(h * d, d).norm() - x.row(t).segment(h * d, d).norm()) <=
              8 * eps * x.row(t).segment(h * d, d).norm());
    rope.apply_inverse(y, back, 1000);
    CHECK((back - x).cwiseAbs().maxCoeff() <= 8 * eps);

    // The inverse is the rotation by −p: compare with the reference at negative positions.
    rope.apply_inverse(x, y, 1000);
    std::vector<long double> neg(17);
    for (Index t = 0; t < 17; ++t) neg[t] = -(1000.0L + t);
    const auto ref = xfmr_ref::rope(x, d, 80, layout == RopeLayout::Interleaved, neg,
                                    xfmr_ref::inv_freq(80, 10000.0L));
    CHECK(max_head_error(y, ref, d) <= head_tolerance<T>(1017));
  }
}

TEMPLATE_TEST_CASE("Rope layouts are one function class: RoPE_half(P x) = P RoPE_inter(x)",
                   "[rope][property]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(6);
  const Index d = 40, rot = 24, n = 6;
  const xfmr::Rope<T> inter(config(d, rot, RopeLayout::Interleaved));
  const xfmr::Rope<T> half(config(d, rot, RopeLayout::HalfSplit));
  // P: interleaved channel 2r + t  ->  half-split channel t·(rot/2) + r; pass-through fixed.
  const auto P = [&](const RowMatrix<T>& m) {
    RowMatrix<T> out = m;
    for (Index r = 0; r < rot / 2; ++r)
      for (Index t = 0; t < 2; ++t) out.col(t * (rot / 2) + r) = m.col(2 * r + t);
    return out;
  };
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, d);
  RowMatrix<T> a = P(x), b = x;
  half.apply(a, 77);
  inter.apply(b, 77);
  CHECK((a - P(b)).cwiseAbs().maxCoeff() <= 4 * std::numeric_limits<T>::epsilon());
}

TEMPLATE_TEST_CASE("Rope leaves the pass-through channels bit-identical", "[rope][property]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(7);
  const Index d = 50, rot = 18, heads = 3;
  for (const RopeLayout layout : kLayouts) {
    const xfmr::Rope<T> rope(config(d, rot, layout));
    RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 5, heads * d);
    x(2, rot + 1) = std::numeric_limits<T>::quiet_NaN();  // even NaN passes through untouched
    RowMatrix<T> out = RowMatrix<T>::Constant(5, heads * d, T(-7)), inplace = x;
    rope.apply(x, out, 9);
    rope.apply(inplace, 9);
    for (Index h = 0; h < heads; ++h) {
      const auto tail = [&](const RowMatrix<T>& m) { return m.middleCols(h * d + rot, d - rot); };
      CHECK(std::memcmp(tail(out).eval().data(), tail(x).eval().data(),
                        sizeof(T) * 5 * (d - rot)) == 0);
      CHECK(std::memcmp(tail(inplace).eval().data(), tail(x).eval().data(),
                        sizeof(T) * 5 * (d - rot)) == 0);
    }
    CHECK(std::isnan(out(2, rot + 1)));
  }
}

TEMPLATE_TEST_CASE("Rope out of place on outputs past kRopeStreamMinBytes (streaming stores) "
                   "equals in place, bit for bit",
                   "[rope][property]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(10);
  // 128-channel heads: full rotary (every store streamable) and partial rotary 64 with the
  // pass-through copied by ordinary stores beside the streamed channels.
  const Index heads = 8;
  for (const RopeLayout layout : kLayouts)
    for (const auto& [d, rot] : {std::pair<Index, Index>{128, 128}, {128, 64}}) {
      INFO("layout " << static_cast<int>(layout) << ", d " << d << ", rot " << rot);
      const Index cols = heads * d;
      const auto bytes = static_cast<Index>(xfmr::detail::kRopeStreamMinBytes);
      const Index tokens = bytes / static_cast<Index>(sizeof(T) * cols) + 1;
      const xfmr::Rope<T> rope(config(d, rot, layout, 64));  // past the cache as well
      const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, tokens, cols);
      RowMatrix<T> out = RowMatrix<T>::Constant(tokens, cols, T(-7)), in_place = x;
      rope.apply(x, out, 3);
      rope.apply(in_place, 3);
      CHECK(out == in_place);
      rope.apply_inverse(in_place, out, 3);
      rope.apply_inverse(in_place, 3);
      CHECK(out == in_place);
      CHECK((out - x).cwiseAbs().maxCoeff() <= 8 * std::numeric_limits<T>::epsilon());
    }
}

TEMPLATE_TEST_CASE("Rope in chunks with offsets equals one shot; ids equal offsets; zero "
                   "position is the identity",
                   "[rope][property]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(8);
  const Index d = 32, heads = 4, n = 23;
  for (const RopeLayout layout : kLayouts) {
    const xfmr::Rope<T> rope(config(d, d, layout));
    const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, heads * d);
    RowMatrix<T> whole = x, chunked = x;
    rope.apply(whole, 5);
    rope.apply(chunked.topRows(9), 5);          // prefill
    rope.apply(chunked.middleRows(9, 1), 14);   // one decode step
    rope.apply(chunked.bottomRows(13), 15);     // the rest
    CHECK(whole == chunked);

    xfmr::PositionVector ids(n);
    for (Index t = 0; t < n; ++t) ids[t] = 5 + t;
    RowMatrix<T> by_ids(n, heads * d);
    rope.apply_at(x, by_ids, ids);
    CHECK(by_ids == whole);

    // Shuffled ids: each row rotated at its own position.
    std::shuffle(ids.data(), ids.data() + n, rng);
    rope.apply_at(x, by_ids, ids);
    for (Index t = 0; t < n; ++t) {
      RowMatrix<T> row = x.row(t);
      rope.apply(row, ids[t]);
      CHECK(by_ids.row(t) == row);
    }
    RowMatrix<T> back(n, heads * d);
    rope.apply_inverse_at(by_ids, back, ids);
    CHECK((back - x).cwiseAbs().maxCoeff() <= 8 * std::numeric_limits<T>::epsilon());

    RowMatrix<T> zero = x.topRows(1);
    rope.apply(zero, 0);
    CHECK(zero == x.topRows(1));  // cos 0 = 1, sin 0 = 0 exactly
  }
}

TEMPLATE_TEST_CASE("Rope on Eigen tensor views equals the matrix path", "[rope][tensor]", float,
                   double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(9);
  const Index batch = 3, n = 5, heads = 2, d = 12;
  const xfmr::Rope<T> rope(config(d, 8, RopeLayout::HalfSplit));
  Eigen::Tensor<T, 4, Eigen::RowMajor> t4(batch, n, heads, d);
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, batch * n, heads * d);
  std::copy(x.data(), x.data() + x.size(), t4.data());
  rope.apply(typename xfmr::Rope<T>::Tensor4(t4.data(), batch, n, heads, d), 7);
  for (Index b = 0; b < batch; ++b) {
    RowMatrix<T> expected = x.middleRows(b * n, n);
    rope.apply(expected, 7);  // every sequence starts at pos0
    const Eigen::Map<const RowMatrix<T>> got(t4.data() + b * n * heads * d, n, heads * d);
    CHECK(got == expected);
  }
  Eigen::Tensor<T, 3, Eigen::RowMajor> t3(n, heads, d);
  std::copy(x.data(), x.data() + n * heads * d, t3.data());
  rope.apply(typename xfmr::Rope<T>::Tensor3(t3.data(), n, heads, d), 2);
  RowMatrix<T> expected = x.topRows(n);
  rope.apply(expected, 2);
  CHECK(Eigen::Map<const RowMatrix<T>>(t3.data(), n, heads * d) == expected);
}
