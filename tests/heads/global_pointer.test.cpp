// SPDX-License-Identifier: MIT
// GlobalPointer and Efficient GlobalPointer: the long-double explicit-rotation reference, masks,
// the relative-position property, hand-built bert4keras weight layouts, decoding and errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/heads/global_pointer.hpp>

#include "reference/global_pointer.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::RowVector;
using Tensor4 = xfmr::ScoreTensor<float>;
using SpanKey = std::tuple<Index, Index, Index, Index>;

constexpr double kInf = std::numeric_limits<double>::infinity();

template <typename T>
RowVector<T> random_row(std::mt19937_64& rng, Index n) {
  return xfmr_test::random_matrix<T>(rng, 1, n);
}

/// Output buffer [batch, types, n, n] poisoned with NaN, so every element must be written.
template <typename T>
std::vector<T> poisoned(Index batch, Index types, Index n) {
  return std::vector<T>(static_cast<std::size_t>(batch * types * n * n),
                        std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
xfmr::ScoreTensor<T> as_tensor(std::vector<T>& v, Index batch, Index types, Index n) {
  return xfmr::ScoreTensor<T>(v.data(), batch, types, n, n);
}

/// Tolerance (see reference): rounding of the two Dense layers and the rotation is a few hundred
/// ulps of the magnitude of the terms at these widths; a layout or sign bug is O(1) relative.
template <typename T>
long double tolerance(long double magnitude) {
  return 1000.0L * std::numeric_limits<T>::epsilon() * (1 + magnitude);
}

/// Compares every element of out with the reference: masked entries must equal mask_value
/// exactly, all others must be finite and within tolerance. Returns the number of mismatches.
template <typename T>
int compare(const std::vector<T>& out, const std::vector<std::vector<xfmr_ref::GpScores>>& ref,
            Index types, Index n, double mask_value) {
  int bad = 0;
  for (std::size_t b = 0; b < ref.size(); ++b)
    for (Index a = 0; a < types; ++a) {
      const auto& r = ref[b][static_cast<std::size_t>(a)];
      for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j) {
          const T v = out[static_cast<std::size_t>(((Index(b) * types + a) * n + i) * n + j)];
          if (r.masked[static_cast<std::size_t>(i * n + j)]) {
            if (!(v == static_cast<T>(mask_value))) ++bad;
          } else if (!std::isfinite(v) ||
                     std::abs(v - r.value(i, j)) > tolerance<T>(r.magnitude(i, j))) {
            ++bad;
          }
        }
    }
  return bad;
}

/// Spans expected from the reference: unmasked, start <= end and clearly positive (entries within
/// tolerance of 0 may round either way and are skipped by the caller's comparison).
template <typename T>
void check_decoded(const std::vector<xfmr::Span>& spans,
                   const std::vector<std::vector<xfmr_ref::GpScores>>& ref, Index n) {
  std::set<SpanKey> got;
  for (const auto& s : spans) got.insert({s.sequence, s.type, s.start, s.end});
  REQUIRE(got.size() == spans.size());
  // Sorted by (sequence, type, start, end).
  for (std::size_t k = 1; k < spans.size(); ++k)
    REQUIRE(SpanKey{spans[k - 1].sequence, spans[k - 1].type, spans[k - 1].start,
                    spans[k - 1].end} < SpanKey{spans[k].sequence, spans[k].type, spans[k].start,
                                                spans[k].end});
  int positives = 0;
  for (std::size_t b = 0; b < ref.size(); ++b)
    for (std::size_t a = 0; a < ref[b].size(); ++a)
      for (Index i = 0; i < n; ++i)
        for (Index j = i; j < n; ++j) {
          const auto& r = ref[b][a];
          const SpanKey key{Index(b), Index(a), i, j};
          if (r.masked[static_cast<std::size_t>(i * n + j)]) {
            REQUIRE(got.count(key) == 0);
            continue;
          }
          const long double v = r.value(i, j), tol = tolerance<T>(r.magnitude(i, j));
          if (v > tol) {
            ++positives;
            REQUIRE(got.count(key) == 1);
          }
          if (v < -tol) REQUIRE(got.count(key) == 0);
        }
  for (const auto& s : spans) REQUIRE(s.start <= s.end);
  REQUIRE(positives > 0);  // the comparison was not vacuous
}

xfmr::IdVector ids(const std::vector<Index>& v) {
  return Eigen::Map<const xfmr::IdVector>(v.data(), static_cast<Index>(v.size()));
}

struct Case {
  Index hidden, types, head, n;
  std::vector<Index> lengths;
  bool tril;
  double mask_value;
  Index offset;
};

std::vector<Case> cases() {
  return {
      {5, 1, 2, 1, {1}, true, -kInf, 0},
      {17, 3, 8, 11, {11, 7, 0}, true, -kInf, 0},
      {9, 2, 10, 13, {13, 1, 12}, false, -1e12, 3},
      {33, 4, 6, 7, {5, 7}, true, -1e12, 600},  // positions past cached_positions=512
  };
}

/// hidden: (batch·n × D) as a column slice of a wider matrix (strided rows); padded rows NaN,
/// which must never be read.
template <typename T>
RowMatrix<T> make_hidden(std::mt19937_64& rng, const Case& c) {
  const Index batch = static_cast<Index>(c.lengths.size());
  RowMatrix<T> wide = xfmr_test::random_matrix<T>(rng, batch * c.n, c.hidden + 3);
  for (Index b = 0; b < batch; ++b)
    for (Index t = c.lengths[static_cast<std::size_t>(b)]; t < c.n; ++t)
      wide.row(b * c.n + t).setConstant(std::numeric_limits<T>::quiet_NaN());
  return wide;
}

}  // namespace

TEMPLATE_TEST_CASE("GlobalPointer scores equal q^T R_{j-i} k / sqrt(d) with padding and the "
                   "lower triangle masked",
                   "[global_pointer]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(1);
  for (const Case& c : cases()) {
    CAPTURE(c.hidden, c.types, c.head, c.n, c.tril, c.mask_value, c.offset);
    const Index batch = static_cast<Index>(c.lengths.size());
    xfmr::GlobalPointerConfig config;
    config.hidden_size = c.hidden;
    config.types = c.types;
    config.head_size = c.head;
    config.tril_mask = c.tril;
    config.mask_value = c.mask_value;
    xfmr::GlobalPointer<T> gp(config);
    const RowMatrix<T> kernel = xfmr_test::random_matrix<T>(rng, c.hidden, c.types * 2 * c.head);
    const RowVector<T> bias = random_row<T>(rng, c.types * 2 * c.head);
    gp.set_weights(kernel, bias);

    const RowMatrix<T> wide = make_hidden<T>(rng, c);
    const auto hidden = wide.middleCols(2, c.hidden);  // strided view
    auto out = poisoned<T>(batch, c.types, c.n);
    gp.scores(hidden, ids(c.lengths), as_tensor(out, batch, c.types, c.n), c.offset);

    std::vector<std::vector<xfmr_ref::GpScores>> ref;
    for (Index b = 0; b < batch; ++b) {
      const RowMatrix<T> h = hidden.middleRows(b * c.n, c.n);
      ref.push_back(xfmr_ref::global_pointer<T>(h, c.lengths[static_cast<std::size_t>(b)], kernel,
                                                bias, c.types, c.head, c.tril));
    }
    REQUIRE(compare(out, ref, c.types, c.n, c.mask_value) == 0);

    // Decoding the library's scores gives the reference's positive spans.
    const auto spans = xfmr::decode_spans(as_tensor(out, batch, c.types, c.n), ids(c.lengths));
    if (c.n > 1) check_decoded<T>(spans, ref, c.n);

    // A second call reuses the grown scratch and gives the same bits.
    auto again = poisoned<T>(batch, c.types, c.n);
    gp.scores(hidden, ids(c.lengths), as_tensor(again, batch, c.types, c.n), c.offset);
    REQUIRE(std::equal(out.begin(), out.end(), again.begin(), [](T x, T y) {
      return x == y || (std::isnan(x) && std::isnan(y));
    }));
  }
}

TEMPLATE_TEST_CASE("EfficientGlobalPointer scores equal the bert4keras formula with the start "
                   "term from channel 2a+1 and the end term from channel 2a",
                   "[global_pointer][egp]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(2);
  for (const Case& c : cases()) {
    CAPTURE(c.hidden, c.types, c.head, c.n, c.tril, c.mask_value, c.offset);
    const Index batch = static_cast<Index>(c.lengths.size());
    xfmr::GlobalPointerConfig config;
    config.hidden_size = c.hidden;
    config.types = c.types;
    config.head_size = c.head;
    config.tril_mask = c.tril;
    config.mask_value = c.mask_value;
    xfmr::EfficientGlobalPointer<T> egp(config);
    const RowMatrix<T> p_kernel = xfmr_test::random_matrix<T>(rng, c.hidden, 2 * c.head);
    const RowVector<T> p_bias = random_row<T>(rng, 2 * c.head);
    const RowMatrix<T> q_kernel = xfmr_test::random_matrix<T>(rng, 2 * c.head, 2 * c.types);
    const RowVector<T> q_bias = random_row<T>(rng, 2 * c.types);
    egp.set_weights(p_kernel, p_bias, q_kernel, q_bias);

    const RowMatrix<T> wide = make_hidden<T>(rng, c);
    const auto hidden = wide.middleCols(1, c.hidden);
    auto out = poisoned<T>(batch, c.types, c.n);
    egp.scores(hidden, ids(c.lengths), as_tensor(out, batch, c.types, c.n), c.offset);

    std::vector<std::vector<xfmr_ref::GpScores>> ref;
    for (Index b = 0; b < batch; ++b) {
      const RowMatrix<T> h = hidden.middleRows(b * c.n, c.n);
      ref.push_back(xfmr_ref::efficient_global_pointer<T>(
          h, c.lengths[static_cast<std::size_t>(b)], p_kernel, p_bias, q_kernel, q_bias, c.types,
          c.head, c.tril));
    }
    REQUIRE(compare(out, ref, c.types, c.n, c.mask_value) == 0);
    const auto spans = xfmr::decode_spans(as_tensor(out, batch, c.types, c.n), ids(c.lengths));
    if (c.n > 1) check_decoded<T>(spans, ref, c.n);
  }
}

TEMPLATE_TEST_CASE("GlobalPointer and EGP scores depend on positions only through j - i",
                   "[global_pointer][property]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(3);
  const Index D = 12, types = 2, d = 8, n = 9;
  xfmr::GlobalPointerConfig config;
  config.hidden_size = D;
  config.types = types;
  config.head_size = d;
  config.tril_mask = false;  // the whole matrix, both signs of j − i
  xfmr::GlobalPointer<T> gp(config);
  gp.set_weights(xfmr_test::random_matrix<T>(rng, D, types * 2 * d),
                 random_row<T>(rng, types * 2 * d));
  xfmr::EfficientGlobalPointer<T> egp(config);
  egp.set_weights(xfmr_test::random_matrix<T>(rng, D, 2 * d), random_row<T>(rng, 2 * d),
                  xfmr_test::random_matrix<T>(rng, 2 * d, 2 * types),
                  random_row<T>(rng, 2 * types));
  const T tol = std::is_same_v<T, float> ? T(2e-4) : T(1e-11);

  SECTION("shifting every position by an offset leaves the scores unchanged") {
    const RowMatrix<T> hidden = xfmr_test::random_matrix<T>(rng, n, D);
    for (const Index offset : {Index(1), Index(37), Index(1000), Index(123457)}) {
      CAPTURE(offset);
      auto base_gp = poisoned<T>(1, types, n), shifted_gp = poisoned<T>(1, types, n);
      gp.scores(hidden, as_tensor(base_gp, 1, types, n), 0);
      gp.scores(hidden, as_tensor(shifted_gp, 1, types, n), offset);
      auto base_egp = poisoned<T>(1, types, n), shifted_egp = poisoned<T>(1, types, n);
      egp.scores(hidden, as_tensor(base_egp, 1, types, n), 0);
      egp.scores(hidden, as_tensor(shifted_egp, 1, types, n), offset);
      for (std::size_t e = 0; e < base_gp.size(); ++e) {
        REQUIRE(std::abs(base_gp[e] - shifted_gp[e]) <= tol * (1 + std::abs(base_gp[e])));
        REQUIRE(std::abs(base_egp[e] - shifted_egp[e]) <= tol * (1 + std::abs(base_egp[e])));
      }
    }
  }
  SECTION("the same token at every position gives scores constant along each diagonal") {
    RowMatrix<T> hidden(n, D);
    hidden.rowwise() = random_row<T>(rng, D);
    auto out = poisoned<T>(1, types, n);
    gp.scores(hidden, as_tensor(out, 1, types, n));
    auto out_e = poisoned<T>(1, types, n);
    egp.scores(hidden, as_tensor(out_e, 1, types, n));
    for (Index a = 0; a < types; ++a)
      for (Index i = 1; i < n; ++i)
        for (Index j = 1; j < n; ++j) {
          const std::size_t e = static_cast<std::size_t>((a * n + i) * n + j);
          const std::size_t e0 = static_cast<std::size_t>((a * n + i - 1) * n + j - 1);
          REQUIRE(std::abs(out[e] - out[e0]) <= tol * (1 + std::abs(out[e])));
          REQUIRE(std::abs(out_e[e] - out_e[e0]) <= tol * (1 + std::abs(out_e[e])));
        }
  }
}

TEMPLATE_TEST_CASE("GlobalPointer reads the bert4keras Dense kernel (in, out) with q before k in "
                   "each type's chunk",
                   "[global_pointer][layout]", float, double) {
  using T = TestType;
  // hidden_size 3, 2 types, head_size 2: kernel 3 × 8, columns [q0x q0y k0x k0y | q1x q1y k1x k1y].
  xfmr::GlobalPointerConfig config;
  config.hidden_size = 3;
  config.types = 2;
  config.head_size = 2;
  xfmr::GlobalPointer<T> gp(config);
  RowMatrix<T> kernel = RowMatrix<T>::Zero(3, 8);
  kernel(0, 0) = 1;  // q0x ← h[0]
  kernel(1, 1) = 1;  // q0y ← h[1]
  kernel(2, 2) = 1;  // k0x ← h[2]
  kernel(1, 5) = 1;  // q1y ← h[1]
  kernel(2, 7) = 1;  // k1y ← h[2]
  RowVector<T> bias = RowVector<T>::Zero(8);
  bias(0) = T(0.5);  // q0x += 0.5
  gp.set_weights(kernel, bias);
  RowMatrix<T> h(2, 3);
  h << 1, 2, 0,  // position 0: q0 = (1.5, 2), k0 = 0, q1 = (0, 2), k1 = 0
      0, 0, 1;   // position 1: q0 = (0.5, 0), k0 = (1, 0), q1 = 0, k1 = (0, 1)
  auto out = poisoned<T>(1, 2, 2);
  gp.scores(h, as_tensor(out, 1, 2, 2));
  // d = 2: one pair with θ = 1; R_1 (1, 0) = (cos 1, sin 1), R_1 (0, 1) = (−sin 1, cos 1).
  const double r2 = std::sqrt(2.0), c1 = std::cos(1.0), s1 = std::sin(1.0);
  const double expected[2][2][2] = {
      {{0.0, (1.5 * c1 + 2 * s1) / r2}, {-kInf, 0.5 / r2}},  // type 0
      {{0.0, 2 * c1 / r2}, {-kInf, 0.0}},                    // type 1
  };
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-15;
  for (Index a = 0; a < 2; ++a)
    for (Index i = 0; i < 2; ++i)
      for (Index j = 0; j < 2; ++j) {
        CAPTURE(a, i, j);
        const T v = out[static_cast<std::size_t>((a * 2 + i) * 2 + j)];
        if (i > j)
          REQUIRE(v == -std::numeric_limits<T>::infinity());
        else
          REQUIRE(std::abs(v - expected[a][i][j]) <= tol);
      }
}

TEMPLATE_TEST_CASE("EfficientGlobalPointer splits q/k interleaved and broadcasts the halved bias "
                   "of the unrotated projection (hand computation)",
                   "[global_pointer][egp][layout]", float, double) {
  using T = TestType;
  // hidden 2, head_size 2 (u ∈ R^4, q = (u0, u2), k = (u1, u3)), 2 types (β ∈ R^4).
  xfmr::GlobalPointerConfig config;
  config.hidden_size = 2;
  config.types = 2;
  config.head_size = 2;
  xfmr::EfficientGlobalPointer<T> egp(config);
  RowMatrix<T> p_kernel = RowMatrix<T>::Zero(2, 4);
  p_kernel(0, 0) = 1;  // u0 = h0 → q[0]
  p_kernel(1, 1) = 1;  // u1 = h1 → k[0]
  const RowVector<T> p_bias = RowVector<T>::Zero(4);
  RowMatrix<T> q_kernel = RowMatrix<T>::Zero(4, 4);
  q_kernel(0, 0) = 2;  // β[0] = (2 u0 + 0.2)/2 = u0 + 0.1    end term of type 0
  q_kernel(1, 1) = 4;  // β[1] = (4 u1 + 0.6)/2 = 2 u1 + 0.3  start term of type 0
  q_kernel(0, 3) = 2;  // β[3] = u0                          start term of type 1; β[2] = 0
  RowVector<T> q_bias = RowVector<T>::Zero(4);
  q_bias(0) = T(0.2);
  q_bias(1) = T(0.6);
  egp.set_weights(p_kernel, p_bias, q_kernel, q_bias);
  RowMatrix<T> h(2, 2);
  h << 1, 2,  // u = (1, 2, 0, 0): q = (1, 0), k = (2, 0), β = (1.1, 4.3, 0, 1)
      3, 5;   // u = (3, 5, 0, 0): q = (3, 0), k = (5, 0), β = (3.1, 10.3, 0, 3)
  auto out = poisoned<T>(1, 2, 2);
  egp.scores(h, as_tensor(out, 1, 2, 2));
  const double r2 = std::sqrt(2.0), c1 = std::cos(1.0);
  // s_α(i,j) = q_i^T R_{j−i} k_j/√2 + β_i[2α+1] + β_j[2α]
  const double expected[2][2][2] = {
      {{2 / r2 + 4.3 + 1.1, 5 * c1 / r2 + 4.3 + 3.1}, {-kInf, 15 / r2 + 10.3 + 3.1}},
      {{2 / r2 + 1 + 0, 5 * c1 / r2 + 1 + 0}, {-kInf, 15 / r2 + 3 + 0}},
  };
  const double tol = std::is_same_v<T, float> ? 4e-6 : 1e-14;
  for (Index a = 0; a < 2; ++a)
    for (Index i = 0; i < 2; ++i)
      for (Index j = 0; j < 2; ++j) {
        CAPTURE(a, i, j);
        const T v = out[static_cast<std::size_t>((a * 2 + i) * 2 + j)];
        if (i > j)
          REQUIRE(v == -std::numeric_limits<T>::infinity());
        else
          REQUIRE(std::abs(v - expected[a][i][j]) <= tol);
      }
}

TEST_CASE("decode_spans returns exactly the spans scoring strictly above the threshold",
          "[global_pointer][decode]") {
  const Index batch = 2, types = 2, n = 5;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> s(static_cast<std::size_t>(batch * types * n * n), -1.0f);
  auto at = [&](Index b, Index a, Index i, Index j) -> float& {
    return s[static_cast<std::size_t>(((b * types + a) * n + i) * n + j)];
  };
  at(0, 0, 0, 4) = 2.0f;  // outer entity
  at(0, 0, 1, 2) = 0.5f;  // nested inside (0, 4)
  at(0, 0, 1, 1) = 0.1f;  // nested single token
  at(0, 1, 1, 3) = 3.0f;  // overlaps (2, 4) of the same type
  at(0, 1, 2, 4) = 1e-30f;
  at(0, 1, 0, 0) = 0.0f;          // equal to the threshold: not decoded
  at(0, 1, 3, 1) = 5.0f;          // lower triangle: never decoded
  at(1, 0, 0, 1) = 1.0f;          // sequence 1 has length 3
  at(1, 0, 2, 3) = 9.0f;          // column 3 is padding
  at(1, 0, 3, 3) = 9.0f;          // row 3 is padding
  at(1, 1, 0, 2) = nan;           // NaN is not > threshold
  at(1, 1, 2, 2) = std::numeric_limits<float>::infinity();
  const Tensor4 scores(s.data(), batch, types, n, n);
  const xfmr::IdVector lengths = ids({5, 3});

  auto keys = [](const std::vector<xfmr::Span>& spans) {
    std::vector<SpanKey> k;
    for (const auto& x : spans) k.emplace_back(x.sequence, x.type, x.start, x.end);
    return k;
  };
  const auto spans = xfmr::decode_spans(scores, lengths);
  const std::vector<SpanKey> expected = {{0, 0, 0, 4}, {0, 0, 1, 1}, {0, 0, 1, 2}, {0, 1, 1, 3},
                                         {0, 1, 2, 4}, {1, 0, 0, 1}, {1, 1, 2, 2}};
  REQUIRE(keys(spans) == expected);
  REQUIRE(spans[0].score == 2.0);
  REQUIRE(spans[2].score == 0.5);

  // Threshold is strict and configurable.
  const std::vector<SpanKey> above_half = {{0, 0, 0, 4}, {0, 1, 1, 3}, {1, 0, 0, 1}, {1, 1, 2, 2}};
  REQUIRE(keys(xfmr::decode_spans(scores, lengths, 0.5)) == above_half);
  // Without lengths every position is real: the padded (1, 0, 2, 3) and (3, 3) now count.
  const auto all = keys(xfmr::decode_spans(scores));
  REQUIRE(std::count(all.begin(), all.end(), SpanKey{1, 0, 2, 3}) == 1);
  REQUIRE(std::count(all.begin(), all.end(), SpanKey{1, 0, 3, 3}) == 1);
  REQUIRE(std::count(all.begin(), all.end(), SpanKey{0, 1, 3, 1}) == 0);
  // Tensor and const-map overloads agree.
  Eigen::Tensor<float, 4, Eigen::RowMajor> owned = scores;
  REQUIRE(keys(xfmr::decode_spans(owned, lengths)) == expected);
  const Eigen::TensorMap<const Eigen::Tensor<float, 4, Eigen::RowMajor>> cmap(s.data(), batch,
                                                                              types, n, n);
  REQUIRE(keys(xfmr::decode_spans(cmap, lengths)) == expected);

  XFMR_REQUIRE_INVALID(xfmr::decode_spans(scores, lengths, kInf), "threshold must be finite");
  XFMR_REQUIRE_INVALID(xfmr::decode_spans(scores, lengths, std::nan("")),
                       "threshold must be finite");
  XFMR_REQUIRE_INVALID(xfmr::decode_spans(scores, ids({5})), "lengths.size() == 2 (got 1)");
  XFMR_REQUIRE_INVALID(xfmr::decode_spans(scores, ids({5, 6})), "lengths must be in [0, 5]");
  XFMR_REQUIRE_INVALID(xfmr::decode_spans(scores, ids({-1, 2})), "(got lengths[0]=-1)");
  const Tensor4 not_square(s.data(), batch, types, n, n - 1);
  XFMR_REQUIRE_INVALID(xfmr::decode_spans(not_square), "equal last two dimensions (got 5x4)");
}

TEST_CASE("GlobalPointer and EGP reject bad configurations, weights and shapes",
          "[global_pointer][errors]") {
  xfmr::GlobalPointerConfig good;
  good.hidden_size = 6;
  good.types = 2;
  good.head_size = 4;
  auto with = [&](auto edit) {
    xfmr::GlobalPointerConfig c = good;
    edit(c);
    return c;
  };
  using GP = xfmr::GlobalPointer<float>;
  using EGP = xfmr::EfficientGlobalPointer<float>;
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.hidden_size = 0; })),
                       "xfmr::GlobalPointer: hidden_size must be > 0 (got hidden_size=0)");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.types = 0; })), "types must be >= 1 (got types=0)");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.head_size = 5; })),
                       "head_size must be even and > 0: RoPE rotates channel pairs "
                       "(got head_size=5)");
  XFMR_REQUIRE_INVALID(EGP(with([](auto& c) { c.head_size = 0; })),
                       "xfmr::EfficientGlobalPointer: head_size must be even");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.mask_value = std::nan(""); })),
                       "mask_value must not be NaN or +inf");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.mask_value = kInf; })),
                       "mask_value must not be NaN or +inf");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.cached_positions = -1; })),
                       "cached_positions must be >= 0");
  XFMR_REQUIRE_INVALID(GP(with([](auto& c) { c.rope_base = 1.0; })), "base");

  GP gp(good);
  std::vector<float> buf(2 * 2 * 3 * 3);
  RowMatrix<float> hidden = RowMatrix<float>::Ones(6, 6);
  REQUIRE_THROWS_AS(gp.scores(hidden, Tensor4(buf.data(), 2, 2, 3, 3)), std::logic_error);
  REQUIRE_THROWS_WITH(gp.scores(hidden, Tensor4(buf.data(), 2, 2, 3, 3)),
                      Catch::Contains("call set_weights before scores"));
  XFMR_REQUIRE_INVALID(gp.set_weights(RowMatrix<float>::Zero(16, 6)),
                       "kernel must be hidden_size x types*2*head_size = 6x16 (got 16x6)");
  XFMR_REQUIRE_INVALID(gp.set_weights(RowMatrix<float>::Zero(6, 16), RowVector<float>::Zero(15)),
                       "bias must have types*2*head_size = 16 values (got 15)");
  gp.set_weights(RowMatrix<float>::Zero(6, 16));

  XFMR_REQUIRE_INVALID(gp.scores(hidden, Tensor4(buf.data(), 2, 3, 3, 2)),
                       "out must be [batch, types=2, n, n] (got [2, 3, 3, 2])");
  XFMR_REQUIRE_INVALID(gp.scores(RowMatrix<float>::Ones(6, 5), Tensor4(buf.data(), 2, 2, 3, 3)),
                       "hidden must have hidden_size=6 columns (got 6x5)");
  XFMR_REQUIRE_INVALID(gp.scores(RowMatrix<float>::Ones(5, 6), Tensor4(buf.data(), 2, 2, 3, 3)),
                       "hidden must have batch*n = 6 rows");
  const xfmr::IdVector one = ids({3}), too_long = ids({3, 4}), negative = ids({3, -1});
  XFMR_REQUIRE_INVALID(gp.scores(hidden, one, Tensor4(buf.data(), 2, 2, 3, 3)),
                       "lengths.size() == batch=2 (got 1)");
  XFMR_REQUIRE_INVALID(gp.scores(hidden, too_long, Tensor4(buf.data(), 2, 2, 3, 3)),
                       "lengths must be in [0, n=3] (got lengths[1]=4)");
  XFMR_REQUIRE_INVALID(gp.scores(hidden, negative, Tensor4(buf.data(), 2, 2, 3, 3)),
                       "(got lengths[1]=-1)");
  XFMR_REQUIRE_INVALID(gp.scores(hidden, Tensor4(buf.data(), 2, 2, 3, 3), -2),
                       "position_offset must be >= 0 (got -2)");

  EGP egp(good);
  REQUIRE_THROWS_AS(egp.scores(hidden, Tensor4(buf.data(), 2, 2, 3, 3)), std::logic_error);
  const RowMatrix<float> p = RowMatrix<float>::Zero(6, 8), q = RowMatrix<float>::Zero(8, 4);
  const RowVector<float> pb = RowVector<float>::Zero(8), qb = RowVector<float>::Zero(4);
  XFMR_REQUIRE_INVALID(egp.set_weights(q, pb, q, qb),
                       "p_kernel must be hidden_size x 2*head_size = 6x8 (got 8x4)");
  XFMR_REQUIRE_INVALID(egp.set_weights(p, qb, q, qb), "p_bias must have 2*head_size = 8 values");
  XFMR_REQUIRE_INVALID(egp.set_weights(p, pb, p, qb),
                       "q_kernel must be 2*head_size x 2*types = 8x4 (got 6x8)");
  XFMR_REQUIRE_INVALID(egp.set_weights(p, pb, q, pb),
                       "q_bias must have 2*types = 4 values (got 8)");
  egp.set_weights(p, pb, q, qb);
  XFMR_REQUIRE_INVALID(egp.scores(hidden, too_long, Tensor4(buf.data(), 2, 2, 3, 3)),
                       "xfmr::EfficientGlobalPointer: lengths must be in [0, n=3]");
  // Zero weights and a zero-length sequence: everything in the padded sequence is masked.
  const xfmr::IdVector lens = ids({3, 0});
  egp.scores(hidden, lens, Tensor4(buf.data(), 2, 2, 3, 3));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (std::size_t e = 18; e < buf.size(); ++e) REQUIRE(buf[e] == neg_inf);
  REQUIRE(buf[1] == 0.0f);
  REQUIRE(buf[3] == neg_inf);
}

TEMPLATE_TEST_CASE("The [batch, n, hidden] tensor overloads equal the matrix path",
                   "[global_pointer][tensor]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(5);
  const Index batch = 3, n = 7, D = 10, types = 2, d = 4;
  xfmr::GlobalPointerConfig config;
  config.hidden_size = D;
  config.types = types;
  config.head_size = d;
  xfmr::GlobalPointer<T> gp(config);
  gp.set_weights(xfmr_test::random_matrix<T>(rng, D, types * 2 * d),
                 random_row<T>(rng, types * 2 * d));
  xfmr::EfficientGlobalPointer<T> egp(config);
  egp.set_weights(xfmr_test::random_matrix<T>(rng, D, 2 * d), random_row<T>(rng, 2 * d),
                  xfmr_test::random_matrix<T>(rng, 2 * d, 2 * types),
                  random_row<T>(rng, 2 * types));
  const RowMatrix<T> hidden = xfmr_test::random_matrix<T>(rng, batch * n, D);
  const xfmr::HiddenTensor<T> tensor(hidden.data(), batch, n, D);
  const xfmr::IdVector lengths = ids({7, 4, 0});
  auto a = poisoned<T>(batch, types, n), b = poisoned<T>(batch, types, n);
  gp.scores(hidden, lengths, as_tensor(a, batch, types, n));
  gp.scores(tensor, lengths, as_tensor(b, batch, types, n));
  REQUIRE(a == b);
  egp.scores(hidden, as_tensor(a, batch, types, n), 5);
  egp.scores(tensor, as_tensor(b, batch, types, n), 5);
  REQUIRE(a == b);
  const xfmr::HiddenTensor<T> wrong(hidden.data(), batch, n - 1, D);
  XFMR_REQUIRE_INVALID(gp.scores(wrong, as_tensor(a, batch, types, n)),
                       "hidden must be [batch=3, n=7, hidden_size] like out (got [3, 6, 10])");
  XFMR_REQUIRE_INVALID(egp.scores(wrong, lengths, as_tensor(a, batch, types, n)),
                       "xfmr::EfficientGlobalPointer: hidden must be [batch=3, n=7");
}
