// SPDX-License-Identifier: MIT
// Context-extension variants (SPEC §1.5): each against its defining formula and the identities
// of SPEC §1.7 item 7.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/position/rope.hpp>

#include "reference/rope.hpp"
#include "support/random.hpp"

using xfmr::Index;
using xfmr::RopeScaling;
using xfmr::RopeScalingType;

namespace {

RopeScaling scaling(RopeScalingType type, double s, Index original = 4096) {
  RopeScaling sc;
  sc.type = type;
  sc.factor = s;
  sc.original_max_positions = original;
  return sc;
}

/// Relative difference of two frequency tables, pair by pair.
double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t r = 0; r < a.size(); ++r)
    worst = std::max(worst, std::abs(a[r] - b[r]) / std::abs(b[r]));
  return worst;
}

std::vector<double> plain(Index rot, double base = 10000.0) {
  std::vector<double> f(rot / 2);
  for (Index r = 0; r < rot / 2; ++r) f[r] = std::pow(base, -2.0 * r / rot);
  return f;
}

constexpr double kTol = 1e-14;  // pow vs exp(log) and a few products: a few double ulps

}  // namespace

TEST_CASE("Every scaling variant is the identity at factor 1", "[rope][scaling]") {
  for (const auto type : {RopeScalingType::None, RopeScalingType::Linear, RopeScalingType::NtkAware,
                          RopeScalingType::NtkFixed, RopeScalingType::NtkMixed,
                          RopeScalingType::DynamicNtk, RopeScalingType::Yarn,
                          RopeScalingType::Llama3}) {
    CAPTURE(static_cast<int>(type));
    auto sc = scaling(type, 1.0);
    sc.dynamic_length = 100000;
    CHECK(max_rel_diff(xfmr::rope_inv_freq(128, 10000.0, sc), plain(128)) <= kTol);
    CHECK(xfmr::rope_attention_factor(sc) == 1.0);
  }
}

TEST_CASE("Linear scaling (PI) is rotation at position p / s", "[rope][scaling]") {
  auto rng = xfmr_test::make_rng(11);
  const double s = 4;
  CHECK(max_rel_diff(xfmr::rope_inv_freq(64, 10000.0, scaling(RopeScalingType::Linear, s)),
                     [] { auto f = plain(64); for (auto& v : f) v /= 4; return f; }()) <= kTol);
  xfmr::RopeConfig cfg;
  cfg.head_dim = 64;
  cfg.scaling = scaling(RopeScalingType::Linear, s);
  const xfmr::Rope<double> rope(cfg);
  const auto x = xfmr_test::random_matrix<double>(rng, 5, 128);
  xfmr::RowMatrix<double> y(5, 128);
  rope.apply(x, y, 1001);
  std::vector<long double> fractional;
  for (int t = 0; t < 5; ++t) fractional.push_back((1001.0L + t) / 4);
  const auto ref = xfmr_ref::rope(x, 64, 64, true, fractional, xfmr_ref::inv_freq(64, 10000.0L));
  CHECK((y.cast<long double>() - ref).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("NTK-aware scaling enlarges the base to b * s^(d/(d-2))", "[rope][scaling]") {
  const double s = 8, d = 96;
  const double b = 10000.0 * std::pow(s, d / (d - 2));
  const auto f = xfmr::rope_inv_freq(96, 10000.0, scaling(RopeScalingType::NtkAware, s));
  CHECK(max_rel_diff(f, plain(96, b)) <= kTol);
  CHECK(f[0] == 1.0);                            // the highest frequency is untouched
  CHECK(std::abs(f.back() / plain(96).back() * s - 1) <= 1e-12);  // the lowest is exactly PI
}

TEST_CASE("NTK-fixed ends at PI; NTK-mixed with beta 1 is fixed, with beta 0 is PI",
          "[rope][scaling]") {
  const Index d = 128;
  const double s = 12;
  const auto fixed = xfmr::rope_inv_freq(d, 10000.0, scaling(RopeScalingType::NtkFixed, s));
  const auto base = plain(d);
  for (Index r = 0; r < d / 2; ++r)
    CHECK(std::abs(fixed[r] / (base[r] * std::pow(s, -2.0 * (r + 1) / d)) - 1) <= kTol);
  CHECK(std::abs(fixed.back() * s / base.back() - 1) <= kTol);

  auto mixed = scaling(RopeScalingType::NtkMixed, s);
  mixed.mixed_beta = 1.0;
  CHECK(max_rel_diff(xfmr::rope_inv_freq(d, 10000.0, mixed), fixed) <= kTol);
  mixed.mixed_beta = 0.0;
  CHECK(max_rel_diff(xfmr::rope_inv_freq(d, 10000.0, mixed),
                     xfmr::rope_inv_freq(d, 10000.0, scaling(RopeScalingType::Linear, s))) <= kTol);
  mixed.mixed_beta = 0.75;  // the rerope repo's setting: a = ln s / (d/2)^β
  const auto f = xfmr::rope_inv_freq(d, 10000.0, mixed);
  const double a = std::log(s) / std::pow(d / 2.0, 0.75);
  for (Index r = 0; r < d / 2; ++r)
    CHECK(std::abs(f[r] / (base[r] * std::exp(-a * std::pow(r + 1.0, 0.75))) - 1) <= kTol);
}

TEST_CASE("Dynamic NTK is plain inside the training length and NTK-aware with the grown factor "
          "beyond it",
          "[rope][scaling]") {
  auto sc = scaling(RopeScalingType::DynamicNtk, 4, 2048);
  sc.dynamic_length = 2048;
  CHECK(max_rel_diff(xfmr::rope_inv_freq(64, 10000.0, sc), plain(64)) <= kTol);
  sc.dynamic_length = 6000;
  const double s_eff = 4.0 * 6000 / 2048 - 3;
  CHECK(max_rel_diff(xfmr::rope_inv_freq(64, 10000.0, sc),
                     plain(64, 10000.0 * std::pow(s_eff, 64.0 / 62))) <= kTol);
}

TEST_CASE("YaRN keeps pairs below lo, interpolates pairs above hi, ramps between, and scales "
          "tables by mu",
          "[rope][scaling]") {
  // SPEC §1.5.4 example: d_rot = 128, b = 1e4, L = 4096 gives lo = 20, hi = 46.
  const Index d = 128;
  const double s = 16;
  const auto sc = scaling(RopeScalingType::Yarn, s, 4096);
  const auto f = xfmr::rope_inv_freq(d, 10000.0, sc);
  const auto base = plain(d);
  for (Index r = 0; r <= 20; ++r) CHECK(std::abs(f[r] / base[r] - 1) <= kTol);
  for (Index r = 46; r < d / 2; ++r) CHECK(std::abs(f[r] * s / base[r] - 1) <= kTol);
  for (Index r = 21; r < 46; ++r) {
    const double gamma = (r - 20.0) / 26.0;
    CHECK(std::abs(f[r] / (base[r] / s * gamma + base[r] * (1 - gamma)) - 1) <= kTol);
  }
  const double mu = 0.1 * std::log(s) + 1;
  CHECK(xfmr::rope_attention_factor(sc) == Approx(mu).epsilon(1e-15));

  // Tables carry mu: every rotated head vector has norm mu·|x|, so logits scale by mu².
  auto rng = xfmr_test::make_rng(12);
  xfmr::RopeConfig cfg;
  cfg.head_dim = d;
  cfg.scaling = sc;
  const xfmr::Rope<double> rope(cfg);
  CHECK(rope.attention_factor() == Approx(mu).epsilon(1e-15));
  const auto x = xfmr_test::random_matrix<double>(rng, 3, d);
  xfmr::RowMatrix<double> y(3, d);
  rope.apply(x, y, 5000);
  for (Index t = 0; t < 3; ++t) CHECK(y.row(t).norm() == Approx(mu * x.row(t).norm()).epsilon(1e-13));

  auto explicit_mu = sc;
  explicit_mu.yarn_attention_factor = 1.5;
  CHECK(xfmr::rope_attention_factor(explicit_mu) == 1.5);
}

TEST_CASE("Llama-3.1 scaling keeps short wavelengths, interpolates long ones, blends between",
          "[rope][scaling]") {
  const Index d = 128;
  const double s = 8, L = 8192;
  const auto f = xfmr::rope_inv_freq(d, 500000.0, scaling(RopeScalingType::Llama3, s, 8192));
  const auto base = plain(d, 500000.0);
  int kept = 0, interpolated = 0, blended = 0;
  for (Index r = 0; r < d / 2; ++r) {
    const double wavelength = 2 * xfmr::detail::kPi / base[r];
    if (wavelength < L / 4) {
      CHECK(std::abs(f[r] / base[r] - 1) <= kTol);
      ++kept;
    } else if (wavelength > L) {
      CHECK(std::abs(f[r] * s / base[r] - 1) <= kTol);
      ++interpolated;
    } else {
      const double smooth = (L / wavelength - 1) / 3;
      CHECK(std::abs(f[r] / ((1 - smooth) * base[r] / s + smooth * base[r]) - 1) <= kTol);
      ++blended;
    }
  }
  CHECK(kept > 0);
  CHECK(interpolated > 0);
  CHECK(blended > 0);
}

TEST_CASE("log-n query scale is 1 inside the training window and log_L(i+1) beyond",
          "[rope][scaling]") {
  CHECK(xfmr::log_n_query_scale(0, 4096) == 1.0);
  CHECK(xfmr::log_n_query_scale(4095, 4096) == 1.0);
  CHECK(xfmr::log_n_query_scale(4096 * 4096 - 1, 4096) == Approx(2.0).epsilon(1e-15));
  xfmr::RowMatrix<float> q = xfmr::RowMatrix<float>::Ones(6, 3);
  xfmr::scale_queries_log_n(q, 4093, 4096);  // positions 4093 … 4098
  for (Index t = 0; t < 6; ++t)
    CHECK(q(t, 2) == static_cast<float>(std::max(1.0, std::log(4094.0 + t) / std::log(4096.0))));
  CHECK(q(2, 0) == 1.0f);
  CHECK(q(5, 1) > 1.0f);
}

TEST_CASE("Inconsistent scaling configurations throw with the field named", "[rope][scaling][errors]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, scaling(RopeScalingType::Linear, 0.5)),
                    Contains("scaling.factor must be finite and >= 1") && Contains("0.5"));
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, scaling(RopeScalingType::NtkAware, NAN)),
                    Contains("scaling.factor"));
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, scaling(RopeScalingType::Yarn, 4, 0)),
                    Contains("original_max_positions") && Contains("Yarn"));
  auto yarn = scaling(RopeScalingType::Yarn, 4);
  yarn.yarn_beta_fast = 0.5;
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, yarn), Contains("yarn_beta_fast > yarn_beta_slow"));
  auto mixed = scaling(RopeScalingType::NtkMixed, 4);
  mixed.mixed_beta = -1;
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, mixed), Contains("mixed_beta"));
  auto llama = scaling(RopeScalingType::Llama3, 8);
  llama.llama3_high_freq_factor = 0.5;
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, llama), Contains("llama3_high_freq_factor"));
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1e4, scaling(static_cast<RopeScalingType>(42), 2)),
                    Contains("RopeScalingType") && Contains("42"));
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(7, 1e4), Contains("rotary_dim must be even") && Contains("7"));
  CHECK_THROWS_WITH(xfmr::rope_inv_freq(64, 1.0), Contains("base must be finite and > 1"));
  CHECK_THROWS_WITH(xfmr::log_n_query_scale(3, 1), Contains("training_length must be >= 2"));
  xfmr::RowMatrix<double> q(2, 2);
  CHECK_THROWS_WITH(xfmr::scale_queries_log_n(q, -1, 512), Contains("pos0 must be >= 0"));
}
