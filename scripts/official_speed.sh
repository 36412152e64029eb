#!/usr/bin/env bash
# Side by side, in one run: the official LLaDA2 generate() (PyTorch, f32, eager) against
# `draftscope decode` on the mid config (hidden 512, 8 layers, 32 experts top-4, gen 256),
# THREADS threads each (default 1), alternating ROUNDS times (default 2). Prints each timing,
# the ratios and whether the `hf` decode's ids equal the official ones.
#
#   scripts/official_speed.sh OFFICIAL_MODELS_DIR [WORKDIR]
#
# OFFICIAL_MODELS_DIR: see scripts/official_speed.py. PYTHON: an interpreter with torch and
# transformers (default python3). DRAFTSCOPE: the binary (default target/release/draftscope).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OFFICIAL_MODELS_DIR [WORKDIR]" >&2; exit 2; }
OFF=$1
W=${2:-/tmp/official-speed}
PY=${PYTHON:-python3}
DS=${DRAFTSCOPE:-target/release/draftscope}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-1}
PROMPT=5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20
mkdir -p "$W"
for r in $(seq "$ROUNDS"); do
  "$PY" scripts/official_speed.py --official "$OFF" --out "$W/model" --prompt-ids $PROMPT --threads "$THREADS" > "$W/official-$r.json"
  for att in hf block-causal; do
    "$DS" decode --model "$W/model" --prompt-ids $PROMPT --mode q --gen-length 256 --block-length 32 \
      --attention $att --threads "$THREADS" --no-eos-early-stop --json "$W/ds-$att-$r.json" 2>&1 >/dev/null | { grep -v "^trace saved" >&2 || true; }
  done
done
python3 - "$W" "$ROUNDS" <<'PY'
import json, sys
w, rounds = sys.argv[1], int(sys.argv[2])
for r in range(1, rounds + 1):
    o = json.load(open(f"{w}/official-{r}.json"))
    hf = json.load(open(f"{w}/ds-hf-{r}.json"))
    bc = json.load(open(f"{w}/ds-block-causal-{r}.json"))
    off = min(o["seconds"])
    h, b = hf["wall_ms"] / 1000, bc["wall_ms"] / 1000
    same = hf["output"] == o["output"]
    print(f"threads {o['threads']}, round {r}: official {off:.2f} s ({o['forwards']} forwards, torch {o['torch']}), "
          f"draftscope hf {h:.2f} s ({hf['forward_calls']} forwards, {off / h:.2f}x, ids identical: {same}), "
          f"block-causal + cache {b:.2f} s ({off / b:.2f}x)")
PY
