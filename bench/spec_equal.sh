#!/usr/bin/env bash
# Spec-Bench-style equality check (acceptance item 1, script form): for every drafter, greedy speculative
# output must equal plain greedy output token for token, over all 480 Spec-Bench prompts x 256 tokens.
# Prints each mismatch (drafter, prompt, first differing token) and exits non-zero on any.
#
# Usage: bench/spec_equal.sh [--model M] [--threads N] [--per-task N | --limit N] [--max-tokens N] [--k N]
#                            [--draft SPEC]... [-- extra spec-bench options]
# Defaults: both installed models in turn, 2 threads, all prompts, 256 tokens, k=4, one drafter of each kind.
set -euo pipefail
cd "$(dirname "$0")/.."
SPECULA=${SPECULA:-./build/specula}
MODELS=() THREADS=2 PER_TASK=0 LIMIT=0 MAX_TOKENS=256 K=4
DRAFTS=() EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODELS+=("$2"); shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --per-task) PER_TASK=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    --k) K=$2; shift 2 ;;
    --draft) DRAFTS+=("$2"); shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "spec_equal.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ ${#MODELS[@]} -eq 0 ] && MODELS=(smollm2-135m gemma3-270m)
[ -x "$SPECULA" ] || { echo "spec_equal.sh: $SPECULA not built" >&2; exit 2; }
status=0
for m in "${MODELS[@]}"; do
  ds=("${DRAFTS[@]}")
  if [ ${#ds[@]} -eq 0 ]; then
    # Layer counts: SmolLM2-135M has 30 layers, Gemma-3-270M 18.
    if [ "$m" = gemma3-270m ]; then ee=9 ls=6-11 ee2=12; else ee=15 ls=10-19 ee2=20; fi
    ds=("ngram" "ngram:branches=3" "ngram:max=8,conf=0.15" "model:path=$m,weights_dtype=f16" "early-exit:layers=$ee" "layerskip:skip=$ls"
        "early-exit:layers=$ee2,branches=2")
  fi
  ARGS=(spec-bench -m "$m" -t "$THREADS" --per-task "$PER_TASK" --limit "$LIMIT" -n "$MAX_TOKENS" --k "$K" --check-equal)
  for d in "${ds[@]}"; do ARGS+=(--draft "$d"); done
  echo "== $m"
  "$SPECULA" "${ARGS[@]}" "${EXTRA[@]}" || status=1
done
[ $status -eq 0 ] && echo "spec_equal: all outputs equal" || echo "spec_equal: MISMATCHES (see above)"
exit $status
