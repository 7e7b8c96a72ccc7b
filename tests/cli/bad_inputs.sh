#!/usr/bin/env bash
# Bad input through the CLI: each case must exit non-zero with a one-line "error: ..." naming the
# problem (reader-level cases are covered in depth by tests/core/gguf_test.cpp and the fuzzers).
# Usage: bad_inputs.sh path/to/specula models_dir
set -u
source "$(dirname "$0")/common.sh"
fails=0
expect_error() {  # name, expected substring (case-insensitive), command...
  local name=$1 want=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  local lines; lines=$(printf '%s\n' "$err" | grep -c .)
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || ! printf '%s' "$err" | grep -qi -- "$want" || [ "$lines" -ne 1 ]; then
    echo "FAIL [$name]: rc=$rc lines=$lines, expected one line containing '$want', got: $err"
    fails=$((fails + 1))
  else
    echo "ok   [$name]: $err"
  fi
}
head -c 300000 "$MODEL" > "$tmp/truncated.gguf"
head -c 200 "$MODEL" > "$tmp/truncated_header.gguf"
{ printf 'GGUX'; tail -c +5 "$MODEL"; } > "$tmp/magic.gguf"
size=$(stat -c %s "$MODEL")
head -c $((size - 4096)) "$MODEL" > "$tmp/short_data.gguf"
: > "$tmp/empty.gguf"
G=("$SPECULA" generate -n 4 --prompt hi -m)
expect_error truncated-metadata "truncated" "${G[@]}" "$tmp/truncated_header.gguf"
expect_error truncated-tensors "truncated" "${G[@]}" "$tmp/truncated.gguf"
expect_error wrong-magic "magic" "${G[@]}" "$tmp/magic.gguf"
expect_error tensor-data-out-of-bounds "out of bounds" "${G[@]}" "$tmp/short_data.gguf"
expect_error empty-file "empty.gguf" "${G[@]}" "$tmp/empty.gguf"
expect_error missing-file "not found" "${G[@]}" "$tmp/nope.gguf"
expect_error prompt-longer-than-context "context" "$SPECULA" generate -m "$MODEL" --context 4 -n 2 --prompt "one two three four five six seven"
expect_error temperature "temperature" "$SPECULA" generate -m "$MODEL" --temperature -1 --prompt hi
expect_error top-p "top-p" "$SPECULA" generate -m "$MODEL" --temperature 1 --top-p 1.5 --prompt hi
expect_error min-p "min-p" "$SPECULA" generate -m "$MODEL" --min-p 2 --prompt hi
expect_error repetition-penalty "repetition penalty" "$SPECULA" generate -m "$MODEL" --repetition-penalty 0 --prompt hi
expect_error weights-dtype "weights-dtype" "$SPECULA" generate -m "$MODEL" --weights-dtype int3 --prompt hi
expect_error perplexity-data "cannot read" "$SPECULA" perplexity -m "$MODEL" --data "$tmp/missing.txt"
expect_error perplexity-stride "stride" "$SPECULA" perplexity -m "$MODEL" --data "$MODEL" --ctx 16 --stride 32
# Speculative decoding (--draft)
GEMMA=$(dirname "$MODEL")/gemma-3-270m-q4_k_m.gguf
D=("$SPECULA" generate -m "$MODEL" --prompt hi -n 8)
if [ -f "$GEMMA" ]; then
  expect_error draft-vocab-mismatch "different vocabularies" "${D[@]}" --draft "model:path=$GEMMA"
fi
expect_error draft-k-zero "k=0" "${D[@]}" --draft ngram --k 0
expect_error draft-k-negative "k=-2" "${D[@]}" --draft ngram --k -2
expect_error draft-k-beyond-context "context left" "${D[@]}" --draft ngram --k 12
expect_error draft-k-beyond-depth "maximum draft depth" "$SPECULA" generate -m "$MODEL" --prompt hi -n 64 --draft ngram --k 20
expect_error draft-tree-too-large "exceeds the limit of 64 nodes" "$SPECULA" generate -m "$MODEL" --prompt hi -n 64 --draft ngram:branches=9 --k 8
expect_error draft-ngram-conf-range "conf=1.5" "$SPECULA" generate -m "$MODEL" --prompt hi -n 8 --draft ngram:conf=1.5
expect_error draft-ngram-conf-tree "cannot be combined with branches=2" "$SPECULA" generate -m "$MODEL" --prompt hi -n 8 --draft ngram:conf=0.2,branches=2
expect_error draft-unknown-name "unknown drafter 'medusa'" "${D[@]}" --draft medusa
expect_error draft-unknown-key "unknown key 'maxx'" "${D[@]}" --draft ngram:maxx=3
expect_error draft-bad-value "layers=99" "${D[@]}" --draft early-exit:layers=99
expect_error draft-bad-skip "skip list" "${D[@]}" --draft layerskip:skip=a-b
expect_error draft-missing-path "missing required key 'path'" "${D[@]}" --draft model
expect_error draft-model-not-found "nope.gguf" "${D[@]}" --draft model:path=nope.gguf
expect_error draft-adaptive-range "k-max" "${D[@]}" --draft ngram --k 4 --adaptive --k-max 2
expect_error draft-baseline-alone "--baseline needs --draft" "${D[@]}" --baseline
# --device cuda on a machine without a GPU (or a build without CUDA): one clear line, exit 1.
expect_error device-cuda-no-gpu "device cuda" "${D[@]}" --device cuda
# The same study file on either device by changing model.device only; without a GPU, cuda is one clear line.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
sed 's/^  path: smollm2-135m$/  path: smollm2-135m\n  device: cuda/' "$ROOT/configs/quickstart.yaml" > "$tmp/quickstart_cuda.yaml"
grep -q 'device: cuda' "$tmp/quickstart_cuda.yaml" || { echo "FAIL [yaml-device-cuda]: could not make the cuda config"; fails=$((fails + 1)); }
if "$SPECULA" generate -m "$MODEL" -n 1 --prompt hi --device cuda 2>&1 >/dev/null | grep -q 'device cuda: no'; then  # no GPU here
  expect_error yaml-device-cuda-no-gpu "model.device: device cuda" "$SPECULA" run "$tmp/quickstart_cuda.yaml" --out "$tmp/run_cuda"
fi
expect_error strategy-unknown "unknown strategy" "${D[@]}" --strategy nosuch
expect_error spec-bench-outputs-unwritable "--outputs $tmp/no/such/dir/out.jsonl: cannot open" "$SPECULA" spec-bench -m "$MODEL" --draft ngram --limit 1 -n 2 --outputs "$tmp/no/such/dir/out.jsonl"
echo "$fails failed"
[ $fails -eq 0 ]
