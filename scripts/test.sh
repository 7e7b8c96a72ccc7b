#!/usr/bin/env bash
# Runs the whole test suite. Works on a fresh machine: it first runs scripts/setup.sh (deps, models,
# build), then the GoogleTest suite through ctest, then the fuzz targets for a bounded time.
#   --fast       skip tests labelled slow (names containing "Slow") and the fuzzers (local use; CI runs all)
#   --no-fuzz    skip the fuzzers
# Env: FUZZ_SECONDS (default 60) per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=0 FUZZ=1
for a in "$@"; do
  case "$a" in
    --fast) FAST=1; FUZZ=0 ;;
    --no-fuzz) FUZZ=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$a' (expected --fast, --no-fuzz)" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh
echo "[test] unit + model tests (ctest)"
CTEST_ARGS=(--test-dir build --output-on-failure -j2)
((FAST)) && CTEST_ARGS+=(-E Slow)
ctest "${CTEST_ARGS[@]}"
if ((FUZZ)); then
  echo "[test] fuzzing (${FUZZ_SECONDS:-60} s per target, ASan+UBSan)"
  ./scripts/fuzz.sh
fi
echo "[test] all passed"
