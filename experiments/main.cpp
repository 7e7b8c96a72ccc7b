// specula: speculative decoding + activation sparsity research framework (CLI entry point).
#include <cstdio>
#include <exception>

#include <fmt/core.h>

#include "core/error.h"
#include "experiments/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"specula: lossless speculative decoding and activation-sparsity experiments on real LLM checkpoints"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "specula 0.1.0");
  using namespace specula::cli;
  std::vector<Command> cmds;
  for (auto add : {add_generate, add_models, add_perplexity, add_bench, add_spec_bench, add_calibrate, add_run, add_report, add_linearity}) cmds.push_back(add(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "error: {} (see --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& c : cmds)
      if (c.sub->parsed()) return c.run();
  } catch (const specula::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {  // a bug, not bad input: still a message and an exit code, not abort()
    std::fflush(stdout);
    fmt::print(stderr, "internal error: {}\n", e.what());
    return 70;
  }
  return 0;
}
