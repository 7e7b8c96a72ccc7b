#include "core/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/gguf.h"  // MappedFile

namespace specula {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // as the reference implementation
constexpr int kMaxJsonDepth = 16;

std::string printable(std::string_view s, size_t max_len = 96) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

// Supported dtype name -> (DType, bytes per element); false when unsupported.
bool parse_dtype(std::string_view s, DType* t, uint64_t* elem_bytes) {
  if (s == "F32") *t = DType::F32, *elem_bytes = 4;
  else if (s == "F16") *t = DType::F16, *elem_bytes = 2;
  else if (s == "BF16") *t = DType::BF16, *elem_bytes = 2;
  else return false;
  return true;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: return "";
  }
}

// A non-negative JSON integer, or an Error naming `what`.
uint64_t as_count(const nlohmann::json& j, const std::string& file, const std::string& what) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  fail("{}: {} must be a non-negative integer, got {}", file, what, printable(j.dump(), 40));
}

}  // namespace

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

WeightView SafetensorsTensor::view() const {
  const int64_t cols = shape.empty() ? 1 : shape.back();
  const int64_t rows = cols ? n_elements() / cols : 0;
  return WeightView{dtype, rows, cols, data, row_bytes(dtype, cols)};
}

SafetensorsFile::~SafetensorsFile() = default;

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->map_ = std::make_unique<MappedFile>(path);
  f->base_ = f->map_->data();
  f->size_ = f->map_->size();
  f->parse();
  return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::from_memory(const void* data, size_t size, std::string name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = std::move(name);
  f->base_ = static_cast<const uint8_t*>(data);
  f->size_ = data ? size : 0;
  f->parse();
  return f;
}

void SafetensorsFile::parse() {
  const std::string& file = path_;
  if (size_ < 8) fail("{}: file is too small to be safetensors ({} bytes, need at least 8)", file, size_);
  uint64_t n_header;
  std::memcpy(&n_header, base_, 8);
  if (n_header > kMaxHeader) fail("{}: header length {} is larger than the {} byte limit", file, n_header, kMaxHeader);
  if (n_header > size_ - 8)
    fail("{}: truncated file: header length {} exceeds the {} bytes after the length field", file, n_header,
         size_ - 8);
  const auto* hbegin = reinterpret_cast<const char*>(base_ + 8);
  const uint8_t* data = base_ + 8 + n_header;
  const uint64_t data_size = size_ - 8 - n_header;

  // Parse the JSON header; reject deep nesting and duplicate top-level keys while parsing.
  std::unordered_set<std::string> seen;
  std::string duplicate;
  nlohmann::json header;
  try {
    using E = nlohmann::json::parse_event_t;
    header = nlohmann::json::parse(
        hbegin, hbegin + n_header,
        [&](int depth, E event, nlohmann::json& parsed) {
          if ((event == E::object_start || event == E::array_start) && depth > kMaxJsonDepth)
            fail("{}: header JSON is nested deeper than {} levels", file, kMaxJsonDepth);
          if (event == E::key && depth == 1 && parsed.is_string() && duplicate.empty() &&
              !seen.insert(parsed.get<std::string>()).second)
            duplicate = parsed.get<std::string>();
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    fail("{}: header is not valid JSON: {}", file, e.what());
  }
  if (!header.is_object()) fail("{}: header must be a JSON object, got {}", file, header.type_name());
  if (!duplicate.empty()) fail("{}: duplicate tensor name '{}'", file, printable(duplicate));

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string nm = printable(it.key());
    const nlohmann::json& e = it.value();
    if (!e.is_object()) fail("{}: entry for tensor '{}' must be an object", file, nm);
    if (!e.contains("dtype") || !e["dtype"].is_string()) fail("{}: tensor '{}' has no string 'dtype'", file, nm);
    if (!e.contains("shape") || !e["shape"].is_array()) fail("{}: tensor '{}' has no array 'shape'", file, nm);
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
      fail("{}: tensor '{}' needs 'data_offsets' as [begin, end]", file, nm);

    SafetensorsTensor t;
    t.name = it.key();
    uint64_t elem_bytes = 0;
    const std::string dt = e["dtype"].get<std::string>();
    if (!parse_dtype(dt, &t.dtype, &elem_bytes))
      fail("{}: tensor '{}' has unsupported dtype '{}' (supported: F32, F16, BF16)", file, nm, printable(dt, 20));

    uint64_t n_el = 1;
    for (const auto& d : e["shape"]) {
      const uint64_t v = as_count(d, file, fmt::format("a dimension of tensor '{}'", nm));
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(n_el, v, &n_el) ||
          n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: tensor '{}' element count overflows", file, nm);
      t.shape.push_back(static_cast<int64_t>(v));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(n_el, elem_bytes, &nbytes)) fail("{}: tensor '{}' byte size overflows", file, nm);
    const uint64_t b = as_count(e["data_offsets"][0], file, fmt::format("data_offsets of tensor '{}'", nm));
    const uint64_t en = as_count(e["data_offsets"][1], file, fmt::format("data_offsets of tensor '{}'", nm));
    if (en < b) fail("{}: tensor '{}' data_offsets [{}, {}) end before they begin", file, nm, b, en);
    if (en - b != nbytes)
      fail("{}: tensor '{}' data_offsets [{}, {}) hold {} bytes but {} x {} elements need {}", file, nm, b, en,
           en - b, dt, n_el, nbytes);
    if (en > data_size)
      fail("{}: tensor '{}' data [{}, {}) is out of bounds of the file (data buffer holds {} bytes)", file, nm, b, en,
           data_size);
    t.offset = b;
    t.nbytes = nbytes;
    t.data = nbytes ? data + b : nullptr;
    tensors_.push_back(std::move(t));
  }

  // No two tensors may share bytes.
  std::sort(tensors_.begin(), tensors_.end(), [](const SafetensorsTensor& x, const SafetensorsTensor& y) {
    return x.offset != y.offset ? x.offset < y.offset : x.nbytes < y.nbytes;
  });
  uint64_t max_end = 0;
  const SafetensorsTensor* owner = nullptr;
  for (const SafetensorsTensor& t : tensors_) {
    if (t.nbytes == 0) continue;
    if (owner && t.offset < max_end)
      fail("{}: tensors '{}' and '{}' overlap in the data buffer", file, printable(owner->name), printable(t.name));
    max_end = t.offset + t.nbytes;
    owner = &t;
  }
  for (size_t k = 0; k < tensors_.size(); ++k) index_.emplace(tensors_[k].name, k);
}

const SafetensorsTensor* SafetensorsFile::tensor(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const std::string_view dt = dtype_name(t.dtype);
    if (dt.empty()) fail("{}: cannot write tensor '{}' of type {}", path, t.name, dtype_traits(t.dtype).name);
    if (t.name == "__metadata__" || header.contains(t.name)) fail("{}: duplicate or reserved tensor name '{}'", path, t.name);
    uint64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) fail("{}: tensor '{}' has a negative dimension {}", path, t.name, d);
      n *= static_cast<uint64_t>(d);
    }
    const uint64_t nbytes = n * (t.dtype == DType::F32 ? 4 : 2);
    header[t.name] = {{"dtype", dt}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    sizes.push_back(nbytes);
    offset += nbytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data buffer starts 8-byte aligned
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (!fp) fail("{}: cannot create file: {}", path, std::strerror(errno));
  const uint64_t hn = h.size();
  bool ok = std::fwrite(&hn, 8, 1, fp) == 1 && std::fwrite(h.data(), 1, h.size(), fp) == h.size();
  for (size_t k = 0; ok && k < tensors.size(); ++k)
    ok = sizes[k] == 0 || std::fwrite(tensors[k].data, 1, sizes[k], fp) == sizes[k];
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) fail("{}: write failed: {}", path, std::strerror(errno));
}

}  // namespace specula
