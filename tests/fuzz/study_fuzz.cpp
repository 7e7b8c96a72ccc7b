// libFuzzer target: study files of `specula run` (experiments/grid.h, YAML with includes, grids, zips
// and cells). Any input either loads or throws specula::Error naming the file and key (not a YAML
// library exception); a study that loads is dumped in resolved form, as `specula run` writes it.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "experiments/grid.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace specula;
  const std::string path = fuzz::write_input(data, size, "study.yaml");
  try {
    const config::Study s = config::load_study(path);
    (void)config::dump_study(s);
  } catch (const Error&) {
  }
  return 0;
}
