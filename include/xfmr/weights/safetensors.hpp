// SPDX-License-Identifier: MIT
// safetensors reader (SPEC §16): the header validated as the reference reader validates it, named
// tensors converted to float or double on request.
#ifndef XFMR_WEIGHTS_SAFETENSORS_HPP
#define XFMR_WEIGHTS_SAFETENSORS_HPP

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../io/binary_format.hpp"
#include "../simd/bf16.hpp"
#include "../types.hpp"

#include <nlohmann/json.hpp>

XFMR_NAMESPACE_BEGIN

/// Element types of a safetensors file that xfmr reads. F32, F16 and BF16 convert to float or
/// double; I64 (e.g. BERT's `position_ids` buffer) is parsed and validated so that the file
/// opens, but cannot be read as a matrix. Every other dtype of the format (F64, I8, U8, BOOL,
/// F8_E4M3, …) is recognised by name and rejected as unsupported when the file is opened.
enum class Dtype { F32, F16, BF16, I64 };

/// The dtype's name as the file spells it ("F32", "F16", "BF16", "I64").
inline const char* dtype_name(Dtype d) noexcept {
  switch (d) {
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
    case Dtype::I64: return "I64";
  }
  return "?";
}

/// Bytes per element.
inline std::size_t dtype_size(Dtype d) noexcept {
  switch (d) {
    case Dtype::F32: return 4;
    case Dtype::F16: return 2;
    case Dtype::BF16: return 2;
    case Dtype::I64: return 8;
  }
  return 0;
}

/// One tensor of the file. `begin`, `end`: byte offsets into the data buffer (which starts after
/// the 8-byte length and the header), `end` exclusive; end − begin = numel() · dtype_size(dtype).
/// Rank 0 (shape []) holds one element.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<Index> shape;
  std::uint64_t begin = 0, end = 0;

  /// Product of the shape (1 for rank 0, 0 if any extent is 0). For a tensor of an opened file
  /// it is at most the file's size, so it never overflows.
  Index numel() const noexcept {
    for (Index s : shape)
      if (s == 0) return 0;
    Index n = 1;
    for (Index s : shape) n *= s;
    return n;
  }
};

namespace detail {

/// IEEE binary16 bits → float, exactly: normals, subnormals (m · 2⁻²⁴), ±0, ±inf, and NaN with
/// its payload shifted into the float's mantissa (a quiet NaN stays quiet, a signalling one
/// keeps its non-zero payload).
inline float half_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);  // rebias 15 → 127
  } else {
    // ±0 or subnormal m · 2⁻²⁴: exact in float (m < 2¹⁰, the product a float normal).
    float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // 2⁻²⁴
    std::memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// bfloat16 bits → float, exactly (the upper half of a float).
inline float bf16_bits_to_float(std::uint16_t h) noexcept {
  const std::uint32_t bits = std::uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// Every dtype name of the safetensors format (reference reader), with its element size in
/// bytes (0 for the sub-byte F4/F6 types). Known names that xfmr does not read are rejected as
/// unsupported rather than unknown.
inline bool safetensors_known_dtype(std::string_view name) noexcept {
  static constexpr const char* kNames[] = {
      "BOOL", "U8",  "I8",   "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "I16",
      "U16",  "F16", "BF16", "I32",     "U32",     "F32",     "F64", "I64",     "U64",     "C64"};
  for (const char* n : kNames)
    if (name == n) return true;
  return false;
}

/// Strict UTF-8 check (as Rust's str::from_utf8): no overlong forms, no surrogates, nothing above
/// U+10FFFF, no truncated sequence. Returns the offset of the first bad byte, or n if valid.
inline std::size_t utf8_invalid_at(const unsigned char* s, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // > U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xbf) return i;
    i += len;
  }
  return n;
}

}  // namespace detail

/// A safetensors file held in memory: the 8-byte little-endian header length N, N bytes of UTF-8
/// JSON `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
/// "__metadata__": {"key": "value", …}}` (optionally padded with trailing spaces), then the data
/// buffer, little-endian and row-major.
///
/// Opening validates everything the reference (Rust) reader validates, before any tensor is read:
/// N ≤ 100,000,000; 8 + N ≤ file size; the header is valid UTF-8, starts with '{' and is one JSON
/// object without duplicate keys; every entry has a known dtype, a shape of non-negative integers
/// and two data_offsets; sorted by begin, the entries tile the data buffer exactly (first begin
/// 0, each begin the previous end, the last end the buffer's size); end − begin = numel ·
/// dtype size, with overflow-checked products. A malformed file throws xfmr::format_error
/// naming the source (path or "<memory>"), what was expected and what came. Beyond the
/// reference reader, a shape entry must fit in xfmr::Index (int64) and the JSON may nest at most
/// 64 levels.
///
/// Reading converts from the bytes (little-endian; memcpy or byte loads, never a typed pointer into
/// the file, so data that is misaligned in it, as older writers left it, reads correctly): F32,
/// F16 (exact: subnormals, ±inf and NaN included) and BF16 (exact) to float or double. Each call
/// returns a new matrix or vector; the file keeps its bytes (about the file's size in memory).
///
/// Thread safety: after construction every member is const and may be called from several
/// threads at once.
class SafetensorsFile {
 public:
  /// Reads the whole file at `path` and validates it.
  /// \throws std::runtime_error if the file cannot be opened or read; xfmr::format_error if it is
  /// not a valid safetensors file.
  static SafetensorsFile open(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      XFMR_THROW(std::runtime_error(
          detail::concat(kWhere, "cannot read '", path, "' (a directory, expected a file)")));
    std::ifstream in(path, std::ios::binary);
    if (!in)
      XFMR_THROW(std::runtime_error(
          detail::concat(kWhere, "cannot open '", path, "' (", std::strerror(errno), ")")));
    // The size is a hint (pipes and /proc files report 0): read it in one go, then to the end.
    const std::uintmax_t hint = std::filesystem::file_size(path, ec);
    std::vector<std::uint8_t> bytes;
    if (!ec && hint > 0 && hint <= std::uintmax_t(std::numeric_limits<std::streamsize>::max()) &&
        hint < bytes.max_size()) {
      bytes.resize(static_cast<std::size_t>(hint));
      in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(hint));
      bytes.resize(static_cast<std::size_t>(in.gcount()));
    }
    char chunk[1 << 16];
    while (in && (in.read(chunk, sizeof chunk), in.gcount() > 0))
      bytes.insert(bytes.end(), chunk, chunk + in.gcount());
    if (in.bad())
      XFMR_THROW(std::runtime_error(
          detail::concat(kWhere, "reading '", path, "' failed after ", bytes.size(), " bytes")));
    return SafetensorsFile(std::move(bytes), path);
  }

  /// Validates the bytes of a whole file (takes them over). `source` names it in messages.
  /// \throws xfmr::format_error if they are not a valid safetensors file.
  static SafetensorsFile from_bytes(std::vector<std::uint8_t> bytes,
                                    std::string source = "<memory>") {
    return SafetensorsFile(std::move(bytes), std::move(source));
  }

  /// The path given to open(), or the source given to from_bytes().
  const std::string& source() const noexcept { return m_source; }

  /// Number of tensors (the "__metadata__" entry is not one).
  std::size_t size() const noexcept { return m_tensors.size(); }

  bool contains(std::string_view name) const { return m_tensors.find(name) != m_tensors.end(); }

  /// \throws std::invalid_argument naming the tensor if the file has none of that name.
  const TensorInfo& info(std::string_view name) const {
    const auto it = m_tensors.find(name);
    if (it == m_tensors.end())
      detail::throw_invalid(kWhere, "expected a tensor named '", name, "' in ", m_source,
                            " (got none of that name among its ", m_tensors.size(), " tensors)");
    return it->second;
  }

  /// The tensor names, sorted (byte order).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(m_tensors.size());
    for (const auto& kv : m_tensors) out.push_back(kv.first);
    return out;
  }

  /// The header's "__metadata__" string map (empty if absent or null).
  const std::map<std::string, std::string>& metadata() const noexcept { return m_metadata; }

  /// The tensor's bytes in the file (little-endian, row-major, any alignment): info(name).end −
  /// info(name).begin bytes. Valid while this object lives. \throws as info().
  const std::uint8_t* raw_data(std::string_view name) const {
    return m_bytes.data() + m_data_offset + info(name).begin;
  }

  /// Every element of a tensor of any rank, in row-major order, converted to T (float or
  /// double; F32/F16/BF16 → float and anything → double are exact).
  /// \throws std::invalid_argument if the name is missing or the dtype is I64.
  template <typename T>
  Eigen::Matrix<T, Eigen::Dynamic, 1> flat(std::string_view name) const {
    const TensorInfo& t = info(name);
    Eigen::Matrix<T, Eigen::Dynamic, 1> out(t.numel());
    convert(t, out.data());
    return out;
  }

  /// A rank-2 tensor (rows × cols, PyTorch's (out_features × in_features) for a Linear weight)
  /// converted to T. \throws std::invalid_argument if the name is missing, the rank is not 2 (a
  /// rank-1 tensor is not silently widened) or the dtype is I64.
  template <typename T>
  RowMatrix<T> matrix(std::string_view name) const {
    const TensorInfo& t = info(name);
    if (t.shape.size() != 2)
      detail::throw_invalid(kWhere, "tensor '", name, "' in ", m_source,
                            ": expected rank 2 for matrix() (got shape ", shape_string(t.shape),
                            ")");
    RowMatrix<T> out(t.shape[0], t.shape[1]);
    convert(t, out.data());
    return out;
  }

  /// A rank-1 tensor converted to T. \throws std::invalid_argument if the name is missing, the
  /// rank is not 1 or the dtype is I64.
  template <typename T>
  Eigen::Matrix<T, Eigen::Dynamic, 1> vector(std::string_view name) const {
    const TensorInfo& t = info(name);
    if (t.shape.size() != 1)
      detail::throw_invalid(kWhere, "tensor '", name, "' in ", m_source,
                            ": expected rank 1 for vector() (got shape ", shape_string(t.shape),
                            ")");
    Eigen::Matrix<T, Eigen::Dynamic, 1> out(t.shape[0]);
    convert(t, out.data());
    return out;
  }

  /// A BF16 tensor of any rank AS STORED: its numel() values in row-major order, bits copied,
  /// nothing rounded or widened (half the memory of flat<float>; for bf16 weights, e.g.
  /// Dense(…, WeightStorage::bf16)). The shape is info(name).shape.
  /// \throws std::invalid_argument if the name is missing or the dtype is not BF16 (convert
  /// other dtypes with flat<float> and round with simd::convert_row if that is what is meant).
  std::vector<bf16> flat_bf16(std::string_view name) const {
    const TensorInfo& t = info(name);
    if (t.dtype != Dtype::BF16)
      detail::throw_invalid(kWhere, "tensor '", name, "' in ", m_source,
                            ": expected dtype BF16 to read as stored by flat_bf16 (got ",
                            dtype_name(t.dtype), ")");
    const std::uint8_t* p = m_bytes.data() + m_data_offset + t.begin;
    std::vector<bf16> out(static_cast<std::size_t>(t.numel()));
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = bf16::from_bits(io::detail_bin::decode<std::uint16_t>(p + 2 * i));
    return out;
  }

  /// matrix(name) after checking that the shape is [rows, cols].
  /// \throws std::invalid_argument naming the tensor, the expected and the actual shape.
  template <typename T>
  RowMatrix<T> matrix(std::string_view name, Index rows, Index cols) const {
    const TensorInfo& t = info(name);
    if (t.shape != std::vector<Index>{rows, cols})
      detail::throw_invalid(kWhere, "tensor '", name, "' in ", m_source, ": expected shape [", rows,
                            ", ", cols, "] (got ", shape_string(t.shape), ")");
    return matrix<T>(name);
  }

  /// vector(name) after checking that the shape is [n].
  /// \throws std::invalid_argument naming the tensor, the expected and the actual shape.
  template <typename T>
  Eigen::Matrix<T, Eigen::Dynamic, 1> vector(std::string_view name, Index n) const {
    const TensorInfo& t = info(name);
    if (t.shape != std::vector<Index>{n})
      detail::throw_invalid(kWhere, "tensor '", name, "' in ", m_source, ": expected shape [", n,
                            "] (got ", shape_string(t.shape), ")");
    return vector<T>(name);
  }

  /// "[2, 3]" (for messages).
  static std::string shape_string(const std::vector<Index>& shape) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << ']';
    return os.str();
  }

  /// The reference reader's limit on the header length N.
  static constexpr std::uint64_t kMaxHeaderSize = 100000000;

 private:
  static constexpr const char* kWhere = "SafetensorsFile";
  static constexpr int kMaxDepth = 64;

  using Json = nlohmann::json;

  SafetensorsFile(std::vector<std::uint8_t> bytes, std::string source)
      : m_bytes(std::move(bytes)), m_source(std::move(source)) {
    parse();
  }

  template <typename... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    detail::throw_format(kWhere, m_source, ": ", std::forward<Parts>(parts)...);
  }

  void parse() {
    const std::size_t file_size = m_bytes.size();
    if (file_size < 8)
      fail("expected at least 8 bytes for the header length (got a file of ", file_size, " bytes)");
    const std::uint64_t n = io::detail_bin::decode<std::uint64_t>(m_bytes.data());
    if (n > kMaxHeaderSize)
      fail("expected a header length <= ", kMaxHeaderSize, " bytes (got ", n, ")");
    if (8 + n > file_size)
      fail("header length ", n, " does not fit in the file: expected 8 + ", n,
           " <= file size (got ", file_size, " bytes)");
    const auto* header = reinterpret_cast<const unsigned char*>(m_bytes.data() + 8);
    const auto header_len = static_cast<std::size_t>(n);
    const std::size_t bad = detail::utf8_invalid_at(header, header_len);
    if (bad != header_len)
      fail("expected a UTF-8 header (got the invalid byte 0x", io::hex_bytes(header + bad, 1),
           " at header offset ", bad, ")");
    if (header_len == 0 || header[0] != '{')
      fail("expected the header to start with '{' (got ",
           header_len == 0 ? std::string("an empty header")
                           : "the byte 0x" + io::hex_bytes(header, 1),
           ")");
    // nlohmann's lexer takes a NUL for the end of the input and would accept "{}\0garbage";
    // JSON allows no raw NUL anywhere (not even in strings), so any NUL is an error.
    if (const void* nul = std::memchr(header, 0, header_len))
      fail("expected no NUL byte in the header (got one at header offset ",
           static_cast<const unsigned char*>(nul) - header, ")");
    m_data_offset = 8 + header_len;

    Json root = parse_json(reinterpret_cast<const char*>(header), header_len);
    if (!root.is_object())
      fail("expected the header to be a JSON object (got ", root.type_name(), ")");

    std::vector<TensorInfo*> by_offset;
    for (auto& kv : root.items()) {
      const std::string& key = kv.key();
      const Json& value = kv.value();
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      TensorInfo t = read_entry(key, value);
      auto res = m_tensors.emplace(key, std::move(t));
      by_offset.push_back(&res.first->second);
    }

    // Sorted by (begin, end) as the reference reader sorts, the entries must tile the buffer.
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const std::uint64_t buffer_size = file_size - m_data_offset;
    std::uint64_t start = 0;
    for (const TensorInfo* t : by_offset) {
      if (t->begin != start || t->end < t->begin)
        fail("tensor '", t->name, "': expected data_offsets [", start, ", end >= ", start,
             "] so that the tensors sorted by begin tile the data buffer without gap or overlap "
             "(got [",
             t->begin, ", ", t->end, "])");
      start = t->end;
      std::uint64_t numel = 1;
      for (Index s : t->shape) {
        const auto u = static_cast<std::uint64_t>(s);
        if (u != 0 && numel > std::numeric_limits<std::uint64_t>::max() / u)
          fail("tensor '", t->name, "': the element count of shape ", shape_string(t->shape),
               " overflows 64 bits");
        numel *= u;
      }
      const std::uint64_t size = dtype_size(t->dtype);
      if (numel > std::numeric_limits<std::uint64_t>::max() / size)
        fail("tensor '", t->name, "': the byte count of shape ", shape_string(t->shape), " × ",
             dtype_name(t->dtype), " overflows 64 bits");
      if (t->end - t->begin != numel * size)
        fail("tensor '", t->name, "': expected ", numel * size, " bytes for dtype ",
             dtype_name(t->dtype), " and shape ", shape_string(t->shape), " (got data_offsets [",
             t->begin, ", ", t->end, "], ", t->end - t->begin, " bytes)");
    }
    if (start != buffer_size)
      fail("expected the tensors to cover the data buffer of ", buffer_size,
           " bytes exactly (got tensors ending at byte ", start, ")");
  }

  Json parse_json(const char* text, std::size_t len) const {
    // Duplicate keys: nlohmann keeps the last silently, so the parser callback tracks the keys
    // of every open object and throws on a repeat. It also bounds the nesting depth.
    std::vector<std::set<std::string>> open_keys;
    const std::string& source = m_source;
    Json::parser_callback_t callback = [&open_keys, &source](int depth, Json::parse_event_t event,
                                                             Json& parsed) -> bool {
      switch (event) {
        case Json::parse_event_t::object_start:
          if (depth >= kMaxDepth)
            detail::throw_format(kWhere, source, ": expected a header nested at most ", kMaxDepth,
                                 " levels deep (got more)");
          open_keys.emplace_back();
          break;
        case Json::parse_event_t::array_start:
          if (depth >= kMaxDepth)
            detail::throw_format(kWhere, source, ": expected a header nested at most ", kMaxDepth,
                                 " levels deep (got more)");
          break;
        case Json::parse_event_t::object_end:
          if (!open_keys.empty()) open_keys.pop_back();
          break;
        case Json::parse_event_t::key: {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_keys.back().insert(key).second)
            detail::throw_format(kWhere, source, ": expected unique keys in the header (got '", key,
                                 "' twice)");
          break;
        }
        default: break;
      }
      return true;
    };
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    try {
      return Json::parse(text, text + len, callback);
    } catch (const Json::exception& e) {
      fail("expected the header to be valid JSON (got: ", e.what(), ")");
    }
#else
    Json j = Json::parse(text, text + len, callback, /*allow_exceptions=*/false);
    if (j.is_discarded()) fail("expected the header to be valid JSON (got a parse error)");
    return j;
#endif
  }

  void read_metadata(const Json& value) {
    if (value.is_null()) return;  // serde reads null as no metadata (Option::None)
    if (!value.is_object())
      fail("expected \"__metadata__\" to be an object of strings (got ", value.type_name(), ")");
    for (const auto& kv : value.items()) {
      if (!kv.value().is_string())
        fail("expected \"__metadata__\" to be an object of strings (got ", kv.value().type_name(),
             " for key '", kv.key(), "')");
      m_metadata.emplace(kv.key(), kv.value().get<std::string>());
    }
  }

  TensorInfo read_entry(const std::string& name, const Json& value) const {
    if (!value.is_object())
      fail("tensor '", name, "': expected an object with dtype, shape and data_offsets (got ",
           value.type_name(), ")");
    TensorInfo t;
    t.name = name;
    const auto dtype = value.find("dtype");
    if (dtype == value.end()) fail("tensor '", name, "': expected a \"dtype\" (got none)");
    if (!dtype->is_string())
      fail("tensor '", name, "': expected \"dtype\" to be a string (got ", dtype->type_name(), ")");
    const auto& d = dtype->get_ref<const std::string&>();
    if (d == "F32") {
      t.dtype = Dtype::F32;
    } else if (d == "F16") {
      t.dtype = Dtype::F16;
    } else if (d == "BF16") {
      t.dtype = Dtype::BF16;
    } else if (d == "I64") {
      t.dtype = Dtype::I64;
    } else if (detail::safetensors_known_dtype(d)) {
      fail("tensor '", name, "': expected dtype F32, F16, BF16 or I64 (got ", d,
           ", which xfmr does not support)");
    } else {
      fail("tensor '", name, "': expected a safetensors dtype (got the unknown dtype '", d, "')");
    }

    const auto shape = value.find("shape");
    if (shape == value.end()) fail("tensor '", name, "': expected a \"shape\" (got none)");
    if (!shape->is_array())
      fail("tensor '", name, "': expected \"shape\" to be an array (got ", shape->type_name(), ")");
    for (const Json& s : *shape) {
      if (!s.is_number_unsigned())
        fail("tensor '", name, "': expected \"shape\" entries to be non-negative integers (got ",
             s.dump(), ")");
      const auto u = s.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
        fail("tensor '", name,
             "': expected \"shape\" entries <= ", std::numeric_limits<Index>::max(), " (got ", u,
             ")");
      t.shape.push_back(static_cast<Index>(u));
    }

    const auto offsets = value.find("data_offsets");
    if (offsets == value.end()) fail("tensor '", name, "': expected \"data_offsets\" (got none)");
    if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      fail("tensor '", name,
           "': expected \"data_offsets\" to be [begin, end] of non-negative integers (got ",
           offsets->dump(), ")");
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    return t;
  }

  template <typename T>
  void convert(const TensorInfo& t, T* out) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "xfmr::SafetensorsFile: tensors convert to float or double");
    const std::uint8_t* p = m_bytes.data() + m_data_offset + t.begin;
    const auto n = static_cast<std::size_t>(t.numel());
    switch (t.dtype) {
      case Dtype::F32:
        if constexpr (std::is_same_v<T, float> && io::detail_bin::kHostLittleEndian) {
          if (n != 0) std::memcpy(out, p, 4 * n);  // the file's bytes are the floats
        } else {
          for (std::size_t i = 0; i < n; ++i)
            out[i] = static_cast<T>(io::detail_bin::decode<float>(p + 4 * i));
        }
        break;
      case Dtype::F16:
        for (std::size_t i = 0; i < n; ++i)
          out[i] = static_cast<T>(
              detail::half_bits_to_float(io::detail_bin::decode<std::uint16_t>(p + 2 * i)));
        break;
      case Dtype::BF16:
        for (std::size_t i = 0; i < n; ++i)
          out[i] = static_cast<T>(
              detail::bf16_bits_to_float(io::detail_bin::decode<std::uint16_t>(p + 2 * i)));
        break;
      case Dtype::I64:
        detail::throw_invalid(kWhere, "tensor '", t.name, "' in ", m_source,
                              ": expected dtype F32, F16 or BF16 to read as floating point (got "
                              "I64)");
    }
  }

  std::vector<std::uint8_t> m_bytes;
  std::string m_source;
  std::size_t m_data_offset = 0;
  std::map<std::string, TensorInfo, std::less<>> m_tensors;
  std::map<std::string, std::string> m_metadata;
};

XFMR_NAMESPACE_END

#endif  // XFMR_WEIGHTS_SAFETENSORS_HPP
