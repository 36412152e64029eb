//! The workbench's three screens — the decode view, the training panel (`t`) and the results
//! pane (`r`) — and the glue the other two need: keys, the processes they start, and the
//! poller's snapshots.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Overlay};
pub use super::effect::ProcessOp;
use super::line_edit::Edit;
use super::runs::{self, PollEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Decode,
    Training,
    Results,
}

/// A key on the training or results screen; what it means depends on the screen's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneKey {
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Enter,
    Tab,
    BackTab,
    Esc,
    Char(char),
    Backspace,
    Delete,
    Home,
    End,
    /// Ctrl-U: clear the field being typed.
    ClearLine,
}

impl PaneKey {
    /// The line-editing action of this key (typing in a field).
    pub fn line_action(self) -> Option<Edit> {
        Some(match self {
            PaneKey::Char(c) => Edit::Char(c),
            PaneKey::Backspace => Edit::Backspace,
            PaneKey::Delete => Edit::Delete,
            PaneKey::Left => Edit::Left,
            PaneKey::Right => Edit::Right,
            PaneKey::Home => Edit::Home,
            PaneKey::End => Edit::End,
            _ => return None,
        })
    }
}

/// Keys on the training and results screens (ctrl-c is handled before).
pub fn key_action(app: &App, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
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
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('u')).then_some(Action::Pane(PaneKey::ClearLine));
    }
    Some(Action::Pane(match key.code {
        KeyCode::Up => PaneKey::Up,
        KeyCode::Down => PaneKey::Down,
        KeyCode::Left => PaneKey::Left,
        KeyCode::Right => PaneKey::Right,
        KeyCode::PageUp => PaneKey::PageUp,
        KeyCode::PageDown => PaneKey::PageDown,
        KeyCode::Enter => PaneKey::Enter,
        KeyCode::Tab => PaneKey::Tab,
        KeyCode::BackTab => PaneKey::BackTab,
        KeyCode::Esc => PaneKey::Esc,
        KeyCode::Char(c) => PaneKey::Char(c),
        KeyCode::Backspace => PaneKey::Backspace,
        KeyCode::Delete => PaneKey::Delete,
        KeyCode::Home => PaneKey::Home,
        KeyCode::End => PaneKey::End,
        _ => return None,
    }))
}

/// Whether the screen is typing into a field (so letters are text, not commands).
pub fn is_editing(app: &App) -> bool {
    match app.screen {
        Screen::Training => app.training.editing.is_some(),
        Screen::Results => app.results.bench_input.is_some(),
        Screen::Decode => false,
    }
}

/// A key on the training or results screen.
pub fn on_key(app: &mut App, k: PaneKey) {
    if !is_editing(app) {
        match k {
            PaneKey::Char('q') => return app.update(Action::Quit),
            PaneKey::Char('?') => return app.update(Action::ToggleHelp),
            PaneKey::Char('t') => return show(app, Screen::Training),
            PaneKey::Char('r') => return show(app, Screen::Results),
            _ => {}
        }
    }
    match app.screen {
        Screen::Training => {
            if k == PaneKey::Esc && !is_editing(app) {
                return show(app, Screen::Decode);
            }
            super::training::on_key(app, k)
        }
        Screen::Results => super::results::on_key(app, k),
        Screen::Decode => {}
    }
}

/// Switches screens (`t` or `r` again goes back to the decode view).
pub fn show(app: &mut App, s: Screen) {
    if app.screen == s && s != Screen::Decode {
        app.screen = Screen::Decode;
        return;
    }
    app.screen = s;
    match s {
        Screen::Training => {
            let n = app.training.runs.len();
            let dir = runs::runs_dir(&app.training.data_dir);
            app.info(format!("training: {n} run(s) in {} — n: new run, L: launch", dir.display()));
        }
        Screen::Results => {
            let msg = app.results.source_line();
            app.info(msg);
        }
        Screen::Decode => {}
    }
}

/// Starts or signals a process, reporting the outcome in the status line.
pub fn execute(app: &mut App, op: ProcessOp) {
    match op {
        ProcessOp::Spawn { launch, what } => match runs::spawn(&launch) {
            Ok(pid) => {
                if launch.kind == runs::LaunchKind::Bench {
                    app.results.jobs.push(super::results::BenchJob {
                        pid,
                        log: launch.log.clone(),
                        what: what.clone(),
                        started: std::time::Instant::now(),
                    });
                }
                app.info(format!("{what}: started (pid {pid}); log {}", launch.log.display()));
            }
            Err(e) => app.error(format!("{what}: {e:#}")),
        },
        ProcessOp::Interrupt { pid, what } => match runs::interrupt(pid) {
            Ok(()) => app.info(format!("cancelling {what}: it checkpoints and stops")),
            Err(e) => app.error(format!("cannot cancel {what}: {e:#}")),
        },
    }
}

/// Applies a poller snapshot.
pub fn on_poll(app: &mut App, ev: PollEvent) {
    match ev {
        PollEvent::Runs(r) => app.training.set_runs(r),
        PollEvent::Results { root, loaded } => app.results.set_loaded(&root, *loaded),
    }
}
