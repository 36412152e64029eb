//! Colours and glyphs, in one place so panels and tests agree. Named ANSI colours only, so the
//! workbench reads the same in any terminal and under tmux.

use ratatui::style::{Color, Modifier, Style};

use super::view::{CellKind, TokenCell};

/// Confidence buckets: ≥0.9 green, ≥0.7 light green, ≥0.5 yellow, ≥0.3 light red, else red.
pub fn confidence(p: f32) -> Color {
    if p >= 0.9 {
        Color::Green
    } else if p >= 0.7 {
        Color::LightGreen
    } else if p >= 0.5 {
        Color::Yellow
    } else if p >= 0.3 {
        Color::LightRed
    } else {
        Color::Red
    }
}

pub const PROMPT: Color = Color::DarkGray;
pub const MASK: Color = Color::DarkGray;
pub const EDIT: Color = Color::Magenta;
/// T2M: a committed token reset to the mask.
pub const REMASK: Color = Color::LightBlue;
pub const FALLBACK: Color = Color::Yellow;
pub const COMMIT: Color = Color::Green;
pub const POST: Color = Color::DarkGray;
pub const EOS_BG: Color = Color::Blue;
pub const DIFF_BG: Color = Color::Red;
pub const FOCUS: Color = Color::Cyan;
pub const ERROR: Color = Color::Red;
pub const MUTED: Color = Color::DarkGray;

/// Timeline glyphs.
pub const GLYPH_COMMIT: &str = "●";
pub const GLYPH_FALLBACK: &str = "▲";
pub const GLYPH_EDIT: &str = "◆";
pub const GLYPH_POST_EDIT: &str = "◇";
pub const GLYPH_REMASK: &str = "⊘";
pub const GLYPH_POST: &str = "·";
pub const GLYPH_HOLD: &str = "○";
pub const MASK_GLYPH: &str = "▒";

/// Style of a token in the canvas (the old token of an edit is drawn separately, see
/// [`edit_old`]).
pub fn token_style(c: &TokenCell) -> Style {
    let conf = c.p.map(confidence).unwrap_or(Color::Reset);
    let s = match c.kind {
        CellKind::Prompt => Style::new().fg(PROMPT).add_modifier(Modifier::DIM),
        CellKind::Mask => Style::new().fg(MASK),
        CellKind::Commit { fallback: false } => Style::new().fg(conf).add_modifier(Modifier::BOLD),
        CellKind::Commit { fallback: true } => {
            Style::new().fg(conf).add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
        CellKind::Edit { .. } => Style::new().fg(EDIT).add_modifier(Modifier::BOLD),
        CellKind::Remask { .. } => Style::new().fg(REMASK).add_modifier(Modifier::BOLD),
        CellKind::Keep => Style::new().fg(conf),
    };
    if c.eos && c.kind != CellKind::Mask { s.bg(EOS_BG) } else { s }
}

/// The replaced token of an edit: struck through.
pub fn edit_old() -> Style {
    Style::new().fg(MUTED).add_modifier(Modifier::CROSSED_OUT)
}

pub fn edit_arrow() -> Style {
    Style::new().fg(EDIT)
}

/// The token a remask took back: struck through, in the remask colour.
pub fn remask_old() -> Style {
    Style::new().fg(REMASK).add_modifier(Modifier::CROSSED_OUT)
}

pub fn selected(s: Style) -> Style {
    s.add_modifier(Modifier::REVERSED)
}

pub fn border(focused: bool) -> Style {
    if focused { Style::new().fg(FOCUS).add_modifier(Modifier::BOLD) } else { Style::new().fg(MUTED) }
}
