// SPDX-License-Identifier: MIT
// BERT-whitening for retrieval (kexue.fm/archives/8069): synthetic "sentence vectors" with the
// anisotropy of raw BERT embeddings (a large common offset and a few dominant directions that
// carry no meaning) hide their cluster structure from cosine similarity. Whitening the set
// (and keeping k < D components) spreads the cosines out and brings the neighbours back.
// Exits non-zero if whitening does not improve both the cosine spread and the retrieval.
#include <cmath>
#include <cstdio>
#include <random>

#include <xfmr/heads/retrieval.hpp>
#include <xfmr/heads/whitening.hpp>

namespace {

using xfmr::Index;
using xfmr::RowMatrix;

struct Spread {
  double mean, stddev;
};

// Mean and standard deviation of the cosine between random pairs of distinct rows.
Spread cosine_spread(const RowMatrix<float>& x, std::mt19937_64& rng) {
  std::uniform_int_distribution<Index> pick(0, x.rows() - 1);
  double s = 0, s2 = 0;
  const int pairs = 20000;
  for (int p = 0; p < pairs; ++p) {
    Index a = pick(rng), b = pick(rng);
    if (a == b) b = (b + 1) % x.rows();
    const double c = x.row(a).cast<double>().dot(x.row(b).cast<double>()) /
                     (x.row(a).cast<double>().norm() * x.row(b).cast<double>().norm());
    s += c;
    s2 += c * c;
  }
  const double mean = s / pairs;
  return {mean, std::sqrt(std::max(0.0, s2 / pairs - mean * mean))};
}

// Precision@k of cosine retrieval: every row queries the set; the fraction of its k nearest
// other rows that share its cluster.
double precision_at_k(const RowMatrix<float>& x, const std::vector<int>& cluster, Index k) {
  xfmr::TopKIndices idx(x.rows(), k + 1);
  RowMatrix<float> scores(x.rows(), k + 1);
  xfmr::cosine_top_k(x, x, k + 1, idx, scores);
  Index hits = 0;
  for (Index q = 0; q < x.rows(); ++q) {
    Index taken = 0;
    for (Index j = 0; j < k + 1 && taken < k; ++j) {
      if (idx(q, j) == q) continue;  // the query itself
      hits += cluster[std::size_t(idx(q, j))] == cluster[std::size_t(q)];
      ++taken;
    }
  }
  return double(hits) / double(x.rows() * k);
}

}  // namespace

int main() {
  const Index d = 256, clusters = 40, per_cluster = 50, n = clusters * per_cluster;
  const Index kept = 64, top = 10;
  std::mt19937_64 rng(2021);
  std::normal_distribution<double> g(0.0, 1.0);

  // x = offset + Σ_j a_j·u_j (3 strong nuisance directions) + cluster centre + noise.
  RowMatrix<double> nuisance(3, d), centres(clusters, d);
  Eigen::RowVectorXd offset(d);
  for (Index j = 0; j < d; ++j) offset[j] = 4.0 + 0.5 * g(rng);
  for (Index i = 0; i < nuisance.size(); ++i) nuisance.data()[i] = g(rng);
  for (Index i = 0; i < centres.size(); ++i) centres.data()[i] = 0.35 * g(rng);
  RowMatrix<float> x(n, d);
  std::vector<int> cluster(static_cast<std::size_t>(n));
  for (Index r = 0; r < n; ++r) {
    const Index c = r % clusters;
    cluster[std::size_t(r)] = int(c);
    Eigen::RowVectorXd v = offset + centres.row(c);
    for (Index j = 0; j < 3; ++j) v += (0.6 / double(j + 1)) * g(rng) * nuisance.row(j);
    for (Index j = 0; j < d; ++j) v[j] += 0.5 * g(rng);
    x.row(r) = v.cast<float>();
  }

  // Fit on the set itself (as bojone/BERT-whitening does with the target corpus), keep 64.
  xfmr::WhiteningConfig config;
  config.components = kept;
  xfmr::BertWhitening<float> whitening(d, config);
  whitening.fit(x);
  RowMatrix<float> y(n, kept);
  whitening.transform(x, y);

  const Spread before = cosine_spread(x, rng), after = cosine_spread(y, rng);
  const double p_before = precision_at_k(x, cluster, top), p_after = precision_at_k(y, cluster, top);
  std::printf("%ld vectors, D=%ld, %ld clusters; whitening keeps k=%ld of %ld components\n",
              long(n), long(d), long(clusters), long(kept), long(d));
  std::printf("random-pair cosine    raw: mean %.3f std %.3f   whitened: mean %.3f std %.3f\n",
              before.mean, before.stddev, after.mean, after.stddev);
  std::printf("precision@%ld (same cluster)   raw: %.3f   whitened: %.3f\n", long(top), p_before,
              p_after);
  std::printf("largest eigenvalues: %.2f %.2f %.2f %.2f ... %ld-th: %.3f\n",
              whitening.eigenvalues()[0], whitening.eigenvalues()[1], whitening.eigenvalues()[2],
              whitening.eigenvalues()[3], long(kept), whitening.eigenvalues()[kept - 1]);

  const bool ok = std::abs(after.mean) < std::abs(before.mean) && p_after > p_before;
  std::printf("%s\n", ok ? "OK: whitening spreads the cosines and improves retrieval"
                         : "FAILED: whitening did not help");
  return ok ? 0 : 1;
}
