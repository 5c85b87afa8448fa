// SPDX-License-Identifier: MIT
// SentenceEmbedder: the pipeline against its parts on the tiny golden BERT (always), and
// all-MiniLM-L6-v2 against sentence-transformers on tests/golden/minilm_sample.* when
// scripts/fetch_model.py has cached the model (else a visible SKIPPED warning).
#include <cmath>
#include <cstdint>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xfmr/models/sentence_embedder.hpp>
#include <xfmr/thread_pool.hpp>

#include "support/throws.hpp"

#ifndef XFMR_TEST_GOLDEN_DIR  // set by tests/CMakeLists.txt; this default serves syntax-only passes
#define XFMR_TEST_GOLDEN_DIR "tests/golden"
#endif

// Under ASan (-O0, every access checked) the MiniLM comparison takes the first 6 sentences only
// (a 6-layer, 384-wide model at -O0 costs seconds per hundred tokens); Release checks all 48.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kMiniLmSentences = 6;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kMiniLmSentences = 6;
#else
constexpr std::size_t kMiniLmSentences = 48;
#endif
#else
constexpr std::size_t kMiniLmSentences = 48;
#endif

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SentenceEmbedder;

const std::string kGolden = XFMR_TEST_GOLDEN_DIR;

std::vector<std::string> test_vocab() {
  std::ifstream f(kGolden + "/tokenizer_test_vocab.txt");
  std::vector<std::string> v;
  std::string line;
  while (std::getline(f, line)) v.push_back(line);
  REQUIRE(v.size() == 31);
  return v;
}

// The tiny random BERT of tests/golden (vocab 512, so every id of the 31-token vocabulary is in
// range) behind the small test tokenizer.
SentenceEmbedder<float> tiny() {
  return SentenceEmbedder<float>(xfmr::WordPieceTokenizer(test_vocab(), {}),
                                 xfmr::BertModel<float>::load(kGolden + "/bert_gelu"));
}

const std::vector<std::string> kTexts = {
    "hello world", "Hello, World!", "unaffable cafe", "", "the naive x xx x", "中文 hello",
    "don't b?", "a a a a a a a a a a a a a a a a a a", "hello", "world . , ! - '",
    "zzz unknown", "the the the"};

// The fetched all-MiniLM-L6-v2 folder (XFMR_TEST_MODEL_DIR overrides the cache), or "" after a
// SKIPPED warning when it is absent.
std::string minilm_dir() {
  std::string dir = xfmr::default_model_dir();
  if (const char* d = std::getenv("XFMR_TEST_MODEL_DIR")) dir = d;
  if (xfmr::model_present(dir)) return dir;
  WARN("SKIPPED: model not fetched (run scripts/fetch_model.py); looked in " << dir);
  return {};
}

}  // namespace

TEST_CASE("SentenceEmbedder: equals tokenizer + forward + mean_pool + l2_normalize",
          "[models][sentence_embedder]") {
  auto e = tiny();
  const RowMatrix<float> got = e.embed(kTexts, 32, false);
  REQUIRE(got.rows() == Index(kTexts.size()));
  REQUIRE(got.cols() == e.dim());
  // The same one sequence at a time, by hand.
  auto model = xfmr::BertModel<float>::load(kGolden + "/bert_gelu");
  for (std::size_t i = 0; i < kTexts.size(); ++i) {
    const xfmr::Encoding enc = e.tokenizer().encode(kTexts[i]);
    xfmr::EncoderInput in;
    const Index n = Index(enc.ids.size());
    in.ids.resize(1, n);
    in.token_type_ids.resize(1, n);
    for (Index t = 0; t < n; ++t) {
      in.ids(0, t) = enc.ids[std::size_t(t)];
      in.token_type_ids(0, t) = enc.type_ids[std::size_t(t)];
    }
    in.lengths = xfmr::LengthVector::Constant(1, n);
    const RowMatrix<float> h = model.forward(in);
    RowMatrix<float> v(1, e.dim());
    xfmr::mean_pool<float>(h, n, in.lengths, v);
    xfmr::l2_normalize<float>(v);
    INFO("text " << i << ": \"" << kTexts[i] << "\"");
    CHECK(got.row(Index(i)) == v);
    CHECK(std::abs(got.row(Index(i)).norm() - 1.0f) < 1e-5f);
  }
  // Different texts give different vectors (the comparison above can fail).
  CHECK((got.row(0) - got.row(2)).cwiseAbs().maxCoeff() > 1e-3f);
}

TEST_CASE("SentenceEmbedder: same bits for any batch size, order and thread count",
          "[models][sentence_embedder]") {
  auto e = tiny();
  const RowMatrix<float> ref = e.embed(kTexts, 1, false);
  for (const Index batch : {Index(1), Index(3), Index(5), Index(64)})
    for (const bool sorted : {false, true})
      for (const int threads : {1, 2, 3}) {
        e.set_threads(threads);
        INFO("batch " << batch << " sorted " << sorted << " threads " << threads);
        CHECK(e.embed(kTexts, batch, sorted) == ref);
      }
  CHECK(e.embed(std::vector<std::string>{}, 4).rows() == 0);
}

TEST_CASE("SentenceEmbedder: bad arguments", "[models][sentence_embedder]") {
  auto e = tiny();
  XFMR_REQUIRE_INVALID(e.embed(kTexts, 0), "xfmr::SentenceEmbedder: expected batch >= 1 (got 0)");
  XFMR_REQUIRE_INVALID(e.set_threads(0), "expected threads >= 1 (got 0)");
  CHECK_FALSE(xfmr::model_present(kGolden + "/no_such_model"));
  CHECK(xfmr::model_present(kGolden + "/bert_gelu") == false);  // no vocab.txt there
}

TEST_CASE("all-MiniLM-L6-v2 equals sentence-transformers on the golden sample",
          "[models][sentence_embedder][minilm]") {
  const std::string dir = minilm_dir();
  if (dir.empty()) return;
  std::ifstream jf(kGolden + "/minilm_sample.json");
  REQUIRE(jf);
  const nlohmann::json meta = nlohmann::json::parse(jf);
  const auto texts = meta.at("sentences").get<std::vector<std::string>>();
  const Index dim = meta.at("dim").get<Index>();
  REQUIRE(texts.size() == 48);
  RowMatrix<float> ref(Index(texts.size()), dim);
  std::ifstream bf(kGolden + "/minilm_sample.f32", std::ios::binary);
  const auto bytes = std::streamsize(sizeof(float) * std::size_t(ref.size()));
  bf.read(reinterpret_cast<char*>(ref.data()), bytes);
  REQUIRE(bf.gcount() == bytes);

  auto e = SentenceEmbedder<float>::load(dir);
  e.set_threads(2);
  REQUIRE(e.dim() == dim);
  REQUIRE(e.tokenizer().encode(texts.back()).ids.size() == 256);  // the long ones are truncated
  const std::vector<std::string> used(texts.begin(), texts.begin() + std::ptrdiff_t(kMiniLmSentences));
  const RowMatrix<float> got = e.embed(used, 16);
  double worst_cos = 1, worst_abs = 0;
  for (Index i = 0; i < got.rows(); ++i) {
    const Eigen::VectorXd a = got.row(i).transpose().cast<double>();
    const Eigen::VectorXd b = ref.row(i).transpose().cast<double>();
    const double cos = a.dot(b) / (a.norm() * b.norm());
    const double dmax = (a - b).cwiseAbs().maxCoeff();
    INFO("sentence " << i << ": \"" << texts[std::size_t(i)].substr(0, 60) << "\"");
    CHECK(cos >= 0.99999);
    CHECK(dmax <= 1e-5);
    worst_cos = std::min(worst_cos, cos);
    worst_abs = std::max(worst_abs, dmax);
  }
  // The real shapes (H = 384, 12 heads, 256-token sequences) on 1, 2 and 3 threads (3 parts on
  // a pool of 2): the same bits.
  const std::vector<std::string> few = {texts[0], texts[1], texts[2], texts.back()};
  const RowMatrix<float> two = e.embed(few, 4);
  e.set_threads(1);
  CHECK(e.embed(few, 4) == two);
  xfmr::ThreadPool pool(2);
  e.set_threads(3, &pool);
  CHECK(e.embed(few, 4) == two);
  // The tolerance check can fail: a neighbour's reference is far off.
  CHECK((got.row(0) - ref.row(1)).cwiseAbs().maxCoeff() > 1e-2f);
  WARN("all-MiniLM-L6-v2 vs sentence-transformers (" << used.size()
       << " sentences): worst 1 - cosine "
       << 1 - worst_cos << ", max |d| " << worst_abs);
}

TEST_CASE("all-MiniLM-L6-v2 with bf16 weights: cosine >= 0.999 to the fp32 embeddings",
          "[models][sentence_embedder][minilm][bf16]") {
  const std::string dir = minilm_dir();
  if (dir.empty()) return;
  std::ifstream jf(kGolden + "/minilm_sample.json");
  REQUIRE(jf);
  const auto texts = nlohmann::json::parse(jf).at("sentences").get<std::vector<std::string>>();
  const std::vector<std::string> used(texts.begin(),
                                      texts.begin() + std::ptrdiff_t(kMiniLmSentences));
  auto fp32 = SentenceEmbedder<float>::load(dir);
  auto bf16 = SentenceEmbedder<float>::load(dir, xfmr::WeightStorage::Bf16);
  const RowMatrix<float> a = fp32.embed(used, 16), b = bf16.embed(used, 16);
  REQUIRE(a.rows() == b.rows());
  double worst = 1;
  for (Index i = 0; i < a.rows(); ++i) {
    const Eigen::VectorXd x = a.row(i).transpose().cast<double>();
    const Eigen::VectorXd y = b.row(i).transpose().cast<double>();
    const double cos = x.dot(y) / (x.norm() * y.norm());
    INFO("sentence " << i << ": \"" << used[std::size_t(i)].substr(0, 60) << "\"");
    CHECK(cos >= 0.999);
    worst = std::min(worst, cos);
  }
  // bf16 storage is in effect: the embeddings differ from fp32 (rounding the weights to 8
  // significant bits moves them by ~1e-3), and a neighbour's embedding is far off.
  CHECK((a - b).cwiseAbs().maxCoeff() > 1e-5f);
  CHECK((b.row(0) - a.row(1)).cwiseAbs().maxCoeff() > 1e-2f);
  WARN("all-MiniLM-L6-v2 bf16 weights vs fp32 (" << used.size() << " sentences): worst 1 - cosine "
                                                  << 1 - worst);
}
