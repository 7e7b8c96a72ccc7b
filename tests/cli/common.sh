# Sourced by the CLI tests (tests/cli/*.sh, arguments: path/to/specula models_dir). Sets SPECULA, MODEL
# (SmolLM2-135M Q4_1 in models_dir), ROOT (the repository) and a temporary directory $tmp removed on
# exit, defines fail(), and skips the test (exit 0) when the model is not installed.
SPECULA=$1
MODEL=$2/SmolLM2-135M-Instruct.Q4_1.gguf
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not installed"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
