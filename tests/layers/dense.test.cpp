// SPDX-License-Identifier: MIT
// Dense (layers/dense.hpp) against a naive long-double nn.Linear on every ISA, float and double:
// n ∈ {0, 1, 7, 33, 385} tokens, in/out around the GEMM tile and blocks (nr ± 1, kc ± 1), every
// activation, with and without bias, rows of x and y strided inside larger buffers whose other
// entries must stay untouched, the fused residual (separate and in place), concat (fused QKV),
// and every error with its message.
//
// Tolerance per entry: 1.2·(in + 2)·u·scale + 8·ε·|ref| with scale = Σ|x·w| + |b| (+ |r|), u the
// unit roundoff: the GEMM's classical bound times the activations' slope (≤ 1.13), plus the
// activation's own few ulp. A wrong index, a lost term or a missing bias is off by O(scale).
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/layers/dense.hpp>
#include <xfmr/thread_pool.hpp>

#include "reference/activation.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::ActivationKind;
using xfmr::Dense;
using xfmr::Index;
using xfmr::RowMatrix;

namespace {

template <typename T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

constexpr ActivationKind kKinds[] = {ActivationKind::Identity, ActivationKind::Relu,
                                     ActivationKind::GeluErf, ActivationKind::GeluTanh,
                                     ActivationKind::Silu};

long double act_ref(ActivationKind kind, long double v) {
  switch (kind) {
    case ActivationKind::Relu: return xfmr_ref::relu(v);
    case ActivationKind::GeluErf: return xfmr_ref::gelu_erf(v);
    case ActivationKind::GeluTanh: return xfmr_ref::gelu_tanh(v);
    case ActivationKind::Silu: return xfmr_ref::silu(v);
    case ActivationKind::Identity: break;
  }
  return v;
}

/// Checks y (n × out) against act(x·Wᵀ + b) (+ r) in long double, entry by entry.
template <typename T>
void check_linear(const RowMatrix<T>& x, const RowMatrix<T>& w, const Vector<T>& b,
                  ActivationKind kind, const RowMatrix<T>* residual, const RowMatrix<T>& y) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const Index n = x.rows(), in = x.cols(), out = w.rows();
  REQUIRE(y.rows() == n);
  REQUIRE(y.cols() == out);
  long failures = 0;
  double worst = 0;
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < out; ++j) {
      long double s = 0, scale = 0;
      for (Index p = 0; p < in; ++p) {
        const long double t = static_cast<long double>(x(i, p)) * w(j, p);
        s += t;
        scale += std::fabs(t);
      }
      if (b.size()) {
        s += b[j];
        scale += std::fabs(static_cast<long double>(b[j]));
      }
      long double ref = act_ref(kind, s);
      if (residual) {
        ref += (*residual)(i, j);
        scale += std::fabs(static_cast<long double>((*residual)(i, j)));
      }
      const double tol = static_cast<double>(1.2L * (in + 2) * u * scale + 16 * u * std::fabs(ref));
      const double err = static_cast<double>(std::fabs(static_cast<long double>(y(i, j)) - ref));
      if (!(err <= tol)) ++failures;
      if (err / tol > worst) worst = err / tol;
    }
  INFO("worst error / tolerance " << worst << ", " << failures << " entries over");
  CHECK(failures == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("Dense equals act(x W^T + b) for odd shapes, every activation, with and "
                   "without bias, on every ISA",
                   "[layers][dense]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(401);
  struct Shape {
    Index n, in, out;
  };
  // nr = 16 floats / 8 doubles, kc = 256: columns and k around them, tokens around mr = 6 and
  // the row block.
  const std::vector<Shape> shapes = {{1, 1, 1},   {7, 5, 3},     {33, 17, 15},  {6, 256, 16},
                                     {13, 257, 17}, {385, 31, 17}, {5, 513, 9}, {0, 7, 5},
                                     {7, 40, 385}};
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (std::size_t si = 0; si < shapes.size(); ++si)
      for (const ActivationKind kind : kKinds)
        for (const bool with_bias : {false, true}) {
          const Shape& s = shapes[si];
          // Large shapes (where the reference costs) run Identity and one activation in turn;
          // every activation still meets the tails of every small shape.
          const bool large = s.n * s.in * s.out > 20000;
          if (large && kind != ActivationKind::Identity && kind != kKinds[1 + si % 4]) continue;
          INFO("isa " << Isa::name << ", n=" << s.n << " in=" << s.in << " out=" << s.out
                      << ", " << xfmr::to_string(kind) << (with_bias ? ", bias" : ", no bias"));
          const RowMatrix<T> w = xfmr_test::random_matrix<T>(rng, s.out, s.in);
          const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, s.n, s.in, -2.0, 2.0);
          const Vector<T> b = with_bias ? Vector<T>(xfmr_test::random_matrix<T>(rng, s.out, 1))
                                        : Vector<T>();
          const Dense<T, Isa> dense(w, b, kind);
          CHECK(dense.in_features() == s.in);
          CHECK(dense.out_features() == s.out);
          CHECK(dense.activation() == kind);
          CHECK(dense.has_bias() == with_bias);
          RowMatrix<T> y = RowMatrix<T>::Constant(s.n, s.out, std::numeric_limits<T>::quiet_NaN());
          dense.forward(x, y);
          check_linear<T>(x, w, b, kind, nullptr, y);
        }
  });
}

TEMPLATE_TEST_CASE("Dense reads and writes strided row views and touches nothing else",
                   "[layers][dense]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(402);
  const Index n = 37, in = 41, out = 19;
  const T canary = T(-777.25);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    INFO("isa " << Isa::name);
    // The weight itself is a block of a larger matrix (strided rows at construction).
    RowMatrix<T> wbig = xfmr_test::random_matrix<T>(rng, out + 3, in + 5);
    const RowMatrix<T> w = wbig.block(1, 2, out, in);
    const Vector<T> b = xfmr_test::random_matrix<T>(rng, out, 1);
    const Dense<T, Isa> dense(wbig.block(1, 2, out, in), b, ActivationKind::GeluErf);
    RowMatrix<T> xbig = xfmr_test::random_matrix<T>(rng, n + 2, in + 7);
    RowMatrix<T> ybig = RowMatrix<T>::Constant(n + 4, out + 9, canary);
    dense.forward(xbig.block(1, 3, n, in), ybig.block(2, 5, n, out));
    const RowMatrix<T> x = xbig.block(1, 3, n, in), y = ybig.block(2, 5, n, out);
    check_linear<T>(x, w, b, ActivationKind::GeluErf, nullptr, y);
    ybig.block(2, 5, n, out).setConstant(canary);
    CHECK((ybig.array() == canary).all());
  });
}

TEMPLATE_TEST_CASE("Dense::forward_add fuses the residual: separate, in place (y += ...), and "
                   "strided",
                   "[layers][dense]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(403);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool with_bias : {false, true})
      for (const Index n : {Index(1), Index(7), Index(50)}) {
        INFO("isa " << Isa::name << ", n=" << n << (with_bias ? ", bias" : ", no bias"));
        const Index in = 23, out = 18;
        const RowMatrix<T> w = xfmr_test::random_matrix<T>(rng, out, in);
        const Vector<T> b = with_bias ? Vector<T>(xfmr_test::random_matrix<T>(rng, out, 1))
                                      : Vector<T>();
        const Dense<T, Isa> dense(w, b);
        const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, in);
        const RowMatrix<T> r = xfmr_test::random_matrix<T>(rng, n, out, -3.0, 3.0);
        RowMatrix<T> y(n, out);
        dense.forward_add(x, r, y);
        check_linear<T>(x, w, b, ActivationKind::Identity, &r, y);
        // In place: the residual is y itself, as the strided column block of a larger buffer.
        RowMatrix<T> big = RowMatrix<T>::Zero(n, out + 6);
        big.block(0, 3, n, out) = r;
        dense.forward_add(x, big.block(0, 3, n, out), big.block(0, 3, n, out));
        const RowMatrix<T> y2 = big.block(0, 3, n, out);
        check_linear<T>(x, w, b, ActivationKind::Identity, &r, y2);
        CHECK(y2 == y);  // same operations in the same order
        CHECK(big.leftCols(3).isZero());
        CHECK(big.rightCols(3).isZero());
      }
  });
}

TEMPLATE_TEST_CASE("Dense::concat stacks Linear layers: the same columns, bit for bit, as the "
                   "separate layers",
                   "[layers][dense]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(404);
  const Index n = 29, in = 40;
  const RowMatrix<T> wq = xfmr_test::random_matrix<T>(rng, 24, in);
  const RowMatrix<T> wk = xfmr_test::random_matrix<T>(rng, 24, in);
  const RowMatrix<T> wv = xfmr_test::random_matrix<T>(rng, 13, in);
  const Vector<T> bq = xfmr_test::random_matrix<T>(rng, 24, 1);
  const Vector<T> bv = xfmr_test::random_matrix<T>(rng, 13, 1);
  const RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, n, in);

  SECTION("with biases (one missing: zeros)") {
    const auto qkv = Dense<T>::concat({wq, wk, wv}, {bq, Vector<T>(), bv});
    CHECK(qkv.in_features() == in);
    CHECK(qkv.out_features() == 61);
    RowMatrix<T> y(n, 61);
    qkv.forward(x, y);
    RowMatrix<T> q(n, 24), k(n, 24), v(n, 13);
    Dense<T>(wq, bq).forward(x, q);
    Dense<T>(wk).forward(x, k);
    Dense<T>(wv, bv).forward(x, v);
    CHECK(y.leftCols(24) == q);
    CHECK(y.middleCols(24, 24) == k);
    CHECK(y.rightCols(13) == v);
  }
  SECTION("without biases, with an activation") {
    const auto two = Dense<T>::concat({wq, wv}, {}, ActivationKind::Silu);
    CHECK(!two.has_bias());
    CHECK(two.activation() == ActivationKind::Silu);
    RowMatrix<T> y(n, 37), q(n, 24), v(n, 13);
    two.forward(x, y);
    Dense<T>(wq, ActivationKind::Silu).forward(x, q);
    Dense<T>(wv, ActivationKind::Silu).forward(x, v);
    CHECK(y.leftCols(24) == q);
    CHECK(y.rightCols(13) == v);
  }
  SECTION("errors") {
    const RowMatrix<T> bad = xfmr_test::random_matrix<T>(rng, 5, in + 1);
    XFMR_REQUIRE_INVALID(Dense<T>::concat({wq, bad}),
                         "xfmr::Dense::concat: expected every weight to have in=40 columns (got "
                         "41 for weight 1)");
    XFMR_REQUIRE_INVALID(Dense<T>::concat({wq, wk}, {bq}),
                         "expected 2 biases (one per weight) or none (got 1)");
    XFMR_REQUIRE_INVALID(Dense<T>::concat({wq, wv}, {bq, bq}),
                         "expected bias 1 to have 13 values (its weight's rows) or none (got 24)");
  }
}

TEMPLATE_TEST_CASE("Dense threads: blocks of rows or of column panels, the same bits for any "
                   "thread count and pool",
                   "[layers][dense][threads]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(406);
  struct Shape {
    Index n, in, out;
  };
  // Row blocks (n from a few tiles to several mc blocks), column panels (decoding: n < mr),
  // products too small to split, and a k over two kc blocks (partial sums).
  const std::vector<Shape> shapes = {{385, 40, 70}, {1000, 64, 40}, {3, 384, 1000},
                                     {1, 700, 800}, {13, 9, 5},     {50, 300, 70}};
  xfmr::ThreadPool pool2(2), pool3(3);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const Shape& s : shapes) {
      INFO("isa " << Isa::name << ", n=" << s.n << " in=" << s.in << " out=" << s.out);
      const RowMatrix<T> w = xfmr_test::random_matrix<T>(rng, s.out, s.in);
      const Vector<T> b = xfmr_test::random_matrix<T>(rng, s.out, 1);
      const Dense<T, Isa> gelu(w, b, ActivationKind::GeluErf), lin(w, b);
      // x and y as blocks of larger buffers (strided rows), the rest of y's buffer a guard.
      RowMatrix<T> xbuf = xfmr_test::random_matrix<T>(rng, s.n + 2, s.in + 3, -2.0, 2.0);
      const auto x = xbuf.block(1, 2, s.n, s.in);
      const RowMatrix<T> r = xfmr_test::random_matrix<T>(rng, s.n, s.out);
      RowMatrix<T> one(s.n, s.out), one_add(s.n, s.out);
      gelu.forward(x, one);
      lin.forward_add(x, r, one_add);
      check_linear<T>(RowMatrix<T>(x), w, b, ActivationKind::GeluErf, nullptr, one);
      for (const int threads : {1, 2, 3, 5})
        for (xfmr::ThreadPool* pool :
             {static_cast<xfmr::ThreadPool*>(nullptr), &pool2, &pool3}) {
          INFO("threads " << threads << " pool " << (pool ? pool->threads() : 0));
          RowMatrix<T> ybuf = RowMatrix<T>::Constant(s.n + 3, s.out + 4, T(42));
          auto y = ybuf.block(2, 1, s.n, s.out);
          gelu.forward(x, y, threads, pool);
          REQUIRE(RowMatrix<T>(y) == one);
          lin.forward_add(x, r, y, threads, pool);  // separate residual
          REQUIRE(RowMatrix<T>(y) == one_add);
          y = r;
          lin.forward_add(x, y, y, threads, pool);  // in place: y += x·Wᵀ + b
          REQUIRE(RowMatrix<T>(y) == one_add);
          y.setConstant(T(42));
          REQUIRE((ybuf.array() == T(42)).all());  // nothing outside y written
        }
    }
  });
}

TEMPLATE_TEST_CASE("Dense argument errors name what was expected and what came",
                   "[layers][dense]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(405);
  const RowMatrix<T> w = xfmr_test::random_matrix<T>(rng, 6, 4);
  const Vector<T> b = xfmr_test::random_matrix<T>(rng, 6, 1);
  XFMR_REQUIRE_INVALID(Dense<T>(w, Vector<T>(xfmr_test::random_matrix<T>(rng, 5, 1))),
                       "xfmr::Dense: expected a bias of 6 values (the weight's rows) or none "
                       "(got 5)");
  XFMR_REQUIRE_INVALID(Dense<T>(RowMatrix<T>(0, 4)),
                       "xfmr::Dense: expected a weight of at least 1x1 (out x in) (got 0x4)");
  const Dense<T> dense(w, b);
  RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 3, 4), y(3, 6);
  XFMR_REQUIRE_INVALID(dense.forward(RowMatrix<T>(3, 5), y),
                       "xfmr::Dense: expected x with in_features=4 columns (got 3x5)");
  RowMatrix<T> y_bad(2, 6);
  XFMR_REQUIRE_INVALID(dense.forward(x, y_bad),
                       "xfmr::Dense: expected y of 3x6 (x's rows x out_features) (got 2x6)");
  // y overlapping x: one buffer, x its first 4 columns, y 6 columns from column 2.
  RowMatrix<T> buf = xfmr_test::random_matrix<T>(rng, 3, 8);
  XFMR_REQUIRE_INVALID(dense.forward(buf.leftCols(4), buf.rightCols(6)),
                       "xfmr::Dense: expected y not to overlap x");
  // Column blocks of one buffer that do not share an element are fine.
  RowMatrix<T> buf2 = xfmr_test::random_matrix<T>(rng, 3, 10);
  dense.forward(buf2.leftCols(4), buf2.rightCols(6));
  RowMatrix<T> expect(3, 6);
  dense.forward(RowMatrix<T>(buf2.leftCols(4)), expect);
  CHECK(RowMatrix<T>(buf2.rightCols(6)) == expect);

  RowMatrix<T> r(3, 6);
  XFMR_REQUIRE_INVALID(dense.forward_add(x, RowMatrix<T>(3, 5), y),
                       "xfmr::Dense: expected a residual of 3x6 (got 3x5)");
  RowMatrix<T> ry = RowMatrix<T>::Zero(4, 6);
  XFMR_REQUIRE_INVALID(dense.forward_add(x, ry.topRows(3), ry.bottomRows(3)),
                       "expected a residual that is y itself (same data and stride) or does not "
                       "overlap y (got a partial overlap)");
  XFMR_REQUIRE_INVALID(dense.forward(x, y, 0), "xfmr::Dense: expected threads >= 1 (got 0)");
  XFMR_REQUIRE_INVALID(dense.forward_add(x, r, y, -1),
                       "xfmr::Dense: expected threads >= 1 (got -1)");
  const Dense<T> gelu(w, b, ActivationKind::GeluErf);
  REQUIRE_THROWS_AS(gelu.forward_add(x, r, y), std::logic_error);
  REQUIRE_THROWS_WITH(gelu.forward_add(x, r, y),
                      "xfmr::Dense: forward_add expected activation identity (got gelu_erf)");
}

TEST_CASE("Dense<float> with bf16 weights: act(x·bf16(W)ᵀ + b), and within the bf16 bound of "
          "the exact layer",
          "[layers][dense][bf16]") {
  using xfmr::WeightStorage;
  auto rng = xfmr_test::make_rng(406);
  auto round_bf16 = [](RowMatrix<float> m) {
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = xfmr::to_float(xfmr::to_bf16(m.data()[i]));
    return m;
  };
  for (const Index n : {0, 1, 7, 150})
    for (const Index in : {1, 31, 257})
      for (const Index out : {1, 17, 65}) {
        const ActivationKind kind = kKinds[static_cast<std::size_t>(n + in + out) % 5];
        INFO("n=" << n << " in=" << in << " out=" << out << " act=" << to_string(kind));
        const RowMatrix<float> w = xfmr_test::random_matrix<float>(rng, out, in);
        const Vector<float> b = xfmr_test::random_matrix<float>(rng, out, 1);
        const Dense<float> dense(w, b, kind, WeightStorage::Bf16);
        CHECK(dense.weight_storage() == WeightStorage::Bf16);
        // x exact in bf16: every path (vdpbf16ps rounds x, the others do not) computes the
        // fp32 product of x and bf16(W): the fp32 layer's tolerance applies.
        const RowMatrix<float> xb = round_bf16(xfmr_test::random_matrix<float>(rng, n, in));
        RowMatrix<float> y(n, out);
        dense.forward(xb, y);
        check_linear<float>(xb, round_bf16(w), b, kind, nullptr, y);
        // Any x, against the exact product of the fp32 operands: |Δ| ≤ ((1 + 2^-8)^2 − 1 +
        // 1.2·(in + 2)·u)·scale (activation slopes ≤ 1.13: 1.2 covers them), u = 2^-24.
        if (kind == ActivationKind::Identity) {
          const RowMatrix<float> x = xfmr_test::random_matrix<float>(rng, n, in);
          dense.forward(x, y);
          const long double ub = std::ldexp(1.0L, -8), u = std::ldexp(1.0L, -24);
          for (Index i = 0; i < n; ++i)
            for (Index j = 0; j < out; ++j) {
              long double s = b[j], scale = std::fabs(static_cast<long double>(b[j]));
              for (Index p = 0; p < in; ++p) {
                s += static_cast<long double>(x(i, p)) * w(j, p);
                scale += std::fabs(static_cast<long double>(x(i, p)) * w(j, p));
              }
              const long double tol = (2 * ub + ub * ub + 1.2L * (in + 2) * u) * scale;
              REQUIRE(std::fabs(y(i, j) - s) <= tol);
            }
        }
      }
  SECTION("forward_add and concat keep the storage") {
    const Index n = 9, in = 33;
    const RowMatrix<float> wq = xfmr_test::random_matrix<float>(rng, 20, in);
    const RowMatrix<float> wk = xfmr_test::random_matrix<float>(rng, 12, in);
    const RowMatrix<float> x = round_bf16(xfmr_test::random_matrix<float>(rng, n, in));
    const auto qk = Dense<float>::concat({wq, wk}, {}, ActivationKind::Identity,
                                         WeightStorage::Bf16);
    CHECK(qk.weight_storage() == WeightStorage::Bf16);
    RowMatrix<float> y(n, 32), q(n, 20), k(n, 12);
    qk.forward(x, y);
    Dense<float>(wq, ActivationKind::Identity, WeightStorage::Bf16).forward(x, q);
    Dense<float>(wk, ActivationKind::Identity, WeightStorage::Bf16).forward(x, k);
    CHECK(y.leftCols(20) == q);
    CHECK(y.rightCols(12) == k);
    const RowMatrix<float> r = xfmr_test::random_matrix<float>(rng, n, 20);
    RowMatrix<float> z = r;
    Dense<float>(wq, ActivationKind::Identity, WeightStorage::Bf16).forward_add(x, z, z);
    const RowMatrix<float> want = q + r;
    CHECK((z - want).cwiseAbs().maxCoeff() <= 1e-5f * (1 + want.cwiseAbs().maxCoeff()));
  }
  SECTION("the bf16 kernel: resolved at construction, honoured, the same bits for any threads") {
    using xfmr::simd::Bf16Kernel;
    const Index n = 40, in = 129, out = 70;
    const RowMatrix<float> w = xfmr_test::random_matrix<float>(rng, out, in);
    const Vector<float> b = xfmr_test::random_matrix<float>(rng, out, 1);
    const RowMatrix<float> x = xfmr_test::random_matrix<float>(rng, n, in);  // not exact in bf16
    const RowMatrix<float> wb = round_bf16(w);
    RowMatrix<float> y_dot(n, out), y_widen(n, out), y_auto(n, out), y2(n, out);
    const Dense<float> dot(w, b, ActivationKind::Identity, WeightStorage::Bf16,
                           Bf16Kernel::DotProduct);
    const Dense<float> widen(w, b, ActivationKind::Identity, WeightStorage::Bf16,
                             Bf16Kernel::Widen);
    const Dense<float> automatic(w, b, ActivationKind::Identity, WeightStorage::Bf16);
    const auto resolved = xfmr::simd::gemm_bf16_resolve(Bf16Kernel::Auto);
    CHECK(dot.bf16_kernel() == xfmr::simd::gemm_bf16_resolve(Bf16Kernel::DotProduct));
    CHECK(widen.bf16_kernel() == Bf16Kernel::Widen);
    CHECK(automatic.bf16_kernel() == resolved);
    CHECK(Dense<float>(w).bf16_kernel() == resolved);
    dot.forward(x, y_dot);
    widen.forward(x, y_widen);
    automatic.forward(x, y_auto);
    CHECK(y_auto == (resolved == Bf16Kernel::DotProduct ? y_dot : y_widen));
    xfmr::ThreadPool pool(2);
    dot.forward(x, y2, 3, &pool);
    CHECK(y2 == y_dot);
    widen.forward(x, y2, 3, &pool);
    CHECK(y2 == y_widen);
    // Widen: x unrounded times bf16(W), the fp32 layer's tolerance; DotProduct (where compiled)
    // rounds x too, and so differs from it.
    check_linear<float>(x, wb, b, ActivationKind::Identity, nullptr, y_widen);
    CHECK((y_dot != y_widen) == (dot.bf16_kernel() == Bf16Kernel::DotProduct));
    const auto qk = Dense<float>::concat({w, w}, {}, ActivationKind::Identity,
                                         WeightStorage::Bf16, Bf16Kernel::Widen);
    CHECK(qk.bf16_kernel() == Bf16Kernel::Widen);
  }
  SECTION("bf16 storage is for Dense<float> only") {
    const RowMatrix<double> wd = xfmr_test::random_matrix<double>(rng, 3, 4);
    XFMR_REQUIRE_INVALID(Dense<double>(wd, ActivationKind::Identity, WeightStorage::Bf16),
                         "xfmr::Dense: expected WeightStorage::Native for Dense<double> (got "
                         "bf16: bf16 weights are for Dense<float>)");
    CHECK(Dense<double>(wd).weight_storage() == WeightStorage::Native);
  }
}
