#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp) with clang + ASan/UBSan in build-fuzz/ and runs
# each from the committed seed corpus (tests/fuzz/corpus/<target>/, made by
# scripts/golden/make_fuzz_seed.py): the model-file readers (gguf, safetensors) for FUZZ_SECONDS
# (default 60), the other file formats (Deja Vu predictors, linear maps, thresholds, study YAML,
# Hugging Face tokenizer/config JSON) for half of that. Exits non-zero when a target finds a crash,
# a leak, undefined behaviour or an exception other than specula::Error; the reproducer is left in
# build-fuzz/artifacts/<target>/.
#   FUZZ_SECONDS=300 scripts/fuzz.sh            # longer run
#   FUZZ_TARGETS="gguf" scripts/fuzz.sh         # one target
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TARGETS=${FUZZ_TARGETS:-"gguf safetensors predictor linmaps thresholds study hf_json"}
JOBS=${JOBS:-2}
BUILD=build-fuzz

# The library itself is instrumented for coverage (fuzzer-no-link); the fuzz executables add
# -fsanitize=fuzzer (CMakeLists.txt, SPECULA_FUZZ=ON), which links libFuzzer's main().
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$BUILD" \
  -DSPECULA_FUZZ=ON -DSPECULA_TESTS=OFF -DSPECULA_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS='-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link' \
  >/dev/null

targets=()
for t in $FUZZ_TARGETS; do targets+=("${t}_fuzz"); done
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
status=0
for t in $FUZZ_TARGETS; do
  corpus="$BUILD/corpus/$t"           # grows as the fuzzer finds new coverage; not committed
  artifacts="$BUILD/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  secs=$FUZZ_SECONDS
  case "$t" in gguf|safetensors) ;; *) secs=$(( (FUZZ_SECONDS + 1) / 2 )) ;; esac
  echo "== fuzzing ${t}_fuzz for ${secs}s"
  if ! "$BUILD/${t}_fuzz" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
       -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus"; then
    echo "!! ${t}_fuzz found a problem; reproducer in $artifacts" >&2
    status=1
  fi
done
exit $status
