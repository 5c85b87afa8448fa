// SPDX-License-Identifier: MIT
// BertWhitening save/load: bit-exact round trips, and every kind of malformed input (truncated at
// every offset, every byte flipped, wrong magic/version/scalar, overflowing dims) throws
// xfmr::format_error without reading out of bounds (run under ASan in CI).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <xfmr/heads/whitening.hpp>
#include <xfmr/io/binary_format.hpp>

#include "support/random.hpp"

using Catch::Contains;
using xfmr::BertWhitening;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::WhiteningConfig;

namespace {

template <typename T>
BertWhitening<T> fitted(Index d, Index k, bool normalize = false) {
  auto rng = xfmr_test::make_rng(31);
  RowMatrix<T> x = xfmr_test::random_matrix<T>(rng, 3 * d, d);
  x.col(0) *= T(5);
  WhiteningConfig c;
  c.components = k;
  c.beta = 0.75;
  c.gamma = 0.5;
  c.normalize = normalize;
  c.normalization = xfmr::CovarianceNormalization::Sample;
  BertWhitening<T> w(d, c);
  w.fit(x);
  return w;
}

template <typename T>
std::string saved(const BertWhitening<T>& w) {
  std::ostringstream os;
  w.save(os);
  return os.str();
}

template <typename T>
BertWhitening<T> loaded(const std::string& bytes) {
  std::istringstream is(bytes);
  return BertWhitening<T>::load(is);
}

// Rewrites the trailing FNV-1a so that a deliberately edited header passes the checksum: the
// semantic checks must catch it on their own.
std::string resealed(std::string bytes) {
  const std::uint64_t h = xfmr::io::fnv1a64(bytes.data(), bytes.size() - 8);
  for (int b = 0; b < 8; ++b) bytes[bytes.size() - 8 + std::size_t(b)] = char((h >> (8 * b)) & 0xff);
  return bytes;
}
void put_u64(std::string& s, std::size_t at, std::uint64_t v) {
  for (int b = 0; b < 8; ++b) s[at + std::size_t(b)] = char((v >> (8 * b)) & 0xff);
}

}  // namespace

TEMPLATE_TEST_CASE("save/load round trip is bit-exact", "[whitening][io]", float, double) {
  const auto w = fitted<TestType>(13, 5, true);
  const std::string bytes = saved(w);
  CHECK(bytes.size() == 72 + 2 * 8 * 13 + sizeof(TestType) * 13 * 5 + 8);
  CHECK(bytes.compare(0, 8, std::string("XFMRWHT\x1a", 8)) == 0);
  const auto r = loaded<TestType>(bytes);
  CHECK(saved(r) == bytes);
  CHECK(r.whitening_matrix() == w.whitening_matrix());
  CHECK(r.mean() == w.mean());
  CHECK(r.eigenvalues() == w.eigenvalues());
  CHECK(r.count() == w.count());
  CHECK(r.rank() == w.rank());
  CHECK(r.config().beta == 0.75);
  CHECK(r.config().gamma == 0.5);
  CHECK(r.config().normalize);
  CHECK(r.config().normalization == xfmr::CovarianceNormalization::Sample);
  auto rng = xfmr_test::make_rng(32);
  const RowMatrix<TestType> q = xfmr_test::random_matrix<TestType>(rng, 7, 13);
  RowMatrix<TestType> a(7, 5), b(7, 5);
  w.transform(q, a);
  r.transform(q, b);
  CHECK(a == b);
  // Two records back to back in one stream: load reads exactly one record.
  std::istringstream two(bytes + bytes);
  (void)BertWhitening<TestType>::load(two);
  CHECK(saved(BertWhitening<TestType>::load(two)) == bytes);
}

TEST_CASE("save_file/load_file round trip; trailing bytes and missing files are errors",
          "[whitening][io]") {
  const auto w = fitted<float>(9, 9);
  const std::string path = "xfmr_whitening_io_test.bin";
  w.save_file(path);
  const auto r = BertWhitening<float>::load_file(path);
  CHECK(saved(r) == saved(w));
  {
    std::ofstream os(path, std::ios::binary | std::ios::app);
    os << 'x';
  }
  REQUIRE_THROWS_AS(BertWhitening<float>::load_file(path), xfmr::format_error);
  std::remove(path.c_str());
  REQUIRE_THROWS_AS(BertWhitening<float>::load_file("/nonexistent/xfmr.bin"), std::runtime_error);
  REQUIRE_THROWS_WITH(BertWhitening<float>::load_file("/nonexistent/xfmr.bin"), Contains("cannot open"));
  REQUIRE_THROWS_AS(w.save_file("/nonexistent/dir/xfmr.bin"), std::runtime_error);
}

TEST_CASE("Truncation at every byte offset throws format_error", "[whitening][io]") {
  const std::string bytes = saved(fitted<float>(6, 3));
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    INFO("len=" << len);
    REQUIRE_THROWS_AS(loaded<float>(bytes.substr(0, len)), xfmr::format_error);
  }
  REQUIRE_THROWS_WITH(loaded<float>(bytes.substr(0, 40)), Contains("truncated input: the header"));
  REQUIRE_THROWS_WITH(loaded<float>(bytes.substr(0, 100)), Contains("truncated input: the payload"));
}

TEST_CASE("Every flipped byte is detected", "[whitening][io]") {
  const std::string bytes = saved(fitted<double>(5, 2));
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (const unsigned char flip : {0x01, 0x10, 0x80}) {
      std::string bad = bytes;
      bad[i] = char(static_cast<unsigned char>(bad[i]) ^ flip);
      INFO("byte " << i << " ^ " << int(flip));
      REQUIRE_THROWS_AS(loaded<double>(bad), xfmr::format_error);
    }
  std::string bad = bytes;
  bad[100] = char(bad[100] ^ 1);  // inside μ
  REQUIRE_THROWS_WITH(loaded<double>(bad), Contains("checksum mismatch"));
}

TEST_CASE("Wrong magic, version, scalar type and bad dimensions are named", "[whitening][io]") {
  const std::string bytes = saved(fitted<float>(6, 3));
  std::string s = bytes;
  s[0] = 'Y';
  REQUIRE_THROWS_WITH(loaded<float>(s), Contains("not a whitening file: bad magic"));
  s = bytes;
  s[8] = 2;
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)),
                      Contains("unsupported format version (expected 1, got 2)"));
  REQUIRE_THROWS_WITH(loaded<double>(bytes),
                      Contains("scalar size 8 expected for BertWhitening<double> (got 4)"));
  s = bytes;
  put_u64(s, 24, 7);  // k > D
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("bad dimensions: need 1 <= k <= D"));
  s = bytes;
  put_u64(s, 16, std::uint64_t(1) << 62);  // D·k·4 would overflow
  put_u64(s, 24, std::uint64_t(1) << 62);
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("bad dimensions"));
  s = bytes;
  put_u64(s, 16, std::uint64_t(1) << 24);  // plausible D, far larger than the stream
  put_u64(s, 24, std::uint64_t(1) << 24);
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("truncated input: the payload"));
  s = bytes;
  put_u64(s, 32, 1);  // N = 1
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("bad row count"));
  s = bytes;
  s[64] = 8;  // unknown flag
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("unknown flags"));
  s = bytes;
  put_u64(s, 40, 0x7ff8000000000000ull);  // β = NaN
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("bad hyper-parameters"));
  s = bytes;
  put_u64(s, 72 + 8 * 6, 0xbff0000000000000ull);  // λ_0 = −1
  REQUIRE_THROWS_WITH(loaded<float>(resealed(s)), Contains("non-finite or negative"));
  std::istringstream empty("");
  REQUIRE_THROWS_AS(BertWhitening<float>::load(empty), xfmr::format_error);
}
