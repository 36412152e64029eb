//! The workbench's core state. Plain data: panels borrow it to draw, keys become [`Action`]s,
//! [`App::update`] applies them and queues [`Effect`]s (runs, file I/O) for the event loop to
//! carry out off the UI thread. Nothing here blocks or touches the terminal. The decode view
//! owns its state, key map and actions (`decode_screen.rs`); the app routes to it and applies
//! what comes back, as it does for the training and results screens.

use std::path::PathBuf;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

pub use super::decode_screen::{DecodeAction, DecodeCtx, DecodeState, HitMap, ModelState, SPEEDS};
pub use super::doc::Doc;
pub use super::effect::{Effect, ProcessOp};
pub use super::focus::{FOCUS_ORDER, Focus, Input, InputKind, Overlay};
pub use super::line_edit::{Edit, LineEdit};
use super::screens::{Ctx, Outcome, PaneKey, Screen};
use super::settings::Settings;
use super::view::StepRef;
use super::worker::WorkerEvent;
use crate::decode::Trace;
use crate::session::run_dir;
use crate::train::snapshot::PollEvent;

/// Prompt for a model without a tokenizer (the reference fixture's).
pub const SAMPLE_IDS: &str = "409,191,80,91,337";
/// Prompt for a model with a tokenizer.
pub const SAMPLE_TEXT: &str = "Hugo has 79 cards and gets 33 more. How many cards does Hugo have now?";

/// Everything a user can ask for: the keys every screen shares, the decode view's own
/// ([`DecodeAction`]), and the training, results and tour keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Tick,
    ToggleHelp,
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
    /// A key (or click) of the decode view.
    Decode(DecodeAction),
    /// Show the decode view, the training panel or the results pane.
    Show(Screen),
    /// A key on the training panel or the results pane.
    Pane(PaneKey),
    /// A key of the tour (while it is up).
    Tour(super::tour::TourAction),
}

impl From<DecodeAction> for Action {
    fn from(a: DecodeAction) -> Self {
        Action::Decode(a)
    }
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
pub struct Status {
    pub text: String,
    pub error: bool,
}

pub struct App {
    /// The decode view (`decode_screen.rs`).
    pub decode: DecodeState,
    pub overlay: Overlay,
    pub status: Option<Status>,
    pub model: ModelState,
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
            decode: DecodeState::new(settings),
            overlay: Overlay::None,
            status: None,
            model: ModelState::Loading("model".into()),
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
        self.decode.set_prompt(text);
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: false });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: true });
    }

    /// Takes the decode spec (and an id prompt) of an opened trace (see
    /// [`DecodeState::adopt_settings`]).
    pub fn adopt_settings(&mut self, t: &Trace) {
        self.decode.adopt_settings(t);
    }

    /// Shows a trace (it becomes the current one; the previous one is kept for diffs).
    pub fn open_doc(&mut self, doc: Doc) {
        let out = self.decode.open_doc(doc);
        self.apply(out);
    }

    pub fn is_running(&self) -> bool {
        self.decode.is_running()
    }

    /// The step under the cursor.
    pub fn cur(&self) -> Option<StepRef> {
        self.decode.cur()
    }

    pub fn block_len(&self) -> usize {
        self.decode.block_len()
    }

    /// The summary line for the status bar.
    pub fn summary(&self) -> String {
        self.decode.summary()
    }

    /// Finds the next step that commits or edits in a token matching `q` (see
    /// [`DecodeState::search_next`]).
    pub fn search_next(&mut self, q: &str) {
        let out = self.decode.search_next(q);
        self.apply(out);
    }

    /// Applies a decode-view action, then what it asked for.
    fn on_decode(&mut self, a: DecodeAction) {
        let ctx = DecodeCtx {
            model: &self.model,
            hits: &self.hits,
            touring: self.tour.is_some(),
            save_dir: &self.save_dir,
        };
        let out = self.decode.update(a, &ctx);
        self.apply(out);
    }

    fn tick(&mut self) {
        let out = self.decode.tick();
        self.apply(out);
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
            Action::Decode(d) => self.on_decode(d),
            Action::ToggleHelp => self.overlay = Overlay::Help,
            Action::Quit => {
                self.quit = true;
                self.effects.push(Effect::Quit);
            }
            Action::Tick => self.tick(),
            Action::Escape => {
                let out = self.decode.escape();
                self.apply(out);
            }
            Action::Char(_)
            | Action::Backspace
            | Action::Delete
            | Action::CursorLeft
            | Action::CursorRight
            | Action::Home
            | Action::End => {
                if let Some(e) = a.edit() {
                    self.decode.edit(e);
                }
            }
            Action::Submit => self.on_decode(DecodeAction::Run),
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
            || (self.screen == Screen::Decode && self.decode.focus == Focus::Prompt)
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
                    self.decode.settings.adapter = Some(p);
                    self.decode.settings.adapter_on = true;
                }
                Outcome::CloseOverlay => self.overlay = Overlay::None,
                Outcome::StartInput(kind, text) => self.start_input(kind, &text),
                Outcome::Present { doc, other, at, sel } => {
                    self.screen = Screen::Decode;
                    self.decode.focus = Focus::Tokens;
                    self.decode.doc = None;
                    self.decode.other = None;
                    if let Some(o) = other {
                        self.open_doc(*o);
                    }
                    self.open_doc(*doc);
                    self.decode.diff = self.decode.other.is_some();
                    self.update(Action::Decode(DecodeAction::Goto(at)));
                    self.update(Action::Decode(DecodeAction::Select(sel)));
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

    /// Applies an event from the model thread.
    pub fn on_worker(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::ModelLoading(name) => {
                self.info(format!("loading {name}…"));
                self.model = ModelState::Loading(name);
            }
            WorkerEvent::ModelReady(info) => {
                if !self.decode.prompt_set {
                    self.decode.prompt =
                        LineEdit::new(if info.has_tokenizer { SAMPLE_TEXT } else { SAMPLE_IDS });
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
                if self.decode.pending_run != Some(run_id) {
                    return;
                }
                let label = format!("run #{run_id} ({})", self.decode.settings.short());
                let mut doc = Doc::new(*trace, label, None);
                doc.live = Some(run_id);
                if let Some(old) = self.decode.doc.take() {
                    self.decode.other = Some(old);
                }
                self.decode.doc = Some(doc);
                self.decode.flat = 0;
                self.decode.sel = 0;
                self.decode.follow = true;
                self.info(format!(
                    "run #{run_id} decoding… (Esc cancels; ← freezes the view, → to the end follows)"
                ));
            }
            WorkerEvent::Step { run_id, block, block_start, step, texts } => {
                let Some(d) = self.decode.doc.as_mut().filter(|d| d.live == Some(run_id)) else { return };
                d.trace.token_text.extend(texts);
                d.push_step(block, block_start, *step);
                if self.decode.follow {
                    let last = d.index.len() - 1;
                    self.decode.goto_flat(last);
                    self.decode.follow = true;
                }
            }
            WorkerEvent::BlockEnd { run_id, block, block_start, ended_by } => {
                if let Some(d) = self.decode.doc.as_mut().filter(|d| d.live == Some(run_id)) {
                    d.trace.end_block(block, block_start, ended_by);
                }
            }
            WorkerEvent::Done { run_id, trace } => {
                if self.decode.pending_run == Some(run_id) {
                    self.decode.pending_run = None;
                }
                let Some(d) = self.decode.doc.as_mut().filter(|d| d.live == Some(run_id)) else { return };
                let label = d.label.clone();
                *d = Doc::new(*trace, label, None);
                let cancelled = d.trace.cancelled;
                let summary = d.trace.summary();
                let f = if self.decode.follow { usize::MAX } else { self.decode.flat };
                self.decode.goto_flat(f);
                self.decode.follow = false;
                if cancelled {
                    self.info(format!("cancelled: {summary}"));
                } else {
                    self.info(format!("done: {summary}"));
                }
            }
            WorkerEvent::Failed { run_id, error } => {
                if self.decode.pending_run == Some(run_id) {
                    self.decode.pending_run = None;
                }
                if let Some(d) = self.decode.doc.as_mut().filter(|d| d.live == Some(run_id)) {
                    d.live = None;
                }
                self.error(format!("run #{run_id} failed: {error}"));
            }
        }
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
            Action::Decode(DecodeAction::SelectPrev | DecodeAction::SettingPrev) => {
                inp.pick = match inp.pick {
                    None | Some(0) => None,
                    Some(i) => Some(i - 1),
                }
            }
            Action::Decode(DecodeAction::SelectNext | DecodeAction::SettingNext) => {
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
        let out = self.decode.submit_input(kind, text);
        self.apply(out);
    }
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

/// The keys the help overlay answers, on every screen.
fn help_key(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Escape,
        KeyCode::Enter => Action::Submit,
        _ => return None,
    })
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
            return help_key(key.code);
        }
        return super::screens::pane_key(key).map(Action::Pane);
    }
    let editing = matches!(app.overlay, Overlay::Input(_)) || app.decode.focus == Focus::Prompt;
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
            KeyCode::Enter => Action::Submit,
            KeyCode::Esc => Action::Escape,
            _ => {
                let input_open = app.overlay != Overlay::None;
                return super::decode_screen::editing_key(&key, input_open).map(Action::Decode);
            }
        });
    }
    if app.overlay == Overlay::Help {
        return help_key(key.code);
    }
    if let Some(d) = super::decode_screen::key(&key, app.decode.focus) {
        return Some(Action::Decode(d));
    }
    Some(match key.code {
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
        MouseEventKind::Down(MouseButton::Left) => {
            Some(Action::Decode(DecodeAction::Click { x: m.column, y: m.row }))
        }
        MouseEventKind::ScrollDown => Some(Action::Decode(DecodeAction::NextStep)),
        MouseEventKind::ScrollUp => Some(Action::Decode(DecodeAction::PrevStep)),
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
    ("w", "where a failed arithmetic answer first went wrong"),
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
        assert_eq!(a.decode.settings.policy_label(), "t2m low_prob");
        assert_eq!(a.decode.settings.params(1, 2).remask_threshold, 0.5);
        assert_eq!(
            a.summary(),
            "5 tokens · 9 forwards · 0.56 TPF · 0 edits (0.0/100 tok) · 1 remasks (20.0/100 tok) · 1 fallbacks"
        );
    }
}
