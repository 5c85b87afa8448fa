// SPDX-License-Identifier: MIT
// Semantic search with all-MiniLM-L6-v2 (scripts/fetch_model.py) on a real corpus, raw and
// BERT-whitened (kexue.fm/archives/8069) at k = 384, 256, 128, 64.
//
// Corpus: Debian's fortune packages (fortunes-min, fortunes: /usr/share/games/fortunes, the
// English files). Labelled pairs, constructed: every fortune of 2+ sentences (80-500
// characters, its " -- author" attribution dropped) is cut at the sentence boundary nearest its
// middle; the first part is a query, the second a document. The task is to find, among all
// documents, the continuation of the query's own fortune: the two halves share a topic and an
// author's voice but few words, which is what a sentence encoder should capture. Metrics:
// recall@1, recall@10 and MRR over all queries; the cosine spread (mean / std of the cosine of
// random document pairs); search time per query (cosine_top_k, top 10, one thread).
// Whitening is fitted on the documents only (the corpus a search engine has), then applied to
// queries and documents alike. It prints what it measured, then a machine-readable block
// (lines "RESULT kind k recall1 recall10 mrr cos_mean cos_std ms_per_query").
// Without the model (or the fortunes) it says "skipped" and exits 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <xfmr/heads/retrieval.hpp>
#include <xfmr/heads/whitening.hpp>
#include <xfmr/models/sentence_embedder.hpp>

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
namespace fs = std::filesystem;

constexpr std::size_t kMaxPairs = 2000;

std::string collapse(const std::string& s) {
  std::string out;
  bool space = false;
  for (const char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
    } else {
      if (space) out.push_back(' ');
      space = false;
      out.push_back(c);
    }
  }
  return out;
}

// The fortunes of one file, whitespace collapsed, attribution (" -- …" at the end) dropped.
std::vector<std::string> fortunes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<std::string> out;
  std::string line, rec;
  auto flush = [&] {
    std::string s = collapse(rec);
    rec.clear();
    const auto dash = s.rfind(" -- ");
    if (dash != std::string::npos && dash > s.size() / 2) s.resize(dash);
    if (!s.empty()) out.push_back(s);
  };
  while (std::getline(f, line)) {
    if (line == "%") flush();
    else rec += line + "\n";
  }
  flush();
  return out;
}

struct Pair {
  std::string query, doc;
};

// Cut at the sentence end (". ", "? ", "! ") nearest the middle; both halves >= 25 characters.
bool split(const std::string& s, Pair& p) {
  if (s.size() < 80 || s.size() > 500) return false;
  std::size_t best = std::string::npos;
  const double mid = double(s.size()) / 2;
  for (std::size_t i = 1; i + 1 < s.size(); ++i)
    if ((s[i] == '.' || s[i] == '?' || s[i] == '!') && s[i + 1] == ' ' &&
        (best == std::string::npos || std::abs(double(i) - mid) < std::abs(double(best) - mid)))
      best = i;
  if (best == std::string::npos || best + 1 < 25 || s.size() - best - 2 < 25) return false;
  p.query = s.substr(0, best + 1);
  p.doc = s.substr(best + 2);
  return true;
}

std::vector<Pair> make_pairs(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().has_extension()) continue;  // skip .dat, .u8
    if (name == "chinese" || name == "tang300" || name == "song100" || name == "art" ||
        name == "ascii-art" || name == "asciiart")
      continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Pair> all;
  for (const auto& f : files)
    for (const auto& s : fortunes(f)) {
      Pair p;
      if (split(s, p)) all.push_back(std::move(p));
    }
  // Every step-th pair, so every file contributes; documents unique.
  std::vector<Pair> out;
  const std::size_t step = std::max<std::size_t>(1, all.size() / kMaxPairs);
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < all.size() && out.size() < kMaxPairs; i += step) {
    if (std::find(seen.begin(), seen.end(), all[i].doc) != seen.end()) continue;
    seen.push_back(all[i].doc);
    out.push_back(all[i]);
  }
  return out;
}

struct Spread {
  double mean, stddev;
};

Spread cosine_spread(const RowMatrix<float>& x) {
  std::mt19937_64 rng(20261130);
  std::uniform_int_distribution<Index> pick(0, x.rows() - 1);
  double s = 0, s2 = 0;
  const int pairs = 20000;
  for (int p = 0; p < pairs; ++p) {
    Index a = pick(rng), b = pick(rng);
    if (a == b) b = (b + 1) % x.rows();
    const Eigen::VectorXd u = x.row(a).transpose().cast<double>();
    const Eigen::VectorXd v = x.row(b).transpose().cast<double>();
    const double c = u.dot(v) / (u.norm() * v.norm());
    s += c;
    s2 += c * c;
  }
  const double mean = s / pairs;
  return {mean, std::sqrt(std::max(0.0, s2 / pairs - mean * mean))};
}

struct Result {
  const char* kind;
  Index k;
  double recall1, recall10, mrr, cos_mean, cos_std, ms_per_query;
};

Result evaluate(const char* kind, Index k, const RowMatrix<float>& q, const RowMatrix<float>& d) {
  const Index Q = q.rows(), top = 10;
  xfmr::TopKIndices idx(Q, top);
  RowMatrix<float> scores(Q, top);
  // Best of 3 timed runs (the machine may be shared).
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    xfmr::cosine_top_k(q, d, top, idx, scores);
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  // Rank of the true document: exact, from its cosine against all documents.
  double hit1 = 0, hit10 = 0, mrr = 0;
  const auto qn = q.rowwise().normalized();
  const RowMatrix<float> dn = d.rowwise().normalized();
  for (Index i = 0; i < Q; ++i) {
    const Eigen::VectorXf c = dn * qn.row(i).transpose();
    Index rank = 1;
    for (Index j = 0; j < c.size(); ++j)
      if (j != i && (c(j) > c(i) || (c(j) == c(i) && j < i))) ++rank;
    hit1 += rank == 1;
    hit10 += rank <= 10;
    mrr += 1.0 / double(rank);
  }
  const Spread sp = cosine_spread(d);
  return {kind, k, hit1 / double(Q), hit10 / double(Q), mrr / double(Q), sp.mean, sp.stddev,
          1e3 * best / double(Q)};
}

}  // namespace

int main() {
  const std::string model = xfmr::default_model_dir();
  if (!xfmr::model_present(model)) {
    std::printf("semantic_search: skipped: model not fetched (run python3 scripts/fetch_model.py; "
                "looked in %s)\n", model.c_str());
    return 0;
  }
  const fs::path fortune_dir = "/usr/share/games/fortunes";
  if (!fs::is_directory(fortune_dir)) {
    std::printf("semantic_search: skipped: no corpus (apt-get install fortunes-min fortunes)\n");
    return 0;
  }
  const std::vector<Pair> pairs = make_pairs(fortune_dir);
  if (pairs.size() < 100) {
    std::printf("semantic_search: skipped: only %zu fortune pairs in %s\n", pairs.size(),
                fortune_dir.c_str());
    return 0;
  }
  std::vector<std::string> queries, docs;
  for (const auto& p : pairs) {
    queries.push_back(p.query);
    docs.push_back(p.doc);
  }

  auto embedder = xfmr::SentenceEmbedder<float>::load(model);
  embedder.set_threads(2);
  const auto t0 = std::chrono::steady_clock::now();
  const RowMatrix<float> q = embedder.embed(queries, 64);
  const RowMatrix<float> d = embedder.embed(docs, 64);
  const auto t1 = std::chrono::steady_clock::now();
  const double embed_s = std::chrono::duration<double>(t1 - t0).count();
  std::printf("semantic_search: %zu fortune halves (query: first half, document: second half) "
              "from %s, embedded in %.1f s (2 threads)\n",
              pairs.size(), fortune_dir.c_str(), embed_s);
  const Pair& ex = pairs[pairs.size() / 2];
  std::printf("e.g. query \"%s\"\n     its document \"%s\"\n\n", ex.query.c_str(), ex.doc.c_str());

  std::vector<Result> results;
  results.push_back(evaluate("raw", q.cols(), q, d));
  for (const Index k : {Index(384), Index(256), Index(128), Index(64)}) {
    xfmr::WhiteningConfig c;
    c.components = k;
    c.normalize = true;
    xfmr::BertWhitening<float> w(d.cols(), c);
    w.fit(d);  // on the documents only
    RowMatrix<float> qw(q.rows(), k), dw(d.rows(), k);
    w.transform(q, qw);
    w.transform(d, dw);
    results.push_back(evaluate("whitened", k, qw, dw));
  }
  // Raw vectors cut to their first k dimensions: what whitening's cut must beat to be worth it.
  for (const Index k : {Index(256), Index(128), Index(64)})
    results.push_back(evaluate("raw-cut", k, q.leftCols(k), d.leftCols(k)));

  std::printf("%-9s %4s  %9s %9s %7s  %-17s %9s\n", "vectors", "k", "recall@1", "recall@10",
              "MRR", "cosine mean/std", "ms/query");
  for (const auto& r : results)
    std::printf("%-9s %4td  %9.3f %9.3f %7.3f  %7.3f / %-7.3f %9.4f\n", r.kind, r.k, r.recall1,
                r.recall10, r.mrr, r.cos_mean, r.cos_std, r.ms_per_query);
  const Result& raw = results[0];
  const Result& w384 = results[1];
  std::printf("\nWhitening (k = 384) %s recall@1 (%.3f -> %.3f) and moves the random-pair cosine "
              "from %.3f +- %.3f to %.3f +- %.3f.\n",
              w384.recall1 > raw.recall1 + 0.005   ? "raises"
              : w384.recall1 < raw.recall1 - 0.005 ? "lowers"
                                                    : "leaves about equal",
              raw.recall1, w384.recall1, raw.cos_mean, raw.cos_std, w384.cos_mean, w384.cos_std);
  std::printf("\nBEGIN RESULTS queries=%zu documents=%zu\n", pairs.size(), pairs.size());
  for (const auto& r : results)
    std::printf("RESULT %s %td %.4f %.4f %.4f %.4f %.4f %.5f\n", r.kind, r.k, r.recall1,
                r.recall10, r.mrr, r.cos_mean, r.cos_std, r.ms_per_query);
  std::printf("END RESULTS\n");
  return 0;
}
