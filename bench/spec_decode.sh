#!/usr/bin/env bash
# Speculative decoding over the Spec-Bench prompts (acceptance item 4): per drafter and per Spec-Bench task,
# tau, acceptance per position, tokens/s and speedup over plain greedy decoding of the same target file in
# the same run (plus the cost-model figures c and V). Writes JSON + a markdown table.
#
# Usage: bench/spec_decode.sh [--model M] [--device cpu|cuda] [--threads N] [--per-task N | --limit N]
#                             [--max-tokens N] [--k N] [--out DIR] [--draft SPEC]... [-- extra spec-bench options]
#        bench/spec_decode.sh --spec-bench [options above]
# Defaults: SmolLM2-135M Q4_1, 2 threads, all 480 prompts, 128 tokens, k=4, and the drafters below.
# --spec-bench: Spec-Bench's protocol (up to 1024 new tokens per prompt, stopping at end of generation)
#   with the README's headline drafters: k=7, ngram:max=8,conf=0.15 and ngram:min=2,max=4 (~45 min on 2 cores;
#   k=7 makes a full verification pass 8 positions, one register group of the packed matmul kernels, where
#   k=8 needs a second group); explicit --max-tokens, --k and --draft still apply.
# Quick run: bench/spec_decode.sh --per-task 2 --max-tokens 64
# Draft-model pair (SmolLM2 Q4_1 drafting for the same file in f16):
#   bench/spec_decode.sh --draft model:path=smollm2-135m -- --weights-dtype f16
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODEL=smollm2-135m DEVICE=cpu THREADS=2 PER_TASK=0 LIMIT=0 MAX_TOKENS=128 K=4 OUT=bench/results
DRAFTS=() EXTRA=() PRESET=0 MT_SET=0 K_SET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --per-task) PER_TASK=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; MT_SET=1; shift 2 ;;
    --k) K=$2; K_SET=1; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --draft) DRAFTS+=("$2"); shift 2 ;;
    --spec-bench) PRESET=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    *) echo "spec_decode.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
if [ "$PRESET" = 1 ]; then
  [ "$MT_SET" = 1 ] || MAX_TOKENS=1024
  [ "$K_SET" = 1 ] || K=7
  [ ${#DRAFTS[@]} -gt 0 ] || DRAFTS=("ngram:max=8,conf=0.15" "ngram:min=2,max=4")
fi
if [ ${#DRAFTS[@]} -eq 0 ]; then
  DRAFTS=("ngram" "ngram:min=2,max=4" "ngram:branches=3" "layerskip:skip=10-17" "early-exit:layers=20")
fi
[ -x "$SPECULA" ] || { echo "spec_decode.sh: $SPECULA not built (run scripts/setup.sh or cmake --build build)" >&2; exit 2; }
mkdir -p "$OUT"
name=$(basename "$MODEL" .gguf)
[ "$DEVICE" = cpu ] || name="$name.$DEVICE"
ARGS=(spec-bench -m "$MODEL" --device "$DEVICE" -t "$THREADS" --per-task "$PER_TASK" --limit "$LIMIT" -n "$MAX_TOKENS" --k "$K"
      --json "$OUT/spec_decode_$name.json" --markdown "$OUT/spec_decode_$name.md")
for d in "${DRAFTS[@]}"; do ARGS+=(--draft "$d"); done
"$SPECULA" "${ARGS[@]}" "${EXTRA[@]}"
echo "wrote $OUT/spec_decode_$name.json and $OUT/spec_decode_$name.md"
