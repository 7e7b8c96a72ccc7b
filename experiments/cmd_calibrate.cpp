// specula calibrate KIND: learns a strategy's state from calibration text and writes it to a file
// (Deja Vu predictors, threshold tables, linear layer replacements). Each kind is one subcommand,
// defined next to its strategy's CLI code and listed in kCalibrateKinds below.
#include "experiments/cli.h"

namespace specula::cli {

namespace {
using AddKind = Command (*)(CLI::App& calibrate);
// One entry per calibration kind (add_calibrate_<kind> in experiments/cmd_calibrate_<kind>.cpp).
const std::vector<AddKind> kCalibrateKinds = {add_calibrate_dejavu, add_calibrate_linearize, add_calibrate_threshold};
}  // namespace

Command add_calibrate(CLI::App& app) {
  auto* sub = app.add_subcommand("calibrate", "Calibrate a strategy on text and save its learned state to a file");
  sub->require_subcommand(1);
  auto kinds = std::make_shared<std::vector<Command>>();
  for (AddKind add : kCalibrateKinds) kinds->push_back(add(*sub));
  return {sub, [kinds] {
            for (auto& k : *kinds)
              if (k.sub->parsed()) return k.run();
            return 2;
          }};
}

}  // namespace specula::cli
