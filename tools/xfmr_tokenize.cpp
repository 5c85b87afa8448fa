// SPDX-License-Identifier: MIT
// xfmr_tokenize: BERT WordPiece ids of each line of stdin, one line of space-separated ids per
// input line ([CLS] … [SEP]), as HF's BertTokenizerFast(line)["input_ids"].
//   xfmr_tokenize MODEL_DIR [--max-length N] [--no-truncation] [--pairs] [--replace]
// MODEL_DIR holds vocab.txt and tokenizer_config.json (scripts/fetch_model.py prints it).
// --pairs: each line is "A<TAB>B", encoded as a pair. --replace: invalid UTF-8 becomes U+FFFD
// instead of an error. A line that cannot be tokenised prints "ERROR <message>" (exit code 1
// at the end).
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>

#include <xfmr/tokenizer/wordpiece.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: xfmr_tokenize MODEL_DIR [--max-length N] [--no-truncation] [--pairs] "
                 "[--replace] < lines\n";
    return 2;
  }
  bool pairs = false;
  try {
    xfmr::WordPieceTokenizer tok = xfmr::WordPieceTokenizer::from_folder(argv[1]);
    xfmr::WordPieceConfig config = tok.config();
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--pairs") {
        pairs = true;
      } else if (a == "--replace") {
        config.invalid_utf8 = xfmr::InvalidUtf8::Replace;
      } else if (a == "--no-truncation") {
        config.max_length = std::numeric_limits<xfmr::Index>::max();
      } else if (a == "--max-length" && i + 1 < argc) {
        config.max_length = std::atol(argv[++i]);
      } else {
        std::cerr << "xfmr_tokenize: unknown argument " << a << "\n";
        return 2;
      }
    }
    std::vector<std::string> vocab;
    for (xfmr::Index id = 0; id < tok.vocab_size(); ++id) vocab.push_back(tok.token(id));
    tok = xfmr::WordPieceTokenizer(std::move(vocab), config);

    std::ios::sync_with_stdio(false);
    std::string line, out;
    int status = 0;
    while (std::getline(std::cin, line)) {
      try {
        xfmr::Encoding e;
        const std::size_t tab = line.find('\t');
        if (pairs && tab != std::string::npos)
          e = tok.encode(std::string_view(line).substr(0, tab),
                         std::string_view(line).substr(tab + 1));
        else
          e = tok.encode(line);
        out.clear();
        for (std::size_t k = 0; k < e.ids.size(); ++k) {
          if (k) out.push_back(' ');
          out += std::to_string(e.ids[k]);
        }
        std::cout << out << '\n';
      } catch (const std::exception& ex) {
        std::cout << "ERROR " << ex.what() << '\n';
        status = 1;
      }
    }
    return status;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
