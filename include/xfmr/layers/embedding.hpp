// SPDX-License-Identifier: MIT
// Embedding (PyTorch nn.Embedding): rows of a table gathered by integer id, with range checks.
#ifndef XFMR_LAYERS_EMBEDDING_HPP
#define XFMR_LAYERS_EMBEDDING_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// A lookup table of `rows` vectors of width `dim` (word, token-type or learned absolute-position
/// embeddings): out.row(t) = table.row(ids[t]). The table is copied at construction (the layer
/// keeps no view of the caller's array). Every id is checked against [0, rows) before anything is
/// written, so a bad id leaves out untouched. forward() and add() are const and allocation-free:
/// concurrent calls on one Embedding are safe.
template <typename T>
class Embedding {
  static_assert(detail::is_real_v<T>, "xfmr::Embedding<T>: T must be float or double");

 public:
  /// table: [rows × dim] (rows, dim >= 1). Throws std::invalid_argument on an empty table.
  explicit Embedding(ConstMatrixRef<T> table) : m_table(table) {
    detail::require(table.rows() >= 1 && table.cols() >= 1, "Embedding",
                    "expected a table of at least 1x1 (rows x dim) (got ", table.rows(), "x",
                    table.cols(), ")");
  }

  Index rows() const noexcept { return m_table.rows(); }
  Index dim() const noexcept { return m_table.cols(); }
  /// The table, [rows × dim].
  const RowMatrix<T>& table() const noexcept { return m_table; }

  /// out.row(t) = table.row(ids[t]) for t < ids.size(); out (ids.size() × dim), rows may be
  /// strided. Throws std::invalid_argument for a shape mismatch or an id outside [0, rows)
  /// (naming the id, its index and the table size), checked before anything is written.
  void forward(ConstIdsRef ids, MatrixRef<T> out) const {
    check("forward", ids, out);
    const auto bytes = static_cast<std::size_t>(dim()) * sizeof(T);
    for (Index t = 0; t < ids.size(); ++t)
      std::memcpy(out.data() + t * out.outerStride(), m_table.data() + ids[t] * dim(), bytes);
  }

  /// out.row(t) += table.row(ids[t]) (same shapes and checks as forward): the sum of word,
  /// position and token-type embeddings, one table at a time.
  void add(ConstIdsRef ids, MatrixRef<T> out) const {
    check("add", ids, out);
    for (Index t = 0; t < ids.size(); ++t) out.row(t) += m_table.row(ids[t]);
  }

  /// out.row(t) += table.row(first + t) for t < out.rows(): learned absolute positions
  /// first, first + 1, … without an id vector. Throws std::invalid_argument when first < 0 or
  /// first + out.rows() > rows() (a sequence longer than the position table), or on out's width.
  void add_range(Index first, MatrixRef<T> out) const {
    detail::require(out.cols() == dim(), "Embedding", "add_range expected out with dim=", dim(),
                    " columns (got ", out.rows(), "x", out.cols(), ")");
    detail::require(first >= 0 && first <= rows() - out.rows(), "Embedding",
                    "add_range expected positions [", first, ", ", first + out.rows(),
                    ") inside the table's ", rows(), " rows (got ", out.rows(),
                    " rows from position ", first, ")");
    out += m_table.middleRows(first, out.rows());
  }

 private:
  void check(const char* what, ConstIdsRef ids, const MatrixRef<T>& out) const {
    detail::require(out.rows() == ids.size() && out.cols() == dim(), "Embedding", what,
                    " expected out of ", ids.size(), "x", dim(), " (ids x dim) (got ", out.rows(),
                    "x", out.cols(), ")");
    for (Index t = 0; t < ids.size(); ++t) {
      const std::int64_t id = ids[t];
      if (id < 0 || id >= rows())
        detail::throw_invalid("Embedding", what, " expected ids in [0, ", rows(),
                              ") (the table's rows) (got id ", id, " at index ", t, ")");
    }
  }

  RowMatrix<T> m_table;
};

XFMR_NAMESPACE_END

#endif  // XFMR_LAYERS_EMBEDDING_HPP
