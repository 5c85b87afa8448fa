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

/// True when two row-strided blocks share an element: a at rows [0, ar) × columns [0, ac) with
/// row stride as, b likewise. Disjoint address ranges, or equal strides whose column windows do
/// not meet modulo the stride (column slices of one fused buffer), do not overlap; anything else
/// counts as overlapping (exact for equal strides, conservative otherwise).
template <typename T>
bool views_overlap(const T* a, Index as, Index ar, Index ac, const T* b, Index bs, Index br,
                   Index bc) {
  if (ar == 0 || ac == 0 || br == 0 || bc == 0) return false;
  const T* a_end = a + (ar - 1) * as + ac;
  const T* b_end = b + (br - 1) * bs + bc;
  if (!(std::less<const T*>()(a, b_end) && std::less<const T*>()(b, a_end))) return false;
  if (as != bs || as < ac || as < bc) return true;
  std::ptrdiff_t off = (b - a) % as;
  if (off < 0) off += as;
  return !(off >= ac && off + bc <= as);
}

/// In place (same first element and same row stride) or sharing no element (views_overlap);
/// anything else would read elements the kernel has already overwritten.
template <typename T>
void require_same_or_disjoint(const T* x, Index x_stride, const T* y, Index y_stride, Index rows,
                              Index cols, const char* where) {
  if (x == y && x_stride == y_stride) return;
  require(!views_overlap(x, x_stride, rows, cols, y, y_stride, rows, cols), where,
          "out must be the input itself (same data and stride) or not overlap it (got a partial "
          "overlap)");
}

}  // namespace detail

XFMR_NAMESPACE_END

#endif  // XFMR_ERROR_HPP
