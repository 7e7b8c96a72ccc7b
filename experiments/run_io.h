#pragma once
// File and process helpers of `specula run` / `specula report`: atomic writes (a reader never sees a
// half-written result), JSON files, child processes, and the machine/build description a run records.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace specula::run_io {

// Writes `text` to path.tmp.<pid> and renames it over `path` (atomic on POSIX). Error naming the path.
void write_file_atomic(const std::string& path, const std::string& text);
// Parses a JSON file; Error naming the file when unreadable or malformed.
nlohmann::json read_json(const std::string& path);

struct ProcessResult {
  int exit_code = -1;  // -1: could not start; 128+N: killed by signal N
  std::string output;  // stdout and stderr together
};
// Runs argv[0] (looked up in PATH) with the arguments, without a shell; waits for it.
ProcessResult run_process(const std::vector<std::string>& argv);

// {cpu, cores, os, hostname}
nlohmann::json machine_info();
// {version, compiler, build_type, git_commit, git_dirty, source_dir}; git fields null when unavailable.
nlohmann::json build_info();
// Local time as "2025-01-31T14:05:09" (iso) or "20250131-140509" (compact, for directory names).
std::string now_iso();
std::string now_compact();
// Whether stderr is a terminal.
bool stderr_is_tty();

}  // namespace specula::run_io
