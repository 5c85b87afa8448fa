// SPDX-License-Identifier: MIT
// Guarded buffers: an array at a chosen misalignment with canary values after it, so tests can
// prove a kernel writes every element and nothing past the end.
#ifndef XFMR_TESTS_SUPPORT_GUARDED_HPP
#define XFMR_TESTS_SUPPORT_GUARDED_HPP

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace xfmr_test {

template <typename T>
class Guarded {
 public:
  static constexpr std::size_t kGuard = 16;
  static constexpr T kCanary = T(-12345.25);

  /// n elements starting `offset` elements past a 64-byte boundary, poisoned with NaN.
  Guarded(std::size_t n, std::size_t offset)
      : m_n(n), m_offset(offset), m_storage(n + offset + kGuard + 64 / sizeof(T)) {
    const auto addr = reinterpret_cast<std::uintptr_t>(m_storage.data());
    const std::size_t skip = ((64 - addr % 64) % 64) / sizeof(T);
    m_begin = m_storage.data() + skip + offset;
    for (auto& v : m_storage) v = kCanary;
    poison();
  }
  T* data() noexcept { return m_begin; }
  const T* data() const noexcept { return m_begin; }
  std::size_t size() const noexcept { return m_n; }
  T& operator[](std::size_t i) noexcept { return m_begin[i]; }
  const T& operator[](std::size_t i) const noexcept { return m_begin[i]; }
  void poison() noexcept {
    for (std::size_t i = 0; i < m_n; ++i) m_begin[i] = std::numeric_limits<T>::quiet_NaN();
  }
  /// True when all kGuard canaries after the end (and the one before the start) are intact.
  bool guards_intact() const noexcept {
    if (m_begin > m_storage.data() && !(m_begin[-1] == kCanary)) return false;
    for (std::size_t i = 0; i < kGuard; ++i)
      if (!(m_begin[m_n + i] == kCanary)) return false;
    return true;
  }

 private:
  std::size_t m_n, m_offset;
  std::vector<T> m_storage;
  T* m_begin;
};

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_GUARDED_HPP
