// SPDX-License-Identifier: MIT
// The whitening file format (io/whitening_format.hpp) and BertWhitening save/load on top of it:
// the documented layout field by field, bit-exact round trips, and every kind of malformed input
// (truncated at every offset, every byte flipped, wrong magic/version/scalar, overflowing dims)
// throws xfmr::format_error without reading out of bounds (run under ASan in CI).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <xfmr/heads/whitening.hpp>
#include <xfmr/io/binary_format.hpp>
#include <xfmr/io/whitening_format.hpp>

#include "support/random.hpp"
#include "support/throws.hpp"

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

namespace {
std::uint64_t get_u64(const std::string& s, std::size_t at) {
  std::uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(s[at + std::size_t(b)]);
  return v;
}
double get_f64(const std::string& s, std::size_t at) {
  const std::uint64_t u = get_u64(s, at);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}
}  // namespace

TEST_CASE("write_whitening puts every field at its documented offset; read_whitening inverts it",
          "[whitening][io]") {
  xfmr::io::WhiteningRecord<float> rec;
  rec.count = 1234;
  rec.beta = 0.5;
  rec.gamma = -0.25;
  rec.epsilon = 1e-3;
  rec.normalize = true;
  rec.sample_normalization = false;
  rec.strict_rank = true;
  rec.mean.resize(3);  // (dynamic vectors filled in place: GCC 12 warns, wrongly, about the
  rec.mean << 1.5, -2.0, 3.25;  // AVX-512 copy of a fixed-size Vector3d into them)
  rec.eigenvalues.resize(3);
  rec.eigenvalues << 4.0, 1.0, 0.0;
  rec.components.resize(3, 2);
  rec.components << 1, 2, 3, 4, 5, 6;
  std::ostringstream os;
  xfmr::io::write_whitening(os, rec);
  const std::string b = os.str();
  REQUIRE(b.size() == 72 + 2 * 8 * 3 + 4 * 3 * 2 + 8);
  CHECK(b.compare(0, 8, std::string("XFMRWHT\x1a", 8)) == 0);
  CHECK(b[8] == 1);                // version
  CHECK(b[12] == 4);               // sizeof(float)
  CHECK(get_u64(b, 16) == 3);      // D
  CHECK(get_u64(b, 24) == 2);      // k
  CHECK(get_u64(b, 32) == 1234);   // N
  CHECK(get_f64(b, 40) == 0.5);    // β
  CHECK(get_f64(b, 48) == -0.25);  // γ
  CHECK(get_f64(b, 56) == 1e-3);   // epsilon
  CHECK(b[64] == 5);               // flags: normalize | strict_rank
  CHECK(get_u64(b, 64) == 5);      // ... and the reserved word is 0
  CHECK(get_f64(b, 72 + 8) == -2.0);       // μ_1
  CHECK(get_f64(b, 72 + 24 + 8) == 1.0);   // λ_1
  float w5;
  std::memcpy(&w5, b.data() + 72 + 48 + 4 * 5, 4);
  CHECK(w5 == 6.0f);  // W_k row-major: (2, 1) is the 6th value
  CHECK(get_u64(b, b.size() - 8) == xfmr::io::fnv1a64(b.data(), b.size() - 8));

  std::istringstream is(b);
  const auto r = xfmr::io::read_whitening<float>(is);
  CHECK(r.count == rec.count);
  CHECK(r.beta == rec.beta);
  CHECK(r.gamma == rec.gamma);
  CHECK(r.epsilon == rec.epsilon);
  CHECK(r.normalize);
  CHECK_FALSE(r.sample_normalization);
  CHECK(r.strict_rank);
  CHECK(r.mean == rec.mean);
  CHECK(r.eigenvalues == rec.eigenvalues);
  CHECK(r.components == rec.components);
  CHECK(is.peek() == std::char_traits<char>::eof());  // exactly the record's bytes

  // The class reads any valid record, and writes it back unchanged.
  std::istringstream again(b);
  const auto w = BertWhitening<float>::load(again);
  CHECK(w.dim() == 3);
  CHECK(w.components() == 2);
  CHECK(w.rank() == 2);  // eigenvalues > epsilon·λ_max = 4e-3
  CHECK(w.config().strict_rank);
  CHECK(saved(w) == b);
  CHECK(std::memcmp(BertWhitening<float>::kMagic, xfmr::io::WhiteningFormat::kMagic, 9) == 0);
  CHECK(BertWhitening<double>::kVersion == xfmr::io::WhiteningFormat::kVersion);
}

TEST_CASE("write_whitening rejects an inconsistent record before writing", "[whitening][io]") {
  xfmr::io::WhiteningRecord<double> rec;
  rec.count = 10;
  rec.mean = Eigen::VectorXd::Zero(4);
  rec.eigenvalues = Eigen::VectorXd::Ones(4);
  rec.components = RowMatrix<double>::Zero(4, 2);
  std::ostringstream os;
  auto bad = rec;
  bad.eigenvalues = Eigen::VectorXd::Ones(3);
  XFMR_REQUIRE_INVALID(xfmr::io::write_whitening(os, bad),
                       "xfmr::write_whitening: a whitening record needs mean (D), eigenvalues (D), "
                       "W_k (D x k), 1 <= k <= D <= 2^24 and count >= 2 (got mean 4, eigenvalues "
                       "3, W_k 4x2, count 10)");
  bad = rec;
  bad.components = RowMatrix<double>::Zero(4, 5);  // k > D
  XFMR_REQUIRE_INVALID(xfmr::io::write_whitening(os, bad), "W_k 4x5");
  bad = rec;
  bad.components = RowMatrix<double>::Zero(4, 0);  // k = 0
  XFMR_REQUIRE_INVALID(xfmr::io::write_whitening(os, bad), "W_k 4x0");
  bad = rec;
  bad.count = 1;
  XFMR_REQUIRE_INVALID(xfmr::io::write_whitening(os, bad), "count 1)");
  CHECK(os.str().empty());
  xfmr::io::write_whitening(os, rec);
  CHECK(os.str().size() == 72 + 2 * 8 * 4 + 8 * 4 * 2 + 8);
}

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
