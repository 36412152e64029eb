#!/usr/bin/env bash
# Regenerates the demo results set the results pane (`r`) shows on a fresh clone:
# the embedded model (base) vs a self-generated-T2T LoRA adapter vs a random-corruption LoRA
# adapter, on the embedded suites (arith, facts), with each adapter evaluated at every
# checkpoint so the pane's curves have points.
#
#   sessions/results/make.sh                      # defaults below
#   LIMIT=10 STEPS=200 EVAL_EVERY=50 sessions/results/make.sh
#
# Writes sessions/results/results.jsonl, the traces of the failing items under
# sessions/results/bench/ (traces of items answered right are pruned to keep the set small),
# and sessions/results/runs/{self,random}/ (run.json, metrics.jsonl, train.log, adapters; no
# optimizer states). Needs the embedded model (assets/model/model.safetensors) and a release
# build (cargo build --release); DRAFTSCOPE_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${DRAFTSCOPE_BIN:-target/release/draftscope}
LIMIT=${LIMIT:-20}             # items per suite, every evaluation
STEPS=${STEPS:-300}            # training steps per adapter
EVAL_EVERY=${EVAL_EVERY:-100}  # evaluate (and checkpoint) every K steps
SUITES=${SUITES:-arith,facts}
KEEP_TRACES=${KEEP_TRACES:-3}  # failing-item traces kept per (model, suite, checkpoint)
OUT=${OUT:-sessions/results}  # where the set goes

[ -x "$BIN" ] || { echo "make.sh: $BIN not built (cargo build --release)"; exit 1; }
[ -f "${DRAFTSCOPE_ASSETS:-assets}/model/model.safetensors" ] || {
  echo "make.sh: the embedded model is not there yet (assets/model/model.safetensors)"; exit 1; }

rm -rf "$OUT/results.jsonl" "$OUT/results.lock" "$OUT/bench" "$OUT/runs"
mkdir -p "$OUT/runs"
# Training evaluations write to the session data directory: this one.
export DRAFTSCOPE_SESSIONS=$OUT

echo "== base model"
"$BIN" bench --suite "$SUITES" --limit "$LIMIT" --sessions "$OUT"

for obj in self random; do
  echo "== LoRA, objective $obj: $STEPS steps, eval every $EVAL_EVERY"
  mkdir -p "$OUT/runs/$obj"
  "$BIN" train --objective "$obj" --steps "$STEPS" --eval-every "$EVAL_EVERY" \
    --checkpoint-every "$EVAL_EVERY" --eval-suites "$SUITES" --eval-limit "$LIMIT" \
    --out "$OUT/runs/$obj" --json > "$OUT/runs/$obj/train.log" 2>&1 \
    || { tail -20 "$OUT/runs/$obj/train.log"; exit 1; }
  grep '^eval step' "$OUT/runs/$obj/train.log" || true
done

# Keep the set small: no optimizer states or token caches, and the traces of the first
# KEEP_TRACES failing items of each row (the pane opens failing items; for the others it says
# the trace is not there).
find "$OUT/runs" -name 'optimizer.safetensors' -delete
rm -rf "$OUT"/runs/*/cache
if command -v python3 >/dev/null 2>&1; then
  python3 - "$OUT" "$KEEP_TRACES" <<'PY'
import json, os, sys
root, per_row = sys.argv[1], int(sys.argv[2])
keep, drop = 0, 0
for line in open(os.path.join(root, "results.jsonl")):
    if not line.strip():
        continue
    failing = 0
    for it in json.loads(line)["items"]:
        p = os.path.join(root, it["trace"])
        if not os.path.exists(p):
            continue
        if not it["correct"] and failing < per_row:
            failing += 1; keep += 1
        else:
            os.remove(p); drop += 1
print(f"traces: kept {keep} (first {per_row} failing items per row), pruned {drop}")
PY
else
  echo "make.sh: python3 not found: traces of correct items kept"
fi
"$BIN" results --sessions "$OUT" || true
du -sh "$OUT"
