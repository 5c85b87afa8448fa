// SPDX-License-Identifier: MIT
// Error reporting: argument checks that name what was expected and what came.
#ifndef XFMR_ERROR_HPP
#define XFMR_ERROR_HPP

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "config.hpp"
#include "types.hpp"

XFMR_NAMESPACE_BEGIN

/// Thrown for malformed or truncated files.
class format_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <typename... Parts>
std::string concat(const char* where, Parts&&... parts) {
  std::ostringstream os;
  os.precision(17);
  os << "xfmr::" << where << ": ";
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

/// Message format: "xfmr::<where>: <parts...>", e.g.
/// "xfmr::Rope: rotary_dim must be even and <= head_dim (got rotary_dim=7, head_dim=64)".
template <typename... Parts>
[[noreturn]] XFMR_COLD void throw_invalid(const char* where, Parts&&... parts) {
  XFMR_THROW(std::invalid_argument(concat(where, std::forward<Parts>(parts)...)));
}

template <typename... Parts>
[[noreturn]] XFMR_COLD void throw_logic(const char* where, Parts&&... parts) {
  XFMR_THROW(std::logic_error(concat(where, std::forward<Parts>(parts)...)));
}

template <typename... Parts>
[[noreturn]] XFMR_COLD void throw_format(const char* where, Parts&&... parts) {
  XFMR_THROW(format_error(concat(where, std::forward<Parts>(parts)...)));
}

/// One branch on the happy path; the message is built only on failure.
template <typename... Parts>
XFMR_INLINE void require(bool ok, const char* where, Parts&&... parts) {
  if (!ok) throw_invalid(where, std::forward<Parts>(parts)...);
}

/// In place (same first element and same row stride) or sharing no element; anything else
/// would read elements the kernel has already overwritten. Views with equal strides whose rows
/// interleave without touching (column slices of one fused buffer) count as disjoint.
template <typename T>
void require_same_or_disjoint(const T* x, Index x_stride, const T* y, Index y_stride, Index rows,
                              Index cols, const char* where) {
  if (rows == 0 || cols == 0) return;
  if (x == y && x_stride == y_stride) return;
  const T* x_end = x + (rows - 1) * x_stride + cols;
  const T* y_end = y + (rows - 1) * y_stride + cols;
  bool disjoint = !(std::less<const T*>()(x, y_end) && std::less<const T*>()(y, x_end));
  if (!disjoint && x_stride == y_stride && x_stride >= cols && x != y) {
    // Both in one buffer: rows of y start δ after rows of x. Element overlap needs
    // |δ − k·stride| < cols for some row shift k; only the two k around δ/stride can qualify.
    const std::ptrdiff_t delta = y - x, s = x_stride;
    const std::ptrdiff_t k0 = delta >= 0 ? delta / s : -((-delta + s - 1) / s);
    disjoint = true;
    for (const std::ptrdiff_t k : {k0, k0 + 1}) {
      const std::ptrdiff_t gap = delta - k * s;
      if (k > -rows && k < rows && gap > -cols && gap < cols) disjoint = false;
    }
  }
  require(disjoint, where,
          "out must be the input itself (same data and stride) or not overlap it (got a partial "
          "overlap)");
}

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_ERROR_HPP
