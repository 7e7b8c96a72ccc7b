#include "experiments/run_io.h"

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"

namespace specula::run_io {

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot write '{}': {}", tmp, std::strerror(errno));
    f << text;
    f.flush();
    if (!f) fail("cannot write '{}': {}", tmp, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("cannot move '{}' into place as '{}'", tmp, path);
  }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) fail("cannot read '{}': no such file or not readable", path);
  try {
    return nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    fail("'{}' is not valid JSON ({})", path, e.what());
  }
}

ProcessResult run_process(const std::vector<std::string>& argv) {
  ProcessResult r;
  if (argv.empty()) return r;
  int fds[2];
  if (::pipe(fds) != 0) return r;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return r;
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    const std::string msg = fmt::format("cannot run '{}': {}\n", argv[0], std::strerror(errno));
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) r.output.append(buf, static_cast<size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

nlohmann::json machine_info() {
  nlohmann::json j;
  std::string cpu;
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  utsname u{};
  if (::uname(&u) == 0) {
    j["os"] = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
    j["hostname"] = u.nodename;
  }
  return j;
}

nlohmann::json build_info() {
  nlohmann::json j;
  j["version"] = "specula 0.1.0";
#if defined(__clang__)
  j["compiler"] = fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  j["compiler"] = fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  j["compiler"] = "unknown";
#endif
#ifdef NDEBUG
  j["build_type"] = "release (NDEBUG)";
#else
  j["build_type"] = "debug (assertions on)";
#endif
  j["source_dir"] = SPECULA_SOURCE_DIR;
  const ProcessResult head = run_process({"git", "-C", SPECULA_SOURCE_DIR, "rev-parse", "HEAD"});
  if (head.exit_code == 0 && head.output.size() >= 40) {
    j["git_commit"] = head.output.substr(0, 40);
    const ProcessResult st = run_process({"git", "-C", SPECULA_SOURCE_DIR, "status", "--porcelain", "--untracked-files=no"});
    j["git_dirty"] = st.exit_code == 0 ? nlohmann::json(!st.output.empty()) : nlohmann::json(nullptr);
    j["git_note"] = "state of the source tree when the run started (the binary may have been built earlier)";
  } else {
    j["git_commit"] = nullptr;
    j["git_dirty"] = nullptr;
  }
  return j;
}

namespace {
std::string now_fmt(const char* f) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, f, &tm);
  return buf;
}
}  // namespace

std::string now_iso() { return now_fmt("%Y-%m-%dT%H:%M:%S"); }
std::string now_compact() { return now_fmt("%Y%m%d-%H%M%S"); }
bool stderr_is_tty() { return ::isatty(2) != 0; }

}  // namespace specula::run_io
