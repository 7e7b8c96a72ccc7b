#pragma once
// Hugging Face safetensors reader (mmap) and a small writer (used by tests).
// Layout: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {...}}, then the data buffer (offsets are relative to its start).
// Every problem is a specula::Error with a one-line message naming the file; no input crashes it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/ops.h"

namespace specula {

class MappedFile;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;     // F32, F16 or BF16
  std::vector<int64_t> shape;   // HF (row-major) order: shape.back() is the contiguous row length
  const void* data = nullptr;   // into the mapped file (null only when nbytes == 0)
  uint64_t nbytes = 0;
  uint64_t offset = 0;          // from the start of the data buffer

  int64_t n_elements() const;
  // The tensor as a [rows x cols] matrix: cols = shape.back(), rows = product of the other dims
  // (a 0-d or 1-d tensor is one row).
  WeightView view() const;
};

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // Parses an image in memory without copying; the caller keeps `data` alive. `name` is used in messages.
  static std::unique_ptr<SafetensorsFile> from_memory(const void* data, size_t size, std::string name);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // in data-offset order
  const SafetensorsTensor* tensor(std::string_view name) const;               // null if absent

 private:
  SafetensorsFile() = default;
  void parse();

  std::string path_;
  std::unique_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
};

// A tensor to write: `data` holds product(shape) elements of `dtype` (F32, F16 or BF16).
struct SafetensorsWriteTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes `tensors` (in the given order, data packed back to back) to `path`; throws specula::Error.
void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors);

}  // namespace specula
