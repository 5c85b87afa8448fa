// SPDX-License-Identifier: MIT
// Strict UTF-8 decoding (RFC 3629 / Unicode §3.9): one scalar value at a time, never reading
// past the end. Invalid input is reported with its byte offset, or replaced by U+FFFD per
// maximal invalid subpart (Unicode's "substitution of maximal subparts", as Python's
// bytes.decode(errors="replace") and WHATWG do).
#ifndef XFMR_TOKENIZER_UTF8_HPP
#define XFMR_TOKENIZER_UTF8_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../error.hpp"

XFMR_NAMESPACE_BEGIN

/// What a decoder does with bytes that are not UTF-8.
enum class InvalidUtf8 {
  Throw,    ///< throw xfmr::format_error naming the byte offset and the reason (default)
  Replace,  ///< decode each maximal invalid subpart as U+FFFD
};

namespace detail {

/// One decoded code point: `cp` (U+FFFD for an invalid subpart), its byte length (≥ 1), and
/// `error` (nullptr when valid; else the reason, a string literal).
struct Utf8Step {
  char32_t cp;
  std::uint32_t length;
  const char* error;
};

/// Decodes the code point starting at s[i] (i < s.size()). Rejects overlong forms, surrogates
/// (U+D800…DFFF), values above U+10FFFF, stray continuation bytes and truncated sequences.
/// Reads only s[i … i + length).
inline Utf8Step utf8_step(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c0 = b(i);
  if (c0 < 0x80) return {static_cast<char32_t>(c0), 1, nullptr};
  std::uint32_t need;
  char32_t cp;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c0 < 0xC2) {
    return {0xFFFD, 1, c0 < 0xC0 ? "unexpected continuation byte" : "overlong 2-byte lead byte"};
  } else if (c0 < 0xE0) {
    need = 1, cp = c0 & 0x1F;
  } else if (c0 < 0xF0) {
    need = 2, cp = c0 & 0x0F;
    if (c0 == 0xE0) lo = 0xA0;  // overlong below U+0800
    if (c0 == 0xED) hi = 0x9F;  // surrogates U+D800…DFFF
  } else if (c0 < 0xF5) {
    need = 3, cp = c0 & 0x07;
    if (c0 == 0xF0) lo = 0x90;  // overlong below U+10000
    if (c0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {0xFFFD, 1, "byte 0xF5…0xFF cannot occur in UTF-8"};
  }
  for (std::uint32_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {0xFFFD, k, "truncated sequence at the end of the text"};
    const unsigned c = b(i + k);
    const unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) {
      const char* why = "expected a continuation byte";
      if (k == 1 && c >= 0x80 && c <= 0xBF) {
        why = c0 == 0xED ? "surrogate code point (U+D800…U+DFFF)"
              : c0 == 0xF4 ? "code point above U+10FFFF"
                           : "overlong encoding";
      }
      return {0xFFFD, k, why};
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  return {cp, need + 1, nullptr};
}

/// Appends the UTF-8 encoding of a scalar value cp (≤ U+10FFFF, not a surrogate).
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Throws xfmr::format_error for the invalid step at byte offset i of s, e.g.
/// "xfmr::WordPieceTokenizer: invalid UTF-8 at byte offset 3 (overlong encoding; bytes E0 80)".
[[noreturn]] XFMR_COLD inline void throw_utf8(const char* where, std::string_view s,
                                              std::size_t i, const Utf8Step& step) {
  static const char* hex = "0123456789ABCDEF";
  std::string bytes;
  for (std::size_t k = i; k < i + step.length + (i + step.length < s.size() ? 1 : 0); ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (!bytes.empty()) bytes.push_back(' ');
    bytes.push_back(hex[c >> 4]);
    bytes.push_back(hex[c & 15]);
  }
  throw_format(where, "invalid UTF-8 at byte offset ", i, " (", step.error, "; bytes ", bytes,
               ")");
}

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_TOKENIZER_UTF8_HPP
