// SPDX-License-Identifier: MIT
// Bounds-checked little-endian binary reader and writer with an FNV-1a checksum, used by save/load.
#ifndef XFMR_IO_BINARY_FORMAT_HPP
#define XFMR_IO_BINARY_FORMAT_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <istream>
#include <limits>
#include <ostream>
#include <string>
#include <type_traits>

#include "../config.hpp"
#include "../error.hpp"

XFMR_NAMESPACE_BEGIN

namespace io {

// Encoding rules shared by every xfmr file:
//  * integers and IEEE-754 floats are stored LITTLE-ENDIAN, byte by byte: the encoder builds the
//    bytes with shifts, so files are identical on big- and little-endian hosts (a little-endian
//    host takes a memcpy fast path, checked at compile time through __BYTE_ORDER__);
//  * nothing is read before the reader has checked that the bytes are there: every read goes
//    through BinaryReader, which throws xfmr::format_error instead of reading past the end;
//  * sizes taken from a file are multiplied with overflow checks (checked_mul) and compared with
//    the bytes that remain before anything is allocated;
//  * a record ends with the FNV-1a 64-bit hash of every byte before it.

/// FNV-1a, 64-bit (Fowler–Noll–Vo): h = (h ^ byte) · 0x100000001b3, from 0xcbf29ce484222325.
/// Detects every single-byte change and any truncation that removes the trailing hash.
/// Not thread-safe (update changes the running hash): one object per stream.
class Fnv1a64 {
 public:
  void update(const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t h = m_state;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    m_state = h;
  }
  std::uint64_t value() const noexcept { return m_state; }

 private:
  std::uint64_t m_state = 0xcbf29ce484222325ull;
};

/// FNV-1a 64 of a byte range.
inline std::uint64_t fnv1a64(const void* data, std::size_t n) noexcept {
  Fnv1a64 h;
  h.update(data, n);
  return h.value();
}

namespace detail_bin {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
inline constexpr bool kHostLittleEndian = true;
#else
inline constexpr bool kHostLittleEndian = false;  // portable byte-by-byte path
#endif

template <typename T>
struct Bits {
  static_assert(std::is_arithmetic_v<T>, "xfmr::io: only arithmetic values are encoded");
  using type = std::conditional_t<sizeof(T) == 8, std::uint64_t,
                                  std::conditional_t<sizeof(T) == 4, std::uint32_t,
                                                     std::conditional_t<sizeof(T) == 2,
                                                                        std::uint16_t,
                                                                        std::uint8_t>>>;
};

template <typename T>
void encode(T value, unsigned char* out) noexcept {
  typename Bits<T>::type u;
  std::memcpy(&u, &value, sizeof(T));
  for (std::size_t b = 0; b < sizeof(T); ++b) out[b] = static_cast<unsigned char>(u >> (8 * b));
}
template <typename T>
T decode(const unsigned char* in) noexcept {
  typename Bits<T>::type u = 0;
  for (std::size_t b = 0; b < sizeof(T); ++b)
    u = static_cast<typename Bits<T>::type>(u | (typename Bits<T>::type(in[b]) << (8 * b)));
  T value;
  std::memcpy(&value, &u, sizeof(T));
  return value;
}
}  // namespace detail_bin

/// The n bytes at p as lower-case hex, two digits per byte ("58464d52"), for messages such as
/// "bad magic (got bytes …)".
inline std::string hex_bytes(const void* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* b = static_cast<const unsigned char*>(p);
  std::string s;
  s.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    s += kDigits[b[i] >> 4];
    s += kDigits[b[i] & 15];
  }
  return s;
}

/// a·b as std::size_t, or xfmr::format_error naming `what` if it overflows or exceeds `limit`.
inline std::size_t checked_mul(std::uint64_t a, std::uint64_t b, const char* where,
                               const char* what,
                               std::uint64_t limit = std::numeric_limits<std::size_t>::max()) {
  if (a != 0 && b > limit / a)
    xfmr::detail::throw_format(where, what, " is too large (got ", a, " x ", b, ")");
  return static_cast<std::size_t>(a * b);
}

/// Appends little-endian values to a byte string; the FNV-1a hash covers every byte written.
/// Not thread-safe (every write appends): one object per record.
class BinaryWriter {
 public:
  void write_bytes(const void* data, std::size_t n) {
    m_bytes.append(static_cast<const char*>(data), n);
  }
  void write_u32(std::uint32_t v) { write_value(v); }
  void write_u64(std::uint64_t v) { write_value(v); }
  void write_f64(double v) { write_value(v); }

  /// n values of an arithmetic type, little-endian each.
  template <typename T>
  void write_array(const T* data, std::size_t n) {
    const std::size_t start = m_bytes.size();
    m_bytes.resize(start + n * sizeof(T));
    auto* out = reinterpret_cast<unsigned char*>(&m_bytes[start]);
    if constexpr (detail_bin::kHostLittleEndian) {
      if (n != 0) std::memcpy(out, data, n * sizeof(T));
    } else {
      for (std::size_t i = 0; i < n; ++i) detail_bin::encode(data[i], out + i * sizeof(T));
    }
  }

  /// Appends the FNV-1a 64 of everything written so far (call once, last).
  void write_checksum() { write_u64(fnv1a64(m_bytes.data(), m_bytes.size())); }

  const std::string& bytes() const noexcept { return m_bytes; }
  std::size_t size() const noexcept { return m_bytes.size(); }

  /// Writes the bytes to a stream. \throws std::runtime_error if the stream fails.
  void flush_to(std::ostream& os, const char* where) const {
    os.write(m_bytes.data(), static_cast<std::streamsize>(m_bytes.size()));
    if (!os)
      XFMR_THROW(std::runtime_error(
          xfmr::detail::concat(where, "writing ", m_bytes.size(), " bytes to the stream failed")));
  }

 private:
  template <typename T>
  void write_value(T v) {
    unsigned char b[sizeof(T)];
    detail_bin::encode(v, b);
    write_bytes(b, sizeof(T));
  }

  std::string m_bytes;
};

/// Reads little-endian values from a byte range it does not own. Every read checks the
/// remaining length first and throws xfmr::format_error ("truncated …") instead of reading past
/// the end; `where` names the component in messages.
/// Not thread-safe (every read advances the position): one object per reading thread; several
/// readers over the same immutable bytes are independent.
class BinaryReader {
 public:
  BinaryReader(const void* data, std::size_t size, const char* where) noexcept
      : m_data(static_cast<const unsigned char*>(data)), m_size(size), m_where(where) {}

  std::size_t position() const noexcept { return m_pos; }
  std::size_t remaining() const noexcept { return m_size - m_pos; }

  /// \throws xfmr::format_error if fewer than n bytes remain.
  void require(std::size_t n, const char* what) const {
    if (n > remaining())
      xfmr::detail::throw_format(m_where, "truncated input: ", what, " needs ", n,
                                 " bytes at offset ", m_pos, " (got ", remaining(), ")");
  }
  void read_bytes(void* out, std::size_t n, const char* what) {
    require(n, what);
    if (n != 0) std::memcpy(out, m_data + m_pos, n);
    m_pos += n;
  }
  std::uint32_t read_u32(const char* what) { return read_value<std::uint32_t>(what); }
  std::uint64_t read_u64(const char* what) { return read_value<std::uint64_t>(what); }
  double read_f64(const char* what) { return read_value<double>(what); }

  /// n values; the byte count is overflow-checked before the bounds check.
  template <typename T>
  void read_array(T* out, std::size_t n, const char* what) {
    const std::size_t bytes = checked_mul(n, sizeof(T), m_where, what);
    require(bytes, what);
    const unsigned char* in = m_data + m_pos;
    if constexpr (detail_bin::kHostLittleEndian) {
      if (bytes != 0) std::memcpy(out, in, bytes);
    } else {
      for (std::size_t i = 0; i < n; ++i) out[i] = detail_bin::decode<T>(in + i * sizeof(T));
    }
    m_pos += bytes;
  }

  /// Reads the stored FNV-1a 64 and compares it with the hash of bytes [0, position()).
  /// \throws xfmr::format_error on a mismatch (corrupt data) or if the hash is missing.
  void verify_checksum() {
    const std::uint64_t expected = fnv1a64(m_data, m_pos);
    const std::uint64_t stored = read_u64("checksum");
    if (stored != expected)
      xfmr::detail::throw_format(m_where, "checksum mismatch: the data is corrupt (stored ",
                                 stored, ", computed ", expected, ")");
  }

  /// \throws xfmr::format_error if bytes remain.
  void expect_end() const {
    if (remaining() != 0)
      xfmr::detail::throw_format(m_where, "expected the end of the record at offset ", m_pos,
                                 " (got ", remaining(), " more bytes)");
  }

 private:
  template <typename T>
  T read_value(const char* what) {
    require(sizeof(T), what);
    const T v = detail_bin::decode<T>(m_data + m_pos);
    m_pos += sizeof(T);
    return v;
  }

  const unsigned char* m_data;
  std::size_t m_size;
  std::size_t m_pos = 0;
  const char* m_where;
};

/// Appends exactly n bytes from a stream to buf, in chunks of at most 1 MiB, so a corrupt size
/// in a header never allocates more than the stream really holds plus one chunk.
/// \throws xfmr::format_error ("truncated …") if the stream ends first.
inline void read_exact(std::istream& is, std::string& buf, std::size_t n, const char* where,
                       const char* what) {
  constexpr std::size_t kChunk = std::size_t(1) << 20;
  std::size_t done = 0;
  while (done < n) {
    const std::size_t want = n - done < kChunk ? n - done : kChunk;
    const std::size_t start = buf.size();
    buf.resize(start + want);
    is.read(&buf[start], static_cast<std::streamsize>(want));
    const auto got = static_cast<std::size_t>(is.gcount());
    buf.resize(start + got);
    done += got;
    if (got != want)
      xfmr::detail::throw_format(where, "truncated input: ", what, " needs ", n,
                                 " bytes (got ", done, ")");
  }
}

}  // namespace io

XFMR_NAMESPACE_END

#endif  // XFMR_IO_BINARY_FORMAT_HPP
