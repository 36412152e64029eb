#!/usr/bin/env bash
# Smoke test of the workbench in a real terminal, driven by tmux: start on the reference
# fixture model, run the sample prompt, step, jump to an edit, open the inspector, open help,
# quit; the screen is checked with capture-pane, and after quitting the terminal must be back
# to normal (primary screen, no mouse capture, not raw). Then: open a saved session with no
# model, start with no model at all (the status line must say so), and panic on purpose
# (DRAFTSCOPE_TUI_TEST_PANIC): the hook must restore the terminal. Then the first-run tour:
# a fresh data directory starts it, Enter walks its stops, Esc leaves it, and the next start
# goes straight to the workbench. Every scenario has its own data directory
# (DRAFTSCOPE_SESSIONS), never the user's.
#
#   tests/tui_smoke.sh            (uses target/release/draftscope; DRAFTSCOPE_BIN overrides)
#
# Installs tmux with apt-get when missing and possible; otherwise skips (exit 0) with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DRAFTSCOPE_BIN:-target/release/draftscope}
[ -x "$BIN" ] || { echo "tui_smoke: $BIN not built (cargo build --release)"; exit 1; }

if ! command -v tmux >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "tui_smoke: installing tmux"
    (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || true
  fi
fi
if ! command -v tmux >/dev/null 2>&1; then
  echo "tui_smoke: SKIPPED (tmux is not installed and could not be installed)"
  exit 0
fi

# A data directory of our own (the user's tour flag, traces and results stay untouched); the
# tour is off unless a scenario asks for it.
SMOKE_HOME=$(mktemp -d)
export DRAFTSCOPE_SESSIONS=$SMOKE_HOME/data
export DRAFTSCOPE_NO_TOUR=1

# One tmux server (socket) per scenario, so scenarios never share state.
RUN=0
T="tmux -L draftscope-smoke-$$-0"
cleanup() { $T kill-server >/dev/null 2>&1 || true; }
trap 'cleanup; rm -rf "$SMOKE_HOME"' EXIT
export TERM=xterm-256color

fail() {
  echo "tui_smoke: FAIL: $*"
  echo "----- screen -----"
  $T capture-pane -t smoke -p || true
  echo "------------------"
  exit 1
}
screen() { $T capture-pane -t smoke -p; }
# wait_for TEXT [SECONDS]
wait_for() {
  local n=$(( ${2:-20} * 10 ))
  for _ in $(seq "$n"); do
    screen | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  fail "timed out waiting for: $1"
}
expect_not() { screen | grep -qF -- "$1" && fail "unexpected on screen: $1" || true; }
keys() { $T send-keys -t smoke "$@"; sleep 0.3; }
start() {
  cleanup
  RUN=$((RUN + 1))
  T="tmux -L draftscope-smoke-$$-$RUN"
  $T new-session -d -s smoke -x 150 -y 42 "$1; echo DRAFTSCOPE-EXIT=\$?; sleep 120"
}
# After quitting: the shell line printed, the alternate screen left, mouse capture off, and
# the tty back in canonical mode.
check_clean_exit() {
  wait_for "DRAFTSCOPE-EXIT=0" 10
  expect_not "┌ Prompt"
  [ "$($T display -p -t smoke '#{alternate_on}')" = 0 ] || fail "still on the alternate screen"
  [ "$($T display -p -t smoke '#{mouse_any_flag}')" = 0 ] || fail "mouse capture left on"
  local tty
  tty=$($T display -p -t smoke '#{pane_tty}')
  if stty -a <"$tty" | grep -qE -- "(^| )-icanon( |$)"; then fail "terminal left in raw mode"; fi
}

# 1. Fixture model: run, step, edit, inspector, help, quit.
# --no-eos-early-stop: decode every block (the steps below visit blocks after the EOS).
start "$BIN tui --model tests/fixtures/llada2-tiny --block-length 8 --gen-length 32 --no-eos-early-stop --prompt-ids 409,191,80,91,337"
wait_for "ready: press Enter"
wait_for "┌ Prompt (token ids)"
wait_for "→/l ←/h step ]/[ block"
keys Enter
wait_for "done: 9 tokens, 54 forwards"
wait_for "b3    "
wait_for "max-post-steps"
keys '['
keys '['
keys '['
keys '['
wait_for "Tokens · block 0 · step 0/"
keys l
wait_for "Tokens · block 0 · step 1/"
keys e
wait_for "edit 2 of "
keys Tab
wait_for "┌ Inspector · pos"
wait_for "why: edit"
wait_for "top-5 at step"
keys '?'
wait_for "Help — ? or Esc closes"
wait_for "next fallback commit"
keys Escape
expect_not "Help — ? or Esc closes"
keys q
check_clean_exit

# 2. A saved session opens with no model.
start "$BIN tui --no-model --open sessions/fixture/fixture-q.json --diff sessions/fixture/fixture-s.json"
wait_for "A: fixture-q"
wait_for "B: fixture-s"
wait_for "DIFF"
keys e
wait_for "edit 1 of"
keys q
check_clean_exit

# 3. No model at all: the workbench still opens, says so, and quits cleanly.
start "DRAFTSCOPE_ASSETS=/nonexistent $BIN"
wait_for "no model: embedded model not found"
wait_for "(no model)"
keys Enter
wait_for "no model to run"
keys q
check_clean_exit

# 4. A panic restores the terminal before the message prints.
start "DRAFTSCOPE_TUI_TEST_PANIC=1 $BIN tui --no-model"
wait_for "DRAFTSCOPE-EXIT=101" 10
wait_for "test panic (DRAFTSCOPE_TUI_TEST_PANIC is set)"
expect_not "┌ Prompt"
[ "$($T display -p -t smoke '#{alternate_on}')" = 0 ] || fail "panic: still on the alternate screen"
[ "$($T display -p -t smoke '#{mouse_any_flag}')" = 0 ] || fail "panic: mouse capture left on"
tty=$($T display -p -t smoke '#{pane_tty}')
if stty -a <"$tty" | grep -qE -- "(^| )-icanon( |$)"; then fail "panic: terminal left in raw mode"; fi

# 4. Training panel and results pane: launch a tiny LoRA run from the form (on a 1-second
#    pretrained base), watch it finish, see its evaluation in the results pane, open a failing
#    item's trace in the decode view.
DATA=$(mktemp -d)
trap 'cleanup; rm -rf "$DATA" "$SMOKE_HOME"' EXIT
"$BIN" pretrain --out "$DATA/pre" --steps 5 --hidden 32 --layers 2 --heads 2 --kv-heads 1 --head-dim 16 \
  --intermediate 64 --moe-intermediate 16 --experts 4 --n-group 2 --topk-group 1 --max-docs 200 \
  --seq-len 64 --batch-size 2 --json >/dev/null 2>&1 || fail "tiny pretraining failed"
start "DRAFTSCOPE_SESSIONS=$DATA/sessions $BIN tui --no-model"
wait_for "viewing traces only"
keys t
wait_for "no runs yet — fill in the form, L launches"
wait_for "cuda ("
keys Tab Down Enter
keys "$DATA/pre/model" Enter
wait_for "base model = $DATA/pre/model"
keys Down Down Enter C-u 12 Enter
wait_for "steps = 12"
keys Down Down Down Down Down Down Enter C-u 12 Enter
wait_for "eval every = 12"
keys Down Down Enter "--eval-limit 2 --max-docs 200 --seq-len 64 --batch-size 2" Enter
keys L
wait_for "started (pid"
wait_for "finished: 12 steps" 120
wait_for "12/12 steps (100%)"
wait_for "eval @12: arith"
keys r
wait_for "┌ Results · $DATA/sessions"
wait_for "@12 " 30
wait_for "Accuracy · arith"
keys Enter
wait_for "failing items: ↑↓ choose, Enter opens the trace"
keys Enter
wait_for "opened arith-"
keys q
check_clean_exit

# 5. First run: a fresh data directory and a plain `draftscope` (no model, to show the tour
#    needs none) start the tour on the recorded sessions; Enter walks the stops, Backspace goes
#    back, Esc leaves and writes the flag.
FRESH=$SMOKE_HOME/fresh
start "DRAFTSCOPE_NO_TOUR= DRAFTSCOPE_SESSIONS=$FRESH DRAFTSCOPE_ASSETS=/nonexistent $BIN"
wait_for "Tour 1/4 · a final digit committed wrong"
wait_for "the answer reads 4085"
wait_for "Tokens · block 2 · step 3/5"
wait_for "Enter next stop · Esc leave the tour"
keys Enter
wait_for "Tour 2/4 · an over-corrected short answer"
wait_for "rewrote Max → 4"
keys Enter
wait_for "Tour 3/4 · Q vs S on the same item"
wait_for "DIFF"
wait_for "S rewrote 8 → 7"
keys Enter
wait_for "Tour 4/4 · base vs adapters"
wait_for "(demo set)"
wait_for "Selected: "
keys BSpace
wait_for "Tour 3/4"
[ ! -e "$FRESH/tour-seen" ] || fail "tour-seen written before the tour was left"
keys Escape
wait_for "tour left"
expect_not "Tour 3/4"
[ -f "$FRESH/tour-seen" ] || fail "leaving the tour did not write $FRESH/tour-seen"
keys q
check_clean_exit

# 6. The same data directory again: straight to the workbench.
start "DRAFTSCOPE_NO_TOUR= DRAFTSCOPE_SESSIONS=$FRESH DRAFTSCOPE_ASSETS=/nonexistent $BIN"
wait_for "no model: embedded model not found"
wait_for "┌ Prompt"
expect_not "Tour 1/4"
keys q
check_clean_exit

# 7. `draftscope tour` shows it at any time; q quits from inside it.
start "DRAFTSCOPE_SESSIONS=$FRESH $BIN tour --no-model"
wait_for "Tour 1/4 · a final digit committed wrong"
keys q
check_clean_exit

echo "tui_smoke: OK"
