#!/usr/bin/env bash
# Spec-Bench-style equality check (acceptance item 1, script form): for every drafter, greedy speculative
# output must equal plain greedy output token for token, over all 480 Spec-Bench prompts x 256 tokens.
# Prints each mismatch (drafter, prompt, first differing token) and exits non-zero on any.
#
# Usage: bench/spec_equal.sh [--model M] [--threads N] [--per-task N | --limit N] [--max-tokens N] [--k N]
#                            [--draft SPEC]... [--data FILE] [--jobs J] [--slices S] [--out DIR]
#                            [-- extra spec-bench options]
# Defaults: both installed models in turn, 2 threads, all prompts, 256 tokens, k=4, one drafter of each kind.
#   --jobs J    run J one-thread processes side by side over S interleaved slices of the prompt file
#               (slice i = prompts i, i+S, i+2S, ...; so every slice spans all tasks); needs --out
#   --slices S  number of slices (default 16)
#   --out DIR   keep one log per model and slice in DIR; run again with the same DIR to resume: slices
#               whose log is complete are not rerun (a full 480 x 256 run takes hours on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODELS=() THREADS=2 PER_TASK=0 LIMIT=0 MAX_TOKENS=256 K=4 JOBS=1 SLICES=16 OUT="" DATA=""
DRAFTS=() EXTRA=()
need() { [ $# -ge 2 ] || { echo "spec_equal.sh: option '$1' needs a value" >&2; exit 2; }; }
posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "spec_equal.sh: $1 must be a positive integer, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) need "$@"; MODELS+=("$2"); shift 2 ;;
    --threads) need "$@"; THREADS=$2; shift 2 ;;
    --per-task) need "$@"; PER_TASK=$2; shift 2 ;;
    --limit) need "$@"; LIMIT=$2; shift 2 ;;
    --max-tokens) need "$@"; MAX_TOKENS=$2; shift 2 ;;
    --k) need "$@"; K=$2; shift 2 ;;
    --draft) need "$@"; DRAFTS+=("$2"); shift 2 ;;
    --data) need "$@"; DATA=$2; shift 2 ;;
    --jobs) need "$@"; posint --jobs "$2"; JOBS=$2; shift 2 ;;
    --slices) need "$@"; posint --slices "$2"; SLICES=$2; shift 2 ;;
    --out) need "$@"; OUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "spec_equal.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ ${#MODELS[@]} -eq 0 ] && MODELS=(smollm2-135m gemma3-270m)
[ -x "$SPECULA" ] || { echo "spec_equal.sh: $SPECULA not built" >&2; exit 2; }
if [ "$JOBS" -gt 1 ] && [ -z "$OUT" ]; then echo "spec_equal.sh: --jobs needs --out DIR (one log per slice)" >&2; exit 2; fi
if [ -n "$OUT" ] && { [ "$PER_TASK" != 0 ] || [ "$LIMIT" != 0 ]; }; then
  echo "spec_equal.sh: --out/--jobs slice the whole prompt file; --per-task and --limit would apply per slice (select prompts with --data FILE instead)" >&2
  exit 2
fi
for a in "${EXTRA[@]}"; do
  if [ "$a" = --data ] && { [ -n "$DATA" ] || [ -n "$OUT" ]; }; then
    echo "spec_equal.sh: give the prompt file as --data FILE before '--', not after it" >&2; exit 2
  fi
done
DATA_ARGS=()
[ -n "$DATA" ] && DATA_ARGS=(--data "$DATA")
[ -z "$DATA" ] && DATA=../shared/data/spec_bench_question.jsonl
[ -f "$DATA" ] || { echo "spec_equal.sh: prompt file '$DATA' not found (expected Spec-Bench JSONL, see ../shared/data/README)" >&2; exit 2; }

# The spec-bench command line for model $1 (drafters: --draft options, or one of each kind).
spec_args() {
  local m=$1 ds=("${DRAFTS[@]}") ee ls ee2
  if [ ${#ds[@]} -eq 0 ]; then
    # Layer counts: SmolLM2-135M has 30 layers, Gemma-3-270M 18.
    if [ "$m" = gemma3-270m ]; then ee=9 ls=6-11 ee2=12; else ee=15 ls=10-19 ee2=20; fi
    ds=("ngram" "ngram:branches=3" "ngram:max=8,conf=0.15" "model:path=$m,weights_dtype=f16" "early-exit:layers=$ee"
        "layerskip:skip=$ls" "early-exit:layers=$ee2,branches=2")
  fi
  ARGS=(spec-bench -m "$m" -n "$MAX_TOKENS" --k "$K" --check-equal)
  for d in "${ds[@]}"; do ARGS+=(--draft "$d"); done
}
# A slice log is complete when spec-bench printed its equality summary line.
complete() { [ -f "$1" ] && grep -q "^equality: [0-9]* mismatching" "$1"; }

status=0
for m in "${MODELS[@]}"; do
  echo "== $m"
  spec_args "$m"
  if [ -z "$OUT" ]; then
    "$SPECULA" "${ARGS[@]}" -t "$THREADS" --per-task "$PER_TASK" --limit "$LIMIT" "${DATA_ARGS[@]}" "${EXTRA[@]}" || status=1
    continue
  fi
  dir="$OUT/$(basename "$m" .gguf)"
  mkdir -p "$dir"
  # Slices are cut once per output directory (a resumed run keeps the same slices).
  for ((i = 0; i < SLICES; ++i)); do
    s=$(printf '%s/slice%02d.jsonl' "$dir" "$i")
    [ -f "$s" ] || awk -v n="$SLICES" -v i="$i" 'NF && (c++ % n) == i' "$DATA" > "$s"
    [ -s "$s" ] || rm -f "$s"  # more slices than prompts
  done
  claims=$(mktemp -d "$dir/.claims.XXXXXX")
  todo=0
  for s in "$dir"/slice*.jsonl; do complete "${s%.jsonl}.log" || todo=$((todo + 1)); done
  n_slices=$(ls "$dir"/slice*.jsonl | wc -l)
  echo "[spec_equal] $m: $todo of $n_slices slices to run, $JOBS jobs x 1 thread, logs in $dir"
  worker() {
    for s in "$dir"/slice*.jsonl; do
      local log=${s%.jsonl}.log b
      b=$(basename "$s" .jsonl)
      complete "$log" && continue
      mkdir "$claims/$b" 2>/dev/null || continue
      echo "[spec_equal] $m: $b started ($(date +%T))"
      "$SPECULA" "${ARGS[@]}" -t 1 --data "$s" "${EXTRA[@]}" > "$log" 2>&1 || true
      echo "[spec_equal] $m: $b finished ($(date +%T)): $(grep -h "^equality:" "$log" || echo "no summary: see $log")"
    done
  }
  for ((j = 0; j < JOBS; ++j)); do worker & done
  wait
  rmdir "$claims"/* "$claims" 2>/dev/null || true
  # Every mismatch line of every slice, then the totals.
  prompts=0 pairs=0 incomplete=0
  for s in "$dir"/slice*.jsonl; do
    log=${s%.jsonl}.log
    if ! complete "$log"; then incomplete=$((incomplete + 1)); status=1; echo "[spec_equal] $m: $(basename "$log") incomplete"; continue; fi
    grep -h "^MISMATCH" "$log" || true
    mis=$(sed -n 's/^equality: \([0-9]*\) mismatching .*/\1/p' "$log" | tail -1)
    np=$(sed -n 's/^equality: .* over \([0-9]*\) prompts.*/\1/p' "$log" | tail -1)
    pairs=$((pairs + mis)) prompts=$((prompts + np))
    [ "$mis" -eq 0 ] || status=1
  done
  echo "[spec_equal] $m: $pairs mismatching (drafter, prompt) pairs over $prompts prompts in $((n_slices - incomplete)) complete slices; $incomplete incomplete"
done
[ $status -eq 0 ] && echo "spec_equal: all outputs equal" || echo "spec_equal: MISMATCHES or incomplete slices (see above)"
exit $status
