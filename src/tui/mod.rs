//! The workbench TUI (ratatui + crossterm): step through block-diffusion decoding and see why
//! each token changed.
//!
//! The split follows DESIGN.md §9: [`app::App`] is plain state; [`panels`] borrow it and draw;
//! keys become [`app::Action`]s; [`app::App::update`] queues [`app::Effect`]s that this module
//! carries out off the UI thread (the model lives on a [`worker`] thread that streams step
//! events; traces load and save on short-lived threads). The loop drains every pending event,
//! then draws once.

pub mod app;
pub mod bench;
pub mod decode_screen;
pub mod demo;
pub mod doc;
pub mod effect;
pub mod focus;
pub mod jobs;
pub mod line_edit;
pub mod panels;
pub mod results;
pub mod runs;
#[cfg(any(test, feature = "testutil"))]
pub mod sample;
pub mod screens;
pub mod settings;
pub mod synthetic;
pub mod theme;
pub mod tour;
pub mod training;
pub mod view;
pub mod worker;

use std::io::{IsTerminal, Stdout, stdout};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::decode::session::ModelArgs;
use crate::decode::{DecodeSpec, Trace};
use app::{Action, App, DecodeAction, Doc, Effect, ModelState};
use jobs::{JobEvent, Jobs};
use worker::Worker;

#[derive(Debug, Clone, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Open this trace (JSON from `decode --json`, `s` in the workbench, or sessions/).
    #[arg(long)]
    pub open: Option<PathBuf>,
    /// A second trace to diff the first against (opens in diff view).
    #[arg(long, requires = "open")]
    pub diff: Option<PathBuf>,
    /// Start with this prompt text in the prompt box.
    #[arg(long, conflicts_with = "prompt_ids")]
    pub prompt: Option<String>,
    /// Start with these prompt ids (for models without a tokenizer).
    #[arg(long)]
    pub prompt_ids: Option<String>,
    /// Run the prompt as soon as the model is loaded.
    #[arg(long)]
    pub run: bool,
    /// Do not load a model (view traces only).
    #[arg(long)]
    pub no_model: bool,
    /// Do not start the first-run tour (DRAFTSCOPE_NO_TOUR=1 does the same).
    #[arg(long)]
    pub no_tour: bool,
    /// Started with no flags (`draftscope`, `draftscope tui`): the first such start is the tour.
    #[arg(skip)]
    pub plain: bool,
    /// Start with the tour (`draftscope tour`).
    #[arg(skip)]
    pub tour: bool,
    /// The decode the workbench starts with (the settings panel edits it).
    #[command(flatten)]
    pub spec: DecodeSpec,
}

impl Default for TuiArgs {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            a: TuiArgs,
        }
        <Wrap as clap::Parser>::parse_from(["draftscope"]).a
    }
}

/// `draftscope tour`: the recorded sessions at the steps that matter, then the workbench.
#[derive(Debug, Clone, Args)]
pub struct TourArgs {
    /// Do not load the model in the background (the tour needs none).
    #[arg(long)]
    pub no_model: bool,
}

/// `draftscope tour`: the workbench, starting with the tour.
pub fn run_tour(a: TourArgs) -> Result<()> {
    run(TuiArgs { no_model: a.no_model, tour: true, ..TuiArgs::default() })
}

/// Everything the loop waits on.
pub enum Event {
    Term(crossterm::event::Event),
    /// What a background job reports (the model thread, the poller, open, save).
    Job(JobEvent),
}

/// Loads a trace file as a document labelled by its file name.
pub fn open_doc(path: &Path) -> Result<Doc> {
    let trace = load_trace(path)?;
    let label = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "trace".into());
    Ok(Doc::new(trace, label, Some(path.to_path_buf())))
}

/// [`Trace::load`] in one parse instead of two when the file starts the way `Trace::save`
/// writes it (`{"version":N,`): big traces open about twice as fast. Anything else goes through
/// `Trace::load` for its checks and messages.
pub fn load_trace(path: &Path) -> Result<Trace> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read trace {}", path.display()))?;
    let head = format!("{{\"version\":{},", crate::decode::TRACE_VERSION);
    if bytes.starts_with(head.as_bytes())
        && let Ok(t) = serde_json::from_slice::<Trace>(&bytes)
    {
        t.validate().with_context(|| format!("{}: not a valid draftscope trace", path.display()))?;
        return Ok(t);
    }
    Trace::from_slice(&bytes).with_context(|| format!("{}: not a draftscope trace", path.display()))
}

/// Builds the app state for the arguments (no terminal, no threads): settings, prompt and the
/// traces named by `--open` / `--diff`.
pub fn initial_app(args: &TuiArgs) -> Result<App> {
    let mut app = App::new(settings::Settings::new(args.spec.clone(), args.model.adapter.clone()));
    if let Some(t) = args.prompt.as_deref().or(args.prompt_ids.as_deref()) {
        app.set_prompt(t);
    }
    if let Some(p) = &args.diff {
        app.open_doc(open_doc(p)?);
    }
    if let Some(p) = &args.open {
        app.open_doc(open_doc(p)?);
        app.decode.diff = app.decode.other.is_some();
    }
    if args.no_model {
        app.model = ModelState::Missing("started with --no-model".into());
        app.info("viewing traces only (--no-model): o opens a trace, ? shows the keys");
    }
    Ok(app)
}

/// `draftscope tui`: runs the workbench until `q`.
pub fn run(args: TuiArgs) -> Result<()> {
    if !stdout().is_terminal() {
        bail!("the workbench needs a terminal (stdout is not one)");
    }
    let mut app = initial_app(&args)?;
    if tour::wanted(&args, &app.training.data_dir) {
        match app.start_tour() {
            Ok(()) => {}
            Err(e) if args.tour => return Err(e),
            Err(e) => app.error(format!("the tour cannot start: {e:#}")),
        }
    }
    let (tx, rx) = channel::<Event>();
    let jobs = {
        let t = tx.clone();
        Jobs::new(move |e| t.send(Event::Job(e)).is_ok())
    };
    let worker = if args.no_model { None } else { Some(jobs.decode(args.model.clone())) };
    let mut term = TermGuard::enter()?;
    jobs.poll(app.training.data_dir.clone(), vec![app.results.demo_dir.clone()])?;
    {
        let t = tx.clone();
        std::thread::Builder::new()
            .name("draftscope-input".into())
            .spawn(move || {
                while let Ok(ev) = crossterm::event::read() {
                    if t.send(Event::Term(ev)).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the input thread")?;
    }
    let mut auto_run = args.run;
    let test_panic = std::env::var_os("DRAFTSCOPE_TUI_TEST_PANIC").is_some();
    let mut next_tick = Instant::now();
    loop {
        let mut hits = app::HitMap::default();
        term.terminal.draw(|f| hits = panels::draw(f, &app)).context("cannot draw")?;
        app.hits = hits;
        if test_panic {
            // For tests/tui_smoke.sh: the panic hook must leave a clean terminal.
            panic!("test panic (DRAFTSCOPE_TUI_TEST_PANIC is set)");
        }
        let interval = Duration::from_secs_f64(1.0 / app::SPEEDS[app.decode.speed] as f64);
        let timeout = if app.decode.playing {
            next_tick.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(500)
        };
        let first = match rx.recv_timeout(timeout) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Drain everything pending, then draw once.
        for ev in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            handle_event(&mut app, ev);
        }
        if app.decode.playing {
            let now = Instant::now();
            if now >= next_tick {
                app.update(Action::Tick);
                next_tick = now + interval;
            }
        } else {
            next_tick = Instant::now() + interval;
        }
        if auto_run && matches!(app.model, ModelState::Ready(_)) {
            auto_run = false;
            app.update(Action::Decode(DecodeAction::Run));
        }
        for eff in std::mem::take(&mut app.effects) {
            execute(&mut app, eff, worker.as_ref(), &jobs);
        }
        if app.quit {
            break;
        }
    }
    drop(term);
    if let Some(w) = worker {
        w.shutdown();
    }
    Ok(())
}

fn handle_event(app: &mut App, ev: Event) {
    match ev {
        Event::Term(crossterm::event::Event::Key(k)) => {
            if let Some(a) = app::key_action(app, k) {
                app.update(a);
            }
        }
        Event::Term(crossterm::event::Event::Mouse(m)) => {
            if let Some(a) = app::mouse_action(m) {
                app.update(a);
            }
        }
        Event::Term(crossterm::event::Event::Paste(s)) => {
            for c in s.chars().filter(|c| !c.is_control()) {
                app.update(Action::Char(c));
            }
        }
        Event::Term(_) => {} // resize and focus: the next draw adapts
        Event::Job(j) => jobs::apply(app, j),
    }
}

fn execute(app: &mut App, eff: Effect, worker: Option<&Worker>, jobs: &Jobs) {
    match eff {
        Effect::Run(req) => match worker {
            Some(w) => w.run(*req),
            None => {
                app.decode.pending_run = None;
                app.error("no model: started with --no-model");
            }
        },
        Effect::Cancel => {
            if let Some(w) = worker {
                w.cancel();
            }
        }
        Effect::Open(path) => jobs.open(path),
        Effect::Save(path) => {
            let Some(d) = &app.decode.doc else { return };
            if d.live.is_some() {
                app.error("the decode is still running: save when it is done (or Esc to cancel)");
                return;
            }
            jobs.save(d.trace.clone(), path);
        }
        Effect::Quit => {}
        Effect::TourSeen(dir) => {
            if let Err(e) = tour::mark_seen(&dir) {
                app.error(format!("cannot remember that the tour was seen: {e:#}"));
            }
        }
        Effect::Process(op) => app.execute(op),
    }
}

/// Raw mode, alternate screen and mouse capture for the life of the guard; restored on drop,
/// on error (drop) and on panic (hook).
struct TermGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TermGuard {
    fn enter() -> Result<Self> {
        install_panic_hook();
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let mut out = stdout();
        if let Err(e) = crossterm::execute!(out, EnterAlternateScreen, EnableMouseCapture) {
            restore_terminal();
            return Err(e).context("cannot set up the terminal");
        }
        let mut terminal = match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(t) => t,
            Err(e) => {
                restore_terminal();
                return Err(e).context("cannot set up the terminal");
            }
        };
        terminal.clear().ok();
        Ok(Self { terminal })
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        restore_terminal();
        self.terminal.show_cursor().ok();
    }
}

/// Leaves raw mode, the alternate screen and mouse capture (safe to call twice).
pub fn restore_terminal() {
    disable_raw_mode().ok();
    crossterm::execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, crossterm::cursor::Show).ok();
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The model thread catches its own panics and reports them as a failed run; the
            // screen stays up and unscribbled.
            if std::thread::current().name() == Some(worker::THREAD_NAME) {
                return;
            }
            restore_terminal();
            prev(info);
        }));
    });
}
