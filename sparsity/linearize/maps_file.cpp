#include "sparsity/linearize/maps_file.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace specula::linearize {

namespace {
constexpr char kMagic[8] = {'S', 'P', 'L', 'I', 'N', 'M', 'A', 'P'};
constexpr char kEnd[8] = {'S', 'P', 'L', 'I', 'N', 'E', 'N', 'D'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxString = 1u << 16;
constexpr int64_t kMaxDim = 1 << 16;

void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  put_bytes(out, &v, sizeof(T));
}
void put_str(std::vector<uint8_t>& out, const std::string& s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  put_bytes(out, s.data(), s.size());
}
void put_floats(std::vector<uint8_t>& out, const std::vector<float>& v) { put_bytes(out, v.data(), v.size() * sizeof(float)); }

struct Reader {
  const uint8_t* p;
  size_t size, pos = 0;
  const std::string& what;
  void need(size_t n, const char* field) {
    if (n > size - pos)
      fail("{}: truncated linear-maps file: {} bytes, needed {} more at byte {} for {}", what, size, n, pos, field);
  }
  template <typename T>
  T get(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string get_str(const char* field) {
    const uint32_t n = get<uint32_t>(field);
    if (n > kMaxString) fail("{}: corrupt linear-maps file: {} length {} at byte {} exceeds {}", what, field, n, pos - 4, kMaxString);
    need(n, field);
    std::string s(reinterpret_cast<const char*>(p + pos), n);
    pos += n;
    return s;
  }
  std::vector<float> get_floats(int64_t n, const char* field) {
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    need(bytes, field);
    std::vector<float> v(static_cast<size_t>(n));
    std::memcpy(v.data(), p + pos, bytes);
    pos += bytes;
    for (float f : v)
      if (!std::isfinite(f)) fail("{}: corrupt linear-maps file: non-finite value in {}", what, field);
    return v;
  }
};
}  // namespace

void LinearMaps::validate(const ModelConfig& cfg, const std::string& what, size_t used) const {
  if (n_layer != cfg.n_layer || n_embd != cfg.n_embd || model_name != cfg.name)
    fail("{}: linear maps were fitted for model '{}' ({} layers, n_embd {}), not for '{}' ({} layers, n_embd {})", what,
         model_name, n_layer, n_embd, cfg.name, cfg.n_layer, cfg.n_embd);
  std::vector<bool> taken(static_cast<size_t>(cfg.n_layer), false);
  for (const auto& r : runs) {
    if (r.count < 1 || r.first < 0 || r.first >= cfg.n_layer || r.count > cfg.n_layer - r.first)
      fail("{}: replaced run (first layer {}, {} layers) out of range: the model has layers 0..{}", what, r.first, r.count,
           cfg.n_layer - 1);
    for (int64_t l = r.first; l < r.first + r.count; ++l) {
      if (taken[static_cast<size_t>(l)]) fail("{}: layer {} is replaced by two runs", what, l);
      taken[static_cast<size_t>(l)] = true;
    }
    if (r.map.d != cfg.n_embd) fail("{}: map of run at layer {} has dimension {}, expected n_embd {}", what, r.first, r.map.d, cfg.n_embd);
  }
  if (used == 0 || used > runs.size()) used = runs.size();
  const int64_t total = layers_covered(used);
  if (total >= cfg.n_layer)
    fail("{}: {} runs replace {} layers but the model has {}: at least one layer must run (use count=K < {})", what, used, total,
         cfg.n_layer, used);
}

int64_t LinearMaps::layers_covered(size_t k) const {
  int64_t t = 0;
  for (size_t i = 0; i < k && i < runs.size(); ++i) t += runs[i].count;
  return t;
}

std::vector<uint8_t> serialize_linear_maps(const LinearMaps& m) {
  std::vector<uint8_t> out;
  put_bytes(out, kMagic, 8);
  put<uint32_t>(out, kVersion);
  put_str(out, m.model_name);
  put<int64_t>(out, m.n_layer);
  put<int64_t>(out, m.n_embd);
  put_str(out, m.info);
  put<uint32_t>(out, static_cast<uint32_t>(m.runs.size()));
  for (const auto& r : m.runs) {
    put<int64_t>(out, r.first);
    put<int64_t>(out, r.count);
    put<int64_t>(out, r.map.rank);
    put<float>(out, r.score);
    put_floats(out, r.map.U);
    if (r.map.rank > 0) put_floats(out, r.map.V);
    put_floats(out, r.map.b);
  }
  put_bytes(out, kEnd, 8);
  return out;
}

LinearMaps parse_linear_maps(const uint8_t* data, size_t size, const std::string& what) {
  Reader rd{data, size, 0, what};
  rd.need(8, "magic");
  if (std::memcmp(data, kMagic, 8) != 0) fail("{}: not a linear-maps file (magic is not SPLINMAP)", what);
  rd.pos = 8;
  const uint32_t version = rd.get<uint32_t>("version");
  if (version != kVersion) fail("{}: unsupported linear-maps file version {} (expected {})", what, version, kVersion);
  LinearMaps m;
  m.model_name = rd.get_str("model name");
  m.n_layer = rd.get<int64_t>("n_layer");
  m.n_embd = rd.get<int64_t>("n_embd");
  if (m.n_layer < 1 || m.n_layer > kMaxDim) fail("{}: corrupt linear-maps file: n_layer {} (expected 1..{})", what, m.n_layer, kMaxDim);
  if (m.n_embd < 1 || m.n_embd > kMaxDim) fail("{}: corrupt linear-maps file: n_embd {} (expected 1..{})", what, m.n_embd, kMaxDim);
  m.info = rd.get_str("info");
  const uint32_t n_runs = rd.get<uint32_t>("run count");
  if (n_runs > m.n_layer) fail("{}: corrupt linear-maps file: {} runs for a {}-layer model", what, n_runs, m.n_layer);
  const int64_t d = m.n_embd;
  for (uint32_t i = 0; i < n_runs; ++i) {
    ReplacedRun r;
    r.first = rd.get<int64_t>("run first layer");
    r.count = rd.get<int64_t>("run layer count");
    r.map.rank = rd.get<int64_t>("run rank");
    r.score = rd.get<float>("run score");
    if (r.first < 0 || r.first >= m.n_layer || r.count < 1 || r.count > m.n_layer - r.first)
      fail("{}: corrupt linear-maps file: run {} (first layer {}, {} layers) reaches outside layers 0..{}", what, i, r.first,
           r.count, m.n_layer - 1);
    if (r.map.rank < 0 || r.map.rank >= d) fail("{}: corrupt linear-maps file: run {} has rank {} (expected 0..{})", what, i, r.map.rank, d - 1);
    r.map.d = d;
    if (r.map.rank == 0) {
      r.map.U = rd.get_floats(d * d, "map matrix");
    } else {
      r.map.U = rd.get_floats(d * r.map.rank, "map factor U");
      r.map.V = rd.get_floats(r.map.rank * d, "map factor V");
    }
    r.map.b = rd.get_floats(d, "map bias");
    m.runs.push_back(std::move(r));
  }
  rd.need(8, "end marker");
  if (std::memcmp(data + rd.pos, kEnd, 8) != 0) fail("{}: corrupt linear-maps file: missing end marker at byte {}", what, rd.pos);
  rd.pos += 8;
  if (rd.pos != size) fail("{}: corrupt linear-maps file: {} unexpected bytes after the end marker", what, size - rd.pos);
  return m;
}

void write_linear_maps(const LinearMaps& m, const std::string& path) {
  const auto bytes = serialize_linear_maps(m);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail("{}: cannot open for writing", path);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) fail("{}: write failed", path);
}

LinearMaps read_linear_maps(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("{}: cannot open linear-maps file", path);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_linear_maps(bytes.data(), bytes.size(), path);
}

}  // namespace specula::linearize
