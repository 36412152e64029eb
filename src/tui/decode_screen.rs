//! The decode view: its state ([`DecodeState`] — the traces on screen, the cursor, the prompt,
//! the settings, playback, search), its key map ([`key`], [`editing_key`]) and its actions
//! ([`DecodeAction`]). Like the training and results screens it updates itself and returns
//! [`Outcome`]s (status lines, effects such as a decode run, the input line to open) for the
//! app to apply; what it reads from elsewhere comes in a [`DecodeCtx`]. It names no app.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Position, Rect};

use super::doc::Doc;
use super::effect::Effect;
use super::focus::{FOCUS_ORDER, Focus, InputKind};
use super::line_edit::{Edit, LineEdit};
use super::screens::Outcome;
use super::settings::{ROWS, Settings};
use super::view::{self, StepRef, TraceIndex};
use super::worker::{ModelInfo, RunRequest};
use crate::decode::Trace;

/// Playback speeds, steps per second.
pub const SPEEDS: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

/// What the decode view's keys (and mouse) ask of it.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeAction {
    NextStep,
    PrevStep,
    NextBlock,
    PrevBlock,
    NextEdit,
    PrevEdit,
    NextFallback,
    /// Jump to where a failed arithmetic answer first went wrong (`draftscope origin`).
    GotoOrigin,
    TogglePlay,
    Faster,
    Slower,
    SelectPrev,
    SelectNext,
    /// Select a block position (offset in the block).
    Select(usize),
    /// Jump to a step.
    Goto(StepRef),
    Run,
    Cancel,
    FocusNext,
    FocusPrev,
    Focus(Focus),
    StartSearch,
    SearchNext,
    StartSave,
    StartOpen,
    StartAdapter,
    ToggleDiff,
    SwapDiff,
    Click {
        x: u16,
        y: u16,
    },
    // Settings panel.
    SettingPrev,
    SettingNext,
    SettingAdjust(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Loading(String),
    Ready(ModelInfo),
    /// No model could be loaded; traces and sessions still open.
    Missing(String),
}

/// Screen areas the last frame drew, for mouse clicks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HitMap {
    pub tokens: Vec<(Rect, usize)>,
    pub steps: Vec<(Rect, StepRef)>,
    pub panels: Vec<(Rect, Focus)>,
}

/// What the decode view reads from outside its own state.
#[derive(Debug, Clone, Copy)]
pub struct DecodeCtx<'a> {
    pub model: &'a ModelState,
    /// Where the last frame drew what (for clicks).
    pub hits: &'a HitMap,
    /// Whether the tour is up (Enter is then the tour's).
    pub touring: bool,
    /// Where `s` proposes to save.
    pub save_dir: &'a Path,
}

/// The decode view's state.
pub struct DecodeState {
    pub doc: Option<Doc>,
    /// The trace before the current one (what `d` diffs against).
    pub other: Option<Doc>,
    pub diff: bool,
    /// Flat step index into `doc.index`.
    pub flat: usize,
    /// Selected position (offset in the block).
    pub sel: usize,
    /// Follow a live decode's newest step.
    pub follow: bool,
    pub focus: Focus,
    pub prompt: LineEdit,
    /// Whether the prompt was set by the user (a loaded model then keeps it).
    pub prompt_set: bool,
    pub settings: Settings,
    pub setting_row: usize,
    pub playing: bool,
    pub speed: usize,
    pub search: Option<String>,
    /// The run whose events we want.
    pub pending_run: Option<u64>,
    next_run: u64,
    /// Outcomes of the action being handled (taken when it returns).
    out: Vec<Outcome>,
}

impl DecodeState {
    pub fn new(settings: Settings) -> Self {
        Self {
            doc: None,
            other: None,
            diff: false,
            flat: 0,
            sel: 0,
            follow: true,
            focus: Focus::Tokens,
            prompt: LineEdit::default(),
            prompt_set: false,
            settings,
            setting_row: 0,
            playing: false,
            speed: 2,
            search: None,
            pending_run: None,
            next_run: 1,
            out: Vec::new(),
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.out.push(Outcome::Info(text.into()));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.out.push(Outcome::Error(text.into()));
    }

    fn take(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.out)
    }

    pub fn set_prompt(&mut self, text: &str) {
        self.prompt = LineEdit::new(text);
        self.prompt_set = true;
    }

    /// Takes the decode spec (and an id prompt) of an opened trace, so Enter re-runs it
    /// exactly and a changed setting is a what-if against it.
    pub fn adopt_settings(&mut self, t: &Trace) {
        self.settings.spec = t.spec();
        if t.prompt.is_none() && !t.prompt_ids.is_empty() {
            let ids: Vec<String> = t.prompt_ids.iter().map(u32::to_string).collect();
            self.prompt = LineEdit::new(&ids.join(","));
            self.prompt_set = true;
        }
    }

    /// Shows a trace (it becomes the current one; the previous one is kept for diffs).
    pub fn open_doc(&mut self, doc: Doc) -> Vec<Outcome> {
        self.adopt_settings(&doc.trace);
        let summary = doc.trace.summary();
        let label = doc.label.clone();
        if let Some(old) = self.doc.take() {
            self.other = Some(old);
        }
        self.doc = Some(doc);
        self.flat = 0;
        self.sel = self.first_generated_offset();
        self.follow = false;
        self.playing = false;
        self.info(format!("opened {label}: {summary}"));
        self.take()
    }

    pub fn is_running(&self) -> bool {
        self.doc.as_ref().is_some_and(|d| d.live.is_some()) || self.pending_run.is_some()
    }

    /// The step under the cursor.
    pub fn cur(&self) -> Option<StepRef> {
        self.doc.as_ref().and_then(|d| d.index.steps.get(self.flat).copied())
    }

    pub fn block_len(&self) -> usize {
        let (Some(d), Some(r)) = (&self.doc, self.cur()) else { return 0 };
        d.trace.blocks[r.block].steps[r.step].after.len()
    }

    /// The first non-prompt offset of the current block (where selection starts).
    fn first_generated_offset(&self) -> usize {
        let (Some(d), Some(r)) = (&self.doc, self.cur()) else { return 0 };
        let b = &d.trace.blocks[r.block];
        d.trace.prompt_ids.len().saturating_sub(b.start).min(self.block_len().saturating_sub(1))
    }

    /// Moves the cursor to a flat step index (clamped), keeping the selection in the block.
    pub fn goto_flat(&mut self, flat: usize) {
        let Some(d) = &self.doc else { return };
        if d.index.is_empty() {
            return;
        }
        let last = d.index.len() - 1;
        let old_block = self.cur().map(|r| r.block);
        self.flat = flat.min(last);
        self.follow = self.flat == last && d.live.is_some();
        if self.cur().map(|r| r.block) != old_block {
            let min = self.first_generated_offset();
            self.sel = self.sel.max(min);
        }
        self.sel = self.sel.min(self.block_len().saturating_sub(1));
    }

    fn step_by(&mut self, delta: i64) {
        let Some(d) = &self.doc else { return };
        if d.index.is_empty() {
            return;
        }
        let f = (self.flat as i64 + delta).clamp(0, d.index.len() as i64 - 1) as usize;
        self.goto_flat(f);
    }

    fn jump_block(&mut self, delta: i64) {
        let (Some(d), Some(r)) = (&self.doc, self.cur()) else { return };
        let nb = (r.block as i64 + delta).clamp(0, d.trace.blocks.len() as i64 - 1) as usize;
        if nb == r.block && delta > 0 {
            return;
        }
        let f = d.index.block_first[nb];
        self.goto_flat(f);
    }

    /// Goes to the step that wrote the first wrong token of a failed arithmetic answer, with
    /// that token selected, and says where it is and what wrote it.
    fn goto_origin(&mut self) {
        use crate::bench::origin::{Verdict, judge};
        let Some(d) = &self.doc else { return };
        if d.live.is_some() {
            return self.info("the decode is still running: w reads a finished answer");
        }
        let o = match judge(&d.trace) {
            Verdict::NotArithmetic => {
                return self.info("not a world arithmetic problem: w reads arithmetic answers");
            }
            Verdict::Right => return self.info("the answer is right: nothing went wrong"),
            Verdict::Failed(o) => o,
        };
        let (Some(pos), Some((block, step))) = (o.pos, o.step) else {
            return self.info(format!("the output ends early, in the {}", o.place.label()));
        };
        let found =
            d.index.steps.iter().position(|r| d.trace.blocks[r.block].block == block && r.step == step);
        let Some(f) = found else { return };
        let start = d.trace.blocks[d.index.steps[f].block].start;
        let over = if o.destroyed { ", over a right token" } else { "" };
        let text = format!("first wrong token: {}, written by {}{over}", o.place.label(), o.writer.label());
        self.goto_flat(f);
        self.sel = pos - start;
        self.info(text);
    }

    /// Jumps to the next (or previous) step in `list` and selects the first position it changed.
    fn jump_list(&mut self, which: JumpList, forward: bool) {
        let Some(d) = &self.doc else { return };
        let list = match which {
            JumpList::Edit => &d.index.edit_steps,
            JumpList::Fallback => &d.index.fallback_steps,
        };
        let name = match which {
            // Under T2M the committed tokens that change are remasks.
            JumpList::Edit if d.trace.params.edit_policy == crate::decode::EditPolicy::T2m => "remask",
            JumpList::Edit => "edit",
            JumpList::Fallback => "fallback commit",
        };
        match TraceIndex::next_in(list, self.flat, forward) {
            Some(f) => {
                let r = d.index.steps[f];
                let b = &d.trace.blocks[r.block];
                let s = &b.steps[r.step];
                let pos = match which {
                    JumpList::Edit => {
                        let first_remask = s.remasks.first().map(|r| r.pos);
                        s.edits.first().map(|e| e.pos).into_iter().chain(first_remask).min()
                    }
                    JumpList::Fallback => s
                        .commits
                        .iter()
                        .find(|c| c.kind == crate::decode::CommitKind::Fallback)
                        .map(|c| c.pos),
                };
                let n = list.len();
                let k = list.partition_point(|&x| x < f) + 1;
                let start = b.start;
                self.goto_flat(f);
                if let Some(p) = pos {
                    self.sel = p - start;
                }
                self.info(format!("{name} {k} of {n}"));
            }
            None => self.info(format!("no {} {name}", if forward { "later" } else { "earlier" })),
        }
    }

    /// Applies an action of the decode view; returns what the app should do.
    pub fn update(&mut self, a: DecodeAction, ctx: &DecodeCtx) -> Vec<Outcome> {
        self.act(a, ctx);
        self.take()
    }

    fn act(&mut self, a: DecodeAction, ctx: &DecodeCtx) {
        match a {
            DecodeAction::NextStep => self.step_by(1),
            DecodeAction::PrevStep => self.step_by(-1),
            DecodeAction::NextBlock => self.jump_block(1),
            DecodeAction::PrevBlock => self.jump_block(-1),
            DecodeAction::NextEdit => self.jump_list(JumpList::Edit, true),
            DecodeAction::PrevEdit => self.jump_list(JumpList::Edit, false),
            DecodeAction::NextFallback => self.jump_list(JumpList::Fallback, true),
            DecodeAction::GotoOrigin => self.goto_origin(),
            DecodeAction::TogglePlay => {
                self.playing = !self.playing && self.doc.is_some();
                if self.playing {
                    let at_end = self.doc.as_ref().is_some_and(|d| self.flat + 1 >= d.index.len());
                    if at_end && !self.is_running() {
                        self.goto_flat(0);
                    }
                    self.info(format!("playing at {} steps/s", SPEEDS[self.speed]));
                }
            }
            DecodeAction::Faster => {
                self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
                self.info(format!("speed {} steps/s", SPEEDS[self.speed]));
            }
            DecodeAction::Slower => {
                self.speed = self.speed.saturating_sub(1);
                self.info(format!("speed {} steps/s", SPEEDS[self.speed]));
            }
            DecodeAction::SelectPrev => self.sel = self.sel.saturating_sub(1),
            DecodeAction::SelectNext => self.sel = (self.sel + 1).min(self.block_len().saturating_sub(1)),
            DecodeAction::Select(o) => self.sel = o.min(self.block_len().saturating_sub(1)),
            DecodeAction::Goto(r) => {
                if let Some(d) = &self.doc {
                    let f = d.index.flat_of(r);
                    self.goto_flat(f);
                }
            }
            DecodeAction::Run => self.run(ctx.model),
            DecodeAction::Cancel => self.cancel(),
            DecodeAction::FocusNext | DecodeAction::FocusPrev => {
                let i = FOCUS_ORDER.iter().position(|&f| f == self.focus).unwrap_or(0);
                let n = FOCUS_ORDER.len();
                let j = if a == DecodeAction::FocusNext { (i + 1) % n } else { (i + n - 1) % n };
                self.focus = FOCUS_ORDER[j];
            }
            DecodeAction::Focus(f) => self.focus = f,
            DecodeAction::StartSearch => self.out.push(Outcome::StartInput(InputKind::Search, String::new())),
            DecodeAction::SearchNext => match self.search.clone() {
                Some(q) => self.find_next(&q),
                None => self.out.push(Outcome::StartInput(InputKind::Search, String::new())),
            },
            DecodeAction::StartSave => {
                if self.doc.is_none() {
                    self.error("nothing to save: run a prompt or open a trace first");
                } else {
                    let path = self.default_save_path(ctx.save_dir);
                    self.out.push(Outcome::StartInput(InputKind::Save, path));
                }
            }
            DecodeAction::StartOpen => self.out.push(Outcome::StartInput(InputKind::Open, String::new())),
            DecodeAction::StartAdapter => {
                let cur = self.settings.adapter.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                self.out.push(Outcome::StartInput(InputKind::Adapter, cur));
            }
            DecodeAction::ToggleDiff => {
                if self.other.is_none() {
                    self.error(
                        "nothing to diff against: run again with other settings, or open a second trace",
                    );
                } else {
                    self.diff = !self.diff;
                    if self.diff {
                        self.report_diff();
                    }
                }
            }
            DecodeAction::SwapDiff => {
                if self.other.is_some() && self.doc.as_ref().is_none_or(|d| d.live.is_none()) {
                    std::mem::swap(&mut self.doc, &mut self.other);
                    let f = self.flat;
                    self.goto_flat(f);
                }
            }
            DecodeAction::Click { x, y } => self.click(x, y, ctx),
            DecodeAction::SettingPrev => self.setting_row = self.setting_row.saturating_sub(1),
            DecodeAction::SettingNext => self.setting_row = (self.setting_row + 1).min(ROWS.len() - 1),
            DecodeAction::SettingAdjust(d) => {
                let row = ROWS[self.setting_row];
                self.settings.adjust(row, d);
                self.info(format!(
                    "{} = {} ({}Enter runs with these settings)",
                    Settings::label(row),
                    self.settings.value(row),
                    if ctx.touring { "after the tour, " } else { "" }
                ));
            }
        }
    }

    fn cancel(&mut self) {
        if self.is_running() {
            self.out.push(Outcome::Effect(Effect::Cancel));
            self.info("cancelling…");
        }
        self.playing = false;
    }

    /// Esc on the decode view: cancels a running decode, else leaves the prompt box or the
    /// settings, else ends the diff.
    pub fn escape(&mut self) -> Vec<Outcome> {
        if self.is_running() {
            self.cancel();
        } else if self.focus == Focus::Prompt || self.focus == Focus::Settings {
            self.focus = Focus::Tokens;
        } else if self.diff {
            self.diff = false;
        }
        self.take()
    }

    /// A line-editing key: edits the prompt when the prompt box has the focus.
    pub fn edit(&mut self, e: Edit) {
        if self.focus == Focus::Prompt {
            self.prompt.apply(e);
            self.prompt_set = true;
        }
    }

    /// A playback tick: the next step while playing.
    pub fn tick(&mut self) -> Vec<Outcome> {
        if !self.playing {
            return Vec::new();
        }
        let Some(d) = &self.doc else {
            self.playing = false;
            return Vec::new();
        };
        if self.flat + 1 < d.index.len() {
            let f = self.flat + 1;
            self.goto_flat(f);
        } else if d.live.is_none() {
            self.playing = false;
            self.info("end of the trace");
        }
        self.take()
    }

    fn click(&mut self, x: u16, y: u16, ctx: &DecodeCtx) {
        let p = Position { x, y };
        if let Some(&(_, o)) = ctx.hits.tokens.iter().find(|(r, _)| r.contains(p)) {
            self.sel = o;
            self.focus = Focus::Tokens;
            return;
        }
        if let Some(&(_, r)) = ctx.hits.steps.iter().find(|(rc, _)| rc.contains(p)) {
            self.focus = Focus::Timeline;
            self.act(DecodeAction::Goto(r), ctx);
            return;
        }
        if let Some(&(_, f)) = ctx.hits.panels.iter().find(|(r, _)| r.contains(p)) {
            self.focus = f;
        }
    }

    fn run(&mut self, model: &ModelState) {
        let info = match model {
            ModelState::Ready(i) => i.clone(),
            ModelState::Loading(m) => {
                self.error(format!("still loading {m}…"));
                return;
            }
            ModelState::Missing(e) => {
                self.error(format!("no model to run: {e}"));
                return;
            }
        };
        let text = self.prompt.text.trim().to_string();
        if text.is_empty() {
            self.error("the prompt is empty (Tab to the prompt box and type one)");
            return;
        }
        if !info.has_tokenizer && crate::model::tokenizer::parse_ids(&text, "prompt").is_err() {
            self.error("this model has no tokenizer: give the prompt as token ids, e.g. 409,191,80,91,337");
            return;
        }
        if self.is_running() {
            self.out.push(Outcome::Effect(Effect::Cancel));
        }
        let run_id = self.next_run;
        self.next_run += 1;
        self.pending_run = Some(run_id);
        self.playing = false;
        self.out.push(Outcome::Effect(Effect::Run(Box::new(RunRequest {
            run_id,
            prompt: text,
            settings: self.settings.clone(),
        }))));
        self.info(format!("run #{run_id} ({}) starting…", self.settings.short()));
    }

    fn default_save_path(&self, save_dir: &Path) -> String {
        if let Some(p) = self.doc.as_ref().and_then(|d| d.path.as_ref()) {
            return p.display().to_string();
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        save_dir.join(format!("trace-{secs}.json")).display().to_string()
    }

    /// A submitted input line of the decode view (open, save, search, adapter).
    pub fn submit_input(&mut self, kind: InputKind, text: String) -> Vec<Outcome> {
        match kind {
            InputKind::Open => {
                if text.is_empty() {
                    self.error("no file given");
                } else {
                    self.info(format!("opening {text}…"));
                    self.out.push(Outcome::Effect(Effect::Open(PathBuf::from(text))));
                }
            }
            InputKind::Save => {
                if text.is_empty() {
                    self.error("no file given");
                } else {
                    self.out.push(Outcome::Effect(Effect::Save(PathBuf::from(text))));
                }
            }
            InputKind::Search => {
                if !text.is_empty() {
                    self.search = Some(text.clone());
                    self.find_next(&text);
                }
            }
            InputKind::Adapter => {
                if text.is_empty() {
                    self.settings.adapter = None;
                    self.settings.adapter_on = false;
                    self.info("adapter cleared");
                } else {
                    self.settings.adapter = Some(PathBuf::from(&text));
                    self.settings.adapter_on = true;
                    self.info(format!("adapter {text} will be applied on the next run"));
                }
            }
        }
        self.take()
    }

    /// Finds the next step (after the cursor, wrapping) that commits or edits in a token
    /// matching `q` (case-insensitive text, or the id), and selects it.
    pub fn search_next(&mut self, q: &str) -> Vec<Outcome> {
        self.find_next(q);
        self.take()
    }

    fn find_next(&mut self, q: &str) {
        let Some(d) = &self.doc else {
            self.error("nothing to search: no trace");
            return;
        };
        let n = d.index.len();
        if n == 0 {
            return;
        }
        let ql = q.to_lowercase();
        let id: Option<u32> = q.trim_matches(|c| c == '<' || c == '>').parse().ok();
        let matches = |t: u32| {
            id == Some(t) || view::token_label(&d.trace, t).to_lowercase().contains(&ql) || {
                let raw = d.trace.text_of(t).to_lowercase();
                raw.trim().contains(ql.trim()) && !ql.trim().is_empty()
            }
        };
        for k in 1..=n {
            let f = (self.flat + k) % n;
            let r = d.index.steps[f];
            let b = &d.trace.blocks[r.block];
            let s = &b.steps[r.step];
            let hit = s
                .commits
                .iter()
                .map(|c| (c.pos, c.token))
                .chain(s.edits.iter().map(|e| (e.pos, e.to)))
                .filter(|&(_, t)| matches(t))
                .map(|(p, _)| p)
                .min();
            if let Some(pos) = hit {
                let off = pos - b.start;
                let bno = b.block;
                let step = r.step;
                self.goto_flat(f);
                self.sel = off;
                self.info(format!("“{q}”: block {bno} step {step} (n: next match)"));
                return;
            }
        }
        self.error(format!("“{q}” is never committed or edited in"));
    }

    fn report_diff(&mut self) {
        let (Some(a), Some(b)) = (&self.doc, &self.other) else { return };
        let n = view::final_differences(&a.trace, &b.trace);
        let first = view::first_difference(&a.trace, &a.index, &b.trace);
        let msg = match first {
            Some(f) => {
                let r = a.index.steps[f];
                format!(
                    "diff vs {}: {n} final positions differ; first difference at block {} step {}",
                    b.label, a.trace.blocks[r.block].block, r.step
                )
            }
            None => format!("diff vs {}: no step differs; {n} final positions differ", b.label),
        };
        self.info(msg);
    }

    /// The summary line for the status bar.
    pub fn summary(&self) -> String {
        let Some(d) = &self.doc else {
            return "no trace — Enter runs the prompt, o opens a trace".into();
        };
        let t = &d.trace;
        let toks = view::generated_so_far(t);
        let fw = t.forward_calls.max(d.index.len());
        let tpf = if fw == 0 { 0.0 } else { toks as f64 / fw as f64 };
        let per100 = |n: usize| if toks == 0 { 0.0 } else { 100.0 * n as f64 / toks as f64 };
        let remasks = if d.index.remasks > 0 || t.params.edit_policy == crate::decode::EditPolicy::T2m {
            format!(" · {} remasks ({:.1}/100 tok)", d.index.remasks, per100(d.index.remasks))
        } else {
            String::new()
        };
        format!(
            "{toks} tokens · {fw} forwards · {tpf:.2} TPF · {} edits ({:.1}/100 tok){remasks} · {} fallbacks{}",
            d.index.edits,
            per100(d.index.edits),
            d.index.fallbacks,
            if d.live.is_some() { " · decoding…" } else { "" }
        )
    }
}

enum JumpList {
    Edit,
    Fallback,
}

/// The decode view's navigation keys while text is being typed (the prompt box or the input
/// line): ↑↓ move (the selection, or the input line's pick), Tab leaves the prompt box.
pub fn editing_key(key: &KeyEvent, input_open: bool) -> Option<DecodeAction> {
    Some(match key.code {
        KeyCode::Up => DecodeAction::SelectPrev,
        KeyCode::Down => DecodeAction::SelectNext,
        KeyCode::Tab if !input_open => DecodeAction::FocusNext,
        KeyCode::BackTab if !input_open => DecodeAction::FocusPrev,
        _ => return None,
    })
}

/// The decode view's key map (nothing being typed, no overlay), given the focused panel. Keys
/// it does not take (`q`, `?`, Esc, `t`, `r`) are the app's.
pub fn key(key: &KeyEvent, focus: Focus) -> Option<DecodeAction> {
    if focus == Focus::Settings {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => return Some(DecodeAction::SettingPrev),
            KeyCode::Down | KeyCode::Char('j') => return Some(DecodeAction::SettingNext),
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('+') | KeyCode::Char('=') => {
                return Some(DecodeAction::SettingAdjust(1));
            }
            KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('-') => {
                return Some(DecodeAction::SettingAdjust(-1));
            }
            KeyCode::Char('a') => return Some(DecodeAction::StartAdapter),
            _ => {}
        }
    }
    if focus == Focus::Timeline {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => return Some(DecodeAction::PrevBlock),
            KeyCode::Down | KeyCode::Char('j') => return Some(DecodeAction::NextBlock),
            _ => {}
        }
    }
    Some(match key.code {
        KeyCode::Right | KeyCode::Char('l') => DecodeAction::NextStep,
        KeyCode::Left | KeyCode::Char('h') => DecodeAction::PrevStep,
        KeyCode::Char(']') => DecodeAction::NextBlock,
        KeyCode::Char('[') => DecodeAction::PrevBlock,
        KeyCode::Char('e') => DecodeAction::NextEdit,
        KeyCode::Char('E') => DecodeAction::PrevEdit,
        KeyCode::Char('f') => DecodeAction::NextFallback,
        KeyCode::Char('w') => DecodeAction::GotoOrigin,
        KeyCode::Char(' ') => DecodeAction::TogglePlay,
        KeyCode::Char('+') | KeyCode::Char('=') => DecodeAction::Faster,
        KeyCode::Char('-') => DecodeAction::Slower,
        KeyCode::Up | KeyCode::Char('k') => DecodeAction::SelectPrev,
        KeyCode::Down | KeyCode::Char('j') => DecodeAction::SelectNext,
        KeyCode::Enter => DecodeAction::Run,
        KeyCode::Tab => DecodeAction::FocusNext,
        KeyCode::BackTab => DecodeAction::FocusPrev,
        KeyCode::Char('/') => DecodeAction::StartSearch,
        KeyCode::Char('n') => DecodeAction::SearchNext,
        KeyCode::Char('s') => DecodeAction::StartSave,
        KeyCode::Char('o') => DecodeAction::StartOpen,
        KeyCode::Char('d') => DecodeAction::ToggleDiff,
        KeyCode::Char('x') => DecodeAction::SwapDiff,
        KeyCode::Char('p') => DecodeAction::Focus(Focus::Prompt),
        _ => return None,
    })
}
