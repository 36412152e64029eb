//! The tour: a first start of the workbench (and `draftscope tour` at any time) opens the
//! recorded demo sessions at the steps that matter, with a short overlay saying what is on
//! screen and which key goes on. Four stops: the final digit committed wrong and the edit that
//! did not fix it; the over-corrected short answer; Q vs S on the same item, step-aligned; the
//! results pane with base vs adapters.
//!
//! Every stop is computed from its trace with the bench's own classifiers
//! ([`final_digit_error`], [`analyse_trace`]) and the benchmark item the manifest names, so
//! re-recorded sessions give a tour that still points at the right step and says the right
//! numbers.
//!
//! The four traces and their manifest are compiled into the binary: the tour needs no model,
//! no network and no `sessions/` folder in the working directory (an installed binary run
//! anywhere still has it), and cargo rebuilds when `demo-sessions` re-records them. The results
//! stop shows whatever the results pane shows (the demo set in `sessions/results` or your own
//! results) and says so plainly when there is none.
//!
//! The tour owns its state. While it is up, [`key`] takes Enter (next stop), Backspace
//! (back), Esc (leave) and q (quit) before the screens do; every other key works as usual, so
//! a stop can be explored. [`Tour::update`] moves between stops and returns [`Outcome`]s the
//! app applies: present these traces at this step, show the results pane, a status line;
//! leaving or finishing queues [`Effect::TourSeen`], and the event loop writes the flag
//! ([`mark_seen`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::demo::{DemoItem, DemoSpec, Manifest};
use super::doc::Doc;
use super::effect::Effect;
use super::results::ResultsState;
use super::screens::{Outcome, Screen};
use super::view::{self, StepRef};
use crate::bench::classify::{DigitError, analyse_trace, canvas_text, final_digit_error, trace_detok};
use crate::bench::results::row_label;
use crate::decode::Trace;

/// The flag file in the data directory: present once the tour was left or finished.
pub const SEEN_FILE: &str = "tour-seen";
/// Set (to anything but empty or `0`) to never start the tour on its own.
pub const NO_TOUR_ENV: &str = "DRAFTSCOPE_NO_TOUR";

const MANIFEST: &str = include_str!("../../sessions/manifest.json");
/// The recorded sessions the tour opens, by manifest name.
const SESSIONS: [(&str, &[u8]); 4] = [
    ("final-digit", include_bytes!("../../sessions/final-digit.json")),
    ("over-correction", include_bytes!("../../sessions/over-correction.json")),
    ("q-vs-s-q", include_bytes!("../../sessions/q-vs-s-q.json")),
    ("q-vs-s-s", include_bytes!("../../sessions/q-vs-s-s.json")),
];
const FINAL_DIGIT: usize = 0;
const OVER_CORRECTION: usize = 1;
const Q_SIDE: usize = 2;
const S_SIDE: usize = 3;

/// What a key does while the tour is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TourAction {
    Next,
    Back,
    Leave,
    Quit,
}

/// What a piece of overlay text is, for its colour: a token as the trace has it, the right
/// answer, the wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Token,
    Right,
    Wrong,
    Muted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    pub tone: Tone,
    pub text: String,
}

/// One line of overlay text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextLine(pub Vec<Seg>);

impl TextLine {
    fn push(mut self, tone: Tone, text: impl Into<String>) -> Self {
        self.0.push(Seg { tone, text: text.into() });
        self
    }
    fn p(self, text: impl Into<String>) -> Self {
        self.push(Tone::Plain, text)
    }
    fn tok(self, text: impl Into<String>) -> Self {
        self.push(Tone::Token, text)
    }
    fn right(self, text: impl Into<String>) -> Self {
        self.push(Tone::Right, text)
    }
    fn wrong(self, text: impl Into<String>) -> Self {
        self.push(Tone::Wrong, text)
    }
    fn muted(self, text: impl Into<String>) -> Self {
        self.push(Tone::Muted, text)
    }
    /// A token or answer, right or wrong.
    fn judged(self, text: impl Into<String>, right: bool) -> Self {
        self.push(if right { Tone::Right } else { Tone::Wrong }, text)
    }
    /// The plain text of the line.
    pub fn text(&self) -> String {
        self.0.iter().map(|s| s.text.as_str()).collect()
    }
}

/// Where a stop puts the workbench.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// A trace (`doc`, with `other` to diff against) at a step with a block offset selected.
    Trace { doc: usize, other: Option<usize>, at: StepRef, sel: usize },
    /// The results pane.
    Results,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub title: String,
    /// The overlay text (the results stop computes its own from the pane, [`Tour::lines`]).
    pub lines: Vec<TextLine>,
    pub view: View,
}

/// The tour's state: its stops, the documents they open, and where the flag goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tour {
    pub stop: usize,
    pub stops: Vec<Stop>,
    docs: Vec<Doc>,
    pub data_dir: PathBuf,
}

impl Tour {
    /// The tour over the embedded sessions.
    pub fn build(data_dir: &Path) -> Result<Tour> {
        let manifest: Manifest = serde_json::from_str(MANIFEST)
            .context("the embedded sessions/manifest.json is not a manifest")?;
        let spec = |name: &str| -> Result<&DemoSpec> {
            manifest
                .sessions
                .iter()
                .find(|s| s.name == name)
                .with_context(|| format!("sessions/manifest.json lists no session `{name}`"))
        };
        let item = |name: &str| -> Result<DemoItem> {
            spec(name)?.item.clone().with_context(|| {
                format!("sessions/manifest.json: session `{name}` names no benchmark item (\"item\")")
            })
        };
        let docs = SESSIONS
            .iter()
            .map(|(name, bytes)| {
                Trace::from_slice(bytes)
                    .map(|t| Doc::new(t, (*name).to_string(), None))
                    .with_context(|| format!("the embedded session {name} is not a trace"))
            })
            .collect::<Result<Vec<_>>>()?;
        let modes = [spec("q-vs-s-q")?.spec.mode, spec("q-vs-s-s")?.spec.mode];
        let stops = vec![
            final_digit_stop(&docs[FINAL_DIGIT].trace, FINAL_DIGIT, &item("final-digit")?),
            over_correction_stop(&docs[OVER_CORRECTION].trace, OVER_CORRECTION, &item("over-correction")?),
            q_vs_s_stop(&docs, &item("q-vs-s-q")?, modes),
            Stop { title: "base vs adapters".into(), lines: Vec::new(), view: View::Results },
        ];
        Ok(Tour { stop: 0, stops, docs, data_dir: data_dir.to_path_buf() })
    }

    pub fn current(&self) -> &Stop {
        &self.stops[self.stop]
    }

    pub fn is_last(&self) -> bool {
        self.stop + 1 == self.stops.len()
    }

    /// The overlay text of the current stop.
    pub fn lines(&self, results: &ResultsState) -> Vec<TextLine> {
        match self.current().view {
            View::Results => results_lines(results),
            View::Trace { .. } => self.current().lines.clone(),
        }
    }

    /// The key hints under the text.
    pub fn keys(&self) -> Vec<(&'static str, &'static str)> {
        let mut k = vec![("Enter", if self.is_last() { "finish" } else { "next stop" })];
        if self.stop > 0 {
            k.push(("Backspace", "back"));
        }
        k.push(("Esc", "leave the tour"));
        k
    }
}

/// Whether the flag says the tour was seen.
pub fn seen(data_dir: &Path) -> bool {
    data_dir.join(SEEN_FILE).exists()
}

/// Remembers the tour as seen (atomically, like every file we write).
pub fn mark_seen(data_dir: &Path) -> Result<()> {
    crate::session::atomic_write(
        &data_dir.join(SEEN_FILE),
        b"the first-run tour was shown; delete to see it again\n",
    )
}

/// Whether the workbench starts with the tour: always for `draftscope tour`; on a plain start
/// (no flags) until the flag is written, unless `--no-tour` or [`NO_TOUR_ENV`] says not to.
pub fn wanted(args: &super::TuiArgs, data_dir: &Path) -> bool {
    if args.tour {
        return true;
    }
    let env_off = std::env::var(NO_TOUR_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    args.plain && !args.no_tour && !env_off && !seen(data_dir)
}

/// The tour's key, while it is up: `busy` when something is being typed or the help is up
/// (then only ctrl-c / ctrl-q, which quit).
pub fn key(key: &KeyEvent, busy: bool) -> Option<TourAction> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
        return Some(TourAction::Quit);
    }
    if busy || ctrl {
        return None;
    }
    Some(match key.code {
        KeyCode::Enter => TourAction::Next,
        KeyCode::Backspace => TourAction::Back,
        KeyCode::Esc => TourAction::Leave,
        KeyCode::Char('q') => TourAction::Quit,
        _ => return None,
    })
}

impl Tour {
    /// Applies a tour key.
    pub fn update(&mut self, a: TourAction) -> Vec<Outcome> {
        let (stop, last) = (self.stop, self.is_last());
        match a {
            TourAction::Next if !last => self.enter(stop + 1),
            TourAction::Back if stop > 0 => self.enter(stop - 1),
            TourAction::Back => Vec::new(),
            TourAction::Next | TourAction::Leave => {
                let mut out = self.leave();
                out.push(Outcome::Info(
                    if last {
                        "that was the tour — `draftscope tour` shows it again; ? lists every key"
                    } else {
                        "tour left — `draftscope tour` shows it again; ? lists every key"
                    }
                    .into(),
                ));
                out
            }
            TourAction::Quit => {
                let mut out = self.leave();
                out.push(Outcome::Quit);
                out
            }
        }
    }

    fn leave(&self) -> Vec<Outcome> {
        vec![Outcome::EndTour, Outcome::Effect(Effect::TourSeen(self.data_dir.clone()))]
    }

    /// Goes to stop `i`: what puts the workbench where it wants it.
    pub fn enter(&mut self, i: usize) -> Vec<Outcome> {
        self.stop = i;
        let stop = self.stops[i].clone();
        let mut out = vec![Outcome::CloseOverlay];
        match stop.view {
            View::Trace { doc, other, at, sel } => out.push(Outcome::Present {
                doc: Box::new(self.docs[doc].clone()),
                other: other.map(|o| Box::new(self.docs[o].clone())),
                at,
                sel,
            }),
            View::Results => {
                out.push(Outcome::Show(Screen::Results));
                out.push(Outcome::SelectNotableResult);
            }
        }
        let n = self.stops.len();
        let next = if i + 1 == n { "Enter finishes" } else { "Enter: next stop" };
        out.push(Outcome::Info(format!("tour {}/{n}: {} — {next}, Esc leaves the tour", i + 1, stop.title)));
        out
    }
}

// ---- the stops -------------------------------------------------------------------------------

fn judge(item: &DemoItem) -> impl Fn(&str) -> bool + '_ {
    let scorer = item.scorer();
    move |text: &str| scorer.score(text, &item.answer, &item.aliases).correct
}

/// The final generated text and what the item's scorer reads from it.
fn final_answer(t: &Trace, item: &DemoItem) -> (String, String, bool) {
    let text = canvas_text(&t.output, t.params.mask_id, t.params.eos_id, &trace_detok(t));
    let score = item.scorer().score(&text, &item.answer, &item.aliases);
    let pred = score.predicted.filter(|p| !p.is_empty()).unwrap_or_else(|| "nothing".into());
    (text, pred, score.correct)
}

fn tok(t: &Trace, id: u32) -> String {
    view::token_label(t, id)
}

/// `(index into trace.blocks, index into its steps)` of a block number and step number.
fn step_ref(t: &Trace, block: usize, step: usize) -> Option<StepRef> {
    let bi = t.blocks.iter().position(|b| b.block == block)?;
    let si = t.blocks[bi].steps.iter().position(|s| s.step == step)?;
    Some(StepRef { block: bi, step: si })
}

fn trace_view(t: &Trace, doc: usize, at: StepRef, pos: usize) -> View {
    let start = t.blocks.get(at.block).map_or(0, |b| b.start);
    View::Trace { doc, other: None, at, sel: pos.saturating_sub(start) }
}

/// The last step of the trace, first generated position (for a trace with nothing to show).
fn end_view(t: &Trace, doc: usize) -> View {
    let block = t.blocks.len().saturating_sub(1);
    let step = t.blocks.last().map_or(0, |b| b.steps.len().saturating_sub(1));
    trace_view(t, doc, StepRef { block, step }, t.prompt_ids.len())
}

/// p of the change at `pos` in a step: the edit's p(new), or under T2M the refill's p.
fn change_p(t: &Trace, at: StepRef, pos: usize) -> Option<f32> {
    let s = &t.blocks[at.block].steps[at.step];
    s.edits
        .iter()
        .find(|e| e.pos == pos)
        .map(|e| e.p)
        .or_else(|| s.commits.iter().find(|c| c.pos == pos).map(|c| c.p))
}

fn digit_phrase(k: DigitError) -> &'static str {
    match k {
        DigitError::Substituted => "a substituted digit",
        DigitError::Extra => "an extra digit",
        DigitError::Dropped => "a dropped digit",
        DigitError::Marker => "a garbled answer marker",
        DigitError::Other => "a different number",
    }
}

/// Stop 1: where the wrong final digit came from — the edit that wrote it last (and the edit
/// that had fixed it, if any), or the commit that put it there when no edit was involved.
fn final_digit_stop(t: &Trace, doc: usize, item: &DemoItem) -> Stop {
    let title = "a final digit committed wrong".to_string();
    let (text, pred, right) = final_answer(t, item);
    let scorer = item.scorer();
    let Some(kind) = final_digit_error(&scorer, &text, &item.answer) else {
        let line = TextLine::default()
            .p("This session has no final-digit error: it answers ")
            .judged(pred, right)
            .p(" (gold ")
            .right(&item.answer)
            .p(").");
        return Stop { title, lines: vec![line], view: end_view(t, doc) };
    };
    let mut lines = vec![
        TextLine::default()
            .p("The worked steps reach ")
            .right(&item.answer)
            .p(" but the answer reads ")
            .wrong(&pred)
            .p(format!(": {} ({}).", digit_phrase(kind), item.id)),
    ];
    let detok = trace_detok(t);
    let findings = analyse_trace(t, &detok, &judge(item));
    let et = t.params.editing_threshold;
    let view = if let Some(e) = findings.harmful.last()
        && let Some(at) = step_ref(t, e.block, e.step)
    {
        let p = change_p(t, at, e.pos).unwrap_or(f32::NAN);
        let ended = at.step + 1 == t.blocks[at.block].steps.len();
        lines.push(
            TextLine::default()
                .p(format!("Block {} step {} (selected): the editor rewrote ", e.block, e.step))
                // A harmful edit: what it replaced was right.
                .right(tok(t, e.from))
                .p(" → ")
                .wrong(tok(t, e.to))
                .p(format!(
                    " at p={p:.2} > {et:.2} editing threshold{}",
                    if ended { "; the block ended on it." } else { "." }
                )),
        );
        let flips =
            t.blocks.iter().flat_map(|b| &b.steps).flat_map(|s| &s.edits).filter(|x| x.pos == e.pos).count();
        let fix =
            findings.helpful.iter().rev().find(|h| h.pos == e.pos && (h.block, h.step) < (e.block, e.step));
        lines.push(match fix {
            Some(f) => {
                let fp = step_ref(t, f.block, f.step).and_then(|r| change_p(t, r, f.pos)).unwrap_or(f32::NAN);
                TextLine::default()
                    .p(format!("The fix did not hold: step {} rewrote ", f.step))
                    .tok(tok(t, f.from))
                    .p(" → ")
                    .right(tok(t, f.to))
                    .p(format!(
                        " at p={fp:.2}, {} undid it; {flips} edits there in all (← → step, e walks them).",
                        if (f.block, f.step + 1) == (e.block, e.step) {
                            "the next step".to_string()
                        } else {
                            format!("step {}", e.step)
                        }
                    ))
            }
            None => TextLine::default().p(format!(
                "No edit fixed it; {flips} {} there in all (← → step, e walks them).",
                if flips == 1 { "edit" } else { "edits" }
            )),
        });
        trace_view(t, doc, at, e.pos)
    } else {
        match committed_wrong(t, &text, item) {
            Some((pos, at, id, p)) => {
                let s = &t.blocks[at.block].steps[at.step];
                let edits = t
                    .blocks
                    .iter()
                    .flat_map(|b| &b.steps)
                    .flat_map(|s| &s.edits)
                    .filter(|x| x.pos == pos)
                    .count();
                lines.push(
                    TextLine::default()
                        .p(format!(
                            "Block {} step {} (selected) committed ",
                            t.blocks[at.block].block, s.step
                        ))
                        .wrong(tok(t, id))
                        .p(format!(" at p={p:.2} (threshold {:.2}).", t.params.threshold)),
                );
                lines.push(TextLine::default().p(if edits == 0 {
                    "No edit touched it afterwards (← → step, ↑↓ pick a position).".to_string()
                } else {
                    format!("{edits} edits touched it; none fixed it (e walks the edits).")
                }));
                trace_view(t, doc, at, pos)
            }
            None => end_view(t, doc),
        }
    };
    Stop { title, lines, view }
}

/// The answer position whose digit differs from the gold (else the answer's last token), the
/// step that last committed it, its token and p.
fn committed_wrong(t: &Trace, text: &str, item: &DemoItem) -> Option<(usize, StepRef, u32, f32)> {
    let ex = item.scorer().extract(text)?;
    let p0 = t.prompt_ids.len();
    // Byte range of each generated token in `text` (which is cut at the first EOS).
    let mut at = 0;
    let mut spans = Vec::new();
    for (i, &id) in t.output.iter().enumerate() {
        if id == t.params.eos_id {
            break;
        }
        let len = t.text_of(id).len();
        spans.push((p0 + i, at, at + len));
        at += len;
    }
    let differs = ex.value.chars().zip(item.answer.chars()).position(|(a, b)| a != b);
    let byte = ex.start + differs.unwrap_or(ex.value.len().saturating_sub(1)).min(ex.end - ex.start - 1);
    let pos = spans.iter().find(|&&(_, a, b)| a <= byte && byte < b)?.0;
    let mut found = None;
    for (bi, b) in t.blocks.iter().enumerate() {
        for (si, s) in b.steps.iter().enumerate() {
            if let Some(c) = s.commits.iter().find(|c| c.pos == pos) {
                found = Some((pos, StepRef { block: bi, step: si }, c.token, c.p));
            }
        }
    }
    found
}

/// Stop 2: the edit that turned a right short answer wrong.
fn over_correction_stop(t: &Trace, doc: usize, item: &DemoItem) -> Stop {
    let title = "an over-corrected short answer".to_string();
    let (_, pred, right) = final_answer(t, item);
    let detok = trace_detok(t);
    let f = analyse_trace(t, &detok, &judge(item));
    let (Some(e), Some((rb, rs))) = (f.harmful.last().filter(|_| f.over_corrected), f.first_right) else {
        let line = TextLine::default()
            .p("This session is not over-corrected: it answers ")
            .judged(pred, right)
            .p(" (gold ")
            .right(&item.answer)
            .p(").");
        return Stop { title, lines: vec![line], view: end_view(t, doc) };
    };
    let at = step_ref(t, e.block, e.step).unwrap_or_default();
    let p = change_p(t, at, e.pos).unwrap_or(f32::NAN);
    let lines = vec![
        TextLine::default()
            .p(format!(
                "A short factual answer ({}): right after block {rb} step {rs}, wrong at the end — it reads ",
                item.id
            ))
            .wrong(&pred)
            .p(", gold ")
            .right(&item.answer)
            .p("."),
        TextLine::default()
            .p(format!("Block {} step {} (selected): the editor rewrote ", e.block, e.step))
            .right(tok(t, e.from))
            .p(" → ")
            .wrong(tok(t, e.to))
            .p(format!(" at p={p:.2} > {:.2} editing threshold.", t.params.editing_threshold)),
        TextLine::default().muted(format!(
            "The bench counts this item as over-corrected: {} harmful edit(s), {} helpful, {} churn.",
            f.harmful.len(),
            f.helpful.len(),
            f.churn.len()
        )),
    ];
    Stop { title, lines, view: trace_view(t, doc, at, e.pos) }
}

/// The last change (commit or edit) at `pos`: where, the token before (edits), the token, p.
fn last_change(t: &Trace, pos: usize) -> Option<(StepRef, Option<u32>, u32, f32)> {
    let mut last = None;
    for (bi, b) in t.blocks.iter().enumerate() {
        for (si, s) in b.steps.iter().enumerate() {
            let at = StepRef { block: bi, step: si };
            if let Some(c) = s.commits.iter().find(|c| c.pos == pos) {
                last = Some((at, None, c.token, c.p));
            }
            if let Some(e) = s.edits.iter().find(|e| e.pos == pos) {
                last = Some((at, Some(e.from), e.to, e.p));
            }
        }
    }
    last
}

/// Stop 3: Q vs S on the same item, step-aligned, at the first position whose final token
/// differs; the side that changed it last is on top (its inspector explains the change).
fn q_vs_s_stop(docs: &[Doc], item: &DemoItem, modes: [crate::decode::Mode; 2]) -> Stop {
    let title = "Q vs S on the same item".to_string();
    let (q, s) = (&docs[Q_SIDE].trace, &docs[S_SIDE].trace);
    let name = |i: usize| modes[i].label().to_uppercase();
    let th = |t: &Trace| format!("{:.2} / {:.2}", t.params.threshold, t.params.editing_threshold);
    let mut lines = vec![
        TextLine::default()
            .p("The same item in ")
            .tok(name(0))
            .p(format!(" (threshold / editing {}) and ", th(q)))
            .tok(name(1))
            .p(format!(" ({}), step-aligned; red cells differ.", th(s))),
    ];
    let (pq, ps) = (q.prompt_ids.len(), s.prompt_ids.len());
    let first = (0..q.final_canvas.len().saturating_sub(pq).max(s.final_canvas.len().saturating_sub(ps)))
        .find(|&i| q.final_canvas.get(pq + i) != s.final_canvas.get(ps + i));
    let view = match first.and_then(|i| Some((last_change(q, pq + i)?, last_change(s, ps + i)?, i))) {
        Some((cq, cs, i)) => {
            // The side whose last change there came later is the one that diverged.
            let s_later = (cs.0.block, cs.0.step) >= (cq.0.block, cq.0.step);
            let (top, other, t, (at, from, to, p), who) =
                if s_later { (S_SIDE, Q_SIDE, s, cs, name(1)) } else { (Q_SIDE, S_SIDE, q, cq, name(0)) };
            let b = &t.blocks[at.block];
            let l = TextLine::default()
                .p(format!("They part at block {} step {}: {who} ", b.block, b.steps[at.step].step));
            let l = match from {
                Some(f) => l.p("rewrote ").tok(tok(t, f)).p(" → ").tok(tok(t, to)),
                None => l.p("committed ").tok(tok(t, to)),
            };
            lines.push(l.p(format!(" at p={p:.2} (selected).")));
            let pos = t.prompt_ids.len() + i;
            View::Trace { doc: top, other: Some(other), at, sel: pos - b.start }
        }
        None => {
            lines.push(TextLine::default().p("Both sides end with the same tokens."));
            View::Trace {
                doc: S_SIDE,
                other: Some(Q_SIDE),
                at: StepRef::default(),
                sel: ps.saturating_sub(s.blocks.first().map_or(0, |b| b.start)),
            }
        }
    };
    let (_, aq, rq) = final_answer(q, item);
    let (_, as_, rs) = final_answer(s, item);
    lines.push(
        TextLine::default()
            .tok(name(0))
            .p(" answers ")
            .judged(aq, rq)
            .p(", ")
            .tok(name(1))
            .p(" answers ")
            .judged(as_, rs)
            .p(" (gold ")
            .right(&item.answer)
            .p(format!(", {}). x swaps the sides, d leaves the diff.", item.id)),
    );
    Stop { title, lines, view }
}

/// Stop 4: the selected row of the results pane against its base.
pub fn results_lines(rs: &ResultsState) -> Vec<TextLine> {
    let intro = TextLine::default()
        .p("Base vs adapters on the same items: one row per suite × model, the base in bold, each adapter by checkpoint.");
    let Some(r) = rs.selected_row() else {
        let root = rs.root().display().to_string();
        let msg = match rs.loaded() {
            None => format!("Reading the results in {root}…"),
            Some(Err(e)) => format!("The results cannot be read: {e}"),
            Some(Ok(_)) => format!(
                "There are no results here ({root}): the demo set lives in sessions/results of the source folder (run draftscope from there); b runs a benchmark of your own."
            ),
        };
        return vec![intro, TextLine::default().wrong(msg)];
    };
    let base = rs.rows.iter().find(|b| {
        b.adapter.is_none()
            && b.suite == r.suite
            && b.model == r.model
            && b.mode == r.mode
            && b.attention == r.attention
    });
    let mut sel = TextLine::default().p(format!("Selected: {} on {}: accuracy ", row_label(r), r.suite));
    sel = match (r.delta_vs_base, base) {
        (Some(d), Some(b)) => sel
            .push(
                if d > 0.0005 {
                    Tone::Right
                } else if d < -0.0005 {
                    Tone::Wrong
                } else {
                    Tone::Plain
                },
                format!("{:.3}", r.accuracy),
            )
            .p(format!(" vs base {:.3} ({:+.1} points", b.accuracy, d * 100.0))
            .p(if r.p_holm.is_some_and(|p| p < 0.05) {
                ", * significant after Holm)"
            } else {
                ", not significant)"
            })
            .p(format!("; edits/100 {:.1} vs {:.1}.", r.edit_intensity, b.edit_intensity)),
        _ => sel.p(format!("{:.3}; ↑↓ pick an adapter row to compare it with this base.", r.accuracy)),
    };
    vec![
        intro,
        sel,
        TextLine::default().muted(
            "Green / red: better / worse than the base. Tab lists the row's failing items; Enter on one opens its trace.",
        ),
    ]
}
