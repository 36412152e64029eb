//! Where keys go on the decode view: the focused panel, and the overlay on top of it.

use super::line_edit::LineEdit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Prompt,
    Settings,
    Timeline,
    Tokens,
    Inspector,
}

pub const FOCUS_ORDER: [Focus; 5] =
    [Focus::Prompt, Focus::Settings, Focus::Timeline, Focus::Tokens, Focus::Inspector];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Open,
    Save,
    Search,
    Adapter,
}

/// The input line shown over the footer for `o`, `s`, `/` and the adapter path.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub kind: InputKind,
    pub edit: LineEdit,
    /// Files to pick from (open): ↑↓ choose one.
    pub suggestions: Vec<String>,
    pub pick: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    Input(Input),
}
