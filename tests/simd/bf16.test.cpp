// SPDX-License-Identifier: MIT
// bf16 storage (simd/bf16.hpp): bf16 → float over all 65,536 patterns against the definition
// (reference/half.hpp); float → bf16 against a reference that rounds in long double from the two
// neighbouring bf16 values (ties to the even one, overflow as if the exponent were unbounded),
// on random bit patterns of every exponent and on the edges (ties with odd and even kept bits,
// the largest finite values, subnormals, ±0, ±inf, quiet and signalling NaNs of both signs);
// the row conversions on every ISA equal the scalar ones bit for bit at sizes around the vector
// widths, misaligned, with canaries after the end.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/bf16.hpp>

#include "reference/half.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"

using xfmr::bf16;
using xfmr::Index;
namespace simd = xfmr::simd;

namespace {

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
std::uint32_t bits_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// The bf16 pattern RNE gives for x, from values: truncation t (toward zero) and its successor
/// in magnitude; the nearer one wins, a tie goes to the even pattern; the successor of the
/// largest finite bf16 counts as 2^128 (so overflow rounds to inf exactly as IEEE says).
std::uint16_t reference_round(float x) {
  const std::uint32_t u = bits_of(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  if (std::isinf(x)) return static_cast<std::uint16_t>(u >> 16);
  const auto t = static_cast<std::uint16_t>(u >> 16);
  const auto up = static_cast<std::uint16_t>(t + 1);
  const long double ax = std::fabs(static_cast<long double>(x));
  const long double lo = std::fabs(xfmr_ref::bf16_value(t));
  const long double hi = (up & 0x7fffu) == 0x7f80u ? std::ldexp(1.0L, 128)
                                                    : std::fabs(xfmr_ref::bf16_value(up));
  const long double dl = ax - lo, dh = hi - ax;
  if (dl < dh) return t;
  if (dh < dl) return up;
  return (t & 1u) ? up : t;
}

std::vector<float> edge_floats() {
  std::vector<std::uint32_t> bits = {
      0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x00007fff, 0x00008000, 0x00008001,
      0x00018000, 0x0000ffff, 0x00010000, 0x007f8000, 0x007fffff, 0x807fffff, 0x00800000,
      0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f817fff, 0xbf808000, 0xbf818000,
      0x3f7fffff, 0x3f7f8000, 0x7f7f0000, 0x7f7f7fff, 0x7f7f8000, 0x7f7fffff, 0xff7f8000,
      0xff7f7fff, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,
      0x7fbfffff, 0x7f810000, 0x7fffffff, 0xffffffff, 0x7fa00000};
  std::vector<float> out;
  for (auto b : bits) out.push_back(from_bits(b));
  return out;
}

/// Random floats: uniformly random bit patterns (every exponent, NaNs included), patterns with
/// the low 16 bits forced to a tie, and values of ordinary magnitude.
std::vector<float> random_floats(std::mt19937_64& rng, std::size_t n) {
  std::vector<float> out(n);
  std::uniform_int_distribution<std::uint32_t> bits;
  std::normal_distribution<float> normal(0.f, 3.f);
  for (std::size_t i = 0; i < n; ++i) {
    switch (i % 4) {
      case 0: out[i] = from_bits(bits(rng)); break;
      case 1: out[i] = from_bits((bits(rng) & 0xffff0000u) | 0x8000u); break;
      case 2: out[i] = from_bits((bits(rng) & 0x00ffffffu) | (bits(rng) & 0x80000000u)); break;
      default: out[i] = normal(rng); break;
    }
  }
  return out;
}

constexpr std::uint16_t kCanaryBits = 0x5a5a;
constexpr float kCanaryFloat = -12345.25f;

}  // namespace

TEST_CASE("bf16: every pattern converts to float exactly", "[simd][bf16]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = bf16::from_bits(static_cast<std::uint16_t>(b));
    const float f = xfmr::to_float(h);
    const long double ref = xfmr_ref::bf16_value(h.bits);
    INFO("bits=0x" << std::hex << b);
    if (std::isnan(ref)) {
      REQUIRE(std::isnan(f));
      REQUIRE((bits_of(f) >> 16) == b);  // payload and sign kept
      // a NaN converts back to a quiet NaN of the same sign and upper payload
      REQUIRE(xfmr::to_bf16(f).bits == (b | 0x0040u));
    } else {
      REQUIRE(static_cast<long double>(f) == ref);
      REQUIRE(std::signbit(f) == ((b >> 15) != 0));
      REQUIRE(xfmr::to_bf16(f).bits == b);  // round trip is the identity
    }
  }
}

TEST_CASE("bf16: float to bf16 rounds to nearest even", "[simd][bf16]") {
  auto rng = xfmr_test::make_rng(0xbf16);
  std::vector<float> xs = edge_floats();
  const auto more = random_floats(rng, 200000);
  xs.insert(xs.end(), more.begin(), more.end());
  for (float x : xs) {
    INFO("x bits=0x" << std::hex << bits_of(x));
    REQUIRE(xfmr::to_bf16(x).bits == reference_round(x));
  }
  // spot checks of the rules themselves
  CHECK(xfmr::to_bf16(from_bits(0x3f808000)).bits == 0x3f80);  // tie, kept bit even: down
  CHECK(xfmr::to_bf16(from_bits(0x3f818000)).bits == 0x3f82);  // tie, kept bit odd: up
  CHECK(xfmr::to_bf16(from_bits(0x7f7f8000)).bits == 0x7f80);  // tie at the max: inf
  CHECK(xfmr::to_bf16(from_bits(0x7f7f7fff)).bits == 0x7f7f);  // just below: the max
  CHECK(xfmr::to_bf16(from_bits(0x00018000)).bits == 0x0002);  // subnormal, not flushed
  CHECK(xfmr::to_bf16(from_bits(0x7f800001)).bits == 0x7fc0);  // signalling NaN → quiet
  CHECK(xfmr::to_bf16(from_bits(0xff800001)).bits == 0xffc0);
}

TEST_CASE("bf16: row conversions equal the scalar ones on every ISA", "[simd][bf16]") {
  auto rng = xfmr_test::make_rng(0x5eed);
  std::vector<Index> sizes;
  for (Index n = 0; n <= 40; ++n) sizes.push_back(n);
  for (Index n : {63, 64, 65, 127, 1000, 1023}) sizes.push_back(n);
  auto body = [&](auto isa) {
    using Isa = decltype(isa);
    for (Index n : sizes)
      for (Index offset : {0, 1, 3}) {
        INFO(Isa::name << " n=" << n << " offset=" << offset);
        const auto nn = static_cast<std::size_t>(n), off = static_cast<std::size_t>(offset);
        std::vector<float> src(off + nn + 16, kCanaryFloat);
        const auto xs = random_floats(rng, nn);
        std::copy(xs.begin(), xs.end(), src.begin() + offset);
        std::vector<bf16> half(off + nn + 16, bf16::from_bits(kCanaryBits));
        simd::convert_row<Isa>(src.data() + offset, half.data() + offset, n);
        for (std::size_t i = 0; i < half.size(); ++i) {
          if (i >= off && i < off + nn) {
            INFO("i=" << i - off);
            REQUIRE(half[i].bits == xfmr::to_bf16(src[i]).bits);
          } else {
            REQUIRE(half[i].bits == kCanaryBits);
          }
        }
        std::vector<float> back(off + nn + 16, kCanaryFloat);
        simd::convert_row<Isa>(half.data() + offset, back.data() + offset, n);
        for (std::size_t i = 0; i < back.size(); ++i) {
          if (i >= off && i < off + nn)
            REQUIRE(bits_of(back[i]) == bits_of(xfmr::to_float(half[i])));
          else
            REQUIRE(back[i] == kCanaryFloat);
        }
      }
  };
  xfmr_test::for_each_isa(body);
}
