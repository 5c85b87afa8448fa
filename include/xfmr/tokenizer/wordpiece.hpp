// SPDX-License-Identifier: MIT
// BERT tokenization (SPEC §17) exactly as HF tokenizers' BertTokenizerFast: BertNormalizer
// (clean_text, handle_chinese_chars, strip_accents, lowercase), BertPreTokenizer (whitespace
// and punctuation split), WordPiece (greedy longest match, "##" continuations, [UNK] for a word
// with an unmatched rest or more than max_chars_per_word characters), TemplateProcessing
// ([CLS] A [SEP] / [CLS] A [SEP] B [SEP] with token types 0…0 1…1), the special tokens found in
// the raw text as HF's added vocabulary does, and truncation (longest_first for pairs).
// The Unicode behaviour comes from tables probed from HF tokenizers (unicode_tables.hpp,
// scripts/make_unicode_tables.py).
#ifndef XFMR_TOKENIZER_WORDPIECE_HPP
#define XFMR_TOKENIZER_WORDPIECE_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"
#include "unicode_tables.hpp"
#include "utf8.hpp"

XFMR_NAMESPACE_BEGIN

/// Options of BertNormalizer / WordPiece / truncation, with HF's defaults.
struct WordPieceConfig {
  bool lowercase = true;               ///< do_lower_case
  std::optional<bool> strip_accents;   ///< NFD then drop Mn; unset: follows `lowercase` (HF)
  bool chinese_chars = true;           ///< tokenize_chinese_chars: each CJK ideograph a word
  bool clean_text = true;              ///< drop NUL, U+FFFD, controls; whitespace → ' '
  Index max_chars_per_word = 100;      ///< longer words (in code points) become [UNK]
  Index max_length = 512;              ///< encode(): tokens per sequence incl. [CLS]/[SEP]
  InvalidUtf8 invalid_utf8 = InvalidUtf8::Throw;
  std::string unk_token = "[UNK]", cls_token = "[CLS]", sep_token = "[SEP]",
              pad_token = "[PAD]", mask_token = "[MASK]";
  std::string continuing_prefix = "##";
};

/// One encoded sequence: ids and token types (attention mask: all ones, ids.size() long).
struct Encoding {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> type_ids;
};

/// A batch padded to its longest sequence (pad id, type 0): what the models take.
struct TokenBatch {
  IdMatrix ids;        ///< batch × n, row-major
  IdMatrix type_ids;   ///< batch × n
  IdVector lengths;    ///< valid tokens per row (the attention mask is 1 on [0, length))
  /// batch × n matrix of 1 (token) and 0 (padding), as HF's attention_mask.
  IdMatrix attention_mask() const {
    IdMatrix m = IdMatrix::Zero(ids.rows(), ids.cols());
    for (Index r = 0; r < m.rows(); ++r) m.row(r).head(lengths(r)).setOnes();
    return m;
  }
};

/// BERT WordPiece tokenizer. Immutable after construction; copies share the vocabulary; every
/// const method is thread-safe. Text is UTF-8: invalid bytes throw xfmr::format_error naming
/// the byte offset, or become U+FFFD (config.invalid_utf8 = Replace), which clean_text removes.
class WordPieceTokenizer {
 public:
  /// From a model folder: vocab.txt (one token per line, id = line number; a repeated token
  /// keeps its last id, as HF), tokenizer_config.json (do_lower_case, strip_accents,
  /// tokenize_chinese_chars, model_max_length, *_token; each optional) and, if present,
  /// sentence_bert_config.json's max_seq_length, which wins over model_max_length (as
  /// sentence-transformers). Missing JSON files leave the defaults. Throws
  /// std::invalid_argument if vocab.txt cannot be read or lacks a special token,
  /// xfmr::format_error if a JSON file is malformed or has a flag of the wrong type.
  static WordPieceTokenizer from_folder(const std::string& dir) {
    WordPieceConfig config;
    const std::string tc = dir + "/tokenizer_config.json";
    if (std::ifstream f{tc}) {
      const nlohmann::json j = parse_json(f, tc);
      const auto flag = [&](const char* key, bool& out) {
        if (!j.contains(key) || j[key].is_null()) return;
        if (!j[key].is_boolean())
          detail::throw_format("WordPieceTokenizer", tc, ": expected ", key,
                               " to be a boolean (got ", j[key].dump(), ")");
        out = j[key].get<bool>();
      };
      flag("do_lower_case", config.lowercase);
      flag("tokenize_chinese_chars", config.chinese_chars);
      if (j.contains("strip_accents") && !j["strip_accents"].is_null()) {
        bool s = false;
        flag("strip_accents", s);
        config.strip_accents = s;
      }
      if (j.contains("model_max_length") && j["model_max_length"].is_number()) {
        const double m = j["model_max_length"].get<double>();  // HF writes 1e30 for "none"
        config.max_length = m >= 1e18 ? std::numeric_limits<Index>::max() : static_cast<Index>(m);
      }
      for (auto [key, out] : {std::pair<const char*, std::string*>{"unk_token", &config.unk_token},
                              {"cls_token", &config.cls_token}, {"sep_token", &config.sep_token},
                              {"pad_token", &config.pad_token},
                              {"mask_token", &config.mask_token}}) {
        if (!j.contains(key)) continue;
        const nlohmann::json& v = j[key];
        if (v.is_string()) *out = v.get<std::string>();
        else if (v.is_object() && v.contains("content") && v["content"].is_string())
          *out = v["content"].get<std::string>();
      }
    }
    const std::string sb = dir + "/sentence_bert_config.json";
    if (std::ifstream f{sb}) {
      const nlohmann::json j = parse_json(f, sb);
      if (j.contains("max_seq_length") && j["max_seq_length"].is_number_integer())
        config.max_length = j["max_seq_length"].get<Index>();
    }
    return WordPieceTokenizer(read_vocab(dir + "/vocab.txt"), std::move(config));
  }

  /// From a vocabulary (token of id i at index i). Throws std::invalid_argument if unk, cls, sep
  /// or pad is missing from it, max_chars_per_word < 1 or max_length < 3.
  WordPieceTokenizer(std::vector<std::string> vocab, WordPieceConfig config)
      : impl_(std::make_shared<Impl>(std::move(vocab), std::move(config))) {}

  /// Token ids of `text` without special tokens added (special tokens written in the text,
  /// e.g. "[SEP]", are recognised), untruncated.
  std::vector<std::int64_t> tokenize(std::string_view text) const {
    std::vector<std::int64_t> ids;
    impl_->run(text, ids);
    return ids;
  }
  /// Appends the ids of tokenize(text) to `ids`: reusing one vector over many texts avoids its
  /// reallocation (the only other allocation is one small word buffer per call).
  void tokenize_into(std::string_view text, std::vector<std::int64_t>& ids) const {
    impl_->run(text, ids);
  }

  /// The pieces of tokenize(text) as strings ("##" on continuations), for debugging.
  std::vector<std::string> tokens(std::string_view text) const {
    std::vector<std::string> out;
    for (const std::int64_t id : tokenize(text)) out.push_back(impl_->vocab[id]);
    return out;
  }

  /// [CLS] a [SEP], types 0, truncated first to max_length.
  Encoding encode(std::string_view a) const {
    Encoding e;
    e.ids.push_back(impl_->cls);
    impl_->run(a, e.ids);
    const std::size_t keep = static_cast<std::size_t>(impl_->config.max_length) - 2;
    if (e.ids.size() - 1 > keep) e.ids.resize(keep + 1);
    e.ids.push_back(impl_->sep);
    e.type_ids.assign(e.ids.size(), 0);
    return e;
  }

  /// [CLS] a [SEP] b [SEP], types 0 for [CLS] a [SEP] and 1 for b [SEP]; if longer than
  /// max_length, a and b are truncated longest_first as HF tokenizers (the shorter keeps its
  /// length if it fits in half the budget, else both get half, the longer one the odd token).
  Encoding encode(std::string_view a, std::string_view b) const {
    std::vector<std::int64_t> ta = tokenize(a), tb = tokenize(b);
    const std::size_t budget = static_cast<std::size_t>(impl_->config.max_length) - 3;
    if (ta.size() + tb.size() > budget) {
      std::size_t n1 = ta.size(), n2 = tb.size();
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      if (swap) std::swap(n1, n2);
      ta.resize(std::min(ta.size(), n1));
      tb.resize(std::min(tb.size(), n2));
    }
    Encoding e;
    e.ids.reserve(ta.size() + tb.size() + 3);
    e.ids.push_back(impl_->cls);
    e.ids.insert(e.ids.end(), ta.begin(), ta.end());
    e.ids.push_back(impl_->sep);
    e.type_ids.assign(e.ids.size(), 0);
    e.ids.insert(e.ids.end(), tb.begin(), tb.end());
    e.ids.push_back(impl_->sep);
    e.type_ids.resize(e.ids.size(), 1);
    return e;
  }

  /// encode() of each text, padded to the longest with the pad id (type 0).
  TokenBatch encode_batch(const std::vector<std::string>& texts) const {
    std::vector<Encoding> es;
    es.reserve(texts.size());
    for (const std::string& t : texts) es.push_back(encode(t));
    return pad(es);
  }
  /// encode(a, b) of each pair, padded to the longest with the pad id (type 0).
  TokenBatch encode_batch(const std::vector<std::pair<std::string, std::string>>& pairs) const {
    std::vector<Encoding> es;
    es.reserve(pairs.size());
    for (const auto& [a, b] : pairs) es.push_back(encode(a, b));
    return pad(es);
  }

  /// Number of ids (lines of vocab.txt).
  Index vocab_size() const noexcept { return static_cast<Index>(impl_->vocab.size()); }
  /// The id of a vocabulary token; throws std::invalid_argument if it is not in the vocabulary.
  std::int64_t id(std::string_view token) const {
    const auto it = impl_->words.find(token);
    detail::require(it != impl_->words.end(), "WordPieceTokenizer",
                    "expected a token of the vocabulary (got \"", token, "\")");
    return it->second;
  }
  /// The token of an id; throws std::invalid_argument outside [0, vocab_size()).
  const std::string& token(std::int64_t id) const {
    detail::require(id >= 0 && id < vocab_size(), "WordPieceTokenizer", "expected an id in [0, ",
                    vocab_size(), ") (got ", id, ")");
    return impl_->vocab[static_cast<std::size_t>(id)];
  }
  const WordPieceConfig& config() const noexcept { return impl_->config; }

 private:
  struct Impl;

  static nlohmann::json parse_json(std::ifstream& f, const std::string& path) {
    try {
      return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      detail::throw_format("WordPieceTokenizer", path, ": expected JSON (got ", e.what(), ")");
    }
  }

  static std::vector<std::string> read_vocab(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    detail::require(static_cast<bool>(f), "WordPieceTokenizer",
                    "expected a readable vocab.txt (got none at ", path, ")");
    std::vector<std::string> vocab;
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      vocab.push_back(line);
    }
    return vocab;
  }

  TokenBatch pad(const std::vector<Encoding>& es) const {
    Index n = 0;
    for (const Encoding& e : es) n = std::max(n, static_cast<Index>(e.ids.size()));
    TokenBatch b;
    const Index rows = static_cast<Index>(es.size());
    b.ids.setConstant(rows, n, impl_->pad);
    b.type_ids.setZero(rows, n);
    b.lengths.resize(rows);
    for (Index r = 0; r < rows; ++r) {
      const Encoding& e = es[static_cast<std::size_t>(r)];
      const Index len = static_cast<Index>(e.ids.size());
      b.lengths(r) = len;
      std::copy(e.ids.begin(), e.ids.end(), b.ids.row(r).data());
      std::copy(e.type_ids.begin(), e.type_ids.end(), b.type_ids.row(r).data());
    }
    return b;
  }

  struct Impl {
    using Map = std::unordered_map<std::string_view, std::int64_t>;
    std::vector<std::string> vocab;
    WordPieceConfig config;
    bool strip = true;
    Map words;         // whole vocabulary
    Map continuations; // "##piece" tokens, keyed by "piece"
    std::size_t max_piece_bytes = 0;
    std::int64_t unk = 0, cls = 0, sep = 0, pad = 0;
    std::vector<std::pair<std::string_view, std::int64_t>> specials;  // matched in raw text

    Impl(std::vector<std::string> v, WordPieceConfig c)
        : vocab(std::move(v)), config(std::move(c)) {
      const char* where = "WordPieceTokenizer";
      detail::require(config.max_chars_per_word >= 1, where,
                      "expected max_chars_per_word >= 1 (got ", config.max_chars_per_word, ")");
      detail::require(config.max_length >= 3, where, "expected max_length >= 3 (got ",
                      config.max_length, ")");
      strip = config.strip_accents.value_or(config.lowercase);
      words.reserve(vocab.size());
      const std::string& prefix = config.continuing_prefix;
      for (std::size_t i = 0; i < vocab.size(); ++i) {
        const std::string_view t = vocab[i];
        words[t] = static_cast<std::int64_t>(i);  // a repeated token keeps its last id
        if (!prefix.empty() && t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0)
          continuations[t.substr(prefix.size())] = static_cast<std::int64_t>(i);
        max_piece_bytes = std::max(max_piece_bytes, t.size());
      }
      const auto special = [&](const std::string& name, const char* what) {
        const auto it = words.find(name);
        detail::require(it != words.end(), where, "expected the ", what, " token \"", name,
                        "\" in the vocabulary (got a vocabulary of ", vocab.size(),
                        " tokens without it)");
        return it->second;
      };
      unk = special(config.unk_token, "unknown");
      cls = special(config.cls_token, "classification");
      sep = special(config.sep_token, "separator");
      pad = special(config.pad_token, "padding");
      for (const std::string* s : {&config.unk_token, &config.cls_token, &config.sep_token,
                                   &config.pad_token, &config.mask_token}) {
        const auto it = words.find(*s);
        if (!s->empty() && it != words.end()) specials.emplace_back(it->first, it->second);
      }
      // Leftmost-longest as HF's added vocabulary: try longer tokens first.
      std::sort(specials.begin(), specials.end(),
                [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    }

    static std::uint8_t flags(char32_t cp) noexcept {
      namespace u = detail::unicode;
      if (cp < 128) return u::kAsciiFlags[cp];
      const std::uint32_t* end = u::kRunStart + u::kRunCount;
      const std::uint32_t* it = std::upper_bound(u::kRunStart, end, static_cast<std::uint32_t>(cp));
      return u::kRunFlags[it - u::kRunStart - 1];
    }

    // The UTF-8 replacement of cp in a mapping table (Key/Offset/Length/Pool).
    static std::string_view mapped(char32_t cp, const std::uint32_t* keys, std::uint32_t count,
                                   const std::uint16_t* offsets, const std::uint8_t* lengths,
                                   const unsigned char* pool) noexcept {
      const std::uint32_t* it =
          std::lower_bound(keys, keys + count, static_cast<std::uint32_t>(cp));
      const std::size_t i = static_cast<std::size_t>(it - keys);
      return {reinterpret_cast<const char*>(pool) + offsets[i], lengths[i]};
    }

    struct State {
      std::string word;       // current word, UTF-8
      std::size_t chars = 0;  // its length in code points
    };

    // Pre-tokenizer: a normalised character joins the word, ends it (whitespace) or is a
    // word of its own (punctuation).
    void emit(State& st, char32_t cp, std::vector<std::int64_t>& out) const {
      const std::uint8_t f = flags(cp);
      if (f & detail::unicode::kWhitespace) {
        flush(st, out);
      } else if (f & detail::unicode::kPunct) {
        flush(st, out);
        detail::utf8_append(st.word, cp);
        st.chars = 1;
        flush(st, out);
      } else {
        detail::utf8_append(st.word, cp);
        ++st.chars;
      }
    }

    void lower_then_emit(State& st, char32_t cp, std::vector<std::int64_t>& out) const {
      namespace u = detail::unicode;
      if (config.lowercase && (flags(cp) & u::kHasLower)) {
        const std::string_view m = mapped(cp, u::kMapLowerKey, u::kMapLowerCount,
                                          u::kMapLowerOffset, u::kMapLowerLength, u::kMapLowerPool);
        for (std::size_t k = 0; k < m.size();) {
          const detail::Utf8Step s = detail::utf8_step(m, k);
          emit(st, s.cp, out);
          k += s.length;
        }
      } else {
        emit(st, cp, out);
      }
    }

    // Normaliser steps 3–4 for one cleaned character: strip accents (NFD minus Mn), lowercase.
    void normalised(State& st, char32_t cp, std::vector<std::int64_t>& out) const {
      namespace u = detail::unicode;
      if (strip) {
        if (cp >= 0xAC00 && cp <= 0xD7A3) {  // Hangul syllable: algorithmic NFD (L V [T])
          const char32_t s = cp - 0xAC00;
          lower_then_emit(st, 0x1100 + s / 588, out);
          lower_then_emit(st, 0x1161 + (s % 588) / 28, out);
          if (s % 28 != 0) lower_then_emit(st, 0x11A7 + s % 28, out);
          return;
        }
        if (flags(cp) & u::kHasStrip) {
          const std::string_view m = mapped(cp, u::kMapStripKey, u::kMapStripCount,
                                            u::kMapStripOffset, u::kMapStripLength,
                                            u::kMapStripPool);
          for (std::size_t k = 0; k < m.size();) {
            const detail::Utf8Step s = detail::utf8_step(m, k);
            lower_then_emit(st, s.cp, out);
            k += s.length;
          }
          return;
        }
      }
      lower_then_emit(st, cp, out);
    }

    // WordPiece on the finished word.
    void flush(State& st, std::vector<std::int64_t>& out) const {
      if (st.word.empty()) return;
      const std::string_view w = st.word;
      if (st.chars > static_cast<std::size_t>(config.max_chars_per_word)) {
        out.push_back(unk);
      } else {
        const std::size_t mark = out.size();
        std::size_t start = 0;
        while (start < w.size()) {
          std::size_t end = std::min(w.size(), start + max_piece_bytes);
          while (end < w.size() && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
          const Map& map = start == 0 ? words : continuations;
          std::int64_t found = -1;
          while (end > start) {
            const auto it = map.find(w.substr(start, end - start));
            if (it != map.end()) {
              found = it->second;
              break;
            }
            do --end;
            while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80);
          }
          if (found < 0) {
            out.resize(mark);
            out.push_back(unk);
            break;
          }
          out.push_back(found);
          start = end;
        }
      }
      st.word.clear();
      st.chars = 0;
    }

    void run(std::string_view text, std::vector<std::int64_t>& out) const {
      namespace u = detail::unicode;
      State st;
      st.word.reserve(64);
      std::size_t i = 0;
      while (i < text.size()) {
        if (text[i] == '[') {  // special tokens, matched in the raw text
          bool matched = false;
          for (const auto& [tok, tid] : specials) {
            if (text.compare(i, tok.size(), tok) == 0) {
              flush(st, out);
              out.push_back(tid);
              i += tok.size();
              matched = true;
              break;
            }
          }
          if (matched) continue;
        }
        const detail::Utf8Step step = detail::utf8_step(text, i);
        if (step.error != nullptr && config.invalid_utf8 == InvalidUtf8::Throw)
          detail::throw_utf8("WordPieceTokenizer", text, i, step);
        i += step.length;
        char32_t cp = step.cp;
        const std::uint8_t f = flags(cp);
        if (config.clean_text) {
          if (f & u::kDrop) continue;
          if (f & u::kSpace) cp = U' ';
        }
        if (config.chinese_chars && (f & u::kCjk)) {
          flush(st, out);
          normalised(st, cp, out);
          flush(st, out);
        } else {
          normalised(st, cp, out);
        }
      }
      flush(st, out);
    }
  };

  std::shared_ptr<const Impl> impl_;
};

XFMR_NAMESPACE_END

#endif  // XFMR_TOKENIZER_WORDPIECE_HPP
