#!/usr/bin/env bash
# Kill a LoRA run with SIGKILL at random moments and resume it until it finishes; then check
# that it trained every step exactly once and left no temp litter. Prints one line per kill.
#
#   scripts/kill-resume.sh [KILLS] [STEPS]      (uses target/release/draftscope)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DRAFTSCOPE_BIN:-target/release/draftscope}
KILLS=${1:-20}
STEPS=${2:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run="$work/run"
args=(--steps "$STEPS" --batch-size 2 --seq-len 32 --max-docs 200 --checkpoint-every 3 --json)
start() { "$BIN" train --objective self --out "$run" "${args[@]}" >/dev/null 2>>"$work/err" & pid=$!; }
resume() { "$BIN" train --resume "$run" --json >/dev/null 2>>"$work/err" & pid=$!; }
start
for k in $(seq "$KILLS"); do
  sleep "$(awk -v r=$RANDOM 'BEGIN{printf "%.2f", 0.05 + (r % 60) / 100}')"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  wait "$pid" 2>/dev/null || true
  step=$(grep -o '"step": [0-9]*' "$run/run.json" 2>/dev/null | head -1 | grep -o '[0-9]*$' || echo none)
  echo "kill $k: run.json step $step"
  if [ -f "$run/run.json" ]; then resume; else start; fi
done
wait "$pid" || { echo "FAIL: the last resume failed:"; tail -3 "$work/err"; exit 1; }
status=$(grep -o '"status": "[a-z]*"' "$run/run.json")
lines=$(wc -l < "$run/metrics.jsonl")
uniq=$(grep -o '"step":[0-9]*' "$run/metrics.jsonl" | sort -u | wc -l)
litter=$(find "$run" -name '.tmp*' | wc -l)
echo "final: $status, metrics lines $lines, distinct steps $uniq (of $STEPS), temp litter $litter"
[ "$status" = '"status": "finished"' ] && [ "$lines" = "$STEPS" ] && [ "$uniq" = "$STEPS" ] && [ "$litter" = 0 ] \
  && "$BIN" decode --adapter "$run/adapter" --chat --prompt "What is 2+2?" --gen-length 8 >/dev/null \
  && echo "OK" || { echo "FAIL"; exit 1; }
