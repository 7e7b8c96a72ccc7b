// GGUF reader. File layout (all little-endian):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv x { string key, u32 type, value },            string = u64 length + bytes
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to `general.alignment` (default 32), then the tensor data section.
#include "core/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace specula {

// ---------------------------------------------------------------------------------------------
// MappedFile

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open file: {}", path, std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("{}: cannot stat file: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      fail("{}: cannot map file ({} bytes): {}", path, size_, std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---------------------------------------------------------------------------------------------
// helpers

namespace {

constexpr int kMaxArrayDepth = 8;

// A name from the file made safe for a one-line message: non-printable bytes escaped, long names cut.
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

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;  // String, Array: variable
  }
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Bounds-checked little-endian reader over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t size, const std::string& file) : p_(p), size_(size), file_(file) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(size_t n, std::string_view what) const {
    if (left() < n)
      fail("{}: truncated file: {} needs {} bytes at offset {} but only {} are left", file_, what, n, pos_, left());
  }
  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view read_string(std::string_view what) {
    const auto len = read<uint64_t>(what);
    if (len > left())
      fail("{}: truncated metadata: string length {} of {} at offset {} exceeds the {} bytes left in the file",
           file_, len, what, pos_ - 8, left());
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  const uint8_t* take(size_t n, std::string_view what) {
    need(n, what);
    const uint8_t* q = p_ + pos_;
    pos_ += n;
    return q;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

// Reads one value of type `t`; `what` names it for messages ("value of key 'x'").
GgufValue read_value(Cursor& c, GgufType t, const std::string& what, const std::string& file, int depth) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::U8: v.u = c.read<uint8_t>(what); break;
    case GgufType::U16: v.u = c.read<uint16_t>(what); break;
    case GgufType::U32: v.u = c.read<uint32_t>(what); break;
    case GgufType::U64: v.u = c.read<uint64_t>(what); break;
    case GgufType::Bool: v.u = c.read<uint8_t>(what) != 0; break;
    case GgufType::I8: v.i = c.read<int8_t>(what); break;
    case GgufType::I16: v.i = c.read<int16_t>(what); break;
    case GgufType::I32: v.i = c.read<int32_t>(what); break;
    case GgufType::I64: v.i = c.read<int64_t>(what); break;
    case GgufType::F32: v.f = c.read<float>(what); break;
    case GgufType::F64: v.f = c.read<double>(what); break;
    case GgufType::String: v.str = c.read_string(what); break;
    case GgufType::Array: {
      const auto et = c.read<uint32_t>(what);
      if (!known_type(et)) fail("{}: unknown value type {} for the elements of {}", file, et, what);
      v.elem_type = static_cast<GgufType>(et);
      v.count = c.read<uint64_t>(what);
      const size_t es = scalar_size(v.elem_type);
      // Smallest possible encoding of one element; the count is checked before anything is allocated.
      const size_t min_elem = es ? es : v.elem_type == GgufType::String ? 8 : 12;
      if (v.count > c.left() / min_elem)
        fail("{}: truncated metadata: array count {} of {} at offset {} needs at least {} bytes per element, "
             "only {} bytes are left",
             file, v.count, what, c.pos() - 8, min_elem, c.left());
      const auto n = static_cast<size_t>(v.count);
      if (es) {
        v.raw = c.take(n * es, what);
      } else if (v.elem_type == GgufType::String) {
        v.strs.reserve(n);
        for (size_t k = 0; k < n; ++k) v.strs.push_back(c.read_string(what));
      } else {
        if (depth + 1 >= kMaxArrayDepth)
          fail("{}: arrays nested deeper than {} levels in {}", file, kMaxArrayDepth, what);
        v.items.reserve(n);
        for (size_t k = 0; k < n; ++k) v.items.push_back(read_value(c, GgufType::Array, what, file, depth + 1));
      }
      break;
    }
  }
  return v;
}

// Element k of a fixed-size numeric array as a scalar GgufValue.
GgufValue array_elem(const GgufValue& a, size_t k) {
  const size_t es = scalar_size(a.elem_type);
  const uint8_t* p = a.raw + k * es;
  GgufValue v;
  v.type = a.elem_type;
  auto ld = [&](auto x) {
    std::memcpy(&x, p, sizeof(x));
    return x;
  };
  switch (a.elem_type) {
    case GgufType::U8: v.u = ld(uint8_t{}); break;
    case GgufType::U16: v.u = ld(uint16_t{}); break;
    case GgufType::U32: v.u = ld(uint32_t{}); break;
    case GgufType::U64: v.u = ld(uint64_t{}); break;
    case GgufType::Bool: v.u = ld(uint8_t{}) != 0; break;
    case GgufType::I8: v.i = ld(int8_t{}); break;
    case GgufType::I16: v.i = ld(int16_t{}); break;
    case GgufType::I32: v.i = ld(int32_t{}); break;
    case GgufType::I64: v.i = ld(int64_t{}); break;
    case GgufType::F32: v.f = ld(float{}); break;
    case GgufType::F64: v.f = ld(double{}); break;
    default: break;
  }
  return v;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

int64_t GgufTensor::row_bytes() const { return specula::row_bytes(dtype, ne[0]); }

WeightView GgufTensor::view() const { return WeightView{dtype, n_rows(), ne[0], data, row_bytes()}; }

// ---------------------------------------------------------------------------------------------
// GgufFile: parsing

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->map_ = std::make_unique<MappedFile>(path);
  f->base_ = f->map_->data();
  f->size_ = f->map_->size();
  f->parse();
  return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(const void* data, size_t size, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = std::move(name);
  f->base_ = static_cast<const uint8_t*>(data);
  f->size_ = data ? size : 0;
  f->parse();
  return f;
}

void GgufFile::parse() {
  const std::string& file = path_;
  if (size_ < 4) fail("{}: file is too small to be GGUF ({} bytes)", file, size_);
  if (std::memcmp(base_, "GGUF", 4) != 0) {
    const std::string_view found(reinterpret_cast<const char*>(base_), 4);
    fail("{}: wrong magic '{}' (bytes {:02x} {:02x} {:02x} {:02x}), expected 'GGUF': not a GGUF file", file,
         printable(found), base_[0], base_[1], base_[2], base_[3]);
  }
  constexpr size_t kHeader = 4 + 4 + 8 + 8;
  if (size_ < kHeader) fail("{}: file is too small to be GGUF ({} bytes, the header alone is {})", file, size_, kHeader);

  Cursor c(base_, size_, file);
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    const bool swapped = (version_ & 0xFFFFu) == 0 && (version_ >> 16) != 0;
    fail("{}: unsupported GGUF version {} (supported: 2, 3){}", file, version_,
         swapped ? "; the file looks big-endian" : "");
  }
  const auto n_tensors = c.read<uint64_t>("tensor count");
  const auto n_kv = c.read<uint64_t>("metadata count");
  // Smallest encodings: a key/value is >= 13 bytes, a tensor info >= 24 bytes.
  if (n_kv > c.left() / 13)
    fail("{}: truncated metadata: {} key/value pairs cannot fit in the {} bytes left", file, n_kv, c.left());
  if (n_tensors > c.left() / 24)
    fail("{}: truncated tensor table: {} tensors cannot fit in the {} bytes left", file, n_tensors, c.left());

  // --- key/values
  kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string_view key = c.read_string(fmt::format("key of metadata entry {}", k));
    const std::string what = fmt::format("value of key '{}'", printable(key));
    const auto t = c.read<uint32_t>(what);
    if (!known_type(t)) fail("{}: unknown value type {} for key '{}'", file, t, printable(key));
    GgufKv kv;
    kv.key = std::string(key);
    kv.value = read_value(c, static_cast<GgufType>(t), what, file, 0);
    kvs_.push_back(std::move(kv));
  }
  for (size_t k = 0; k < kvs_.size(); ++k)
    if (!kv_index_.emplace(kvs_[k].key, k).second)
      fail("{}: duplicate metadata key '{}'", file, printable(kvs_[k].key));

  if (const GgufValue* a = find("general.alignment")) {
    if (!a->is_integer()) type_error("general.alignment", *a, "an integer");
    const int64_t al = to_int("general.alignment", *a, 1, int64_t{1} << 30);
    if ((al & (al - 1)) != 0) fail("{}: general.alignment must be a power of two, got {}", file, al);
    alignment_ = static_cast<uint64_t>(al);
  }

  // --- tensor infos
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = std::string(c.read_string(fmt::format("name of tensor {}", k)));
    const std::string nm = printable(t.name);
    const std::string what = fmt::format("tensor '{}'", nm);
    t.n_dims = c.read<uint32_t>(what);
    if (t.n_dims > 4) fail("{}: tensor '{}' has {} dimensions, at most 4 are supported", file, nm, t.n_dims);
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const auto ne = c.read<uint64_t>(what);
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: tensor '{}' dimension {} has invalid size {}", file, nm, d, ne);
      t.ne[d] = static_cast<int64_t>(ne);
    }
    const auto type_id = c.read<uint32_t>(what);
    t.offset = c.read<uint64_t>(what);

    const DTypeTraits* tr = dtype_traits(type_id);
    if (!tr) fail("{}: tensor '{}' has unknown ggml type {}", file, nm, type_id);
    if (!tr->weight_supported) fail("{}: unsupported quant type {} in tensor '{}'", file, tr->name, nm);
    t.dtype = static_cast<DType>(type_id);

    int64_t n_el = 1;
    for (int d = 0; d < 4; ++d)
      if (__builtin_mul_overflow(n_el, t.ne[d], &n_el))
        fail("{}: tensor '{}' element count overflows ([{}, {}, {}, {}])", file, nm, t.ne[0], t.ne[1], t.ne[2],
             t.ne[3]);
    if (t.ne[0] % tr->block_elems != 0)
      fail("{}: tensor '{}' row length {} is not a multiple of the {} block size {}", file, nm, t.ne[0], tr->name,
           tr->block_elems);
    int64_t nbytes = 0;  // (ne0 / block_elems) * block_bytes * ne1 * ne2 * ne3
    bool overflow = __builtin_mul_overflow(t.ne[0] / tr->block_elems, tr->block_bytes, &nbytes);
    for (int d = 1; d < 4; ++d) overflow = overflow || __builtin_mul_overflow(nbytes, t.ne[d], &nbytes);
    if (overflow) fail("{}: tensor '{}' byte size overflows", file, nm);
    t.nbytes = static_cast<uint64_t>(nbytes);
    if (t.offset % alignment_ != 0)
      fail("{}: tensor '{}' data offset {} is not a multiple of the alignment {}", file, nm, t.offset, alignment_);
    tensors_.push_back(std::move(t));
  }
  for (size_t k = 0; k < tensors_.size(); ++k)
    if (!tensor_index_.emplace(tensors_[k].name, k).second)
      fail("{}: duplicate tensor name '{}'", file, printable(tensors_[k].name));

  // --- data section: starts at the next multiple of the alignment
  const uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t avail = size_ > data_offset_ ? size_ - data_offset_ : 0;
  for (GgufTensor& t : tensors_) {
    if (t.offset > avail || t.nbytes > avail - t.offset)
      fail("{}: tensor '{}' data [{}, {}) is out of bounds of the file (data section holds {} bytes from offset {})",
           file, printable(t.name), t.offset, t.offset + t.nbytes, avail, data_offset_);
    t.data = t.nbytes ? base_ + data_offset_ + t.offset : nullptr;
  }
}

// ---------------------------------------------------------------------------------------------
// GgufFile: lookups

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue& GgufFile::need(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: missing metadata key '{}'", path_, key);
  return *v;
}

void GgufFile::type_error(std::string_view key, const GgufValue& v, std::string_view want) const {
  if (v.type == GgufType::Array)
    fail("{}: metadata key '{}' is an array of {}, expected {}", path_, key, gguf_type_name(v.elem_type), want);
  fail("{}: metadata key '{}' has type {}, expected {}", path_, key, gguf_type_name(v.type), want);
}

int64_t GgufFile::to_int(std::string_view key, const GgufValue& v, int64_t lo, int64_t hi) const {
  if (!v.is_integer()) type_error(key, v, "an integer");
  if (is_unsigned(v.type)) {
    if (v.u > static_cast<uint64_t>(hi) || (lo > 0 && v.u < static_cast<uint64_t>(lo)))
      fail("{}: metadata key '{}' value {} is out of range [{}, {}]", path_, key, v.u, lo, hi);
    return static_cast<int64_t>(v.u);
  }
  if (v.i < lo || v.i > hi) fail("{}: metadata key '{}' value {} is out of range [{}, {}]", path_, key, v.i, lo, hi);
  return v.i;
}

uint64_t GgufFile::to_u64(std::string_view key, const GgufValue& v) const {
  if (!v.is_integer()) type_error(key, v, "an integer");
  if (is_unsigned(v.type)) return v.u;
  if (v.i < 0) fail("{}: metadata key '{}' value {} is negative, expected an unsigned integer", path_, key, v.i);
  return static_cast<uint64_t>(v.i);
}

double GgufFile::to_double(std::string_view key, const GgufValue& v) const {
  if (v.is_float()) return v.f;
  if (v.is_integer()) return is_unsigned(v.type) ? static_cast<double>(v.u) : static_cast<double>(v.i);
  type_error(key, v, "a number");
}

float GgufFile::to_float(std::string_view key, const GgufValue& v) const {
  const double d = to_double(key, v);
  if (std::isfinite(d) && std::fabs(d) > std::numeric_limits<float>::max())
    fail("{}: metadata key '{}' value {} is out of range for f32", path_, key, d);
  return static_cast<float>(d);
}

uint32_t GgufFile::get_u32(std::string_view key) const {
  return static_cast<uint32_t>(to_int(key, need(key), 0, std::numeric_limits<uint32_t>::max()));
}
int32_t GgufFile::get_i32(std::string_view key) const {
  return static_cast<int32_t>(
      to_int(key, need(key), std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
}
uint64_t GgufFile::get_u64(std::string_view key) const { return to_u64(key, need(key)); }
int64_t GgufFile::get_i64(std::string_view key) const {
  return to_int(key, need(key), std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
}
float GgufFile::get_f32(std::string_view key) const { return to_float(key, need(key)); }
double GgufFile::get_f64(std::string_view key) const { return to_double(key, need(key)); }

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = need(key);
  if (v.type != GgufType::Bool) type_error(key, v, "bool");
  return v.u != 0;
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = need(key);
  if (v.type != GgufType::String) type_error(key, v, "string");
  return std::string(v.str);
}

std::span<const std::string_view> GgufFile::get_string_views(std::string_view key) const {
  const GgufValue& v = need(key);
  if (v.type != GgufType::Array || v.elem_type != GgufType::String) type_error(key, v, "an array of strings");
  return v.strs;
}

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const auto views = get_string_views(key);
  return std::vector<std::string>(views.begin(), views.end());
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
  const GgufValue& v = need(key);
  if (v.type != GgufType::Array || scalar_size(v.elem_type) == 0 || v.elem_type == GgufType::Bool)
    type_error(key, v, "an array of numbers");
  std::vector<float> out(static_cast<size_t>(v.count));
  for (size_t k = 0; k < out.size(); ++k) out[k] = to_float(key, array_elem(v, k));
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const GgufValue& v = need(key);
  if (v.type != GgufType::Array || scalar_size(v.elem_type) == 0 || v.elem_type == GgufType::Bool ||
      v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64)
    type_error(key, v, "an array of integers");
  std::vector<int32_t> out(static_cast<size_t>(v.count));
  for (size_t k = 0; k < out.size(); ++k)
    out[k] = static_cast<int32_t>(to_int(key, array_elem(v, k), std::numeric_limits<int32_t>::min(),
                                         std::numeric_limits<int32_t>::max()));
  return out;
}

// find_*: absent -> nullopt, otherwise exactly the get_* conversion.
#define SPECULA_GGUF_FIND(T, name)                                          \
  std::optional<T> GgufFile::find_##name(std::string_view key) const {      \
    if (!has(key)) return std::nullopt;                                     \
    return get_##name(key);                                                 \
  }
SPECULA_GGUF_FIND(uint32_t, u32)
SPECULA_GGUF_FIND(int32_t, i32)
SPECULA_GGUF_FIND(uint64_t, u64)
SPECULA_GGUF_FIND(int64_t, i64)
SPECULA_GGUF_FIND(float, f32)
SPECULA_GGUF_FIND(double, f64)
SPECULA_GGUF_FIND(bool, bool)
SPECULA_GGUF_FIND(std::string, string)
SPECULA_GGUF_FIND(std::vector<std::string>, string_array)
SPECULA_GGUF_FIND(std::vector<float>, f32_array)
SPECULA_GGUF_FIND(std::vector<int32_t>, i32_array)
#undef SPECULA_GGUF_FIND

std::string GgufFile::describe(const GgufValue& v) {
  auto scalar = [](const GgufValue& s) -> std::string {
    switch (s.type) {
      case GgufType::Bool: return s.u ? "true" : "false";
      case GgufType::F32: case GgufType::F64: return fmt::format("{}", s.f);
      case GgufType::String: return fmt::format("'{}'", printable(s.str, 60));
      default: return is_unsigned(s.type) ? fmt::format("{}", s.u) : fmt::format("{}", s.i);
    }
  };
  if (v.type != GgufType::Array) return scalar(v);
  std::string out = fmt::format("[{} x {}:", gguf_type_name(v.elem_type), v.count);
  const size_t shown = std::min<uint64_t>(v.count, 4);
  for (size_t k = 0; k < shown; ++k) {
    out += ' ';
    if (v.elem_type == GgufType::String) {
      GgufValue s;
      s.type = GgufType::String;
      s.str = v.strs[k];
      out += scalar(s);
    } else if (v.elem_type == GgufType::Array) {
      out += describe(v.items[k]);
    } else {
      out += scalar(array_elem(v, k));
    }
  }
  out += v.count > shown ? " ...]" : "]";
  return out;
}

}  // namespace specula
