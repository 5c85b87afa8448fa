// SPDX-License-Identifier: MIT
// The safetensors reader (weights/safetensors.hpp, SPEC §16): a file written by the reference
// Python library (tests/golden/), files written by a small writer below at every alignment of
// the data buffer, exact F16/BF16 conversion of all 65,536 patterns, each validation rule of
// the reference reader with its message, wrong calls, and every truncation and byte flip of a
// valid file (run under ASan in CI: nothing is read out of bounds).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/weights/safetensors.hpp>

#include "reference/half.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

#ifndef XFMR_TEST_GOLDEN_DIR  // set by tests/CMakeLists.txt; this default serves syntax-only passes
#define XFMR_TEST_GOLDEN_DIR "tests/golden"
#endif

using Catch::Contains;
using xfmr::Dtype;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SafetensorsFile;

/// expr throws xfmr::format_error whose what() contains text. Evaluates expr twice.
#define XFMR_REQUIRE_FORMAT(expr, text)          \
  do {                                           \
    REQUIRE_THROWS_AS(expr, xfmr::format_error); \
    REQUIRE_THROWS_WITH(expr, Contains(text));   \
  } while (false)

namespace {

using Bytes = std::vector<std::uint8_t>;

template <typename U>
void put_le(Bytes& out, U v) {
  for (std::size_t b = 0; b < sizeof(U); ++b) out.push_back(std::uint8_t(v >> (8 * b)));
}
std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
template <typename T>
std::uint64_t bits_of(T v) {
  if constexpr (sizeof(T) == 4) {
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    return u;
  } else {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    return u;
  }
}

/// A whole file from a header text and a data buffer; `declared` overrides the length field.
Bytes raw_file(const std::string& header, const Bytes& data = {},
               std::uint64_t declared = std::numeric_limits<std::uint64_t>::max()) {
  Bytes out;
  put_le<std::uint64_t>(
      out, declared == std::numeric_limits<std::uint64_t>::max() ? header.size() : declared);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

struct Entry {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  Bytes data;
};

std::string shape_json(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The writer: entries laid out in the given order, the header padded with `pad` spaces.
Bytes write_file(const std::vector<Entry>& entries, std::size_t pad = 0,
                 const std::string& metadata = "") {
  std::string header = "{";
  if (!metadata.empty()) header += "\"__metadata__\":" + metadata + ",";
  Bytes data;
  for (const Entry& e : entries) {
    const std::size_t begin = data.size();
    data.insert(data.end(), e.data.begin(), e.data.end());
    header += "\"" + e.name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":" + shape_json(e.shape) +
              ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) +
              "]},";
  }
  if (header.back() == ',') header.pop_back();
  header += "}" + std::string(pad, ' ');
  return raw_file(header, data);
}

Bytes f32_bytes(const std::vector<float>& v) {
  Bytes b;
  for (float f : v) put_le(b, float_bits(f));
  return b;
}
Bytes u16_bytes(const std::vector<std::uint16_t>& v) {
  Bytes b;
  for (auto u : v) put_le(b, u);
  return b;
}

SafetensorsFile parse(const Bytes& b) { return SafetensorsFile::from_bytes(b); }
SafetensorsFile parse_header(const std::string& header, const Bytes& data = {}) {
  return SafetensorsFile::from_bytes(raw_file(header, data));
}

/// A header of one tensor "t" with the given entry body.
std::string one(const std::string& body) { return "{\"t\":" + body + "}"; }

}  // namespace

TEST_CASE("safetensors: a file written by the Python safetensors library", "[weights]") {
  const std::string path = std::string(XFMR_TEST_GOLDEN_DIR) + "/safetensors_sample.safetensors";
  const SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.source() == path);
  CHECK(f.size() == 7);
  CHECK(f.names() == std::vector<std::string>{"bf16.matrix", "embeddings.position_ids", "empty",
                                              "encoder.dense.bias", "encoder.dense.weight",
                                              "halves", "scalar"});
  CHECK(f.metadata().at("format") == "pt");
  CHECK_THAT(f.metadata().at("generator"), Contains("safetensors"));
  CHECK(f.contains("halves"));
  CHECK_FALSE(f.contains("encoder.dense"));

  // F32 3 x 5, w[i, j] = (5 i + j) / 8 - 1.
  const auto& wi = f.info("encoder.dense.weight");
  CHECK(wi.dtype == Dtype::F32);
  CHECK(wi.shape == std::vector<Index>{3, 5});
  CHECK(wi.end - wi.begin == 60);
  const RowMatrix<float> w = f.matrix<float>("encoder.dense.weight", 3, 5);
  const RowMatrix<double> wd = f.matrix<double>("encoder.dense.weight");
  for (Index i = 0; i < 3; ++i)
    for (Index j = 0; j < 5; ++j) {
      CHECK(w(i, j) == float(5 * i + j) / 8 - 1);
      CHECK(wd(i, j) == double(w(i, j)));
    }
  // F32 7, float32(0.1 k - 0.3) evaluated in Python (bits, since C++ may contract to an FMA).
  const Eigen::VectorXf b = f.vector<float>("encoder.dense.bias", 7);
  const std::uint32_t bias_bits[7] = {0xbe99999a, 0xbe4ccccd, 0xbdcccccd, 0x24800000,
                                      0x3dcccccd, 0x3e4ccccd, 0x3e99999a};
  for (int k = 0; k < 7; ++k) CHECK(float_bits(b(k)) == bias_bits[k]);

  // F16 specials: max, min normal, min subnormal, largest subnormal, -0, inf, -inf, 1/3, NaN.
  const Eigen::VectorXf h = f.vector<float>("halves");
  REQUIRE(h.size() == 9);
  CHECK(h(0) == 65504.0f);
  CHECK(h(1) == std::ldexp(1.0f, -14));
  CHECK(h(2) == std::ldexp(1.0f, -24));
  CHECK(h(3) == std::ldexp(1023.0f, -24));
  CHECK(float_bits(h(4)) == 0x80000000u);
  CHECK(h(5) == std::numeric_limits<float>::infinity());
  CHECK(h(6) == -std::numeric_limits<float>::infinity());
  CHECK(h(7) == std::ldexp(float(0x400 + 0x155), -12));  // 0x3555 = 1.0101010101b · 2⁻²
  CHECK(std::isnan(h(8)));

  // BF16 2 x 3 (bits from the library: 3f80 c020 7f62 0001 3dcd ff80).
  const RowMatrix<float> g = f.matrix<float>("bf16.matrix", 2, 3);
  const std::uint32_t expect[6] = {0x3f800000, 0xc0200000, 0x7f620000,
                                   0x00010000, 0x3dcd0000, 0xff800000};
  for (int k = 0; k < 6; ++k) CHECK(float_bits(g.data()[k]) == expect[k]);

  // I64 is parsed (the file opens) but not read as floating point.
  CHECK(f.info("embeddings.position_ids").dtype == Dtype::I64);
  CHECK(f.info("embeddings.position_ids").shape == std::vector<Index>{1, 6});
  XFMR_REQUIRE_INVALID(f.matrix<float>("embeddings.position_ids"), "(got I64)");

  // Zero-size and rank-0 tensors.
  CHECK(f.matrix<float>("empty", 0, 3).size() == 0);
  CHECK(f.info("empty").numel() == 0);
  CHECK(f.info("scalar").shape.empty());
  CHECK(f.info("scalar").numel() == 1);
  CHECK(f.flat<double>("scalar")(0) == 2.5);
  XFMR_REQUIRE_INVALID(f.vector<float>("scalar"), "expected rank 1 for vector() (got shape [])");

  // raw_data: the library aligns the data buffer to 8 bytes; the bytes are the F32 of w(0,0).
  std::uint32_t first;
  std::memcpy(&first, f.raw_data("encoder.dense.weight"), 4);
  CHECK(first == float_bits(-1.0f));
}

TEMPLATE_TEST_CASE("safetensors: F32 round trip at every alignment of the data", "[weights]", float,
                   double) {
  auto rng = xfmr_test::make_rng(101);
  const Index rows = 7, cols = 13;
  const RowMatrix<float> m = xfmr_test::random_matrix<float>(rng, rows, cols, -3.0, 3.0);
  const auto v = xfmr_test::uniform_vector<float>(rng, 5, -1.0, 1.0);
  std::vector<float> mv(m.data(), m.data() + m.size());
  std::set<std::uintptr_t> residues;  // address % 4 of the F32 matrix: all four must occur
  for (std::size_t pad = 0; pad < 8; ++pad) {
    CAPTURE(pad);
    // The data buffer starts at 8 + header length (pad moves it); the F16 first shifts m by 2.
    const Bytes file =
        write_file({{"h", "F16", {1}, u16_bytes({0x3c00})},
                    {"m", "F32", {std::uint64_t(rows), std::uint64_t(cols)}, f32_bytes(mv)},
                    {"v", "F32", {5}, f32_bytes(v)}},
                   pad);
    const SafetensorsFile f = parse(file);
    CHECK(f.raw_data("m") == f.raw_data("h") + 2);
    residues.insert(reinterpret_cast<std::uintptr_t>(f.raw_data("m")) % 4);
    const RowMatrix<TestType> got = f.matrix<TestType>("m", rows, cols);
    for (Index i = 0; i < m.size(); ++i)
      CHECK(bits_of(got.data()[i]) == bits_of(static_cast<TestType>(m.data()[i])));
    const auto gv = f.vector<TestType>("v", 5);
    for (int k = 0; k < 5; ++k) CHECK(gv(k) == TestType(v[std::size_t(k)]));
    CHECK(f.flat<TestType>("h")(0) == TestType(1));
  }
  CHECK(residues.size() == 4);
}

TEST_CASE("safetensors: F16 and BF16 convert exactly, all 65536 patterns", "[weights]") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = std::uint16_t(i);
  const Bytes file =
      write_file({{"b", "BF16", {65536}, u16_bytes(all)}, {"h", "F16", {256, 256}, u16_bytes(all)}},
                 /*pad=*/3);  // misaligned data
  const SafetensorsFile f = parse(file);
  const Eigen::VectorXf hf = f.flat<float>("h");
  const Eigen::VectorXd hd = f.flat<double>("h");
  const Eigen::VectorXf bf = f.vector<float>("b");
  const Eigen::VectorXd bd = f.vector<double>("b", 65536);
  std::size_t bad = 0;
  for (std::uint32_t u = 0; u < 65536; ++u) {
    const long double href = xfmr_ref::half_value(std::uint16_t(u));
    const long double bref = xfmr_ref::bf16_value(std::uint16_t(u));
    const float h = hf(u), b = bf(u);
    if (std::isnan(href)) {
      // NaN keeps its sign and payload: bits = sign | exponent all ones | mantissa << 13.
      const std::uint32_t want = ((u & 0x8000u) << 16) | 0x7f800000u | ((u & 0x3ffu) << 13);
      bad += !(std::isnan(h) && float_bits(h) == want && std::isnan(hd(u)));
    } else {
      bad += !(static_cast<long double>(h) == href && static_cast<long double>(hd(u)) == href &&
               std::signbit(h) == bool(u & 0x8000u));
    }
    // BF16 is the upper half of a float, NaN payload included.
    bad += !(float_bits(b) == (u << 16));
    if (!std::isnan(bref))
      bad += !(static_cast<long double>(bd(u)) == bref);
    else
      bad += !std::isnan(bd(u));
  }
  CHECK(bad == 0);
}

TEST_CASE("safetensors: flat_bf16 reads BF16 as stored, misaligned, every pattern",
          "[weights]") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = std::uint16_t(65535 - i);
  const Bytes file = write_file({{"b", "BF16", {256, 256}, u16_bytes(all)},
                                 {"f", "F32", {2}, f32_bytes({1.0f, 2.0f})},
                                 {"z", "BF16", {0}, Bytes()}},
                                /*pad=*/1);  // misaligned data
  const SafetensorsFile f = parse(file);
  const std::vector<xfmr::bf16> b = f.flat_bf16("b");
  REQUIRE(b.size() == all.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < all.size(); ++i) bad += b[i].bits != all[i];
  CHECK(bad == 0);
  CHECK(f.flat_bf16("z").empty());
  XFMR_REQUIRE_INVALID(f.flat_bf16("f"),
                       "tensor 'f' in <memory>: expected dtype BF16 to read as stored by "
                       "flat_bf16 (got F32)");
  XFMR_REQUIRE_INVALID(f.flat_bf16("nope"), "expected a tensor named 'nope'");
}

TEST_CASE("safetensors: valid edge cases the reference reader accepts", "[weights]") {
  SECTION("an empty header padded with spaces") {
    const SafetensorsFile f = parse_header("{}       ");
    CHECK(f.size() == 0);
    CHECK(f.names().empty());
    CHECK(f.metadata().empty());
  }
  SECTION("tensors listed in any order; zero-size tensors anywhere") {
    const SafetensorsFile f = parse_header(
        "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[8,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
        "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]},"
        "\"huge_but_empty\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904],"
        "\"data_offsets\":[8,8]}}",
        Bytes{0x80, 0x3f, 0x00, 0x40, 0, 0, 0x40, 0x40});
    CHECK(f.names() == std::vector<std::string>{"a", "b", "e", "huge_but_empty", "z"});
    CHECK(f.vector<float>("a", 2) == Eigen::Vector2f(1.0f, 2.0f));
    CHECK(f.vector<float>("b")(0) == 3.0f);
    CHECK(f.vector<float>("e").size() == 0);
    CHECK(f.matrix<float>("z").rows() == 0);
    CHECK(f.info("huge_but_empty").numel() == 0);
    CHECK(f.flat<float>("huge_but_empty").size() == 0);
  }
  SECTION("unknown fields inside an entry are ignored, as serde does") {
    const SafetensorsFile f = parse_header(
        one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":{\"x\":[1,2]}}"),
        f32_bytes({7.0f}));
    CHECK(f.vector<float>("t")(0) == 7.0f);
  }
  SECTION("metadata and UTF-8 names") {
    const SafetensorsFile f = parse_header(
        "{\"__metadata__\":{\"k\":\"v\",\"lang\":\"\xe4\xb8\xad\xe6\x96\x87\"},"
        "\"\xc3\xa9\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
        f32_bytes({1.5f}));
    CHECK(f.metadata().size() == 2);
    CHECK(f.metadata().at("lang") == "\xe4\xb8\xad\xe6\x96\x87");
    CHECK(f.flat<float>("\xc3\xa9")(0) == 1.5f);
  }
}

TEST_CASE("safetensors: the length field and the header bytes", "[weights]") {
  XFMR_REQUIRE_FORMAT(parse(Bytes{}),
                      "expected at least 8 bytes for the header length (got a file of 0 bytes)");
  XFMR_REQUIRE_FORMAT(parse(Bytes(7, 0)), "(got a file of 7 bytes)");
  XFMR_REQUIRE_FORMAT(parse(raw_file("{}", {}, 100000001)),
                      "expected a header length <= 100000000 bytes (got 100000001)");
  XFMR_REQUIRE_FORMAT(parse(raw_file("{}", {}, std::numeric_limits<std::uint64_t>::max() - 1)),
                      "expected a header length <= 100000000 bytes (got 18446744073709551614)");
  XFMR_REQUIRE_FORMAT(
      parse(raw_file("{}", {}, 3)),
      "header length 3 does not fit in the file: expected 8 + 3 <= file size (got 10 bytes)");
  XFMR_REQUIRE_FORMAT(parse_header(""),
                      "expected the header to start with '{' (got an empty header)");
  XFMR_REQUIRE_FORMAT(parse_header(" {}"), "start with '{' (got the byte 0x20)");
  XFMR_REQUIRE_FORMAT(parse_header("[]"), "start with '{' (got the byte 0x5b)");
  XFMR_REQUIRE_FORMAT(parse_header("\xef\xbb\xbf{}"), "start with '{' (got the byte 0xef)");  // BOM
  // Strict UTF-8 as Rust's from_utf8: stray, overlong, surrogate, above U+10FFFF, truncated.
  XFMR_REQUIRE_FORMAT(parse_header("{\"\xff\":1}"),
                      "expected a UTF-8 header (got the invalid byte 0xff at header offset 2)");
  XFMR_REQUIRE_FORMAT(parse_header("{\"\xc0\xaf\":1}"), "invalid byte 0xc0 at header offset 2");
  XFMR_REQUIRE_FORMAT(parse_header("{\"\xe0\x80\xaf\":1}"), "invalid byte 0xe0");
  XFMR_REQUIRE_FORMAT(parse_header("{\"\xed\xa0\x80\":1}"), "invalid byte 0xed");
  XFMR_REQUIRE_FORMAT(parse_header("{\"\xf4\x90\x80\x80\":1}"), "invalid byte 0xf4");
  XFMR_REQUIRE_FORMAT(parse_header("{}\xe4\xb8"), "invalid byte 0xe4 at header offset 2");
  // Not JSON, or more than one value, or a lone surrogate escape.
  XFMR_REQUIRE_FORMAT(parse_header("{"), "expected the header to be valid JSON (got: ");
  XFMR_REQUIRE_FORMAT(parse_header("{} {}"), "expected the header to be valid JSON");
  // nlohmann stops at a NUL as if the input ended; JSON has no raw NUL anywhere.
  XFMR_REQUIRE_FORMAT(parse_header(std::string("{}\0", 3)),
                      "expected no NUL byte in the header (got one at header offset 2)");
  XFMR_REQUIRE_FORMAT(parse_header(std::string("{}\0 x", 5)), "(got one at header offset 2)");
  XFMR_REQUIRE_FORMAT(parse_header("{\"a\":NaN}"), "valid JSON");
  XFMR_REQUIRE_FORMAT(parse_header("{\"\\ud800\":1}"), "valid JSON");
  XFMR_REQUIRE_FORMAT(parse_header("{/* c */}"), "valid JSON");
  // Deep nesting (in an ignored field) stops at 64 levels, before any recursion could.
  std::string deep = std::string(70, '[') + std::string(70, ']');
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0],\"x\":" + deep + "}")),
      "expected a header nested at most 64 levels deep");
}

TEST_CASE("safetensors: duplicate keys are rejected", "[weights]") {
  const std::string e = "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}";
  XFMR_REQUIRE_FORMAT(parse_header("{\"a\":" + e + ",\"a\":" + e + "}"),
                      "expected unique keys in the header (got 'a' twice)");
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]}")),
      "(got 'dtype' twice)");
  XFMR_REQUIRE_FORMAT(parse_header("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"),
                      "(got 'k' twice)");
  XFMR_REQUIRE_FORMAT(parse_header("{\"__metadata__\":{},\"__metadata__\":{}}"),
                      "(got '__metadata__' twice)");
  // The same key in different objects is fine.
  CHECK(parse_header(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":{\"a\":1}}}")
            .size() == 1);
}

TEST_CASE("safetensors: entries, dtypes, shapes and metadata", "[weights]") {
  XFMR_REQUIRE_FORMAT(
      parse_header("{\"t\":3}"),
      "tensor 't': expected an object with dtype, shape and data_offsets (got number)");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"shape\":[],\"data_offsets\":[0,0]}")),
                      "tensor 't': expected a \"dtype\" (got none)");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":1,\"shape\":[],\"data_offsets\":[0,0]}")),
                      "expected \"dtype\" to be a string (got number)");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":\"Q7\",\"shape\":[],\"data_offsets\":[0,0]}")),
                      "tensor 't': expected a safetensors dtype (got the unknown dtype 'Q7')");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":\"f32\",\"shape\":[],\"data_offsets\":[0,0]}")),
                      "unknown dtype 'f32'");
  for (const char* d : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3",
                        "F6_E3M2", "I16", "U16", "I32", "U32", "F64", "U64", "C64"}) {
    CAPTURE(d);
    XFMR_REQUIRE_FORMAT(parse_header(one(std::string("{\"dtype\":\"") + d +
                                         "\",\"shape\":[0],\"data_offsets\":[0,0]}")),
                        std::string("tensor 't': expected dtype F32, F16, BF16 or I64 (got ") + d +
                            ", which xfmr does not support)");
  }
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":\"F32\",\"data_offsets\":[0,0]}")),
                      "expected a \"shape\" (got none)");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,0]}")),
                      "expected \"shape\" to be an array (got number)");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}")),
      "expected \"shape\" entries to be non-negative integers (got -1)");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}")),
      "non-negative integers (got 2.0)");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}")),
      "non-negative integers (got \"2\")");
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[0,9223372036854775808],\"data_offsets\":[0,0]}")),
      "expected \"shape\" entries <= 9223372036854775807 (got 9223372036854775808)");
  XFMR_REQUIRE_FORMAT(parse_header(one("{\"dtype\":\"F32\",\"shape\":[]}")),
                      "expected \"data_offsets\" (got none)");
  for (const char* offsets :
       {"[0]", "[0,4,4]", "[-1,4]", "[0,4.0]", "{}", "4", "[0,18446744073709551616]"}) {
    CAPTURE(offsets);
    XFMR_REQUIRE_FORMAT(
        parse_header(
            one(std::string("{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":") + offsets + "}"),
            f32_bytes({1})),
        "expected \"data_offsets\" to be [begin, end] of non-negative integers (got ");
  }
  XFMR_REQUIRE_FORMAT(parse_header("{\"__metadata__\":[]}"),
                      "expected \"__metadata__\" to be an object of strings (got array)");
  CHECK(parse_header("{\"__metadata__\":null}").metadata().empty());  // serde: Option::None
  XFMR_REQUIRE_FORMAT(parse_header("{\"__metadata__\":\"x\"}"),
                      "expected \"__metadata__\" to be an object of strings (got string)");
  XFMR_REQUIRE_FORMAT(
      parse_header("{\"__metadata__\":{\"n\":1}}"),
      "expected \"__metadata__\" to be an object of strings (got number for key 'n')");
}

TEST_CASE("safetensors: offsets tile the buffer; byte counts match shape x dtype", "[weights]") {
  const Bytes eight(8, 0);
  auto two = [](const char* a, const char* b) {
    return std::string("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":") + a +
           "},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + b + "}}";
  };
  CHECK(parse_header(two("[0,4]", "[4,8]"), eight).size() == 2);
  // A gap before the first tensor, a gap between, an overlap, end < begin.
  XFMR_REQUIRE_FORMAT(parse_header(two("[4,8]", "[8,12]"), Bytes(12, 0)),
                      "tensor 'a': expected data_offsets [0, end >= 0] so that the tensors sorted "
                      "by begin tile the data buffer without gap or overlap (got [4, 8])");
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[5,9]"), Bytes(9, 0)),
                      "tensor 'b': expected data_offsets [4, end >= 4]");
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[2,6]"), eight),
                      "tensor 'b': expected data_offsets [4,");
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[0,4]"), eight), "(got [0, 4])");
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[4,2]"), eight),
                      "tensor 'b': expected data_offsets [4, end >= 4]");
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,18446744073709551615]}")),
      "expected 0 bytes for dtype F32 and shape [0]");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}"), eight),
      "(got [4, 0])");
  // end - begin against numel x size.
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}"),
                   Bytes(20, 0)),
      "tensor 't': expected 24 bytes for dtype F32 and shape [2, 3] (got "
      "data_offsets [0, 20], 20 bytes)");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}"), eight),
      "expected 6 bytes for dtype BF16 and shape [3]");
  XFMR_REQUIRE_FORMAT(
      parse_header(one("{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,4]}"), Bytes(4, 0)),
      "expected 8 bytes for dtype I64 and shape []");
  // Overflow of the element count and of the byte count (checked before comparing).
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}")),
      "tensor 't': the element count of shape [4294967296, 4294967296] overflows 64 bits");
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4,0],\"data_offsets\":[0,0]}")),
      "the element count of shape [4611686018427387904, 4, 0] overflows 64 bits");
  XFMR_REQUIRE_FORMAT(
      parse_header(
          one("{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}")),
      "tensor 't': the byte count of shape [4611686018427387904] × F32 overflows 64 bits");
  // The last end must be the buffer's size: trailing bytes, or a truncated buffer.
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[4,8]"), Bytes(9, 0)),
                      "expected the tensors to cover the data buffer of 9 bytes exactly (got "
                      "tensors ending at byte 8)");
  XFMR_REQUIRE_FORMAT(parse_header(two("[0,4]", "[4,8]"), Bytes(7, 0)),
                      "data buffer of 7 bytes exactly (got tensors ending at byte 8)");
  XFMR_REQUIRE_FORMAT(parse_header("{}", Bytes(1, 0)),
                      "data buffer of 1 bytes exactly (got tensors ending at byte 0)");
}

TEST_CASE("safetensors: wrong calls throw std::invalid_argument naming the tensor", "[weights]") {
  const SafetensorsFile f = parse(write_file(
      {{"m", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})}, {"v", "F16", {2}, u16_bytes({0, 0})}}));
  XFMR_REQUIRE_INVALID(f.info("nope"),
                       "xfmr::SafetensorsFile: expected a tensor named 'nope' in <memory> (got "
                       "none of that name among its 2 tensors)");
  XFMR_REQUIRE_INVALID(f.matrix<float>("nope"), "'nope'");
  XFMR_REQUIRE_INVALID(f.vector<double>("nope", 2), "'nope'");
  XFMR_REQUIRE_INVALID(f.raw_data("nope"), "'nope'");
  XFMR_REQUIRE_INVALID(f.matrix<float>("v"),
                       "tensor 'v' in <memory>: expected rank 2 for matrix() (got shape [2])");
  XFMR_REQUIRE_INVALID(f.vector<float>("m"),
                       "tensor 'm' in <memory>: expected rank 1 for vector() (got shape [2, 3])");
  XFMR_REQUIRE_INVALID(f.matrix<float>("m", 3, 2),
                       "tensor 'm' in <memory>: expected shape [3, 2] (got [2, 3])");
  XFMR_REQUIRE_INVALID(f.matrix<double>("v", 1, 2), "expected shape [1, 2] (got [2])");
  XFMR_REQUIRE_INVALID(f.vector<float>("v", 3),
                       "tensor 'v' in <memory>: expected shape [3] (got [2])");
  XFMR_REQUIRE_INVALID(f.vector<float>("m", 6), "expected shape [6] (got [2, 3])");
  CHECK(f.matrix<float>("m", 2, 3)(1, 2) == 6.0f);
}

TEST_CASE("safetensors: open() names the file", "[weights]") {
  REQUIRE_THROWS_AS(SafetensorsFile::open("/nonexistent/dir/x.safetensors"), std::runtime_error);
  REQUIRE_THROWS_WITH(
      SafetensorsFile::open("/nonexistent/dir/x.safetensors"),
      Contains("xfmr::SafetensorsFile: cannot open '/nonexistent/dir/x.safetensors'"));
  REQUIRE_THROWS_WITH(SafetensorsFile::open("."),
                      Contains("cannot read '.' (a directory, expected a file)"));
  const std::string path = "xfmr_test_safetensors_truncated.safetensors";
  {
    Bytes b = write_file({{"m", "F32", {2}, f32_bytes({1, 2})}});
    b.pop_back();
    std::ofstream os(path, std::ios::binary);
    os.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }
  XFMR_REQUIRE_FORMAT(SafetensorsFile::open(path),
                      "xfmr::SafetensorsFile: " + path + ": expected the tensors to cover");
  std::remove(path.c_str());
}

TEST_CASE("safetensors: every truncation and every byte flip of a valid file", "[weights]") {
  const Bytes file = write_file({{"a", "F16", {3}, u16_bytes({0x3c00, 0x7c00, 0x0001})},
                                 {"b", "BF16", {1, 2}, u16_bytes({0x3f80, 0xff80})},
                                 {"c", "F32", {2}, f32_bytes({1.5f, -2.0f})},
                                 {"p", "I64", {1}, Bytes(8, 0)}},
                                1, "{\"k\":\"v\"}");
  const SafetensorsFile whole = parse(file);
  CHECK(whole.size() == 4);
  // A prefix never parses: the length field, the header or the buffer check catches it.
  std::size_t parsed_prefixes = 0;
  for (std::size_t n = 0; n < file.size(); ++n) {
    try {
      (void)parse(Bytes(file.begin(), file.begin() + std::ptrdiff_t(n)));
      ++parsed_prefixes;
    } catch (const xfmr::format_error&) {
    }
  }
  CHECK(parsed_prefixes == 0);
  // A flipped byte either throws format_error or gives a file whose tensors all read (no other
  // exception, no out-of-bounds read under ASan).
  std::size_t rejected = 0, accepted = 0;
  for (std::size_t i = 0; i < file.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x20, 0x80, 0xff}) {
      Bytes b = file;
      b[i] = std::uint8_t(b[i] ^ mask);
      try {
        const SafetensorsFile f = parse(b);
        for (const auto& name : f.names())
          if (f.info(name).dtype != Dtype::I64) (void)f.flat<float>(name);
        ++accepted;
      } catch (const xfmr::format_error&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);  // flips in the data buffer (and some in names) still parse
}
