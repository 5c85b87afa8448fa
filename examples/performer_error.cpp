// SPDX-License-Identifier: MIT
// Performer (FAVOR+) vs exact softmax attention: relative error as the number of random features
// m grows, orthogonal vs i.i.d. projections, averaged over several draws of W.
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <random>

#include <xfmr/attention/performer.hpp>

namespace {

using xfmr::Index;
using Matrix = xfmr::RowMatrix<double>;

// softmax(q kᵀ/√d) v, row by row with the max subtracted.
Matrix softmax_attention(const Matrix& q, const Matrix& k, const Matrix& v) {
  const Matrix s = (q * k.transpose()) / std::sqrt(static_cast<double>(q.cols()));
  Matrix out(q.rows(), v.cols());
  for (Index i = 0; i < q.rows(); ++i) {
    const Eigen::RowVectorXd e = (s.row(i).array() - s.row(i).maxCoeff()).exp().matrix();
    out.row(i) = e * v / e.sum();
  }
  return out;
}

}  // namespace

int main() {
  const Index n = 256, d = 64, draws = 6;
  std::mt19937_64 rng(42);
  std::normal_distribution<double> gauss(0.0, 1.0);  // inputs only; W uses xfmr's own sampler
  auto random = [&](Index rows, Index cols, double sd) {
    Matrix x(rows, cols);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = sd * gauss(rng);
    return x;
  };
  // q, k entries N(0, SD²): logits q·k/√d have standard deviation SD²; ‖q'‖² = SD²·√d. The
  // estimator's relative variance grows like exp(‖q' + k'‖²), so FAVOR+ is only accurate for
  // moderate norms (the known limitation, kexue 8338).
  const double sd = 0.45;
  const Matrix q = random(n, d, sd), k = random(n, d, sd), v = random(n, d, 1.0);
  const Matrix exact = softmax_attention(q, k, v);

  std::printf("Performer relative error ||out - softmax||_F / ||softmax||_F  (n=%ld, d=%ld, mean "
              "of %ld draws)\n",
              static_cast<long>(n), static_cast<long>(d), static_cast<long>(draws));
  std::printf("%6s  %12s  %12s\n", "m", "orthogonal", "iid");
  double first[2] = {0, 0}, last[2] = {0, 0};
  for (Index m = 16; m <= 1024; m *= 2) {
    double err[2] = {0, 0};
    for (int p = 0; p < 2; ++p) {
      xfmr::PerformerConfig c;
      c.head_dim = d;
      c.num_features = m;
      c.projection = p == 0 ? xfmr::ProjectionKind::Orthogonal : xfmr::ProjectionKind::Iid;
      c.seed = 1000 + static_cast<std::uint64_t>(m);
      xfmr::Performer<double> performer(c);
      Matrix out(n, d);
      for (Index r = 0; r < draws; ++r) {
        if (r > 0) performer.redraw();
        performer.forward(q, k, v, out);
        err[p] += (out - exact).norm() / exact.norm() / static_cast<double>(draws);
      }
      if (m == 16) first[p] = err[p];
      last[p] = err[p];
    }
    std::printf("%6ld  %12.5f  %12.5f\n", static_cast<long>(m), err[0], err[1]);
  }
  // 1/√m predicts a factor 8 from m = 16 to m = 1024; require at least 4.
  const bool ok = last[0] < first[0] / 4 && last[1] < first[1] / 4;
  std::printf("error shrinks with m: %s (orthogonal %.1fx, iid %.1fx from m=16 to m=1024)\n",
              ok ? "OK" : "NO", first[0] / last[0], first[1] / last[1]);
  return ok ? 0 : 1;
}
