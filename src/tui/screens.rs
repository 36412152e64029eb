//! The workbench's three screens — the decode view, the training panel (`t`) and the results
//! pane (`r`) — and the vocabulary between them and the app: the keys the training and results
//! screens take ([`PaneKey`]), what their handlers (and the tour's) ask of the app in return
//! ([`Outcome`]), and what they may read from elsewhere ([`Ctx`]). The screens own their state
//! and update it themselves; `App` routes keys to the screen that is up and applies the
//! outcomes. This module names no screen and no app, so nothing here closes a circle.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::doc::Doc;
use super::effect::Effect;
pub use super::effect::ProcessOp;
use super::focus::InputKind;
use super::line_edit::Edit;
use super::view::StepRef;

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

/// What a screen's key handler (or the tour) asks of the app, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A status line.
    Info(String),
    /// A status line, as an error.
    Error(String),
    /// Work for the event loop.
    Effect(Effect),
    /// Switch to this screen (when another is up), with its status line.
    Show(Screen),
    /// Use this adapter in the decode view (from the next run).
    SetAdapter(PathBuf),
    /// Close the help overlay or the input line.
    CloseOverlay,
    /// Open the input line (open, save, search, adapter) with this text.
    StartInput(InputKind, String),
    /// Show these traces (`other` to diff against) on the decode view at a step, a block
    /// offset selected.
    Present {
        doc: Box<Doc>,
        other: Option<Box<Doc>>,
        at: StepRef,
        sel: usize,
    },
    /// Select the results pane's most notable row (the adapter furthest from its base).
    SelectNotableResult,
    /// The tour is over.
    EndTour,
    Quit,
}

/// What a screen may read from outside its own state.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The binary launched for `train` and `bench` (the running one).
    pub exe: &'a Path,
}

/// The pane key of a key press on the training or results screen (ctrl-c is handled before).
pub fn pane_key(key: KeyEvent) -> Option<PaneKey> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('u')).then_some(PaneKey::ClearLine);
    }
    Some(match key.code {
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
    })
}
