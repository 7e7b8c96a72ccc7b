#pragma once
// GGUF (v2/v3) model file reader: metadata key/values and the tensor table, over a read-only mmap.
// Every problem with a file is a specula::Error whose one-line message names the file and the fault;
// no input can crash the reader (it is fuzzed: tests/fuzz/gguf_fuzz.cpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/ops.h"

namespace specula {

// A whole file mapped read-only (shared by the model-file readers). Empty files map to size 0.
class MappedFile {
 public:
  // Throws specula::Error naming `path` when it cannot be opened, is not a regular file, or mmap fails.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// GGUF metadata value types (ids as in the file).
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// One metadata value. Strings and numeric array elements are views into the file's memory.
struct GgufValue {
  GgufType type = GgufType::U8;
  // Scalars (U8..I64, F32, F64, Bool): exactly one of these is meaningful, by type.
  uint64_t u = 0;    // unsigned integers and bool
  int64_t i = 0;     // signed integers
  double f = 0.0;    // f32 / f64
  std::string_view str;  // String
  // Array: element type and count; elements live in `raw` (fixed-size scalars, little-endian, packed),
  // `strs` (String elements) or `items` (Array elements).
  GgufType elem_type = GgufType::U8;
  uint64_t count = 0;
  const uint8_t* raw = nullptr;
  std::vector<std::string_view> strs;
  std::vector<GgufValue> items;

  bool is_integer() const;  // scalar U8..I64 (not bool)
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  DType dtype = DType::F32;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous row length; unused dims are 1
  uint64_t offset = 0;           // from the start of the data section
  const void* data = nullptr;    // into the mapped file (null only when nbytes == 0)
  uint64_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t row_bytes() const;  // bytes of one row of ne[0] elements
  // The tensor as a [n_rows x ne[0]] matrix.
  WeightView view() const;
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws specula::Error on any problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses a GGUF image in memory without copying; the caller keeps `data` alive and unchanged.
  // `name` stands in for the path in error messages.
  static std::unique_ptr<GgufFile> from_memory(const void* data, size_t size, std::string name);
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  size_t file_size() const { return size_; }
  const uint8_t* base() const { return base_; }

  // --- metadata, in file order
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;  // null if absent
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // get_*: the key must exist and convert; find_*: nullopt when absent, but a present key of the
  // wrong type (or out of range) still throws. Integer getters accept any integer type in range;
  // float getters accept f32, f64 and integers.
  uint32_t get_u32(std::string_view key) const;
  int32_t get_i32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::span<const std::string_view> get_string_views(std::string_view key) const;  // no copies
  std::vector<float> get_f32_array(std::string_view key) const;
  std::vector<int32_t> get_i32_array(std::string_view key) const;

  std::optional<uint32_t> find_u32(std::string_view key) const;
  std::optional<int32_t> find_i32(std::string_view key) const;
  std::optional<uint64_t> find_u64(std::string_view key) const;
  std::optional<int64_t> find_i64(std::string_view key) const;
  std::optional<float> find_f32(std::string_view key) const;
  std::optional<double> find_f64(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<std::vector<std::string>> find_string_array(std::string_view key) const;
  std::optional<std::vector<float>> find_f32_array(std::string_view key) const;
  std::optional<std::vector<int32_t>> find_i32_array(std::string_view key) const;

  // Human-readable value (arrays abbreviated), e.g. for `specula models`.
  static std::string describe(const GgufValue& v);

  // --- tensors, in file order
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* tensor(std::string_view name) const;  // null if absent

 private:
  GgufFile() = default;
  void parse();
  const GgufValue& need(std::string_view key) const;
  [[noreturn]] void type_error(std::string_view key, const GgufValue& v, std::string_view want) const;
  int64_t to_int(std::string_view key, const GgufValue& v, int64_t lo, int64_t hi) const;
  uint64_t to_u64(std::string_view key, const GgufValue& v) const;
  double to_double(std::string_view key, const GgufValue& v) const;
  float to_float(std::string_view key, const GgufValue& v) const;

  std::string path_;
  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;  // keys view kvs_[i].key
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace specula
