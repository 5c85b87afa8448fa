// SPDX-License-Identifier: MIT
// Page-end buffers: n elements that end exactly where an inaccessible page begins, so a kernel
// that reads or writes even one element past n faults at once. Guarded (canaries) catches stray
// writes; this catches stray reads, which canaries cannot see.
#ifndef XFMR_TESTS_SUPPORT_PAGE_GUARD_HPP
#define XFMR_TESTS_SUPPORT_PAGE_GUARD_HPP

#include <cstddef>
#include <stdexcept>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define XFMR_TEST_HAS_PAGE_GUARD 1
#else
#define XFMR_TEST_HAS_PAGE_GUARD 0
#endif

namespace xfmr_test {

template <typename T>
class PageEnd {
 public:
  /// n elements, uninitialised contents (zero-filled pages); data() + n is the first byte of a
  /// PROT_NONE page. Without mmap (non-POSIX), a plain buffer: reads past n go unnoticed.
  explicit PageEnd(std::size_t n) : m_n(n) {
#if XFMR_TEST_HAS_PAGE_GUARD
    m_page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = n * sizeof(T);
    m_len = ((bytes + m_page - 1) / m_page + 1) * m_page;
    void* base = mmap(nullptr, m_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error("PageEnd: mmap failed");
    m_base = static_cast<unsigned char*>(base);
    unsigned char* fence = m_base + m_len - m_page;
    if (mprotect(fence, m_page, PROT_NONE) != 0) {
      munmap(m_base, m_len);
      throw std::runtime_error("PageEnd: mprotect failed");
    }
    m_begin = reinterpret_cast<T*>(fence - bytes);
#else
    m_fallback.resize(n + 64);
    m_begin = m_fallback.data();
#endif
  }
  PageEnd(const PageEnd&) = delete;
  PageEnd& operator=(const PageEnd&) = delete;
  ~PageEnd() {
#if XFMR_TEST_HAS_PAGE_GUARD
    munmap(m_base, m_len);
#endif
  }
  T* data() noexcept { return m_begin; }
  const T* data() const noexcept { return m_begin; }
  std::size_t size() const noexcept { return m_n; }
  T& operator[](std::size_t i) noexcept { return m_begin[i]; }
  const T& operator[](std::size_t i) const noexcept { return m_begin[i]; }

 private:
  std::size_t m_n;
  T* m_begin = nullptr;
#if XFMR_TEST_HAS_PAGE_GUARD
  std::size_t m_page = 0, m_len = 0;
  unsigned char* m_base = nullptr;
#else
  std::vector<T> m_fallback;
#endif
};

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_PAGE_GUARD_HPP
