// SPDX-License-Identifier: MIT
// io/binary_format.hpp: little-endian layout, bounds checks, overflow checks, FNV-1a, streams.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/io/binary_format.hpp>

using Catch::Contains;
namespace io = xfmr::io;

TEST_CASE("BinaryWriter writes little-endian bytes whatever the host", "[io]") {
  io::BinaryWriter w;
  w.write_u32(0x01020304u);
  w.write_u64(0x0102030405060708ull);
  w.write_f64(1.0);  // 0x3ff0000000000000
  const float f[2] = {1.0f, -2.0f};  // 0x3f800000, 0xc0000000
  w.write_array(f, 2);
  const unsigned char expected[] = {4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
                                    0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
  REQUIRE(w.size() == sizeof(expected));
  CHECK(std::memcmp(w.bytes().data(), expected, sizeof(expected)) == 0);
}

TEST_CASE("BinaryReader round-trips and never reads past the end", "[io]") {
  io::BinaryWriter w;
  w.write_bytes("MAGC", 4);
  w.write_u32(7);
  w.write_u64(std::numeric_limits<std::uint64_t>::max());
  w.write_f64(-0.0);
  const double a[3] = {1.5, std::numeric_limits<double>::denorm_min(),
                       std::numeric_limits<double>::infinity()};
  w.write_array(a, 3);
  w.write_checksum();
  const std::string bytes = w.bytes();

  io::BinaryReader r(bytes.data(), bytes.size(), "Test");
  char magic[4];
  r.read_bytes(magic, 4, "magic");
  CHECK(std::memcmp(magic, "MAGC", 4) == 0);
  CHECK(r.read_u32("u32") == 7);
  CHECK(r.read_u64("u64") == std::numeric_limits<std::uint64_t>::max());
  const double z = r.read_f64("f64");
  CHECK(z == 0.0);
  CHECK(std::signbit(z));
  double b[3];
  r.read_array(b, 3, "array");
  CHECK(std::memcmp(a, b, sizeof(a)) == 0);  // bit-exact
  r.verify_checksum();
  r.expect_end();

  // Every prefix: reading the same sequence throws format_error at the first missing byte.
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    std::vector<char> copy(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
    io::BinaryReader t(copy.data(), copy.size(), "Test");
    auto all = [&] {
      t.read_bytes(magic, 4, "magic");
      (void)t.read_u32("u32");
      (void)t.read_u64("u64");
      (void)t.read_f64("f64");
      t.read_array(b, 3, "array");
      t.verify_checksum();
    };
    INFO("len=" << len);
    REQUIRE_THROWS_AS(all(), xfmr::format_error);
  }
  io::BinaryReader t(bytes.data(), 10, "Test");
  t.read_bytes(magic, 4, "magic");
  REQUIRE_THROWS_WITH(t.read_u64("the count"),
                      "xfmr::Test: truncated input: the count needs 8 bytes at offset 4 (got 6)");
  CHECK(t.position() == 4);  // a failed read consumes nothing
}

TEST_CASE("Checksums: FNV-1a 64 known values and corruption detection", "[io]") {
  CHECK(io::fnv1a64("", 0) == 0xcbf29ce484222325ull);
  CHECK(io::fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(io::fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
  io::BinaryWriter w;
  w.write_u64(42);
  w.write_checksum();
  std::string bytes = w.bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (const unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      io::BinaryReader r(bad.data(), bad.size(), "Test");
      (void)r.read_u64("value");
      REQUIRE_THROWS_AS(r.verify_checksum(), xfmr::format_error);
    }
  io::BinaryReader r(bytes.data(), bytes.size(), "Test");
  (void)r.read_u64("value");
  r.verify_checksum();
  io::BinaryReader extra(bytes.data(), bytes.size(), "Test");
  (void)extra.read_u64("value");
  REQUIRE_THROWS_WITH(extra.expect_end(), Contains("expected the end of the record at offset 8 (got 8 more bytes)"));
}

TEST_CASE("Sizes from a file are overflow-checked", "[io]") {
  CHECK(io::checked_mul(3, 4, "Test", "x") == 12);
  CHECK(io::checked_mul(0, std::numeric_limits<std::uint64_t>::max(), "Test", "x") == 0);
  REQUIRE_THROWS_AS(io::checked_mul(std::uint64_t(1) << 40, std::uint64_t(1) << 40, "Test", "W"),
                    xfmr::format_error);
  REQUIRE_THROWS_WITH(io::checked_mul(10, 10, "Test", "W", 99), "xfmr::Test: W is too large (got 10 x 10)");
  // read_array with a count whose byte size overflows: caught before the bounds check.
  const char buf[8] = {};
  io::BinaryReader r(buf, sizeof(buf), "Test");
  double out[1];
  REQUIRE_THROWS_AS(r.read_array(out, std::numeric_limits<std::size_t>::max() / 4, "huge"),
                    xfmr::format_error);
}

TEST_CASE("read_exact reads exactly n bytes from a stream or throws", "[io]") {
  std::istringstream is(std::string("abcdefgh"));
  std::string buf;
  io::read_exact(is, buf, 3, "Test", "head");
  CHECK(buf == "abc");
  io::read_exact(is, buf, 2, "Test", "more");
  CHECK(buf == "abcde");
  REQUIRE_THROWS_WITH(io::read_exact(is, buf, 10, "Test", "the payload"),
                      "xfmr::Test: truncated input: the payload needs 10 bytes (got 3)");
  // A huge claimed size on a short stream: fails after reading what is there, no huge allocation.
  std::istringstream small(std::string(100, 'x'));
  std::string b2;
  REQUIRE_THROWS_AS(io::read_exact(small, b2, std::size_t(1) << 40, "Test", "data"),
                    xfmr::format_error);
  CHECK(b2.size() == 100);
  // A failing output stream is reported.
  io::BinaryWriter w;
  w.write_u32(1);
  std::ostringstream os;
  os.setstate(std::ios::badbit);
  REQUIRE_THROWS_AS(w.flush_to(os, "Test"), std::runtime_error);
}

TEST_CASE("hex_bytes: two lower-case digits per byte", "[io]") {
  const unsigned char b[] = {0x00, 0x0f, 0xa0, 0xff, 'X'};
  CHECK(io::hex_bytes(b, 5) == "000fa0ff58");
  CHECK(io::hex_bytes(b, 0).empty());
}
