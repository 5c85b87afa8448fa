// SPDX-License-Identifier: MIT
// layers/activation.hpp: HF activation names, to_string, and apply_activation in place on strided
// views (equal, bit for bit, to the row kernel; padding columns untouched) on every ISA.
#include <limits>
#include <string>

#include <catch2/catch.hpp>
#include <xfmr/layers/activation.hpp>

#include "support/isa_list.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using xfmr::ActivationKind;
using xfmr::activation_from_name;
using xfmr::Index;
using xfmr::RowMatrix;

TEST_CASE("activation_from_name maps HF hidden_act names", "[layers][activation]") {
  CHECK(activation_from_name("gelu") == ActivationKind::GeluErf);
  CHECK(activation_from_name("gelu_python") == ActivationKind::GeluErf);
  CHECK(activation_from_name("gelu_new") == ActivationKind::GeluTanh);
  CHECK(activation_from_name("gelu_pytorch_tanh") == ActivationKind::GeluTanh);
  CHECK(activation_from_name("gelu_fast") == ActivationKind::GeluTanh);
  CHECK(activation_from_name("gelu_accurate") == ActivationKind::GeluTanh);
  CHECK(activation_from_name("relu") == ActivationKind::Relu);
  CHECK(activation_from_name("silu") == ActivationKind::Silu);
  CHECK(activation_from_name("swish") == ActivationKind::Silu);
  CHECK(activation_from_name("linear") == ActivationKind::Identity);
  XFMR_REQUIRE_INVALID(activation_from_name("quick_gelu"),
                       "xfmr::activation_from_name: expected one of gelu, gelu_python, gelu_new, "
                       "gelu_pytorch_tanh, gelu_fast, gelu_accurate, relu, silu, swish, linear "
                       "(got \"quick_gelu\")");
  XFMR_REQUIRE_INVALID(activation_from_name("GELU"), "(got \"GELU\")");
  XFMR_REQUIRE_INVALID(activation_from_name(""), "(got \"\")");
}

TEST_CASE("to_string names every ActivationKind", "[layers][activation]") {
  CHECK(std::string(xfmr::to_string(ActivationKind::Identity)) == "identity");
  CHECK(std::string(xfmr::to_string(ActivationKind::Relu)) == "relu");
  CHECK(std::string(xfmr::to_string(ActivationKind::GeluErf)) == "gelu_erf");
  CHECK(std::string(xfmr::to_string(ActivationKind::GeluTanh)) == "gelu_tanh");
  CHECK(std::string(xfmr::to_string(ActivationKind::Silu)) == "silu");
}

TEMPLATE_TEST_CASE("apply_activation works in place on strided views, as the row kernel does",
                   "[layers][activation]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(601);
  const Index rows = 11, cols = 21;
  auto run = [&](ActivationKind kind, auto f) {
    xfmr_test::for_each_isa([&](auto isa) {
      using Isa = decltype(isa);
      INFO("isa " << Isa::name << ", " << xfmr::to_string(kind));
      const RowMatrix<T> big0 = xfmr_test::random_matrix<T>(rng, rows, cols + 6, -5.0, 5.0);
      RowMatrix<T> big = big0;
      xfmr::apply_activation<T, Isa>(kind, big.block(0, 2, rows, cols));
      RowMatrix<T> want = big0;
      for (Index r = 0; r < rows; ++r)
        xfmr::simd::activation_row<Isa>(f, big0.data() + r * (cols + 6) + 2,
                                        want.data() + r * (cols + 6) + 2, cols);
      CHECK(big == want);
      CHECK(big.leftCols(2) == big0.leftCols(2));
      CHECK(big.rightCols(4) == big0.rightCols(4));
      if (kind != ActivationKind::Identity) CHECK(big != big0);
      // Contiguous matrix too.
      RowMatrix<T> m = big0.leftCols(cols), mw = m;
      xfmr::apply_activation<T, Isa>(kind, m);
      xfmr::simd::activation_row<Isa>(f, mw.data(), mw.data(), mw.size());
      CHECK(m == mw);
    });
  };
  run(ActivationKind::Identity, xfmr::simd::Identity{});
  run(ActivationKind::Relu, xfmr::simd::Relu{});
  run(ActivationKind::GeluErf, xfmr::simd::GeluErf{});
  run(ActivationKind::GeluTanh, xfmr::simd::GeluTanh{});
  run(ActivationKind::Silu, xfmr::simd::Silu{});
}
