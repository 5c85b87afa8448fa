// SPDX-License-Identifier: MIT
// libFuzzer target for WordPieceTokenizer (tokenizer/wordpiece.hpp) on the committed test
// vocabulary: any input either throws xfmr::format_error (invalid UTF-8, strict mode) or
// tokenizes to ids inside the vocabulary; the replacing mode never throws and agrees with the
// strict one on valid input; encode() respects max_length. Anything else (another exception, a
// sanitizer report, a broken invariant) is a finding.
// Build: cmake -DXFMR_BUILD_FUZZERS=ON -DCMAKE_CXX_COMPILER=clang++; run: xfmr_fuzz_tokenizer
// <scratch corpus dir> tests/fuzz/corpus/tokenizer (see README "Fuzzing").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <xfmr/tokenizer/wordpiece.hpp>

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

std::vector<std::string> vocab() {
  // A small vocabulary with whole words, continuations, CJK and accented entries.
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ",", "!", "un",
          "##aff", "##able", "cafe", "naive", "\xe4\xb8\xad", "\xe6\x96\x87", "##s", "a", "##a",
          "the", ".", "-", "caf\xc3\xa9", "Hello", "x", "##x", "'", "t", "don", "b", "?", "##",
          "#", "##\xc3\xa9", "\xc3\xa9"};
}

xfmr::WordPieceTokenizer make(xfmr::InvalidUtf8 mode, bool lowercase, bool clean) {
  xfmr::WordPieceConfig c;
  c.invalid_utf8 = mode;
  c.lowercase = lowercase;
  c.clean_text = clean;
  c.max_chars_per_word = 12;
  c.max_length = 9;
  return xfmr::WordPieceTokenizer(vocab(), c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const xfmr::WordPieceTokenizer strict = make(xfmr::InvalidUtf8::Throw, true, true);
  static const xfmr::WordPieceTokenizer lenient = make(xfmr::InvalidUtf8::Replace, true, true);
  static const xfmr::WordPieceTokenizer raw = make(xfmr::InvalidUtf8::Replace, false, false);
  const std::string text(reinterpret_cast<const char*>(data), size);  // exact size: no padding
  const std::vector<std::int64_t> ids = lenient.tokenize(text);
  for (const std::int64_t id : ids) check(id >= 0 && id < lenient.vocab_size());
  check(ids.size() <= size);  // at most one token per input byte
  for (const std::int64_t id : raw.tokenize(text)) check(id >= 0 && id < raw.vocab_size());
  try {
    check(strict.tokenize(text) == ids);
  } catch (const xfmr::format_error&) {
    // invalid UTF-8, rejected as it should be
  }
  const std::size_t half = size / 2;
  const xfmr::Encoding e = lenient.encode(std::string_view(text).substr(0, half),
                                          std::string_view(text).substr(half));
  check(e.ids.size() <= 9 && e.ids.size() == e.type_ids.size() && e.ids.front() == 2);
  return 0;
}
