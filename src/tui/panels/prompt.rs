//! The prompt box: edit, Enter runs.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::panel;
use crate::tui::app::{App, Focus, ModelState};
use crate::tui::theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.decode.focus == Focus::Prompt;
    let kind = match &app.model {
        ModelState::Ready(i) if !i.has_tokenizer => " (token ids) ".to_string(),
        ModelState::Ready(i) => {
            format!(" ({}{}) ", i.id, if app.decode.settings.chat { ", chat" } else { "" })
        }
        ModelState::Loading(m) => format!(" (loading {m}…) "),
        ModelState::Missing(_) => " (no model) ".to_string(),
    };
    let title = Line::from(vec![Span::raw(" Prompt"), Span::styled(kind, Style::new().fg(theme::MUTED))]);
    let block = panel(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    if w == 0 || inner.height == 0 {
        return;
    }
    let chars: Vec<char> = app.decode.prompt.text.chars().collect();
    // Scroll horizontally so the cursor stays visible.
    let first = (app.decode.prompt.cursor + 1).saturating_sub(w);
    let shown: String = chars.iter().skip(first).take(w).collect();
    let line = if chars.is_empty() && !focused {
        Line::from("(empty: p or Tab to type a prompt)".fg(theme::MUTED))
    } else {
        Line::from(shown)
    };
    frame.render_widget(Paragraph::new(line), inner);
    if focused && app.overlay == crate::tui::app::Overlay::None {
        let x = inner.x + (app.decode.prompt.cursor - first) as u16;
        frame.set_cursor_position((x.min(inner.right().saturating_sub(1)), inner.y));
    }
}
