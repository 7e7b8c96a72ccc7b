#pragma once
// For fuzz targets whose reader takes a path: writes the input to a per-process file under the temp
// directory (rewritten on every input) and returns its path.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace specula::fuzz {

inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  static const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string path = dir + "/specula_fuzz_" + std::to_string(::getpid()) + "_" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the fuzzer's own environment is broken, not the input
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace specula::fuzz
