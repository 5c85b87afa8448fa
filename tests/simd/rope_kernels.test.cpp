// SPDX-License-Identifier: MIT
// The raw rotation kernels simd::rope_half_split and simd::rope_interleaved against explicit
// 2×2 rotations (reference/rope_kernels.hpp), on scalar_isa and native_isa: both directions,
// rot around the vector width, misaligned x, c/s and y, in place and out of place, NaN-poisoned
// outputs, canaries and page-end buffers, and nothing written at or beyond rot.
//
// Tolerance, per output, relative to the norm of its input pair ‖(x_a, x_b)‖: 4·u_T with
// u_T = 2^-24 (float) or 2^-53 (double). Each output is x_a·c − x_b·s (or x_b·c + x_a·s) from one
// rounded product and one fused multiply-add: errors ≤ u·|x_a·c| + u·|result| ≤ 2u·‖x‖, since
// |c|, |s| ≤ 1 and |result| ≤ ‖x‖·‖(c, s)‖ ≈ ‖x‖. An unfused scalar build rounds x_a·c, x_b·s
// and their difference: ≤ u(|x_a c| + |x_b s|) + u|result| ≤ (√2 + 1)u·‖x‖ ≈ 2.4u·‖x‖. The
// reference works on the same T-valued c and s in long double, so it adds no angle error and
// only 2^-64 of rounding; 4u leaves a margin over 2.4u without hiding a wrong sign or index
// (those give errors of order ‖x‖).
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/rope.hpp>

#include "reference/rope_kernels.hpp"
#include "support/guarded.hpp"
#include "support/isa_list.hpp"
#include "support/page_guard.hpp"
#include "support/random.hpp"

using xfmr::simd::Rotation;

namespace {

constexpr std::size_t kOffsets[] = {0, 1, 3};
constexpr bool kLayouts[] = {false, true};  // interleaved?
constexpr Rotation kDirections[] = {Rotation::Forward, Rotation::Inverse};

template <class Isa, typename T>
void rotate(bool interleaved, Rotation dir, const T* x, const T* c, const T* s, T* y,
            std::size_t rot) {
  using xfmr::simd::rope_half_split;
  using xfmr::simd::rope_interleaved;
  if (interleaved) {
    if (dir == Rotation::Forward)
      rope_interleaved<Isa, Rotation::Forward>(x, c, s, y, rot);
    else
      rope_interleaved<Isa, Rotation::Inverse>(x, c, s, y, rot);
  } else {
    if (dir == Rotation::Forward)
      rope_half_split<Isa, Rotation::Forward>(x, c, s, y, rot);
    else
      rope_half_split<Isa, Rotation::Inverse>(x, c, s, y, rot);
  }
}

template <typename T>
constexpr double unit_roundoff() {
  return std::numeric_limits<T>::epsilon() / 2;  // 2^-24 / 2^-53
}

/// rot values around the native width W: 2, W−2, W, W+2, 2W, 2W+2, 4W+6, 130, 1002 (even and
/// positive ones only; with W = 1 under XFMR_FORCE_SCALAR the odd ones drop out), and the sizes
/// the multi-head kernels compile separately (32, 64, 128: detail::with_rope_size).
template <typename T>
std::vector<std::size_t> rot_sizes() {
  const long W = static_cast<long>(xfmr::simd::Vec<T, xfmr::simd::native_isa>::lanes);
  std::vector<std::size_t> out;
  for (const long r : {2L, W - 2, W, W + 2, 2 * W, 2 * W + 2, 4 * W + 6, 32L, 64L, 128L, 130L,
                       1002L})
    if (r > 0 && r % 2 == 0) out.push_back(static_cast<std::size_t>(r));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

template <typename T>
struct Inputs {
  std::vector<T> x, c, s;
};

/// x in [−2, 2]; (c, s) = (cos θ, sin θ) rounded to T, θ uniform in [−π, π].
template <typename T>
Inputs<T> random_inputs(std::mt19937_64& rng, std::size_t rot) {
  std::uniform_real_distribution<double> ux(-2.0, 2.0), ut(-3.141592653589793, 3.141592653589793);
  Inputs<T> in;
  in.x.resize(rot);
  in.c.resize(rot / 2);
  in.s.resize(rot / 2);
  for (auto& v : in.x) v = static_cast<T>(ux(rng));
  for (std::size_t i = 0; i < rot / 2; ++i) {
    const double t = ut(rng);
    in.c[i] = static_cast<T>(std::cos(t));
    in.s[i] = static_cast<T>(std::sin(t));
  }
  return in;
}

/// Largest |y − ref| / ‖(x_a, x_b)‖ over all outputs, in units of u_T; +inf if any y is NaN.
template <typename T>
double error_in_u(const T* y, const std::vector<long double>& ref, const T* x, std::size_t rot,
                  bool interleaved) {
  double worst = 0;
  for (std::size_t i = 0; i < rot / 2; ++i) {
    std::size_t a, b;
    xfmr_ref::kernel_pair(i, rot, interleaved, a, b);
    const long double norm = std::max(std::hypot(static_cast<long double>(x[a]),
                                                 static_cast<long double>(x[b])),
                                      static_cast<long double>(std::numeric_limits<T>::min()));
    for (const std::size_t k : {a, b}) {
      const long double e = std::fabs(y[k] - ref[k]) / norm / unit_roundoff<T>();
      if (!(e <= worst)) worst = std::isnan(static_cast<double>(e))
                                     ? std::numeric_limits<double>::infinity()
                                     : static_cast<double>(e);
    }
  }
  return worst;
}

template <class Isa, typename T>
void rotate_heads(bool interleaved, Rotation dir, const T* x, const T* c, const T* s, T* y,
                  std::size_t rot, std::size_t heads, std::size_t stride,
                  xfmr::simd::StoreHint hint = xfmr::simd::StoreHint::Cached) {
  using xfmr::simd::rope_half_split_heads;
  using xfmr::simd::rope_interleaved_heads;
  if (interleaved) {
    if (dir == Rotation::Forward)
      rope_interleaved_heads<Isa, Rotation::Forward>(x, c, s, y, rot, heads, stride, hint);
    else
      rope_interleaved_heads<Isa, Rotation::Inverse>(x, c, s, y, rot, heads, stride, hint);
  } else {
    if (dir == Rotation::Forward)
      rope_half_split_heads<Isa, Rotation::Forward>(x, c, s, y, rot, heads, stride, hint);
    else
      rope_half_split_heads<Isa, Rotation::Inverse>(x, c, s, y, rot, heads, stride, hint);
  }
}

const char* layout_name(bool interleaved) { return interleaved ? "interleaved" : "half-split"; }
const char* dir_name(Rotation d) { return d == Rotation::Forward ? "forward" : "inverse"; }

}  // namespace

TEMPLATE_TEST_CASE("rope kernels match explicit 2x2 rotations for every rot, misalignment and "
                   "placement",
                   "[simd][rope]", float, double) {
  using T = TestType;
  constexpr double tol = 4.0;  // in units of u·‖pair‖, see the file comment
  auto rng = xfmr_test::make_rng(301);
  const auto rots = rot_sizes<T>();
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool inter : kLayouts)
      for (const Rotation dir : kDirections)
        for (const std::size_t rot : rots) {
          INFO("isa " << Isa::name << ", " << layout_name(inter) << ", " << dir_name(dir)
                      << ", rot " << rot);
          const std::size_t h = rot / 2;
          const auto in = random_inputs<T>(rng, rot);
          const auto ref = xfmr_ref::kernel_rotate(in.x.data(), in.c.data(), in.s.data(), rot,
                                                   inter, dir == Rotation::Inverse);
          double worst = 0;
          long bad_err = 0, bad_guard = 0, bad_input = 0;
          std::string first_bad;
          const auto note = [&](long& counter, bool ok, const std::string& where) {
            if (ok) return;
            if (first_bad.empty()) first_bad = where;
            ++counter;
          };
          for (const std::size_t ox : kOffsets)
            for (const std::size_t ocs : kOffsets) {
              xfmr_test::Guarded<T> c(h, ocs), s(h, (ocs + 1) % 4);  // c and s differ too
              std::copy(in.c.begin(), in.c.end(), c.data());
              std::copy(in.s.begin(), in.s.end(), s.data());
              for (const std::size_t oy : kOffsets) {
                std::ostringstream where;
                where << "out of place, offsets x " << ox << " c/s " << ocs << " y " << oy;
                xfmr_test::Guarded<T> x(rot, ox), y(rot, oy);  // y is NaN-poisoned
                std::copy(in.x.begin(), in.x.end(), x.data());
                rotate<Isa>(inter, dir, x.data(), c.data(), s.data(), y.data(), rot);
                const double e = error_in_u(y.data(), ref, in.x.data(), rot, inter);
                worst = std::max(worst, e);
                note(bad_err, e <= tol, where.str());
                note(bad_guard, y.guards_intact() && x.guards_intact(), where.str());
                note(bad_input, std::equal(in.x.begin(), in.x.end(), x.data()), where.str());
              }
              std::ostringstream where;
              where << "in place, offsets x " << ox << " c/s " << ocs;
              xfmr_test::Guarded<T> xy(rot, ox);
              std::copy(in.x.begin(), in.x.end(), xy.data());
              rotate<Isa>(inter, dir, xy.data(), c.data(), s.data(), xy.data(), rot);
              const double e = error_in_u(xy.data(), ref, in.x.data(), rot, inter);
              worst = std::max(worst, e);
              note(bad_err, e <= tol, where.str());
              note(bad_guard, xy.guards_intact() && c.guards_intact() && s.guards_intact(),
                   where.str());
              note(bad_input,
                   std::equal(in.c.begin(), in.c.end(), c.data()) &&
                       std::equal(in.s.begin(), in.s.end(), s.data()),
                   where.str());
            }
          // Every input and output ends where an inaccessible page begins: any read or write
          // past x[rot), c[h), s[h) or y[rot) faults.
          {
            xfmr_test::PageEnd<T> x(rot), c(h), s(h), y(rot);
            std::copy(in.x.begin(), in.x.end(), x.data());
            std::copy(in.c.begin(), in.c.end(), c.data());
            std::copy(in.s.begin(), in.s.end(), s.data());
            rotate<Isa>(inter, dir, x.data(), c.data(), s.data(), y.data(), rot);
            double e = error_in_u(y.data(), ref, in.x.data(), rot, inter);
            note(bad_err, e <= tol, "page end, out of place");
            rotate<Isa>(inter, dir, x.data(), c.data(), s.data(), x.data(), rot);
            e = error_in_u(x.data(), ref, in.x.data(), rot, inter);
            note(bad_err, e <= tol, "page end, in place");
          }
          INFO("worst error " << worst << " u·‖pair‖ (bound " << tol << "); first failure: "
                              << first_bad);
          CHECK(bad_err == 0);
          CHECK(bad_guard == 0);
          CHECK(bad_input == 0);
        }
  });
}

TEMPLATE_TEST_CASE("rope kernels write only [0, rot) of a longer head vector", "[simd][rope]",
                   float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(302);
  const auto rots = rot_sizes<T>();
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
    for (const bool inter : kLayouts)
      for (const Rotation dir : kDirections)
        for (const std::size_t rot : rots) {
          INFO("isa " << Isa::name << ", " << layout_name(inter) << ", " << dir_name(dir)
                      << ", rot " << rot);
          // A head of d = rot + 2W + 3 channels; the pass-through channels [rot, d) hold
          // distinct values a stray full-width store or a double rotation would change.
          const std::size_t d = rot + 2 * W + 3;
          const auto in = random_inputs<T>(rng, rot);
          std::vector<T> head(d);
          std::copy(in.x.begin(), in.x.end(), head.begin());
          for (std::size_t i = rot; i < d; ++i) head[i] = static_cast<T>(u(rng));
          const auto ref = xfmr_ref::kernel_rotate(in.x.data(), in.c.data(), in.s.data(), rot,
                                                   inter, dir == Rotation::Inverse);
          long bad = 0;
          for (const std::size_t off : kOffsets) {
            // In place.
            xfmr_test::Guarded<T> xy(d, off);
            std::copy(head.begin(), head.end(), xy.data());
            rotate<Isa>(inter, dir, xy.data(), in.c.data(), in.s.data(), xy.data(), rot);
            bad += !(error_in_u(xy.data(), ref, in.x.data(), rot, inter) <= 4.0);
            bad += !std::equal(head.begin() + rot, head.end(), xy.data() + rot);
            bad += !xy.guards_intact();
            // Out of place into a NaN-poisoned head: the tail stays NaN.
            xfmr_test::Guarded<T> y(d, off);
            rotate<Isa>(inter, dir, head.data(), in.c.data(), in.s.data(), y.data(), rot);
            bad += !(error_in_u(y.data(), ref, in.x.data(), rot, inter) <= 4.0);
            bad += !std::all_of(y.data() + rot, y.data() + d, [](T v) { return std::isnan(v); });
            bad += !y.guards_intact();
          }
          CHECK(bad == 0);
        }
  });
}

TEMPLATE_TEST_CASE("rope kernels: Forward then Inverse returns the input", "[simd][rope]", float,
                   double) {
  using T = TestType;
  // Rᵀ·R = (c² + s²)·I with c, s rounded to T: |c² + s² − 1| ≤ 2u. Each pass adds ≤ 2.4u·‖x‖
  // per component (file comment), so ≤ √2·2.4u as a pair vector, which the inverse carries
  // along: total ≤ (√2·2.4 + 2.4 + 2)u ≈ 7.8u per component. Bound 8u.
  constexpr double tol = 8.0;
  auto rng = xfmr_test::make_rng(303);
  const auto rots = rot_sizes<T>();
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool inter : kLayouts)
      for (const std::size_t rot : rots) {
        INFO("isa " << Isa::name << ", " << layout_name(inter) << ", rot " << rot);
        const auto in = random_inputs<T>(rng, rot);
        std::vector<long double> ref(in.x.begin(), in.x.end());
        xfmr_test::Guarded<T> y(rot, 1);
        rotate<Isa>(inter, Rotation::Forward, in.x.data(), in.c.data(), in.s.data(), y.data(),
                    rot);
        rotate<Isa>(inter, Rotation::Inverse, y.data(), in.c.data(), in.s.data(), y.data(), rot);
        const double e = error_in_u(y.data(), ref, in.x.data(), rot, inter);
        INFO("round-trip error " << e << " u·‖pair‖ (bound " << tol << ")");
        CHECK(e <= tol);
        // Inverse then Forward as well.
        xfmr_test::Guarded<T> z(rot, 3);
        rotate<Isa>(inter, Rotation::Inverse, in.x.data(), in.c.data(), in.s.data(), z.data(),
                    rot);
        rotate<Isa>(inter, Rotation::Forward, z.data(), in.c.data(), in.s.data(), z.data(), rot);
        const double e2 = error_in_u(z.data(), ref, in.x.data(), rot, inter);
        INFO("inverse-forward error " << e2 << " u·‖pair‖");
        CHECK(e2 <= tol);
        CHECK(y.guards_intact());
        CHECK(z.guards_intact());
      }
  });
}

TEMPLATE_TEST_CASE("rope *_heads kernels equal one kernel call per head, bit for bit",
                   "[simd][rope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(304);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  const auto rots = rot_sizes<T>();
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool inter : kLayouts)
      for (const Rotation dir : kDirections)
        for (const std::size_t rot : rots) {
          // Packed heads, padded heads (odd pass-through), and heads over 256 bytes apart
          // (the ungrouped path); head counts below, at and around the group of 4.
          const std::size_t wide = std::max(rot + 1, 300 / sizeof(T) + 1);
          for (const std::size_t stride : {rot, rot + 3, wide})
            for (const std::size_t heads : {1, 3, 4, 5, 8, 9}) {
              INFO("isa " << Isa::name << ", " << layout_name(inter) << ", " << dir_name(dir)
                          << ", rot " << rot << ", stride " << stride << ", heads " << heads);
              const std::size_t len = (heads - 1) * stride + rot;  // the extent touched
              const auto in = random_inputs<T>(rng, rot);
              std::vector<T> x0(len);
              for (auto& v : x0) v = static_cast<T>(u(rng));
              std::vector<T> want = x0;
              for (std::size_t k = 0; k < heads; ++k)
                rotate<Isa>(inter, dir, want.data() + k * stride, in.c.data(), in.s.data(),
                            want.data() + k * stride, rot);
              // In place at an odd offset: rotated channels bit-identical, pass-through intact.
              xfmr_test::Guarded<T> xy(len, 3);
              std::copy(x0.begin(), x0.end(), xy.data());
              rotate_heads<Isa>(inter, dir, xy.data(), in.c.data(), in.s.data(), xy.data(), rot,
                                heads, stride);
              CHECK(std::equal(want.begin(), want.end(), xy.data()));
              CHECK(xy.guards_intact());
              // Out of place into NaN: rotated channels as above, pass-through channels unwritten.
              xfmr_test::Guarded<T> y(len, 1);
              rotate_heads<Isa>(inter, dir, x0.data(), in.c.data(), in.s.data(), y.data(), rot,
                                heads, stride);
              bool ok = true;
              for (std::size_t i = 0; i < len; ++i)
                ok = ok && (i % stride < rot ? y[i] == want[i] : std::isnan(y[i]));
              CHECK(ok);
              CHECK(y.guards_intact());
              // x, c, s and y all end at an inaccessible page.
              xfmr_test::PageEnd<T> px(len), pc(rot / 2), ps(rot / 2), py(len);
              std::copy(x0.begin(), x0.end(), px.data());
              std::copy(in.c.begin(), in.c.end(), pc.data());
              std::copy(in.s.begin(), in.s.end(), ps.data());
              rotate_heads<Isa>(inter, dir, px.data(), pc.data(), ps.data(), py.data(), rot, heads,
                                stride);
              ok = true;
              for (std::size_t i = 0; i < len; ++i) ok = ok && (i % stride >= rot || py[i] == want[i]);
              rotate_heads<Isa>(inter, dir, px.data(), pc.data(), ps.data(), px.data(), rot, heads,
                                stride);
              CHECK(ok);
              CHECK(std::equal(want.begin(), want.end(), px.data()));
            }
        }
  });
}

TEMPLATE_TEST_CASE("rope *_heads kernels with StoreHint::Stream give the same bits, streamed or "
                   "not", "[simd][rope]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(305);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  constexpr std::size_t W = 64 / sizeof(T);  // a 64-byte line: a multiple of every tier's lanes
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    for (const bool inter : kLayouts)
      for (const Rotation dir : kDirections)
        // rot: whole lines for both layouts (2W, 4W: streamable when aligned), half-split halves
        // of a line (W: streamable only interleaved on 512-bit vectors), and a tail (2W + 2).
        for (const std::size_t rot : {W, 2 * W, 4 * W, 2 * W + 2})
          // stride: packed, padded by a line (both streamable), padded by 2 (never).
          for (const std::size_t stride : {rot, rot + W, rot + 2})
            for (const std::size_t offset : {std::size_t(0), std::size_t(1)})  // aligned y or not
              for (const std::size_t heads : {1, 4, 5}) {
                INFO("isa " << Isa::name << ", " << layout_name(inter) << ", " << dir_name(dir)
                            << ", rot " << rot << ", stride " << stride << ", y offset "
                            << offset << ", heads " << heads);
                const std::size_t len = (heads - 1) * stride + rot;
                const auto in = random_inputs<T>(rng, rot);
                std::vector<T> x0(len);
                for (auto& v : x0) v = static_cast<T>(u(rng));
                std::vector<T> want = x0;
                for (std::size_t k = 0; k < heads; ++k)
                  rotate<Isa>(inter, dir, want.data() + k * stride, in.c.data(), in.s.data(),
                              want.data() + k * stride, rot);
                xfmr_test::Guarded<T> y(len, offset);
                rotate_heads<Isa>(inter, dir, x0.data(), in.c.data(), in.s.data(), y.data(), rot,
                                  heads, stride, xfmr::simd::StoreHint::Stream);
                xfmr::simd::stream_fence();
                bool ok = true;
                for (std::size_t i = 0; i < len; ++i)
                  ok = ok && (i % stride < rot ? y[i] == want[i] : std::isnan(y[i]));
                CHECK(ok);
                CHECK(y.guards_intact());
              }
  });
}
