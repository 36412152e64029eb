//! The workbench's core state. Plain data: panels borrow it to draw, keys become [`Action`]s,
//! [`App::update`] applies them and queues [`Effect`]s (runs, file I/O) for the event loop to
//! carry out off the UI thread. Nothing here blocks or touches the terminal.

use std::path::PathBuf;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};

pub use super::doc::Doc;
pub use super::effect::{Effect, ProcessOp};
pub use super::focus::{FOCUS_ORDER, Focus, Input, InputKind, Overlay};
pub use super::line_edit::{Edit, LineEdit};
use super::screens::{Ctx, Outcome, PaneKey, Screen};
use super::settings::{ROWS, Settings};
use super::view::{self, StepRef, TraceIndex};
use super::worker::{ModelInfo, RunRequest, WorkerEvent};
use crate::decode::Trace;
use crate::session::run_dir;
use crate::train::snapshot::PollEvent;

/// Playback speeds, steps per second.
pub const SPEEDS: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

/// Prompt for a model without a tokenizer (the reference fixture's).
pub const SAMPLE_IDS: &str = "409,191,80,91,337";
/// Prompt for a model with a tokenizer.
pub const SAMPLE_TEXT: &str = "Hugo has 79 cards and gets 33 more. How many cards does Hugo have now?";

/// Everything a user can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    NextStep,
    PrevStep,
    NextBlock,
    PrevBlock,
    NextEdit,
    PrevEdit,
    NextFallback,
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
    ToggleHelp,
    ToggleDiff,
    SwapDiff,
    Quit,
    Tick,
    Click {
        x: u16,
        y: u16,
    },
    // Settings panel.
    SettingPrev,
    SettingNext,
    SettingAdjust(i32),
    // Line editing (prompt box or the input line).
    Char(char),
    Backspace,
    Delete,
    CursorLeft,
    CursorRight,
    Home,
    End,
    Submit,
    Escape,
    /// Show the decode view, the training panel or the results pane.
    Show(Screen),
    /// A key on the training panel or the results pane.
    Pane(PaneKey),
    /// A key of the tour (while it is up).
    Tour(super::tour::TourAction),
}

impl Action {
    /// The line-editing key this action is, if any.
    pub fn edit(&self) -> Option<Edit> {
        Some(match self {
            Action::Char(c) => Edit::Char(*c),
            Action::Backspace => Edit::Backspace,
            Action::Delete => Edit::Delete,
            Action::CursorLeft => Edit::Left,
            Action::CursorRight => Edit::Right,
            Action::Home => Edit::Home,
            Action::End => Edit::End,
            _ => return None,
        })
    }
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

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

pub struct App {
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
    pub overlay: Overlay,
    pub status: Option<Status>,
    pub model: ModelState,
    /// The run whose events we want.
    pub pending_run: Option<u64>,
    next_run: u64,
    pub search: Option<String>,
    pub hits: HitMap,
    pub effects: Vec<Effect>,
    pub quit: bool,
    /// Where `s` proposes to save, and `o` looks for traces.
    pub save_dir: PathBuf,
    pub sessions_dir: PathBuf,
    /// Which screen is up: decode view, training panel (`t`) or results pane (`r`).
    pub screen: Screen,
    pub training: super::training::TrainingState,
    pub results: super::results::ResultsState,
    /// The tour, while it is up (`tour.rs`).
    pub tour: Option<super::tour::Tour>,
}

impl Default for App {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

impl App {
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
            overlay: Overlay::None,
            status: None,
            model: ModelState::Loading("model".into()),
            pending_run: None,
            next_run: 1,
            search: None,
            hits: HitMap::default(),
            effects: Vec::new(),
            quit: false,
            save_dir: crate::session::data_dir(None).join("traces"),
            sessions_dir: PathBuf::from("sessions"),
            screen: Screen::Decode,
            training: super::training::TrainingState::new(crate::session::data_dir(None)),
            results: super::results::ResultsState::new(crate::session::data_dir(None)),
            tour: None,
        }
    }

    pub fn set_prompt(&mut self, text: &str) {
        self.prompt = LineEdit::new(text);
        self.prompt_set = true;
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: false });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: true });
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
    pub fn open_doc(&mut self, doc: Doc) {
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

    fn goto_flat(&mut self, flat: usize) {
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

    /// Applies an action; side effects land in `self.effects`.
    pub fn update(&mut self, a: Action) {
        // Input line and help overlay take keys first.
        if let Overlay::Input(_) = &self.overlay {
            self.update_input(a);
            return;
        }
        if self.overlay == Overlay::Help {
            match a {
                Action::Quit | Action::ToggleHelp | Action::Escape | Action::Submit => {
                    self.overlay = Overlay::None
                }
                Action::Tick => self.tick(),
                _ => {}
            }
            return;
        }
        match a {
            Action::NextStep => self.step_by(1),
            Action::PrevStep => self.step_by(-1),
            Action::NextBlock => self.jump_block(1),
            Action::PrevBlock => self.jump_block(-1),
            Action::NextEdit => self.jump_list(JumpList::Edit, true),
            Action::PrevEdit => self.jump_list(JumpList::Edit, false),
            Action::NextFallback => self.jump_list(JumpList::Fallback, true),
            Action::TogglePlay => {
                self.playing = !self.playing && self.doc.is_some();
                if self.playing {
                    let at_end = self.doc.as_ref().is_some_and(|d| self.flat + 1 >= d.index.len());
                    if at_end && !self.is_running() {
                        self.goto_flat(0);
                    }
                    self.info(format!("playing at {} steps/s", SPEEDS[self.speed]));
                }
            }
            Action::Faster => {
                self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
                self.info(format!("speed {} steps/s", SPEEDS[self.speed]));
            }
            Action::Slower => {
                self.speed = self.speed.saturating_sub(1);
                self.info(format!("speed {} steps/s", SPEEDS[self.speed]));
            }
            Action::SelectPrev => self.sel = self.sel.saturating_sub(1),
            Action::SelectNext => self.sel = (self.sel + 1).min(self.block_len().saturating_sub(1)),
            Action::Select(o) => self.sel = o.min(self.block_len().saturating_sub(1)),
            Action::Goto(r) => {
                if let Some(d) = &self.doc {
                    let f = d.index.flat_of(r);
                    self.goto_flat(f);
                }
            }
            Action::Run => self.run(),
            Action::Cancel => {
                if self.is_running() {
                    self.effects.push(Effect::Cancel);
                    self.info("cancelling…");
                }
                self.playing = false;
            }
            Action::FocusNext | Action::FocusPrev => {
                let i = FOCUS_ORDER.iter().position(|&f| f == self.focus).unwrap_or(0);
                let n = FOCUS_ORDER.len();
                let j = if a == Action::FocusNext { (i + 1) % n } else { (i + n - 1) % n };
                self.focus = FOCUS_ORDER[j];
            }
            Action::Focus(f) => self.focus = f,
            Action::StartSearch => self.start_input(InputKind::Search, ""),
            Action::SearchNext => match self.search.clone() {
                Some(q) => self.search_next(&q),
                None => self.start_input(InputKind::Search, ""),
            },
            Action::StartSave => {
                if self.doc.is_none() {
                    self.error("nothing to save: run a prompt or open a trace first");
                } else {
                    let path = self.default_save_path();
                    self.start_input(InputKind::Save, &path);
                }
            }
            Action::StartOpen => self.start_input(InputKind::Open, ""),
            Action::StartAdapter => {
                let cur = self.settings.adapter.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                self.start_input(InputKind::Adapter, &cur);
            }
            Action::ToggleHelp => self.overlay = Overlay::Help,
            Action::ToggleDiff => {
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
            Action::SwapDiff => {
                if self.other.is_some() && self.doc.as_ref().is_none_or(|d| d.live.is_none()) {
                    std::mem::swap(&mut self.doc, &mut self.other);
                    let f = self.flat;
                    self.goto_flat(f);
                }
            }
            Action::Quit => {
                self.quit = true;
                self.effects.push(Effect::Quit);
            }
            Action::Tick => self.tick(),
            Action::Click { x, y } => self.click(x, y),
            Action::SettingPrev => self.setting_row = self.setting_row.saturating_sub(1),
            Action::SettingNext => self.setting_row = (self.setting_row + 1).min(ROWS.len() - 1),
            Action::SettingAdjust(d) => {
                let row = ROWS[self.setting_row];
                self.settings.adjust(row, d);
                self.info(format!(
                    "{} = {} ({}Enter runs with these settings)",
                    Settings::label(row),
                    self.settings.value(row),
                    if self.tour.is_some() { "after the tour, " } else { "" }
                ));
            }
            Action::Escape => {
                if self.is_running() {
                    self.update(Action::Cancel);
                } else if self.focus == Focus::Prompt || self.focus == Focus::Settings {
                    self.focus = Focus::Tokens;
                } else if self.diff {
                    self.diff = false;
                }
            }
            Action::Char(_)
            | Action::Backspace
            | Action::Delete
            | Action::CursorLeft
            | Action::CursorRight
            | Action::Home
            | Action::End => {
                if self.focus == Focus::Prompt
                    && let Some(e) = a.edit()
                {
                    self.prompt.apply(e);
                    self.prompt_set = true;
                }
            }
            Action::Submit => self.run(),
            Action::Show(s) => self.show(s),
            Action::Pane(k) => self.on_pane_key(k),
            Action::Tour(t) => {
                if let Some(tour) = self.tour.as_mut() {
                    let out = tour.update(t);
                    self.apply(out);
                }
            }
        }
    }

    /// Starts the tour at its first stop.
    pub fn start_tour(&mut self) -> anyhow::Result<()> {
        let mut tour = super::tour::Tour::build(&self.training.data_dir)?;
        let out = tour.enter(0);
        self.tour = Some(tour);
        self.apply(out);
        Ok(())
    }

    /// Whether the screen that is up is typing into a field (so letters are text, not
    /// commands).
    pub fn is_editing(&self) -> bool {
        match self.screen {
            Screen::Training => self.training.editing.is_some(),
            Screen::Results => self.results.bench_input.is_some(),
            Screen::Decode => false,
        }
    }

    /// Whether something is being typed (the input line, the prompt box, a screen's field).
    fn typing(&self) -> bool {
        matches!(self.overlay, Overlay::Input(_))
            || (self.screen == Screen::Decode && self.focus == Focus::Prompt)
            || self.is_editing()
    }

    /// Whether the tour takes its keys (Enter, Backspace, Esc, q) now: it is up, nothing is
    /// being typed and the help is not up.
    pub fn tour_takes_keys(&self) -> bool {
        self.tour.is_some() && !self.typing() && self.overlay != Overlay::Help
    }

    /// A key on the training or results screen: the keys common to both, else the screen's own.
    fn on_pane_key(&mut self, k: PaneKey) {
        if !self.is_editing() {
            match k {
                PaneKey::Char('q') => return self.update(Action::Quit),
                PaneKey::Char('?') => return self.update(Action::ToggleHelp),
                PaneKey::Char('t') => return self.show(Screen::Training),
                PaneKey::Char('r') => return self.show(Screen::Results),
                _ => {}
            }
        }
        let out = match self.screen {
            Screen::Training => {
                if k == PaneKey::Esc && !self.is_editing() {
                    return self.show(Screen::Decode);
                }
                self.training.on_key(k)
            }
            Screen::Results => self.results.on_key(k, &Ctx { exe: &self.training.exe }),
            Screen::Decode => Vec::new(),
        };
        self.apply(out);
    }

    /// Applies what a screen or the tour asked for, in order.
    pub fn apply(&mut self, out: Vec<Outcome>) {
        for o in out {
            match o {
                Outcome::Info(t) => self.info(t),
                Outcome::Error(t) => self.error(t),
                Outcome::Effect(e) => self.effects.push(e),
                Outcome::Show(s) => {
                    if self.screen != s {
                        self.show(s);
                    }
                }
                Outcome::SetAdapter(p) => {
                    self.settings.adapter = Some(p);
                    self.settings.adapter_on = true;
                }
                Outcome::CloseOverlay => self.overlay = Overlay::None,
                Outcome::Present { doc, other, at, sel } => {
                    self.screen = Screen::Decode;
                    self.focus = Focus::Tokens;
                    self.doc = None;
                    self.other = None;
                    if let Some(o) = other {
                        self.open_doc(*o);
                    }
                    self.open_doc(*doc);
                    self.diff = self.other.is_some();
                    self.update(Action::Goto(at));
                    self.update(Action::Select(sel));
                }
                Outcome::SelectNotableResult => self.results.select_notable_row(),
                Outcome::EndTour => self.tour = None,
                Outcome::Quit => self.update(Action::Quit),
            }
        }
    }

    /// Switches screens (`t` or `r` again goes back to the decode view).
    pub fn show(&mut self, s: Screen) {
        if self.screen == s && s != Screen::Decode {
            self.screen = Screen::Decode;
            return;
        }
        self.screen = s;
        match s {
            Screen::Training => {
                let n = self.training.runs.len();
                let dir = run_dir::runs_dir(&self.training.data_dir);
                self.info(format!("training: {n} run(s) in {} — n: new run, L: launch", dir.display()));
            }
            Screen::Results => {
                let msg = self.results.source_line();
                self.info(msg);
            }
            Screen::Decode => {}
        }
    }

    /// Starts or signals a process, reporting the outcome in the status line.
    pub fn execute(&mut self, op: ProcessOp) {
        match op {
            ProcessOp::Spawn { launch, what } => match run_dir::spawn(&launch) {
                Ok(pid) => {
                    if launch.kind == run_dir::LaunchKind::Bench {
                        self.results.jobs.push(super::results::BenchJob {
                            pid,
                            log: launch.log.clone(),
                            what: what.clone(),
                            started: std::time::Instant::now(),
                        });
                    }
                    self.info(format!("{what}: started (pid {pid}); log {}", launch.log.display()));
                }
                Err(e) => self.error(format!("{what}: {e:#}")),
            },
            ProcessOp::Interrupt { pid, what } => match run_dir::interrupt(pid) {
                Ok(()) => self.info(format!("cancelling {what}: it checkpoints and stops")),
                Err(e) => self.error(format!("cannot cancel {what}: {e:#}")),
            },
        }
    }

    /// Applies a poller snapshot.
    pub fn on_poll(&mut self, ev: PollEvent) {
        match ev {
            PollEvent::Runs(r) => self.training.set_runs(r),
            PollEvent::Results { root, loaded } => self.results.set_loaded(&root, *loaded),
        }
    }

    fn tick(&mut self) {
        if !self.playing {
            return;
        }
        let Some(d) = &self.doc else {
            self.playing = false;
            return;
        };
        if self.flat + 1 < d.index.len() {
            let f = self.flat + 1;
            self.goto_flat(f);
        } else if d.live.is_none() {
            self.playing = false;
            self.info("end of the trace");
        }
    }

    fn click(&mut self, x: u16, y: u16) {
        let p = Position { x, y };
        if let Some(&(_, o)) = self.hits.tokens.iter().find(|(r, _)| r.contains(p)) {
            self.sel = o;
            self.focus = Focus::Tokens;
            return;
        }
        if let Some(&(_, r)) = self.hits.steps.iter().find(|(rc, _)| rc.contains(p)) {
            self.focus = Focus::Timeline;
            self.update(Action::Goto(r));
            return;
        }
        if let Some(&(_, f)) = self.hits.panels.iter().find(|(r, _)| r.contains(p)) {
            self.focus = f;
        }
    }

    fn run(&mut self) {
        let info = match &self.model {
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
            self.effects.push(Effect::Cancel);
        }
        let run_id = self.next_run;
        self.next_run += 1;
        self.pending_run = Some(run_id);
        self.playing = false;
        self.effects.push(Effect::Run(Box::new(RunRequest {
            run_id,
            prompt: text,
            settings: self.settings.clone(),
        })));
        self.info(format!("run #{run_id} ({}) starting…", self.settings.short()));
    }

    /// Applies an event from the model thread.
    pub fn on_worker(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::ModelLoading(name) => {
                self.info(format!("loading {name}…"));
                self.model = ModelState::Loading(name);
            }
            WorkerEvent::ModelReady(info) => {
                if !self.prompt_set {
                    self.prompt = LineEdit::new(if info.has_tokenizer { SAMPLE_TEXT } else { SAMPLE_IDS });
                }
                let adapter = info.adapter.as_deref().map(|a| format!(" + adapter {a}")).unwrap_or_default();
                // While the tour is up, Enter is the tour's.
                self.info(if self.tour.is_some() {
                    format!(
                        "model {}{adapter} ready: Esc leaves the tour, then Enter runs the prompt",
                        info.id
                    )
                } else {
                    format!("model {}{adapter} ready: press Enter to run the prompt, ? for help", info.id)
                });
                self.model = ModelState::Ready(info);
            }
            WorkerEvent::ModelFailed(e) => {
                self.error(format!("no model: {e} — press o to open a trace or a session (sessions/)"));
                self.model = ModelState::Missing(e);
            }
            WorkerEvent::Started { run_id, trace } => {
                if self.pending_run != Some(run_id) {
                    return;
                }
                let label = format!("run #{run_id} ({})", self.settings.short());
                let mut doc = Doc::new(*trace, label, None);
                doc.live = Some(run_id);
                if let Some(old) = self.doc.take() {
                    self.other = Some(old);
                }
                self.doc = Some(doc);
                self.flat = 0;
                self.sel = 0;
                self.follow = true;
                self.info(format!(
                    "run #{run_id} decoding… (Esc cancels; ← freezes the view, → to the end follows)"
                ));
            }
            WorkerEvent::Step { run_id, block, block_start, step, texts } => {
                let Some(d) = self.doc.as_mut().filter(|d| d.live == Some(run_id)) else { return };
                d.trace.token_text.extend(texts);
                d.push_step(block, block_start, *step);
                if self.follow {
                    let last = d.index.len() - 1;
                    self.goto_flat(last);
                    self.follow = true;
                }
            }
            WorkerEvent::BlockEnd { run_id, block, block_start, ended_by } => {
                if let Some(d) = self.doc.as_mut().filter(|d| d.live == Some(run_id)) {
                    d.trace.end_block(block, block_start, ended_by);
                }
            }
            WorkerEvent::Done { run_id, trace } => {
                if self.pending_run == Some(run_id) {
                    self.pending_run = None;
                }
                let Some(d) = self.doc.as_mut().filter(|d| d.live == Some(run_id)) else { return };
                let label = d.label.clone();
                *d = Doc::new(*trace, label, None);
                let cancelled = d.trace.cancelled;
                let summary = d.trace.summary();
                let f = if self.follow { usize::MAX } else { self.flat };
                self.goto_flat(f);
                self.follow = false;
                if cancelled {
                    self.info(format!("cancelled: {summary}"));
                } else {
                    self.info(format!("done: {summary}"));
                }
            }
            WorkerEvent::Failed { run_id, error } => {
                if self.pending_run == Some(run_id) {
                    self.pending_run = None;
                }
                if let Some(d) = self.doc.as_mut().filter(|d| d.live == Some(run_id)) {
                    d.live = None;
                }
                self.error(format!("run #{run_id} failed: {error}"));
            }
        }
    }

    fn default_save_path(&self) -> String {
        if let Some(p) = self.doc.as_ref().and_then(|d| d.path.as_ref()) {
            return p.display().to_string();
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.save_dir.join(format!("trace-{secs}.json")).display().to_string()
    }

    fn start_input(&mut self, kind: InputKind, text: &str) {
        let suggestions = if kind == InputKind::Open { self.trace_files() } else { Vec::new() };
        self.overlay = Overlay::Input(Input { kind, edit: LineEdit::new(text), suggestions, pick: None });
    }

    /// Trace files in `sessions/` (one level of subfolders) and the save directory.
    pub fn trace_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in [&self.sessions_dir, &self.save_dir] {
            collect_json(dir, 2, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    fn update_input(&mut self, a: Action) {
        let Overlay::Input(inp) = &mut self.overlay else { return };
        match a {
            Action::Escape | Action::Quit => self.overlay = Overlay::None,
            Action::SelectPrev | Action::SettingPrev => {
                inp.pick = match inp.pick {
                    None | Some(0) => None,
                    Some(i) => Some(i - 1),
                }
            }
            Action::SelectNext | Action::SettingNext => {
                if !inp.suggestions.is_empty() {
                    inp.pick = Some(inp.pick.map_or(0, |i| (i + 1).min(inp.suggestions.len() - 1)));
                }
            }
            Action::Submit => {
                let text = match inp.pick {
                    Some(i) => inp.suggestions[i].clone(),
                    None => inp.edit.text.trim().to_string(),
                };
                let kind = inp.kind;
                self.overlay = Overlay::None;
                self.submit_input(kind, text);
            }
            Action::Tick => self.tick(),
            other => {
                inp.pick = None;
                if let Some(e) = other.edit() {
                    inp.edit.apply(e)
                }
            }
        }
    }

    fn submit_input(&mut self, kind: InputKind, text: String) {
        match kind {
            InputKind::Open => {
                if text.is_empty() {
                    self.error("no file given");
                } else {
                    self.info(format!("opening {text}…"));
                    self.effects.push(Effect::Open(PathBuf::from(text)));
                }
            }
            InputKind::Save => {
                if text.is_empty() {
                    self.error("no file given");
                } else {
                    self.effects.push(Effect::Save(PathBuf::from(text)));
                }
            }
            InputKind::Search => {
                if text.is_empty() {
                    return;
                }
                self.search = Some(text.clone());
                self.search_next(&text);
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
    }

    /// Finds the next step (after the cursor, wrapping) that commits or edits in a token
    /// matching `q` (case-insensitive text, or the id), and selects it.
    pub fn search_next(&mut self, q: &str) {
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

fn collect_json(dir: &std::path::Path, depth: usize, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 1 {
            collect_json(&p, depth - 1, out);
        } else if p.extension().is_some_and(|x| x == "json") && !p.ends_with("manifest.json") {
            out.push(p.display().to_string());
        }
    }
}

/// Maps a key to an action, given where the focus is and what is open.
pub fn key_action(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if app.tour.is_some() {
        // The tour takes its keys before the screens do, unless something is being typed.
        if let Some(t) = super::tour::key(&key, !app.tour_takes_keys()) {
            return Some(Action::Tour(t));
        }
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('q')) {
        return Some(Action::Quit);
    }
    if app.screen != Screen::Decode {
        if app.overlay == Overlay::Help {
            return Some(match key.code {
                KeyCode::Char('?') => Action::ToggleHelp,
                KeyCode::Char('q') => Action::Quit,
                KeyCode::Esc => Action::Escape,
                KeyCode::Enter => Action::Submit,
                _ => return None,
            });
        }
        return super::screens::pane_key(key).map(Action::Pane);
    }
    let editing = matches!(app.overlay, Overlay::Input(_)) || app.focus == Focus::Prompt;
    if editing {
        return Some(match key.code {
            KeyCode::Char(c) if !ctrl => Action::Char(c),
            KeyCode::Char('a') => Action::Home,
            KeyCode::Char('e') => Action::End,
            KeyCode::Backspace => Action::Backspace,
            KeyCode::Delete => Action::Delete,
            KeyCode::Left => Action::CursorLeft,
            KeyCode::Right => Action::CursorRight,
            KeyCode::Home => Action::Home,
            KeyCode::End => Action::End,
            KeyCode::Up => Action::SelectPrev,
            KeyCode::Down => Action::SelectNext,
            KeyCode::Enter => Action::Submit,
            KeyCode::Esc => Action::Escape,
            KeyCode::Tab if app.overlay == Overlay::None => Action::FocusNext,
            KeyCode::BackTab if app.overlay == Overlay::None => Action::FocusPrev,
            _ => return None,
        });
    }
    if app.overlay == Overlay::Help {
        return Some(match key.code {
            KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::Escape,
            KeyCode::Enter => Action::Submit,
            _ => return None,
        });
    }
    if app.focus == Focus::Settings {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => return Some(Action::SettingPrev),
            KeyCode::Down | KeyCode::Char('j') => return Some(Action::SettingNext),
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('+') | KeyCode::Char('=') => {
                return Some(Action::SettingAdjust(1));
            }
            KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('-') => {
                return Some(Action::SettingAdjust(-1));
            }
            KeyCode::Char('a') => return Some(Action::StartAdapter),
            _ => {}
        }
    }
    if app.focus == Focus::Timeline {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => return Some(Action::PrevBlock),
            KeyCode::Down | KeyCode::Char('j') => return Some(Action::NextBlock),
            _ => {}
        }
    }
    Some(match key.code {
        KeyCode::Right | KeyCode::Char('l') => Action::NextStep,
        KeyCode::Left | KeyCode::Char('h') => Action::PrevStep,
        KeyCode::Char(']') => Action::NextBlock,
        KeyCode::Char('[') => Action::PrevBlock,
        KeyCode::Char('e') => Action::NextEdit,
        KeyCode::Char('E') => Action::PrevEdit,
        KeyCode::Char('f') => Action::NextFallback,
        KeyCode::Char(' ') => Action::TogglePlay,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::Faster,
        KeyCode::Char('-') => Action::Slower,
        KeyCode::Up | KeyCode::Char('k') => Action::SelectPrev,
        KeyCode::Down | KeyCode::Char('j') => Action::SelectNext,
        KeyCode::Enter => Action::Run,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Char('/') => Action::StartSearch,
        KeyCode::Char('n') => Action::SearchNext,
        KeyCode::Char('s') => Action::StartSave,
        KeyCode::Char('o') => Action::StartOpen,
        KeyCode::Char('d') => Action::ToggleDiff,
        KeyCode::Char('x') => Action::SwapDiff,
        KeyCode::Char('p') => Action::Focus(Focus::Prompt),
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Escape,
        KeyCode::Char('t') => Action::Show(Screen::Training),
        KeyCode::Char('r') => Action::Show(Screen::Results),
        _ => return None,
    })
}

/// Maps a mouse event to an action (left clicks select; the wheel steps).
pub fn mouse_action(m: MouseEvent) -> Option<Action> {
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) => Some(Action::Click { x: m.column, y: m.row }),
        MouseEventKind::ScrollDown => Some(Action::NextStep),
        MouseEventKind::ScrollUp => Some(Action::PrevStep),
        _ => None,
    }
}

/// The key list shown in the help overlay: (keys, what they do).
pub const HELP: &[(&str, &str)] = &[
    ("→ / l", "next step"),
    ("← / h", "previous step"),
    ("] / [", "next / previous block"),
    ("e / E", "next / previous edit or remask"),
    ("f", "next fallback commit"),
    ("space", "play / pause (speed + / -)"),
    ("↑↓ / click", "select a position"),
    ("Enter", "run the prompt (what-if: change settings, run again)"),
    ("Esc", "cancel a running decode; leave the prompt box"),
    ("Tab", "cycle panels (prompt, settings, blocks, tokens, inspector)"),
    ("p", "edit the prompt"),
    ("/ , n", "search a token; next match"),
    ("d", "diff with the previous trace (x swaps them)"),
    ("s / o", "save / open a trace"),
    ("settings", "↑↓ choose, ←→ or +/- change, a: adapter path"),
    ("t / r", "training panel / results pane (Esc back here)"),
    ("?", "this help"),
    ("q", "quit"),
    ("tour", "`draftscope tour`: the recorded sessions at the steps that matter (Enter next, Esc leave)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::BlockEnd;

    #[test]
    fn a_live_block_ends_as_the_decoder_ended_it() {
        let t = crate::tui::sample::small();
        let mut live = t.clone();
        live.blocks.clear();
        for b in &t.blocks {
            for s in &b.steps {
                live.push_step(b.block, b.start, s.clone());
            }
            live.end_block(b.block, b.start, b.ended_by);
        }
        assert_eq!(live.blocks[0].ended_by, BlockEnd::NoEditAfterFill);
        assert_eq!(live.blocks[2].ended_by, BlockEnd::MaxPostSteps);
        assert_eq!(live.blocks, t.blocks);
    }

    #[test]
    fn the_summary_counts_tokens_forwards_and_edits() {
        let mut a = App::default();
        a.open_doc(Doc::new(crate::tui::sample::small(), "s".into(), None));
        assert_eq!(a.summary(), "5 tokens · 9 forwards · 0.56 TPF · 3 edits (60.0/100 tok) · 1 fallbacks");
    }

    #[test]
    fn a_t2m_trace_brings_its_policy_into_the_settings_and_its_remasks_into_the_summary() {
        let mut a = App::default();
        a.open_doc(Doc::new(crate::tui::sample::small_t2m(), "m".into(), None));
        assert_eq!(a.settings.policy_label(), "t2m low_prob");
        assert_eq!(a.settings.params(1, 2).remask_threshold, 0.5);
        assert_eq!(
            a.summary(),
            "5 tokens · 9 forwards · 0.56 TPF · 0 edits (0.0/100 tok) · 1 remasks (20.0/100 tok) · 1 fallbacks"
        );
    }
}
